# The two commands of the README: `make run` and `make test`. Both set up .venv on first use.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test check unit e2e bench clean

run: $(STAMP)
	$(VENV)/bin/port443 run $(ARGS)

test: $(STAMP)
	scripts/check
	scripts/test-deps
	scripts/test

check: $(STAMP)
	scripts/check

bench: $(STAMP)
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(PY) -m bench.engine $(ARGS)

$(STAMP): pyproject.toml
	@python=$$(scripts/find-python) || exit 1; \
	  echo "Using $$python ($$($$python --version))"; \
	  test -x $(PY) || $$python -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
