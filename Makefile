# Two entry points: `make demo` (install + run the main job), `make test`.
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

demo: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES)

# tests/test_catalogue.py renders the report's interactive page in a real headless
# Chromium (Debian's package); installed here, as tests/slurm/start.sh installs SLURM.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(BIN)/.installed $(INDEP)/bin/.installed lint browser
	$(BIN)/pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check scripts tests bench
	$(BIN)/ruff format --check scripts tests bench
	$(BIN)/snakefmt --check workflow
	$(BIN)/lint-imports
	$(BIN)/snakemake --lint --cores 1

clean:
	rm -rf results logs benchmarks resources/demo resources/grids .snakemake
