"""Client connections to sites, shared by the proxy's probes and the checker: connect, probe, fetch."""
