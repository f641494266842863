# Two commands set everything up on a fresh machine: `make run` and `make test`.
# `make run` installs only what serving needs; `make test` adds the eval and dev extras (pyproject.toml).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
INDEX  ?= index
BENCH_BMN ?= index-bmn
BENCH_COS ?= index-commons-os
HOST   ?= 127.0.0.1
PORT   ?= 8000
TEST_WORKERS ?= auto
PIP    := $(BIN)/pip install --disable-pip-version-check --progress-bar on
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help install run index test test-fast lint browser bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing what serving needs into $(VENV): torch (CPU), sentence-transformers, FAISS, bm25s, FastAPI, MCP."
	@echo "The first time this installs about 1.4 GB (torch alone is 0.75 GB) and takes a few minutes; pip lists each package as it goes."
	$(PIP) --quiet --upgrade pip
	$(PIP) -e .
	touch $@

$(TEST_STAMP): $(RUN_STAMP)
	@echo "Installing the eval and test tools (ranx with numba and pandas, pytest, schemathesis, rank-bm25, import-linter, Playwright, Milvus Lite 2.5.1) and the retrievers' frameworks (langchain-core, llama-index-core: about 0.15 GB): about 0.75 GB more."
	$(PIP) -e '.[eval,dev,milvus,langchain,llamaindex]'
	touch $@

install: $(RUN_STAMP) ## create .venv and install what serving needs (no eval or test tools)

index: $(RUN_STAMP) ## build or refresh the index of patterns/ (incremental)
	$(BIN)/rag index patterns --index-dir $(INDEX)

run: index ## install, index patterns/ when missing or stale, serve on $(HOST):$(PORT) (an example request prints once it answers)
	$(BIN)/rag serve --index-dir $(INDEX) --host $(HOST) --port $(PORT)

test: $(TEST_STAMP) lint browser ## run the whole test suite (unit + integration: real model, FAISS, HTTP, browser)
	$(BIN)/python -m pytest -q tests

browser: ## install Debian's Chromium for the page's browser tests when it is missing (needs root or sudo)
	@command -v chromium >/dev/null 2>&1 || { echo "Installing Debian's chromium for the browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

test-fast: $(TEST_STAMP) ## run the unit tests only, on every core (fake encoder; about 35 s on 2 cores)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) tests/unit

lint: $(TEST_STAMP) ## check the layer contracts (import-linter), style (ruff) and types of index, embedding and search (mypy)
	$(BIN)/lint-imports
	$(BIN)/ruff check rag bench lab tests
	$(BIN)/ruff format --check rag bench lab tests
	$(BIN)/mypy

bench: $(TEST_STAMP) ## run the benchmarks on ../shared/corpora; writes eval/bench/<date>.json and .md (and adaptation.md/.json: rag adapt on bmn), then kernels, batching, milvus, memory-creep, efficiency (.md, .json)
	$(PIP) --quiet -e '.[eval,dev,milvus,bench]'
	$(BIN)/python -m bench --out eval/bench
	$(BIN)/rag index ../shared/corpora/bmn --index-dir $(BENCH_BMN) --cache-dir $(INDEX)/cache
	$(BIN)/python -m bench.kernels --out eval/bench --index-dir $(BENCH_BMN)
	$(BIN)/python -m bench.batching --out eval/bench --index-dir $(BENCH_BMN)
	$(BIN)/python -m bench.milvus --out eval/bench --library ../shared/corpora/bmn --cache-dir $(INDEX)/cache
	$(BIN)/python -m bench.memory --out eval/bench --index-dir $(BENCH_BMN)
	$(BIN)/rag index ../shared/corpora/commons-os --index-dir $(BENCH_COS) --cache-dir $(INDEX)/cache
	$(BIN)/python -m bench.efficiency --out eval/bench --set bmn:$(BENCH_BMN):eval/dev/bmn.jsonl --set commons-os:$(BENCH_COS):eval/dev/commons-os.jsonl

clean: ## remove the virtual environment and built indexes
	rm -rf $(VENV) $(INDEX) $(BENCH_BMN) $(BENCH_COS)
