# The two commands of the README: `make run` and `make test`. Both set up .venv on first use.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test check unit e2e bench clean seed

run: $(STAMP) seed
	$(VENV)/bin/port443 run $(ARGS)

test: $(STAMP) seed
	scripts/check
	scripts/test-deps
	scripts/test

check: $(STAMP)
	scripts/check

bench: $(STAMP)
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(PY) -m bench.engine $(ARGS)

$(STAMP): pyproject.toml setup.py
	@python=$$(scripts/find-python) || exit 1; \
	  echo "Using $$python ($$($$python --version))"; \
	  test -x $(PY) || $$python -m venv $(VENV)
	@echo "Installing port443 and its dependencies into $(VENV) (a minute or two the first time; this also"
	@echo "compiles the shipped rules, so the proxy serves within a second of starting)"
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The shipped corpus compiled ahead of time, so a start never parses the YAML first: the install writes it,
# scripts/seed writes it again when a ruleset or the engine has changed since.
seed: $(STAMP)
	scripts/seed

clean:
	rm -rf $(VENV) rules/https-everywhere.compiled .pytest_cache .mypy_cache .ruff_cache
