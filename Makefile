# chroma-runbook: `make demo` to see it work, `make test` for everything CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help venv legacy-venvs nginx lab-deps lab-up lab-down lab-clean lab-status demo test test-unit test-integration test-pytest lint molecule bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed ## create .venv with the pinned requirements

# Chroma 0.4.24 and 0.5.23, each in its own pinned venv (lab/legacy.py PINS): the legacy
# sources of the tests, the legacy_source scenario and `make lab-up LAB_SOURCE=0.4.24`.
legacy-venvs: venv ## build (or reuse) the pinned Chroma 0.4.24 / 0.5.23 venvs under .cache/legacy/
	@cd $(CURDIR) && $(BIN)/python -m lab.legacy venv

nginx: ## install nginx with apt-get if it is missing
	@command -v nginx >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; }

lab-deps: ## install what the multi-host lab needs (openssh-server/-client, iproute2) with apt-get if missing
	@missing=""; [ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	command -v ssh >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1 || missing="$$missing openssh-client"; \
	[ -x /usr/sbin/ip ] || command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi

# The local lab (lab/labctl.py): LAB_DIR and LAB_PORT_BASE relocate it, e.g.
#   make lab-up LAB_DIR=/tmp/lab2 LAB_PORT_BASE=18000
# LAB_HOSTS=netns: the multi-host lab (proxy and app hosts in network namespaces reached over
# SSH; inventory/lab-hosts.yml; default directory .lab-hosts).
# LAB_SOURCE=0.4.24 (or 0.5.23) runs the source with that legacy Chroma from its own venv
# (make legacy-venvs), loaded by that version's client; the lab directory remembers it.
LAB_HOSTS ?= local
ifeq ($(LAB_HOSTS),netns)
LAB_DIR ?= $(CURDIR)/.lab-hosts
else
LAB_DIR ?= $(CURDIR)/.lab
endif
LAB_PORT_BASE ?= 8000
LAB_SOURCE ?=
LABCTL = cd $(CURDIR) && $(BIN)/python -m lab.labctl
LAB_ARGS = --dir $(LAB_DIR) --port-base $(LAB_PORT_BASE) --hosts $(LAB_HOSTS) $(if $(LAB_SOURCE),--source $(LAB_SOURCE))
LAB_UP_DEPS = venv nginx $(if $(filter netns,$(LAB_HOSTS)),lab-deps) $(if $(LAB_SOURCE),legacy-venvs)

lab-up: $(LAB_UP_DEPS) ## start (or repair) the lab (LAB_HOSTS=netns: the multi-host lab over SSH; LAB_SOURCE=0.4.24: a legacy source); loads the dataset
	@$(LABCTL) up $(LAB_ARGS)

lab-down: venv ## stop everything the lab started (data under .lab/ is kept)
	@$(LABCTL) down $(LAB_ARGS)

lab-clean: venv ## stop the lab and delete its directory (data, runs, reports): the next lab-up starts fresh
	@$(LABCTL) down --purge $(LAB_ARGS)

lab-status: venv ## table of the lab's processes, ports and health
	@$(LABCTL) status $(LAB_ARGS)

lab-fault: venv ## multi-host lab: cut a host off the network or back (make lab-fault HOST=app_chatbot LINK=down|up)
	@cd $(CURDIR) && $(BIN)/python -m lab.netns link $(HOST) $(LINK) --dir $(LAB_DIR)

demo: venv nginx ## venv + nginx + lab-up + ansible-playbook migrate.yml -e confirm=yes; leaves the lab running
	@s=$$SECONDS; $(MAKE) --no-print-directory lab-up && \
	$(BIN)/ansible-playbook migrate.yml -e confirm=yes \
	  -e chroma_lab_dir=$(LAB_DIR) -e chroma_lab_port_base=$(LAB_PORT_BASE); rc=$$?; \
	echo; echo "demo: ansible-playbook migrate.yml finished with exit $$rc after $$((SECONDS - s))s"; \
	echo "demo: reports in $(LAB_DIR)/runs/latest/reports/ ; lab still running (make lab-status, make lab-down)"; \
	if [ -d $(LAB_DIR)/runs/latest/reports ]; then ls -1 $(LAB_DIR)/runs/latest/reports/ | sed 's/^/  /'; fi; \
	exit $$rc

# pytest exits 5 when it collects nothing: that is a failure here, said out loud.
PYTEST = run_pytest() { $(BIN)/pytest "$$@"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests in: $$*" >&2; fi; return $$rc; }; run_pytest

test-unit: venv ## pytest unit tests (pure functions)
	@$(PYTEST) -q tests/unit

# The integration tests mostly wait on servers and playbooks: two pytest-xdist workers, one test
# file per worker at a time (--dist loadfile keeps a module's lab fixture in one worker). Every
# port, lab directory and subnet a test uses is picked per process (lab/ports.py ledger, tmp_path).
# --no-loadscope-reorder: files run in the order tests/conftest.py gives (slowest first).
# PYTEST_XDIST= (empty) runs them one after another; --durations lists the slowest tests.
PYTEST_XDIST ?= -n 2 --dist loadfile --no-loadscope-reorder
PYTEST_REPORT ?= --durations=20 --junitxml=$(PYTEST_XML)
# pytest's JUnit report: `make test` names the failed tests again at its very end from it.
PYTEST_XML ?= $(CURDIR)/.cache/pytest-report.xml

# The legacy venvs are built before the tests that need them (LEGACY_VENVS= leaves them out: `make test`
# builds them beside pytest, and a test that needs one waits on its build's lock, lab/legacy.py).
LEGACY_VENVS ?= legacy-venvs

test-integration: venv nginx $(LEGACY_VENVS) lab-deps ## pytest integration tests (real chroma, nginx, supervisord, ansible-playbook), 2 workers
	@$(PYTEST) -q $(PYTEST_XDIST) $(PYTEST_REPORT) tests/integration

test-pytest: venv nginx $(LEGACY_VENVS) lab-deps ## every pytest test under tests/, 2 workers (PYTEST_XDIST= for one)
	@$(PYTEST) -q $(PYTEST_XDIST) $(PYTEST_REPORT) tests

lint: venv ## yamllint and ansible-lint --profile production over the whole repo
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production

# Two lanes side by side (each scenario has its own lab directory and port span); a scenario
# no lane names joins the shorter lane (MOLECULE_LANES=default: one lane, all of them, default first).
MOLECULE_LANES ?= resume,legacy_source,rollback_after_cutover multihost,rollback,default
molecule: venv nginx legacy-venvs lab-deps ## every molecule scenario on the lab (default driver), in two lanes that run side by side
	@$(BIN)/python tests/molecule_lanes.py $(MOLECULE_LANES)

# `make test` runs every part even when one fails, prints each part's time, and
# fails at the end naming the parts that failed: pytest (the legacy venvs are built beside it, ~2.5 min
# of mostly pip downloads), then molecule with the lint beside it (molecule's lanes leave part of a
# core idle; the lint's output is printed after molecule's).
# Every multi-host lab it makes is listed in a registry file and removed at exit (namespaces
# included), even after a failure.
LINT_LOG := $(CURDIR)/.cache/lint.log
LEGACY_LOG := $(CURDIR)/.cache/legacy-venvs.log
test: venv nginx lab-deps ## everything CI runs: pytest (all of tests/), every molecule scenario, lint beside them
	@export CHROMA_LAB_NETNS_REGISTRY=$$(mktemp /tmp/chroma-lab-netns.XXXXXX); \
	trap 'cd $(CURDIR) && $(BIN)/python -m lab.netns cleanup --registry "$$CHROMA_LAB_NETNS_REGISTRY"; rm -f "$$CHROMA_LAB_NETNS_REGISTRY"' EXIT; \
	mkdir -p $(dir $(LINT_LOG)); rm -f $(PYTEST_XML) $(LINT_LOG) $(LEGACY_LOG); failed=""; \
	( t=$$SECONDS; rc=0; $(MAKE) --no-print-directory legacy-venvs || rc=$$?; echo "legacy venvs took $$((SECONDS - t))s"; \
	  exit $$rc ) > $(LEGACY_LOG) 2>&1 & legacy_pid=$$!; \
	s=$$SECONDS; echo "==> test-pytest (the legacy venvs are built beside it)"; \
	$(MAKE) --no-print-directory test-pytest LEGACY_VENVS= || failed="$$failed test-pytest"; \
	echo "<== test-pytest: $$((SECONDS - s))s"; \
	echo "==> legacy venvs"; wait $$legacy_pid || failed="$$failed legacy-venvs"; cat $(LEGACY_LOG); echo "<== legacy venvs"; \
	( t=$$SECONDS; rc=0; $(MAKE) --no-print-directory lint || rc=$$?; echo "lint took $$((SECONDS - t))s"; exit $$rc ) \
	  > $(LINT_LOG) 2>&1 & lint_pid=$$!; \
	s=$$SECONDS; echo "==> molecule (lint runs beside it: its output follows)"; \
	$(MAKE) --no-print-directory molecule || failed="$$failed molecule"; \
	echo "<== molecule: $$((SECONDS - s))s"; \
	echo "==> lint"; wait $$lint_pid || failed="$$failed lint"; cat $(LINT_LOG); echo "<== lint"; \
	if [[ "$$failed" == *test-pytest* ]]; then $(BIN)/python tests/failed_tests.py $(PYTEST_XML); fi; \
	if [ -n "$$failed" ]; then echo "make test FAILED:$$failed" >&2; exit 1; fi; echo "make test passed"
