# Two commands do everything on a fresh machine:
#   make run    install into .venv, then run the default pipeline (all_ablations, laptop scale, local execution)
#   make test   install into .venv, then run the test suite (what CI runs)
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned here; the package itself only asks for a range. Which build: TORCH_BUILD picks one of PyTorch's
# own wheel indexes (cpu, cu126, cu128, ...: the CUDA version the node's driver supports, see nvidia-smi), e.g.
#   make install TORCH_BUILD=cpu      a CPU-only build (small; no CUDA libraries)
#   make install TORCH_BUILD=cu126    a build for CUDA 12.6
#   make install TORCH_INDEX=URL      any other index (a mirror)
# Empty (the default): the package registry's own torch wheel, whatever pip is configured to find.
TORCH ?= torch==2.13.0
TORCH_BUILD ?=
TORCH_INDEX ?= $(if $(TORCH_BUILD),https://download.pytorch.org/whl/$(TORCH_BUILD))
# test workers (pytest-xdist): the Slurm and workflow tests mostly wait on jobs, so three workers share two cores well;
# --dist loadfile keeps each file's tests on one worker, in order (the workflow tests share one pipeline run);
# --no-loadscope-reorder hands the files out longest first (tests/conftest.py, LONGEST_FIRST)
PYTEST_WORKERS ?= 3

.PHONY: install run test lint bench bench-gpu bench-dag clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	$(BIN)/pip install -q -e '.[test]'
	touch $@
	@echo "installed into $(VENV): 'source $(BIN)/activate' puts snakemake and ired on PATH (or type $(BIN)/snakemake)"

run: install
	$(BIN)/snakemake all_ablations --config scale=laptop

test: install
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25

lint: install  # what CI checks before the tests: style and likely bugs (ruff), types (mypy); settings in pyproject.toml
	$(BIN)/ruff check src tests benchmarks workflow
	$(BIN)/mypy

bench: install  # each figure beside its FLOP floor, default and fused paths (ired.bench.speed; --device cuda on a GPU)
	$(BIN)/python -m ired.bench

bench-gpu: install  # on a GPU machine: steps, inference, peak memory, time to beat predict-mean -> docs/results/gpu/
	$(BIN)/python -m benchmarks.bench_gpu

bench-dag: install  # planning a 1,000-run sweep: dag_plan_1000, dag_noop_1000 (benchmarks.bench_dag)
	$(BIN)/python -m benchmarks.bench_dag
