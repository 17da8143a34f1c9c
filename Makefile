# Two entry points (see README):
#   make run    set up .venv and run the default workflow end to end (offline, CPU)
#   make test   set up .venv and run the test suite
#
# TORCH: the torch requirement installed first. The default is the CPU build that lies on
# the project's machines; on a GPU machine use e.g. `make run TORCH="torch==2.13.0"` with
# your CUDA index configured, or install torch into .venv yourself before `make`.

PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
GPUS ?= 1

.PHONY: setup run test lint clean-results

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml envs/requirements.lock
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet --no-deps -r envs/requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: setup
	$(BIN)/snakemake --cores $(CORES) --resources gpu=$(GPUS)

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests workflow benchmarks
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint

clean-results:
	rm -rf results logs benchmarks/prepare_model benchmarks/record_activations benchmarks/record_activations_shard benchmarks/generate
