"""What several test modules share: sample data, certificates, servers and the proxy launcher."""
