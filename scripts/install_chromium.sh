#!/usr/bin/env bash
# Install Debian's chromium for the report's browser test (tests/test_report.py opens the
# Snakemake HTML report in headless Chromium and checks its DOM).
#
# Idempotent and quiet: exits 0 at once when chromium is installed.
# Needs root (or passwordless sudo) to install; without it, it only reports (the test is skipped).
set -euo pipefail

command -v chromium >/dev/null 2>&1 && exit 0

source "$(dirname "$0")/apt_install.sh"
apt_install install_chromium.sh chromium
