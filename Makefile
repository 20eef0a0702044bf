# `make run`  — set up .venv with what the active experiments need, regenerate every table and figure
#               of the config and write Snakemake's HTML report of the run (<results_dir>/report.html).
#               `make run CONFIG=configs/quickstart.yaml` (config files merged over configs/default.yaml),
#               `make run SET='experiments.oneshot_digits.train.lr=0.05'` (overrides, see README),
#               `make run TARGET=results/oneshot_digits/tables/oneshot_summary.md` (one output and what it needs),
#               `make run SET='...' OUTPUT=lr05` (that run's tables, figures, claims and report in results/lr05/).
# `make test` — set up everything (FFCV, the test tools), then lint and the whole test suite (what CI runs).
# `make portability` — the numerics fingerprint under emulated Intel and AMD CPUs (qemu-user, docs/numerics.md).
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
# The HTML report; default: report.html in the config's results_dir.
REPORT ?=
# Extra config files merged over configs/default.yaml, e.g. `make run CONFIG=configs/quickstart.yaml`.
CONFIG ?=
# Overrides after the config files, OmegaConf dotlist syntax, space-separated (quote a value with spaces):
# `make run SET='experiments.oneshot_digits.train.lr=0.05 experiments.oneshot_digits.grid[0].seed=[0,1,2]'`.
SET ?=
# Snakemake targets (files); default: everything the config's active experiments produce.
TARGET ?=
# This run's own output folder <results_dir>/OUTPUT (the config's run_name): its tables, figures, claims page and
# report; the cells stay shared below results_dir by spec hash (docs/usage.md). Default: results_dir itself.
OUTPUT ?=
# These five reach the recipe as environment variables, never as shell text: `$(touch x)`, backticks or `;` in a
# value stay characters (SET is split into words by python's shlex, CONFIG and TARGET by the shell's plain word
# splitting under set -f, each passed after `--`); make does not expand them either ($(value ...)).
override REPORT := $(value REPORT)
override CONFIG := $(value CONFIG)
override SET := $(value SET)
override TARGET := $(value TARGET)
override OUTPUT := $(value OUTPUT)
export REPORT CONFIG SET TARGET OUTPUT
# validate writes the merged config (files + overrides) to a file of this run's own here, and Snakemake reads only it.
MERGED_CONFIG_DIR := .snakemake/bench_powerprop

.PHONY: help setup setup-base setup-vision setup-tensorboard setup-mutation run test test-fast mutate lint portability clean
.DEFAULT_GOAL := run

help:
	@echo "make run          train what the config needs, then every table, figure, the claims page and the report"
	@echo "                  (one progress line; Snakemake's whole log: <results_dir>/snakemake.log)"
	@echo "make test         lint and the whole test suite (what CI runs)"
	@echo "make test-fast    the tests that are not slow, SLURM or fault injection"
	@echo "make setup        the environment (.venv) with every extra; setup-base, setup-vision, setup-tensorboard: parts"
	@echo "make lint         ruff, snakefmt, snakemake --lint"
	@echo "make portability  the numerics fingerprint under emulated Intel and AMD CPUs (qemu-user; docs/numerics.md)"
	@echo "make mutate       mutation testing of the core modules (docs/mutation.md; MODULES=..., MINUTES=...)"
	@echo "make clean        delete results/, checkpoints/ and .snakemake/"
	@echo "make help         this list"
	@echo
	@echo "Variables (make run):"
	@echo "  CONFIG  config files merged over configs/default.yaml  e.g. make run CONFIG=configs/quickstart.yaml"
	@echo "  SET     overrides after the files (KEY=VALUE ...)       e.g. make run SET='experiments.oneshot_mnist.train.lr=0.05'"
	@echo "  TARGET  one output file and what it needs               e.g. make run TARGET=results/oneshot_mnist/tables/oneshot_summary.md"
	@echo "  OUTPUT  this run's own folder for its tables, claims    e.g. make run OUTPUT=lr05 SET='...'  (results/lr05/)"
	@echo "          and report; the cells stay shared"
	@echo "  REPORT  where the HTML report goes                      e.g. make run REPORT=/tmp/report.html"

# The base environment: torch, the package and its dependencies (enough for the in-memory datasets).
$(VENV)/.installed-base: pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> installing the base environment into $(VENV) (first time: torch is large, ~1-2 min)"
	@$(PIP) --upgrade pip
	@$(PIP) $(TORCH_PINS)
	@$(PIP) -e .
	@touch $@

# FFCV, for the vision experiments' .beton files: compiles against system OpenCV/libjpeg-turbo
# (Debian packages, installed when root).
$(VENV)/.installed-vision: $(VENV)/.installed-base scripts/install_ffcv.sh
	@echo "==> installing FFCV and OpenCV (the vision extra; Debian build packages when root)"
	@bash scripts/install_ffcv.sh $(PY)
	@touch $@

