# pulse-local: every target installs what is missing first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run rehearse up down status env test test-unit bench conformance lint clean chromium

# The gcp profile's offline emulators (BigQuery: bqemulator, Cloud Storage: gcp-storage-emulator)
# live in a virtual environment of their own: bqemulator's pins clash with ours (sqlglot, grpcio-tools).
EMU_VENV  ?= .venv-emulators
EMU_STAMP := $(EMU_VENV)/.installed

install: $(STAMP) $(EMU_STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# DuckDB cannot download its spatial extension offline: install it from the PyPI wheel's file.
$(EMU_STAMP): emulators/constraints.txt
	@test -x $(EMU_VENV)/bin/python || $(PYTHON) -m venv $(EMU_VENV)
	$(EMU_VENV)/bin/pip install --quiet --disable-pip-version-check -c emulators/constraints.txt \
	  bqemulator duckdb duckdb-extension-spatial numpy gcp-storage-emulator
	$(EMU_VENV)/bin/python -c "import duckdb, duckdb_extension_spatial as s, pathlib; \
	  p = next(pathlib.Path(s.__file__).parent.glob('extensions/v*/spatial.duckdb_extension')); \
	  duckdb.connect().execute(f\"INSTALL '{p}'\")"
	@touch $(EMU_STAMP)

run: install  ## stack up (from snapshot $$PULSE_SNAPSHOT if set), then the pipeline once on fixture data
	$(if $(PULSE_SNAPSHOT),$(BIN)/pulse-local snapshot restore "$(PULSE_SNAPSHOT)")
	$(BIN)/pulse-local up
	$(BIN)/pulse-local run

rehearse: install  ## the whole pipeline on profile gcp, every Google API on an offline emulator
	$(BIN)/pulse-local rehearse

up: install  ## start the local stack and leave it running
	$(BIN)/pulse-local up

down: install  ## stop the local stack (data stays in .pulse/)
	$(BIN)/pulse-local down

status: install
	$(BIN)/pulse-local status

env: install
	@$(BIN)/pulse-local env

# TEST_WORKERS processes (pytest-xdist), each with its own isolated session stack; a test
# file stays in one process (its module fixtures start once), in the order of `testpaths`.
TEST_WORKERS ?= 2

test: install chromium  ## the whole test suite (starts its own isolated stacks)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

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
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(EMU_VENV) .pytest_cache
