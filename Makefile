# `make run`  — set up .venv (if needed) and regenerate every table and figure of the default config.
# `make test` — same set-up, then the whole test suite (what CI runs).
# Already have an environment with the dependencies? `snakemake -c all` is all you need.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first and pinned, so pip never resolves another torch through a dependency;
# timm needs a torchvision built for exactly this torch.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
export PATH := $(abspath $(VENV))/bin:$(PATH)

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

run: setup
	snakemake -c all
	@echo
	@echo "Done. Tables: results/*/tables/*.md (and .csv)   Figures: results/*/figures/*.png"
	@ls results/*/tables/*.md results/*/figures/*.png

test: setup
	@if [ "$$(id -u)" = 0 ]; then bash scripts/install_slurm.sh; else echo "not root: the live-SLURM test will be skipped"; fi
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow and not slurm and not faults"

lint: setup
	snakemake --lint

clean:
	rm -rf results checkpoints .snakemake
