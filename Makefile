# The two commands of the README: `make reports` and `make test`. Each creates
# the virtual environment when missing, installs the package with pinned
# versions (constraints.txt), and registers the project's Jupyter kernel.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# `make test VENV=.venv-plain` keeps a second environment beside the first (.ci/run does, for the plain path)
VENV ?= .venv
PY := $(VENV)/bin/python
# Extras installed with the package: `make test EXTRAS=dev,spark` adds the Spark engine, `sequence` the LSTM of
# notebook 05 (CI installs both)
EXTRAS ?= dev
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
PARAMS ?= params/default.yaml
JOBS ?= 1
# Extra pytest arguments, e.g. `make test TESTS='-m "not spark"'` (the default runs the whole suite)
TESTS ?=

.PHONY: setup reports screenshots test lab clean-reports bench bench-quick

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	$(PY) -m ipykernel install --sys-prefix --name funnelkit --display-name "Python (funnelkit)"
	touch $(STAMP)

setup: $(STAMP)

# the full reports include notebook 05's LSTM: the sequence extra (Keras 3 on JAX, CPU) comes with them
REPORT_EXTRAS ?= dev,sequence
reports:
	$(MAKE) setup EXTRAS=$(REPORT_EXTRAS)
	$(VENV)/bin/funnelkit run --params $(PARAMS) --jobs $(JOBS)

# PNGs of every report in reports/ (first screen and full page, rendered offline in headless
# Chromium: Debian's `chromium` package) into screenshots/, for review; run `make reports` first.
# `make screenshots SHOTS=--open` adds the full pages with every folded section opened.
SHOTS ?=
screenshots: $(STAMP)
	$(PY) -m funnelkit.screenshots reports screenshots $(SHOTS)

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile $(TESTS)

# Benchmark suite (benchmarks/README.md): 1M, 20M and 100M events (simulated on first use
# into data/bench/, which takes a while), or --quick: 1M events only, about a minute.
# The full suite measures the Spark engine too, so it installs the spark extra.
bench:
	$(MAKE) setup EXTRAS=dev,spark
	$(PY) -m benchmarks.suite

bench-quick: $(STAMP)
	$(PY) -m benchmarks.suite --quick

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

clean-reports:
	find reports -mindepth 1 ! -name README.md -delete
