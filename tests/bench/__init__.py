"""Smoke runs of the benchmarks in bench/."""
