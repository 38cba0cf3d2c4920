# `make run` and `make test` work from a fresh clone: they create .venv, install the project
# with what it needs, then serve / run the whole suite against real servers they start.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install schema clean test-system-deps bench-stt bench-search fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/chattergram serve

# The voice tests speak sentences with espeak-ng and convert them with ffmpeg; the web client's
# tests drive Debian's chromium (at /usr/bin/chromium) with Playwright (Debian packages).
test-system-deps:
	@command -v espeak-ng >/dev/null && command -v ffmpeg >/dev/null && [ -x /usr/bin/chromium ] || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq espeak-ng ffmpeg chromium >/dev/null; }

test: $(STAMP) test-system-deps
	$(BIN)/pytest

# Property-based fuzzing of the GraphQL API (tests/api/test_fuzz.py) with many more examples.
fuzz: $(STAMP)
	FUZZ_EXAMPLES=5000 $(BIN)/pytest tests/api/test_fuzz.py -q

bench-stt: $(STAMP) test-system-deps
	$(BIN)/python -m bench.transcription_rtf

bench-search: $(STAMP)
	$(BIN)/python -m bench.search_latency

schema: $(STAMP)
	$(BIN)/chattergram export-schema

clean:
	rm -rf $(VENV) .pytest_cache .cache
