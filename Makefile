# Two entry points for a fresh machine with python3 and make: `make demo`, `make test`.
# Both create and reuse .venv; the stamp file re-installs only when pyproject.toml or the
# dev lock changes.  The venv gets exactly requirements-dev.lock (runtime, test tools,
# linters and type checker, with hashes), then the project itself without dependencies:
# CI and every developer lint and test with the same versions until `make lock` moves them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean lock deb deb-check

$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r requirements-dev.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

demo: $(STAMP)
	$(VENV)/bin/posbridge demo

test: $(STAMP)
	bash tools/stand-ins.sh
	$(PY) tools/run_tests.py

lint: $(STAMP)
	$(VENV)/bin/ruff check bridge drivers sandbox tests bench tools
	$(VENV)/bin/ruff format --check bridge drivers sandbox tests bench tools
	$(VENV)/bin/mypy bridge drivers sandbox
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-output

# requirements.lock: the exact runtime dependency set, with hashes, that `make deb` installs.
# requirements-dev.lock: the same runtime pins (constrained by requirements.lock) plus the
# test tools, linters and type checker (extras test and lint), that .venv installs.
# `make lock` adds what pyproject.toml gained and keeps the other pins; `make lock UPGRADE=1`
# moves every pin to the newest release within pyproject's ranges.  Run it with the Python of
# the target distribution (3.11 for Debian 12).
LOCK_VENV := .venv-lock
PIP_COMPILE := CUSTOM_COMPILE_COMMAND='make lock' $(LOCK_VENV)/bin/pip-compile --quiet \
	--generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	--no-emit-trusted-host --no-emit-find-links $(if $(UPGRADE),--upgrade)
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) \
	    && $(LOCK_VENV)/bin/pip install -q 'pip-tools==7.4.1'; }
	$(PIP_COMPILE) --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra test --extra lint --constraint requirements.lock \
	    --output-file requirements-dev.lock pyproject.toml

# dist/posbridge_VERSION_ARCH.deb with its own venv (packaging/build-deb.sh); deb-check (root)
# installs it here, runs it, upgrades, removes and purges it (tools/deb-check.sh)
deb:
	bash packaging/build-deb.sh

deb-check:
	bash tools/deb-check.sh
