"""port443: upgrade plain-HTTP traffic to HTTPS with HTTPS-Everywhere-style rulesets, as a mitmproxy addon."""

__version__ = "0.1.0"
