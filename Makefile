# Two commands from a fresh clone: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint format bench clean

# torch first, pinned: the CPU build of 2.13.0; an unpinned torch would pull a multi-GB CUDA build
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# The main job at the quick profile: the demo bench matrix (Lotka-Volterra and Lambda-Omega; DynaDiff
# against the four baselines, one seed), two nodes at a time, each stage cached so a rerun resumes;
# ends with the results table and the path of the report.
demo: $(STAMP)
	$(BIN)/weightspace plugins
	$(BIN)/weightspace bench benchmarks/matrices/demo.toml --out runs/demo --jobs 2
	@echo "report: runs/demo/report.md (plots beside it); redraw with: $(BIN)/weightspace report runs/demo"

# Two pytest workers of one torch thread each, a test file per worker at a time (module fixtures
# are built once): about twice as fast as one process on 2 cores. The slowest tests are listed.
test: $(STAMP) lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile --durations=15

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/functional_batching.py
	$(BIN)/python benchmarks/expert_training.py
	PATH=$(BIN):$$PATH $(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/pipeline_cost.py scaling
	$(BIN)/python benchmarks/one_per_env_cost.py configs/lotka-volterra-quick.toml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
