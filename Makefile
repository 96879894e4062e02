# medfed: `make serve` and `make test` work on a fresh machine with Python 3.11, pip and make.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= data
DEMO_PERSONS ?= 3000

.PHONY: serve test bench lint fuzz demo clean-data install

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(DATA_DIR)/.demo-built: | $(STAMP)
	$(BIN)/medfed --data-dir $(DATA_DIR) demo build --persons $(DEMO_PERSONS)

demo: $(DATA_DIR)/.demo-built

serve: $(STAMP) $(DATA_DIR)/.demo-built
	$(BIN)/medfed --data-dir $(DATA_DIR) serve

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -ra

bench: $(STAMP)
	$(BIN)/python -m bench

fuzz: $(STAMP)
	MEDFED_FUZZ_EXAMPLES=$${MEDFED_FUZZ_EXAMPLES:-2000} $(BIN)/pytest -ra -m fuzz

lint: $(STAMP)
	$(BIN)/ruff check .

clean-data:
	rm -rf $(DATA_DIR)
