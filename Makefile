# voip-infra: the two everyday commands are `make plan STACK=dev` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STACK ?= dev
STACKS := $(patsubst stacks/Pulumi.%.yaml,%,$(wildcard stacks/Pulumi.*.yaml))
BOOTSTRAP_STACKS := $(patsubst bootstrap/Pulumi.%.yaml,bootstrap.%,$(filter-out bootstrap/Pulumi.yaml,$(wildcard bootstrap/Pulumi.*.yaml)))

.PHONY: plan test lint snapshots bench ostools coturn clean

# Python's bytecode cache on for our own modules, as on a default Python (some CI images set
# PYTHONDONTWRITEBYTECODE=1): a plan otherwise recompiles components/ and tools/, ~0.2 s each time.
unexport PYTHONDONTWRITEBYTECODE

# Reinstall only when a requirements file changes (the stamp is older than them).
$(STAMP): requirements.txt requirements-test.txt constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-test.txt -c constraints.txt
	@touch $(STAMP)

plan: $(STAMP)
	$(PY) -m tools plan --stack $(STACK)

# Real tools from the OS packages, installed when missing and we are root: coturn (real-TURN
# tests), promtool from `prometheus` (alert rules) and amtool from `prometheus-alertmanager`
# (Alertmanager config and routes), redis-server (the in-cluster Valkey's rendered valkey.conf).
# Tests that need one skip loudly without it.
OS_TOOLS := turnserver:coturn promtool:prometheus amtool:prometheus-alertmanager redis-server:redis-server
ostools:
	@missing=""; for pair in $(OS_TOOLS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing from the OS packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
	      || echo "WARNING: could not install$$missing; the tests that need them will be SKIPPED"; \
	  else \
	    echo "WARNING: missing$$missing and not root; the tests that need them will be SKIPPED"; \
	  fi; \
	fi

# Kept for muscle memory: the old name of the target above.
coturn: ostools

test: $(STAMP) ostools
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -n 2 --durations=10

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Rewrite tests/snapshots/<stack>.urns on purpose (refuses to drop a stateful URN that no alias covers).
snapshots: $(STAMP)
	$(PY) -m tools.snapshots --write $(STACKS) $(BOOTSTRAP_STACKS)

bench: $(STAMP)
	$(PY) -m tools.bench $(STACKS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
