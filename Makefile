# pulse-local: every target installs what is missing first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run up down status env test test-unit bench conformance lint clean chromium

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

run: install  ## stack up, then the pipeline once on fixture data, with a summary
	$(BIN)/pulse-local up
	$(BIN)/pulse-local run

up: install  ## start the local stack and leave it running
	$(BIN)/pulse-local up

down: install  ## stop the local stack (data stays in .pulse/)
	$(BIN)/pulse-local down

status: install
	$(BIN)/pulse-local status

env: install
	@$(BIN)/pulse-local env

test: install chromium  ## the whole test suite (starts its own isolated stack)
	$(BIN)/python -m pytest

# The Prefect UI test renders the UI in headless Chromium. Installed from Debian when we can
# (root with apt-get, as on CI machines); otherwise the test's error names the command.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      echo "installing Debian's chromium for the UI test"; \
	      apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
	    else echo "note: install Chromium (apt-get install chromium) for the Prefect UI test"; fi; }

test-unit: install
	$(BIN)/python -m pytest tests/unit

bench: install  ## benchmarks: figures and ratios, never pass/fail
	$(BIN)/python -m bench

# ZetaSQL compliance cases through the translator on DuckDB: a measurement, never pass/fail.
# Reads the files from PULSE_ZETASQL_DIR (a zetasql checkout or bare git mirror);
# CONFORMANCE_ARGS="--wrong" lists each wrong case with its query, expected and actual result.
conformance: install  ## translator vs ZetaSQL's compliance tests: correct / wrong / untranslatable / error / skipped
	$(BIN)/python -m pulse_local.conformance $(CONFORMANCE_ARGS)

lint: install
	$(BIN)/ruff check src tests flows bench

clean:
	rm -rf $(VENV) .pytest_cache
