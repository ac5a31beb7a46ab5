# Two entry points for a fresh machine with python3 and make: `make demo`, `make test`.
# Both create and reuse .venv; the stamp file re-installs only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(VENV)/bin/posbridge demo

test: $(STAMP)
	bash tools/stand-ins.sh
	$(PY) tools/run_tests.py

lint: $(STAMP)
	$(VENV)/bin/ruff check bridge drivers sandbox tests bench tools
	$(VENV)/bin/mypy bridge drivers sandbox

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-output
