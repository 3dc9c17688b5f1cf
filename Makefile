# Set-up and everyday commands. Every target first creates .venv and installs the project with its
# test tools (once, and again whenever pyproject.toml changes), so a fresh clone needs nothing else.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: quick test lint

quick: $(INSTALLED)
	$(PYTHON) -m benchmarks.run --suite quick

test: $(INSTALLED)
	$(PYTHON) -m pytest

lint: $(INSTALLED)
	$(VENV)/bin/ruff check gans benchmarks tests
	$(VENV)/bin/ruff format --check gans benchmarks tests

$(INSTALLED): pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --editable ".[test]"
	touch $(INSTALLED)
