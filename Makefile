# The two commands of the README. Each creates the local virtualenv (.venv) on first use.
#   make report            render every finding into reports/$(PRESET)/index.html (PRESET=ci|default|gpu|paper)
#                          NOTEBOOKS="06 09" (or 06,09, or full names) renders only those
#   make test              unit tests + every notebook at the `ci` preset, checked by nbval
#   make lab               JupyterLab on notebooks/; saving a notebook writes its notebooks/src/ source too
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
	$(PY) -m pip install --quiet -e '.[notebooks,test]'
	$(PY) -c "from nbkernels import engine; engine.warm()"  # compiles the fused CPU kernel once (about a minute per dtype), cached
	touch $@

report: $(VENV)/.installed
	$(PY) -m nbkernels.report --preset $(PRESET) --jobs $(JOBS) --notebooks "$(NOTEBOOKS)"

# The tests run in TEST_JOBS processes (pytest-xdist; each notebook, and each test module, stays whole
# on one process: --dist loadscope), each computing on one thread (the settings nbkernels/report.py gives
# concurrent notebooks). Matmul-bound training runs slower per process that way, kernels and Python do
# not; `bash .ci/run` took 18.5 min this way (2026-12-02) where the serial suite had taken 52 (another day).
TEST_JOBS ?= 2
ONE_THREAD := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \
  XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

test: $(VENV)/.installed
	NBKERNELS_PRESET=ci NBKERNELS_FIGURES=$${NBKERNELS_FIGURES:-$$(mktemp -d)} $(if $(filter-out 1,$(TEST_JOBS)),$(ONE_THREAD)) \
	  $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -n $(TEST_JOBS) --dist loadscope -v -rs --durations=40

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_kernels.py

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf $(VENV) reports
