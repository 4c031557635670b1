"""The only package that imports mitmproxy: one module per addon, their options, and the runner."""
