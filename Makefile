# cloudinit-cernvm: every target sets up what it needs (tools/bootstrap).
VENV   ?= $(CURDIR)/.venv
PY     := $(VENV)/bin/python
CACHE  ?= $(HOME)/.cache/cloudinit-cernvm
export CERNVM_CACHE := $(CACHE)

.PHONY: setup test lint demo bench rpm vm-test fuzz clean

setup:
	@tools/bootstrap

lint: setup
	$(VENV)/bin/ruff check .
	tools/shellcheck-all

test: setup lint
	$(PY) -m pytest -n 2 -q tests --ignore=tests/vm

# Whole boots under qemu (software emulation): builds the test VM from
# Debian's packages once (cached), then boots it per case.
vm-test:
	@tools/bootstrap --vm
	$(PY) -m pytest -q tests/vm

# At least 100,000 hostile inputs through the user-data conversion and checks,
# and 2,000 hostile metadata answers and 2,000 context disks through the
# microboot stage under busybox (about 5 minutes).
FUZZ_EXAMPLES ?= 100000
FUZZ_STAGE_EXAMPLES ?= 2000
fuzz: setup
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -s tests/properties/test_userdata_fuzz.py
	FUZZ_STAGE_EXAMPLES=$(FUZZ_STAGE_EXAMPLES) $(PY) -m pytest -q -s tests/properties/test_microboot_fuzz.py

demo: setup
	$(PY) tools/demo.py

# bench/boot.py boots the test VM, 54 boots: 6 cases, 3 of each side (about 35
# minutes under qemu's software emulation on an idle machine); bench/faults.py
# boots cloud-init 26.2 under each fault (about 5 minutes).
bench:
	@tools/bootstrap --vm
	$(PY) bench/microboot.py
	$(PY) bench/bench.py
	$(PY) bench/boot.py
	$(PY) bench/faults.py

# The RPM and source RPM into dist/ (RPM_RELEASE=N sets the Release number).
rpm: setup
	tools/build-rpm

clean:
	rm -rf $(VENV) dist build *.egg-info .pytest_cache .ruff_cache