$(VENV)/.installed-tensorboard: $(VENV)/.installed-base
	@echo "==> installing tensorboard (the tensorboard extra)"
	@$(PIP) -e '.[tensorboard]'
	@touch $@

# Everything `make test` tests: the base, FFCV and the test tools (pytest, ruff, snakefmt, tensorboard).
$(VENV)/.installed: $(VENV)/.installed-base $(VENV)/.installed-vision
	@echo "==> installing the test tools"
	@$(PIP) -e '.[test]'
	@touch $@

$(VENV)/.installed-mutation: $(VENV)/.installed
	@echo "==> installing cosmic-ray (the mutation extra)"
	@$(PIP) -e '.[mutation]'
	@touch $@

setup: $(VENV)/.installed
setup-base: $(VENV)/.installed-base
setup-vision: $(VENV)/.installed-vision
setup-tensorboard: $(VENV)/.installed-tensorboard
setup-mutation: $(VENV)/.installed-mutation

# After the run, Snakemake writes its own HTML report of it: every figure and table with its caption,
# the claims page, provenance and runtime statistics (workflow/report/, rules flagged with report()).
# Only the extras the active experiments need are installed (`python -m bench_powerprop needs` names
# them and why: FFCV for .beton data, tensorboard for train.tensorboard). set -f: a CONFIG or TARGET word is no
# file pattern. Every run has its own merged config (two runs in one checkout never read each other's), removed after.
run: setup-base
	@# validate first: a YAML error in CONFIG is then named with its file and line (Snakemake's own message is not)
	@set -f; mkdir -p $(MERGED_CONFIG_DIR); \
	  merged=$$(mktemp $(MERGED_CONFIG_DIR)/config.XXXXXXXX) || exit 1; \
	  trap 'rm -f "$$merged" "$$merged.overrides.json"' EXIT; trap 'exit 130' INT TERM; \
	  results=$$($(PY) -m bench_powerprop validate --set-line="$$SET" --output="$$OUTPUT" --print-results-dir --write-config "$$merged" \
	    -- configs/default.yaml $$CONFIG) || exit 1; \
	  extras=$$($(PY) -m bench_powerprop needs --set-line="$$SET" -- configs/default.yaml $$CONFIG) || exit 1; \
	  if [ -z "$$extras" ]; then echo "==> no optional extras needed (no FFCV: no active experiment reads .beton files)"; fi; \
	  for extra in $$extras; do $(MAKE) --no-print-directory setup-$$extra || exit 1; done; \
	  report=$${REPORT:-$$results/report.html}; \
	  echo "+ snakemake -c all --configfile $$merged --report $$report ... -- $$TARGET"; \
	  $(PY) -m bench_powerprop run-snakemake --log "$$results/snakemake.log" -- -c all --configfile "$$merged" \
	    --report "$$report" --report-after-run --report-stylesheet workflow/report/style.css -- $$TARGET || exit 1; \
	  echo; \
	  echo "Done. Tables: $$results/*/tables/*.md (and .csv)   Figures: $$results/*/figures/*.png"; \
	  echo "Claims: $$results/reproduction/claims.md"; \
	  echo "Report (open in a browser): $$(realpath -m -- "$$report")"

test: lint
	@if [ "$$(id -u)" = 0 ]; then bash scripts/install_slurm.sh; else echo "not root: the live-SLURM test will be skipped"; fi
	@if [ "$$(id -u)" = 0 ]; then bash scripts/install_chromium.sh; else echo "not root: the report's browser test is skipped unless chromium is installed"; fi
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow and not slurm and not faults"

# The numerics fingerprint under emulated Intel and AMD AVX2 CPUs (qemu-user; docs/numerics.md).
portability: setup-base
	bash scripts/portability.sh $(PY)

# Mutation testing of the core modules (docs/mutation.md): before a change to them lands, not in CI (hours).
# `make mutate MODULES='bench_powerprop/masks.py bench_powerprop/powerprop.py' MINUTES=30` runs some, with a budget.
MODULES ?=
MINUTES ?=
mutate: setup-mutation
	$(PY) tests/mutation/mutate.py $(foreach module,$(MODULES),--module $(module)) $(if $(MINUTES),--minutes $(MINUTES))

# Python (ruff), Snakemake formatting (snakefmt) and Snakemake's own best-practice linter.
lint: setup
	ruff check bench_powerprop tests bench
	snakefmt --check Snakefile workflow
	snakemake --lint

clean:
	rm -rf results checkpoints .snakemake
