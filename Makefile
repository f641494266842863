# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
INDEX  ?= index
HOST   ?= 127.0.0.1
PORT   ?= 8000
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help install run index test test-fast lint bench clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,milvus]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the package with its dev tools

index: $(STAMP) ## build or refresh the index of patterns/ (incremental)
	$(BIN)/rag index patterns --index-dir $(INDEX)

run: index ## install, index patterns/ when missing or stale, and serve on $(HOST):$(PORT)
	@echo "try: curl -s -X POST http://$(HOST):$(PORT)/search -H 'content-type: application/json' -d '{\"query\": \"our shelves are full of stock nobody ordered\", \"k\": 3}'"
	$(BIN)/rag serve --index-dir $(INDEX) --host $(HOST) --port $(PORT)

test: $(STAMP) lint ## run the whole test suite (unit + integration: real model, FAISS, HTTP, a real Milvus Lite 2.5.1)
	$(BIN)/python -m pytest -q tests

test-fast: $(STAMP) ## run the unit tests only (fake encoder; seconds)
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP) ## check the layer contracts between the stages (import-linter)
	$(BIN)/lint-imports

bench: $(STAMP) ## run the benchmarks on ../shared/corpora; writes eval/bench/<date>.json and .md
	$(BIN)/pip install --quiet -e '.[dev,milvus,bench]'
	$(BIN)/python -m rag.bench --out eval/bench

clean: ## remove the virtual environment and built indexes
	rm -rf $(VENV) $(INDEX)
