# smart-cli developer and user targets. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU PyTorch first: a bare `torch` requirement would pull the CUDA build (several GB).
TORCH_SPEC ?= torch==2.13.0
CONFIG ?= configs/demo.yaml
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo demo-chat test lint bench mixture report recipes clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

data/demo/train.parquet: scripts/make_demo_data.py scripts/demo_recipes.py $(wildcard scripts/demo_data/*.yaml) | $(VENV)/.installed
	$(BIN)/python scripts/make_demo_data.py --out data/demo

demo: install data/demo/train.parquet
	$(BIN)/smart-cli run configs/demo.yaml
	@echo "mixture: runs/demo/mixture.jsonl ($$(wc -l < runs/demo/mixture.jsonl) lines)"

data/demo-chat/messages/part-0.parquet: scripts/make_chat_demo.py data/demo/train.parquet
	$(BIN)/python scripts/make_chat_demo.py --flan data/demo --out data/demo-chat

# The chat demo: conversations split across two files -> runs/demo-chat/mixture.jsonl (messages format).
demo-chat: install data/demo-chat/messages/part-0.parquet
	$(BIN)/smart-cli run configs/demo-chat.yaml
	@echo "mixture: runs/demo-chat/mixture.jsonl ($$(wc -l < runs/demo-chat/mixture.jsonl) lines)"

mixture: install data/demo/train.parquet
	$(BIN)/smart-cli run $(CONFIG)

# The demo mixture's HTML report (runs/demo/report.html); `python scripts/render_report.py` screenshots it.
report: demo
	$(BIN)/smart-cli report runs/demo/mixture.jsonl --out runs/demo/report.html

# Regenerate the paper's grid of recipes in configs/paper/.
recipes: install
	$(BIN)/python scripts/make_paper_recipes.py

# The tests also cover the optional Ray engine (tests/test_ray.py): its extra comes with them.
$(VENV)/.installed-ray: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[dev,ray]"
	touch $@

test: install $(VENV)/.installed-ray
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check smart_cli tests scripts
	$(BIN)/ruff format --check smart_cli tests scripts
	$(BIN)/mypy smart_cli

bench: install
	$(BIN)/python scripts/bench_scale.py --scale 0.01

clean:
	rm -rf runs data
