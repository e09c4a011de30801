# The two everyday commands: `make train` and `make test`. Both create .venv and install the
# package (with its test extras) the first time, so they work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.gentool-installed

.PHONY: install train test test-slow bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall when the project metadata changes; the package itself is editable.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

train: install  ## the default job: a VAE on the offline digits data set
	$(VENV)/bin/gentool train $(ARGS)

test: install   ## the test suite (CPU; 1487 tests, about 9 minutes on 2 cores, plus the first install; the SLURM tests are in test-slow)
	$(PY) -m pytest -q $(ARGS)

test-slow: install  ## the long tests marked `slow` (the SLURM cluster's)
	$(PY) -m pytest -q -m slow $(ARGS)

bench: install  ## throughput of the training path against a bare loop and a DataLoader loop
	$(PY) scripts/bench.py $(ARGS)

clean:
	rm -rf build dist src/*.egg-info
