# `make run` and `make test` work from a fresh clone: they create .venv, install the project
# with what it needs, then serve / run the whole suite against real servers they start.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install schema clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/chattergram serve

test: $(STAMP)
	$(BIN)/pytest

schema: $(STAMP)
	$(BIN)/chattergram export-schema

clean:
	rm -rf $(VENV) .pytest_cache .cache
