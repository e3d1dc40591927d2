# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
UI_STAMP := ui/node_modules/.installed
UI_BUILD := mcp_hub/ui_dist/index.html
UI_SOURCES := $(shell find ui/src -type f 2>/dev/null) ui/index.html ui/vite.config.ts ui/tsconfig.json \
	ui/package.json ui/package-lock.json

.PHONY: run test lint fmt install install-dev node-deps bench clean ui ui-deps chromium wheel

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

node-deps: $(NODE_STAMP)

# The web UI (ui/, TypeScript) builds into mcp_hub/ui_dist/, which the hub serves at /ui and the wheel
# ships, so an installed package needs no Node. Rebuilt only when a UI source is newer than the build.
$(UI_STAMP): ui/package.json ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund
	touch $(UI_STAMP)

ui-deps: $(UI_STAMP)

$(UI_BUILD): $(UI_SOURCES) $(UI_STAMP)
	cd ui && npm run build

ui: $(UI_BUILD)

# Debian's Chromium for the UI's browser tests (never a browser download).
chromium:
	@test -x /usr/bin/chromium || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

## A wheel with the built UI inside (dist/)
wheel: install ui
	$(BIN)/pip wheel --quiet --no-deps -w dist .

## Set up (first time) and start the hub on SQLite at http://127.0.0.1:4000
run: install
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory ui; \
	elif [ -f $(UI_BUILD) ]; then echo "npm not found: serving the existing UI build"; \
	else echo "npm not found: the hub runs without its web UI (install Node.js 20+ and rerun)"; fi
	$(BIN)/mcp-hub serve

## Set up everything the tests need and run every test
test: install node-deps ui-deps ui chromium
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy mcp_hub

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmark: direct vs hub (/mcp/{server}, /mcp) vs FastMCP's proxy; needs wrk (apt-get install -y wrk)
bench: install
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) node_modules ui/node_modules mcp_hub/ui_dist .pytest_cache .mypy_cache .ruff_cache
