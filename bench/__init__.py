"""Benchmarks: port443 beside a baseline measured in the same run.

`python -m bench.engine`: the rule engine against PyPI https-everywhere 0.2.2 (engine_measure runs each
measurement in a fresh process, engine_report makes the table, baseline writes the baseline's rules).
`python -m bench.proxy`: port443 in mitmdump against bare mitmdump (proxy_scenarios, proxy_load,
proxy_upstream, proxy_report, and helper_addon, loaded into every proxy). `python -m bench.startup`: how
soon `port443 run` serves, first start and restart, beside a start that compiles the YAML.
`python -m bench.memory_burst`: RSS of `port443 run` through bursts of 1 MiB URLs and after, with and without
giving memory back, beside bare mitmdump. All run from the repository root and need nothing beside the clone;
tests/bench/ runs each with tiny settings.
"""
