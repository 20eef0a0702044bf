# `make run`  — set up .venv (if needed), regenerate every table and figure of the default config and
#               write Snakemake's HTML report of the run (results/report.html).
# `make test` — same set-up, then lint and the whole test suite (what CI runs).
# Already have an environment with the dependencies? `snakemake -c all` runs everything;
# `snakemake --report results/report.html` then writes the report.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first and pinned, so pip never resolves another torch through a dependency;
# timm needs a torchvision built for exactly this torch.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
export PATH := $(abspath $(VENV))/bin:$(PATH)
REPORT ?= results/report.html
# Extra config files merged over configs/default.yaml, e.g. `make run CONFIG=configs/mnist.yaml`.
CONFIG ?=

.PHONY: setup run test test-fast lint clean
.DEFAULT_GOAL := run

$(VENV)/.installed: pyproject.toml Makefile scripts/install_ffcv.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> installing into $(VENV) (first time: torch is large, ~1-2 min)"
	@$(PIP) --upgrade pip
	@$(PIP) $(TORCH_PINS)
	@# FFCV compiles against system OpenCV/libjpeg-turbo (Debian packages, installed when root)
	@bash scripts/install_ffcv.sh $(PY)
	@$(PIP) -e '.[test]'
	@touch $@

setup: $(VENV)/.installed

# After the run, Snakemake writes its own HTML report of it: every figure and table with its caption,
# the claims page, provenance and runtime statistics (workflow/report/, rules flagged with report()).
run: setup
	@# validate first: a YAML error in CONFIG is then named with its file and line (Snakemake's own message is not)
	$(PY) -m bench_powerprop validate configs/default.yaml $(CONFIG)
	snakemake -c all $(if $(CONFIG),--configfile $(CONFIG)) --report $(REPORT) --report-after-run --report-stylesheet workflow/report/style.css
	@echo
	@echo "Done. Tables: results/*/tables/*.md (and .csv)   Figures: results/*/figures/*.png"
	@echo "Claims: results/reproduction/claims.md"
	@echo "Report (open in a browser): $(abspath $(REPORT))"

test: lint
	@if [ "$$(id -u)" = 0 ]; then bash scripts/install_slurm.sh; else echo "not root: the live-SLURM test will be skipped"; fi
	@if [ "$$(id -u)" = 0 ]; then bash scripts/install_chromium.sh; else echo "not root: the report's browser test is skipped unless chromium is installed"; fi
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow and not slurm and not faults"

# Python (ruff), Snakemake formatting (snakefmt) and Snakemake's own best-practice linter.
lint: setup
	ruff check bench_powerprop tests bench
	snakefmt --check Snakefile workflow
	snakemake --lint

clean:
	rm -rf results checkpoints .snakemake
