# The README's commands. Each target creates .venv when missing and installs into it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STORE ?= forest-demo.duckdb

.PHONY: demo test lint bench record clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/forest demo --store $(STORE)

test: $(STAMP)
	$(BIN)/lint-imports --no-logo
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy agent tools evals
	$(BIN)/lint-imports --no-logo

bench: $(STAMP)
	$(BIN)/forest bench

# Re-records the LLM cassettes against a real local OpenAI-compatible server
# (llama.cpp + a 270M model from PyPI, in its own venv). Never part of `make test`.
record: $(STAMP)
	bash evals/record_cassettes.sh

clean:
	rm -rf $(VENV) .record-venv forest-demo.duckdb forest-demo.truth.jsonl .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
