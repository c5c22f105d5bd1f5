# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= 2
SMK    := $(BIN)/snakemake --workflow-profile workflow/profiles/default --cores $(CORES)

.PHONY: demo demo-stats test lint dryrun pytest figures clean test-slurm

$(BIN)/cardiopheno: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

demo: $(BIN)/cardiopheno
	$(SMK)
	$(SMK) --report results/report.html --report-metadata results/report/metadata.yaml

# The statistics and figures on 20,000 synthetic subjects as tables (no images; config/README.md
# "synthetic"), in their own directory: results/stats_demo/report.html.
STATS_DEMO := $(SMK) --configfile $(CURDIR)/config/stats_demo.yaml --directory results/stats_demo
demo-stats: $(BIN)/cardiopheno
	mkdir -p results/stats_demo
	$(STATS_DEMO)
	$(STATS_DEMO) --report $(CURDIR)/results/stats_demo/report.html \
		--report-metadata $(CURDIR)/results/stats_demo/results/report/metadata.yaml

test: lint dryrun pytest

lint: $(BIN)/cardiopheno
	$(BIN)/ruff check src tests scripts benchmarks tools
	$(BIN)/ruff format --check src tests scripts benchmarks tools
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

dryrun: $(BIN)/cardiopheno
	$(SMK) --dry-run --quiet rules
	mkdir -p results/stats_demo
	$(STATS_DEMO) --dry-run --quiet rules

pytest: $(BIN)/cardiopheno
	$(BIN)/python -m pytest -q

# The demo on a real single-node SLURM cluster started here (needs root; installs slurm-wlm, munge).
test-slurm: $(BIN)/cardiopheno
	tools/slurm/test.sh

figures: $(BIN)/cardiopheno
	$(SMK) figures

clean:
	rm -rf results .snakemake
