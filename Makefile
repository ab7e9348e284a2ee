# Developer and CI entry points. `make test` is what CI runs (see .ci/run).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STATE := .local

.PHONY: venv test lint docs servers stop run

venv: $(STAMP)

# Re-install only when the dependencies may have changed.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -e '.[dev]'
	touch $@

# pytest exits 5 when it collected nothing: a broken test tree must not look green.
test: venv
	@rc=0; $(PY) -m pytest -q || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; \
	exit $$rc

# tests/ has no __init__.py (pytest rootdir layout): name its modules from the repo root.
lint: venv
	$(VENV)/bin/ruff check shared services deploy tests bench
	$(VENV)/bin/ruff format --check shared services deploy tests bench
	$(VENV)/bin/mypy --explicit-package-bases shared services deploy tests bench

# Regenerate docs/openapi.json and docs/asyncapi.json (a test checks they are current).
docs: venv
	$(PY) -m services.docs

servers: venv
	$(PY) -m deploy.local.servers up --dir $(STATE)

stop:
	$(PY) -m deploy.local.servers down --dir $(STATE)

run: venv servers
	. $(STATE)/env && exec $(VENV)/bin/mailroom run all
