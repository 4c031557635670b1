"""The decision pipeline and its state (exempt, HSTS, learned results, store, report); no mitmproxy here."""
