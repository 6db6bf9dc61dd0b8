# cloudinit-cernvm: every target sets up what it needs (tools/bootstrap).
VENV   ?= $(CURDIR)/.venv
PY     := $(VENV)/bin/python
CACHE  ?= $(HOME)/.cache/cloudinit-cernvm
export CERNVM_CACHE := $(CACHE)

.PHONY: setup test lint unit demo bench clean fuzz

setup:
	@tools/bootstrap

lint: setup
	$(VENV)/bin/ruff check .
	tools/shellcheck-all

test: setup lint
	$(PY) -m pytest -n 2 -q tests --ignore=tests/vm

# At least 100,000 hostile inputs through the user-data conversion and checks.
FUZZ_EXAMPLES ?= 100000
fuzz: setup
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -s tests/unit/test_userdata_fuzz.py

demo: setup
	$(PY) tools/demo.py

bench: setup
	$(PY) bench/bench.py

clean:
	rm -rf $(VENV) dist build *.egg-info .pytest_cache .ruff_cache
