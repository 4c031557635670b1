"""Benchmarks: port443 beside a baseline measured in the same run."""
