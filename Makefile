# svcnet — two commands for a new user (as root on Debian/Ubuntu):
#   make up     install what is missing, then start svcnet
#   make test   install what is missing, then run the checks and the whole test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := nftables iproute2 util-linux containernetworking-plugins conntrack haproxy dnsutils dnsperf knot procps wrk hey \
	skopeo umoci busybox-static nginx-light apache2 curl netcat-openbsd tcpdump iperf3 python3
STAMP := $(VENV)/.installed

.PHONY: up down status test check unit integration e2e deps debs venv bench clean

up: deps
	$(VENV)/bin/svcnet up

down:
	$(VENV)/bin/svcnet down

status:
	$(VENV)/bin/svcnet status

deps: debs venv

# Debian packages: one `apt-get update`, then install only what dpkg does not already have.
debs:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages: $$missing (run as root to install them)"; exit 1; fi; \
	  echo "installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

check: venv
	$(VENV)/bin/ruff check svcnet tests bench tools
	$(VENV)/bin/ruff format --check svcnet tests bench tools
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit: venv
	$(PY) -m pytest -q tests/unit

integration: venv
	$(PY) -m pytest -q tests/integration

e2e: deps
	$(PY) -m pytest -q tests/e2e

test: deps check
	$(PY) -m pytest -q -p no:cacheprovider tests

bench: deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
