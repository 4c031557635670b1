"""The HTTPS Everywhere engine: rulesets, their index, rewriting and the compiled cache; pure, no network, no mitmproxy."""
