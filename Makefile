# voip-infra: the two everyday commands are `make plan STACK=dev` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STACK ?= dev
STACKS := $(patsubst stacks/Pulumi.%.yaml,%,$(wildcard stacks/Pulumi.*.yaml))

.PHONY: plan test lint snapshots bench coturn clean

# Reinstall only when a requirements file changes (the stamp is older than them).
$(STAMP): requirements.txt requirements-test.txt constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-test.txt -c constraints.txt
	@touch $(STAMP)

plan: $(STAMP)
	$(PY) -m tools plan --stack $(STACK)

# coturn from the OS packages when missing and we are root (the real-TURN tests need it).
coturn:
	@if ! command -v turnserver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing coturn from the OS packages"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq coturn >/dev/null) \
	      || echo "WARNING: coturn could not be installed; the real-TURN tests will be SKIPPED"; \
	  else \
	    echo "WARNING: coturn missing and not root; the real-TURN tests will be SKIPPED"; \
	  fi; \
	fi

test: $(STAMP) coturn
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -n 2 --durations=10

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Rewrite tests/snapshots/<stack>.urns on purpose (refuses to drop a stateful URN that no alias covers).
snapshots: $(STAMP)
	$(PY) -m tools.snapshots --write $(STACKS)

bench: $(STAMP)
	$(PY) -m tools.bench $(STACKS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
