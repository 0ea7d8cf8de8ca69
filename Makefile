# Every target sets itself up: a virtualenv in .venv with the connector and its test tools.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test unit integration bench image-check pyairbyte-test clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[tests]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) demo/run_demo.py

test: $(STAMP)
	$(PY) -m pytest

unit: $(STAMP)
	$(PY) -m pytest unit_tests

integration: $(STAMP)
	$(PY) -m pytest integration_tests

bench: $(STAMP)
	$(PY) bench/run_bench.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info demo/output bench/output
