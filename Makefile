# The two commands of the README: `make demo` and `make test`. Both set up
# everything on a fresh machine (a virtualenv in .venv) the first time.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

# Byte-compile what is used: pip's up-front compile of every installed file (TensorFlow, torch, JAX, Beam:
# about 15,000 modules) took half of the set-up (126 s of it -> 63 s without), while vswin imports about a
# third of them. The set-up imports the heavy packages once, which writes their bytecode; the rest is
# compiled on first import. That needs Python allowed to write bytecode in these commands: where
# PYTHONDONTWRITEBYTECODE is set, every process would compile what it imports again (vswin itself included).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install demo test test-fast
install: $(VENV)/.installed

# torch is pinned to the CPU build that these machines carry; any torch>=2.1 works.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --no-compile "torch==2.13.0" -e ".[all,dev]"
	$(PY) -c "import tensorflow, torch, apache_beam.runners.direct, apache_beam.ml.inference, cv2, grpc, pyarrow.parquet"
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
