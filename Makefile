# histvq — common commands. `make help` lists them.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU wheel by default (and pinned for CI). GPU users: create the venv, install their CUDA
# torch into it, then `make install`; an importable torch is never replaced.
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.installed
ARGS   ?=

.DEFAULT_GOAL := help
.PHONY: help install train test test-slow test-ddp lint format benchmark reproduce-hugadb clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -c "import torch" 2>/dev/null \
		&& echo "torch already installed: $$($(BIN)/python -c 'import torch; print(torch.__version__)')" \
		|| $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev,cluster]"
	@touch $(STAMP)

install: $(STAMP)  ## create .venv (torch first, then histvq with dev tools and Hydra plugins)

train: $(STAMP)  ## train HiST-VQ on the embedded synthetic data (ARGS="model=smq ..." for overrides)
	$(BIN)/python train.py $(ARGS)

test: $(STAMP)  ## run the fast test suite
	$(BIN)/python -m pytest -q $(ARGS)

test-ddp: $(STAMP)  ## run only the multi-process (DDP) tests
	$(BIN)/python -m pytest -q -m ddp $(ARGS)

test-slow: $(STAMP)  ## run every test, the slow ones (full real datasets) included
	$(BIN)/python -m pytest -q -m "" $(ARGS)

lint: $(STAMP)  ## ruff check + format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)  ## ruff format + autofix
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

benchmark: $(STAMP)  ## metrics and training benchmarks (prints ratios)
	$(BIN)/python -m histvq.benchmark $(ARGS)

reproduce-hugadb: $(STAMP)  ## the paper's HuGaDB rows on a GPU: SMQ and HiST-VQ, 3 seeds -> results/
	$(BIN)/python -m histvq.reproduce $(ARGS)

clean:  ## remove caches and run outputs (keeps .venv and data/)
	rm -rf outputs multirun .pytest_cache .ruff_cache **/__pycache__
