"""The `port443` command line: argparse wiring, one module per command group, and every rich table."""
