# The two commands of the README: `make reports` and `make test`. Each creates
# the virtual environment when missing, installs the package with pinned
# versions (constraints.txt), and registers the project's Jupyter kernel.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PARAMS ?= params/default.yaml
JOBS ?= 1

.PHONY: setup reports test lab clean-reports

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name funnelkit --display-name "Python (funnelkit)"
	touch $(STAMP)

setup: $(STAMP)

reports: $(STAMP)
	$(VENV)/bin/funnelkit run --params $(PARAMS) --jobs $(JOBS)

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

clean-reports:
	find reports -mindepth 1 ! -name README.md -delete
