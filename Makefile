# Developer and CI entry points. `make test` is what CI runs (see .ci/run).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
STATE := .local
# What the local default keeps in $(STATE) (deploy/local/stack.py; other tools' files stay).
LOCAL_DATA := mongodb mail smtp-sink secrets.json logs tls dovecot mongodb-tmp env servers.json ports.json preset.done mailroom.pid

.PHONY: venv test lint docs servers stop run reset image screenshots

venv: $(STAMP)

# Re-install only when the dependencies may have changed. `make test` (and lint, docs) get the
# test and dev tools; `make run` only what running needs plus the local servers' extra.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -e '.[dev]'
	touch $@ $(RUN_STAMP)

$(RUN_STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -e '.[local]'
	touch $@

# Most of the suite waits on servers, not the CPU: one worker more than the cores (at most 4,
# each starts servers of its own; on 2 cores 3 workers took 6 min 57 s where 2 took 8 min 38 s,
# the extra one using the time the chaos run's outages leave idle), a module's tests kept
# together on one worker (--dist loadfile), in the order tests/conftest.py gives them (the
# long ones first; xdist would sort by test count). WORKERS=0 runs everything in this process.
WORKERS ?= $(shell n=$$(( $$(nproc) + 1 )); [ $$n -gt 4 ] && n=4; echo $$n)

# pytest exits 5 when it collected nothing: a broken test tree must not look green.
test: venv
	@rc=0; $(PY) -m pytest -q -n $(WORKERS) --dist loadfile --no-loadscope-reorder || rc=$$?; \
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

# Every console page at 1280 and 390 px into docs/screenshots/ (deploy/screenshots.py): a
# private seeded stack, Debian's headless chromium (installed when missing, as root).
screenshots: venv
	$(PY) -m deploy.screenshots

# The local default (deploy/local/stack.py): servers, `mailroom run all` in the background,
# the preconfigured account; ends with the "ready" block. Data stays in $(STATE)/.
run: $(RUN_STAMP)
	@$(PY) -m deploy.local.stack run --dir $(STATE)

servers: $(RUN_STAMP)
	$(PY) -m deploy.local.stack up --dir $(STATE)

# Stops everything `make run` started and says what; the data stays.
stop:
	@if [ -x $(PY) ]; then $(PY) -m deploy.local.stack stop --dir $(STATE); \
	else echo "nothing was running"; fi

# Stops everything, then removes the local data (cases, mails, settings, mailboxes, keys).
reset:
	@if [ -x $(PY) ]; then $(PY) -m deploy.local.stack reset --dir $(STATE); \
	else for f in $(LOCAL_DATA); do \
	  if [ -e $(STATE)/$$f ]; then rm -rf $(STATE)/$$f && echo "removed $(STATE)/$$f"; fi; \
	done; fi

# The container image, built with mmdebstrap + podman and smoke-checked (deploy/build-image.sh;
# slow, so not part of `make test`). IMAGE_ARGS e.g. --git v1.0 --tag registry/mailroom:1.0.
image: $(RUN_STAMP)
	deploy/build-image.sh $(IMAGE_ARGS)
