"""The `port443_*` options of the proxy, declared once with their help texts (`mitmdump --options` prints them).

The help is user documentation: the README's options table copies it. Defaults that the pure core also
needs (modes, TTLs) come from there, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence

from mitmproxy.addonmanager import Loader

from port443.proxy.decide import MODES, Settings

_DEFAULTS = Settings()


def add_options(loader: Loader) -> None:
    """Declare the options HttpsUpgrade reads."""
    loader.add_option(
        "port443_mode",
        str,
        "redirect",
        "How to upgrade: answer with a redirect to HTTPS (redirect), fetch HTTPS upstream and answer over HTTP for clients that cannot follow redirects (rewrite), or redirect and show a warning page for sites that cannot be upgraded (strict).",
        choices=MODES,
    )
    loader.add_option(
        "port443_rules",
        Sequence[str],
        [],
        "Extra ruleset files or folders (YAML), tried before the shipped rules. Edits are picked up while running.",
    )
    loader.add_option(
        "port443_shipped_rules",
        bool,
        True,
        "Use the rulesets that ship with port443 (the HTTPS Everywhere corpus).",
    )
    loader.add_option(
        "port443_platforms",
        Sequence[str],
        [],
        "Enable rulesets limited to these platforms, e.g. mixedcontent.",
    )
    loader.add_option(
        "port443_never_upgrade",
        Sequence[str],
        [],
        "Hosts never to upgrade; a name covers its subdomains.",
    )
    loader.add_option(
        "port443_redirect_status", int, 307, "Status code of the redirect to HTTPS: 301, 302, 307 or 308."
    )
    loader.add_option("port443_hsts_preload", bool, True, "Upgrade hosts on the HSTS preload list.")
    loader.add_option(
        "port443_probe",
        bool,
        True,
        "Probe port 443 of hosts that no rule or list covers, and upgrade when HTTPS works.",
    )
    loader.add_option(
        "port443_probe_timeout",
        int,
        3000,
        "Milliseconds a probe of port 443 may take (connect, TLS and first answer).",
    )
    loader.add_option(
        "port443_secure_ttl", int, int(_DEFAULTS.secure_ttl), "Seconds to remember that a host's HTTPS works."
    )
    loader.add_option(
        "port443_insecure_ttl",
        int,
        int(_DEFAULTS.insecure_ttl),
        "Seconds to remember that a host's HTTPS failed before probing again.",
    )
    loader.add_option(
        "port443_loop_window",
        int,
        10,
        "Seconds within which a client asking again for an http URL it was just redirected from is suspected of a redirect loop. A suspicion is confirmed by asking the https URL before anything is learned; only a burst of repeats (a browser in a loop) leaves that one client on HTTP without confirmation.",
    )
    loader.add_option(
        "port443_confirm_rules",
        bool,
        True,
        "Confirm that HTTPS works on a ruleset's target (one shared probe, remembered like other probes) before the first upgrade by that ruleset; rulesets can be stale. Turn off to trust your rules blindly.",
    )
    loader.add_option(
        "port443_connect_to",
        Sequence[str],
        [],
        "Connect to another address for a host, like curl's --connect-to: HOST:PORT:ADDR:PORT2. Used for probes and upstream connections; TLS still verifies HOST.",
    )
    loader.add_option(
        "port443_bypass_ttl", int, 3600, "Strict mode: seconds a 'continue over HTTP' choice lasts."
    )
