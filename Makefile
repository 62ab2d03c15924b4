# k8s-netlab: `make help` lists the targets.
LAB ?= ci-debian12
PY  ?= .venv/bin/python
PYTEST ?= $(PY) -m pytest
E2E_WORKERS ?= 4

.DEFAULT_GOAL := help
.PHONY: help setup box validate preflight render lab up provision plan status destroy sweep \
        lint unit integration e2e test nightly report breakages bench mutation clean images cri-proto

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  LAB=$(LAB) (labs/<LAB>.yaml; the guide's lab is LAB=guide-centos7)"

setup: ## install Debian packages and the Python environment (.venv) that `make lab` needs
	scripts/setup-host

# the test tools (pytest, xdist, mypy, ruff, ...: the [test] extra), installed on first use
TEST_DEPS := .venv/.netlab-test-deps
$(TEST_DEPS): pyproject.toml
	$(PY) -m pip install -q -e '.[test]'
	touch $@

box: ## build (or reuse) the offline Debian 12 box and add it to vagrant
	$(PY) -m lab box

validate: ## validate every lab file
	$(PY) -m lab validate labs/*.yaml

preflight: ## check this host for LAB (KVM, memory, subnets, every URL); creates nothing
	$(PY) -m lab preflight $(LAB)

render: ## render LAB's files under .lab/LAB/
	$(PY) -m lab render $(LAB)

lab: ## bring LAB up and provision it (the main job)
	$(PY) -m lab up $(LAB)
	$(PY) -m lab provision $(LAB)

up: ## bring LAB's nodes up (no provisioning)
	$(PY) -m lab up $(LAB)

provision: ## provision the running LAB (idempotent)
	$(PY) -m lab provision $(LAB)

plan: ## print every node's provisioning plan (dry run, touches no VM)
	$(PY) -m lab plan $(LAB)

status: ## show LAB's nodes
	$(PY) -m lab status $(LAB)

destroy: ## destroy LAB and everything it created in libvirt
	$(PY) -m lab destroy $(LAB)

sweep: ## remove LAB's leftovers from libvirt (by prefix)
	$(PY) -m lab sweep $(LAB)

lint: $(TEST_DEPS) ## ruff, mypy --strict on lab/ and provision/, import contracts
	$(PY) -m ruff check app lab provision e2e tests bench
	$(PY) -m mypy
	.venv/bin/lint-imports

unit: lint ## fast inner loop: lint + unit tests (no VMs)
	$(PYTEST) -q -n 2 tests/unit

integration: $(TEST_DEPS) ## the harness on real VMs: box, lifecycle, snapshot, sweep, provisioning, tunnel
	$(PYTEST) -v -p no:randomly tests/integration

e2e: $(TEST_DEPS) ## the network-model suite against LAB (attaches to a running lab, else creates one)
	$(PYTEST) e2e -n $(E2E_WORKERS) --lab $(LAB)

CI_LABS ?= ci-debian12 ci-debian12-vxlan

test: unit integration ## everything CI runs: unit, integration, then the nightly on both CI labs
	$(foreach lab,$(CI_LABS),$(MAKE) nightly LAB=$(lab) &&) true

breakages: $(TEST_DEPS) ## inject each real-world breakage on LAB, run the suite, undo; the detection matrix
	$(PY) -m lab breakages $(LAB) $(if $(BREAKAGES),--only $(BREAKAGES)) $(if $(BREAKAGES_ARTIFACTS),--artifacts $(BREAKAGES_ARTIFACTS))

# NIGHTLY_HISTORY: the history folder (default .artifacts/history); NIGHTLY_FLAGS: e.g.
# --fail-on-regression (exit 1 when the run got worse than the last green run)
NIGHTLY_HISTORY ?= .artifacts/history
NIGHTLY_FLAGS ?=

nightly: $(TEST_DEPS) ## sweep, up, provision, e2e, disruptive faults, artifacts, destroy, history
	$(PY) -m lab nightly $(LAB) $(if $(NIGHTLY_ARTIFACTS),--artifacts $(NIGHTLY_ARTIFACTS)) \
	  --history $(NIGHTLY_HISTORY) $(NIGHTLY_FLAGS)

report: ## build the nightly history's index.html (NIGHTLY_HISTORY, default .artifacts/history)
	$(PY) -m lab report $(NIGHTLY_HISTORY)

images: ## build the test container images (pause, echo, client) offline from Debian packages
	$(PY) -m lab.adapters.imagebuild

cri-proto: ## regenerate lab/runtime/cri/runtime_v1_pb2*.py(i) from lab/runtime/cri/runtime_v1.proto
	$(PY) -m lab.runtime.cri.generate

bench: $(TEST_DEPS) ## benchmarks: up, provisioning, the suite's scaling, the overlay's cost (ratios printed)
	$(PY) bench/bench_up.py $(LAB)
	$(PY) bench/bench_provision.py $(LAB)
	$(PY) bench/bench_e2e.py $(LAB)
	$(PY) bench/bench_overlay.py

MUTMUT ?= .venv/bin/mutmut
MUTATION_MIN ?= 95
MUTATION_BUDGET ?=
MUTATION_MODULES ?=
MUTATION_KEEP ?=
MUTATION_NICE ?= 19
MUTATION_LOG ?= .cache/mutation.log
MUTATION_GLOBS = $(foreach m,$(MUTATION_MODULES),'$(m)')

# docs/mutation.md. A run scores from scratch (mutants/ is removed first). MUTATION_KEEP=1:
# reuse the last run's verdicts and try again only its survivors and the changed functions (a
# quick loop while writing tests; the figure says it is incremental). MUTATION_BUDGET: a time
# bound (timeout(1): 30m, 2h); the mutants not reached stay "not checked" and the gate fails.
# MUTATION_MODULES: mutmut globs ("lab.model.config.* e2e.cnirt.*"). mutmut runs at nice
# MUTATION_NICE (the machine is shared with VM work).
mutation: ## mutation testing of the code that judges and plans (mutmut); fails below MUTATION_MIN or with a mutant unscored
	@[ -x $(MUTMUT) ] || $(PY) -m pip install -q -e '.[test,mutation]'
	@mkdir -p $(dir $(MUTATION_LOG))
	$(if $(MUTATION_KEEP),$(PY) -m app.mutation recheck,rm -rf mutants)
	@# mutmut maps tests to functions once and only adds new tests: after a change of the code a
	@# new function would read "no tests". One suite run rebuilds the map.
	rm -f mutants/mutmut-stats.json
	$(if $(MUTATION_BUDGET),timeout --signal=TERM --kill-after=120 $(MUTATION_BUDGET)) \
	  nice -n $(MUTATION_NICE) $(MUTMUT) run $(MUTATION_GLOBS) > $(MUTATION_LOG) 2>&1 || [ $$? -eq 124 ] \
	  || { tail -n 40 $(MUTATION_LOG); exit 1; }
	$(PY) -m app.mutation scope
	$(PY) -m app.mutation score --min $(MUTATION_MIN) $(if $(MUTATION_KEEP),--incremental) \
	  $(if $(MUTATION_MODULES),--only $(MUTATION_GLOBS))

clean: ## remove rendered state (not the box cache)
	rm -rf .lab
