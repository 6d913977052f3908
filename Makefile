# The two commands of the README: `make demo` and `make test`. Both set up
# everything on a fresh machine (a virtualenv in .venv) the first time.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test test-fast
install: $(VENV)/.installed

# torch is pinned to the CPU build that these machines carry; any torch>=2.1 works.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install "torch==2.13.0" -e ".[all,dev]"
	touch $@

demo: install
	$(VENV)/bin/vswin demo

# pytest exits 5 when it collected nothing: that is a broken suite, not a pass.
test: install
	$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

# The edit loop: everything but the tests that export, serve or run vswin in a subprocess.
test-fast: install
	$(PY) -m pytest -m "not slow"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc
