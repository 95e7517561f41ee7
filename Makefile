# The two commands of the README. Each creates the local virtualenv (.venv) on first use.
#   make report            render every finding into reports/$(PRESET)/index.html (PRESET=ci|default|paper)
#   make test              unit tests + every notebook at the `ci` preset, checked by nbval
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PRESET ?= default
JOBS   ?= 2
NOTEBOOKS ?=

.PHONY: report test bench lab clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

report: $(VENV)/.installed
	$(PY) -m nbkernels.report --preset $(PRESET) --jobs $(JOBS) --notebooks "$(NOTEBOOKS)"

test: $(VENV)/.installed
	NBKERNELS_PRESET=ci NBKERNELS_FIGURES=$${NBKERNELS_FIGURES:-$$(mktemp -d)} \
	  $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -v -rs --durations=40

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_kernels.py

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf $(VENV) reports
