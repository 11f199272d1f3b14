# Two entry points of a checkout: `make demo` (install + run the demo), `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
CORES ?= 2
# The independent evaluation set's generator runs in its own environment (docs/evaluation.md).
INDEP ?= .venv-independent

.PHONY: demo test lint clean browser independent

# The pinned requirements, then starbatch itself (editable: the checkout is the library).
$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# The Cannon's package and the Doppler models (their data only: --no-deps), apart from the
# project's runtime.
$(INDEP)/bin/.installed: requirements-independent.txt
	$(PYTHON) -m venv $(INDEP)
	$(INDEP)/bin/pip install --quiet -r requirements-independent.txt
	$(INDEP)/bin/pip install --quiet --no-deps thedoppler==1.1.32
	touch $@

independent: $(INDEP)/bin/.installed


# The demo project in demo/ (made on the first run, reused after).
demo: $(BIN)/.installed
	$(BIN)/starbatch demo demo --cores $(CORES)

# tests/unit/test_catalogue.py renders the report's interactive page in a real headless
# Chromium (Debian's package); installed here, as tests/cluster/slurm/start.sh installs SLURM.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(BIN)/.installed $(INDEP)/bin/.installed lint browser
	$(BIN)/pytest -q

# snakemake --lint needs a project to read the config of: a fresh one in build/lint.
lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/snakefmt --check src/starbatch/workflow
	$(BIN)/lint-imports
	rm -rf build/lint && $(BIN)/starbatch init build/lint >/dev/null
	$(BIN)/snakemake -s src/starbatch/workflow/Snakefile --directory build/lint --lint --cores 1

clean:
	rm -rf demo build
