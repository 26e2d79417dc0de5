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

# The main job at the quick profile: a Lotka-Volterra zoo, encoder and generator (each stage cached,
# so a rerun resumes), then generated experts against the baselines on seen and unseen environments.
demo: $(STAMP)
	$(BIN)/weightspace plugins
	$(BIN)/weightspace train --config configs/lotka-volterra-quick.toml --out runs/demo/lv
	$(BIN)/weightspace evaluate --run runs/demo/lv --method dynadiff --method nearest-zoo --method one-for-all \
		--method one-per-env --method finetune-L --out runs/demo/lv/results.json

test: $(STAMP) lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/functional_batching.py
	$(BIN)/python benchmarks/expert_training.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
