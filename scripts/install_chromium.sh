#!/usr/bin/env bash
# Install Debian's chromium for the report's browser test (tests/test_report.py opens the
# Snakemake HTML report in headless Chromium and checks its DOM).
#
# Idempotent and quiet: exits 0 at once when chromium is installed.
# Needs root (or passwordless sudo) to install; without it, it only reports (the test is skipped).
set -euo pipefail

command -v chromium >/dev/null 2>&1 && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "install_chromium.sh: chromium missing; run as root to install it" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: apt-get not found; install Chromium by hand (the test looks for 'chromium' on PATH)" >&2
    exit 1
fi

log=$(mktemp /tmp/install_chromium.XXXXXX.log)
export DEBIAN_FRONTEND=noninteractive
# Install from the current package lists first; refresh them only if that fails (a stale list).
if ! { "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium \
       || { "${SUDO[@]}" apt-get update -qq \
            && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium; }; } >"$log" 2>&1; then
    echo "install_chromium.sh: apt-get failed; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
fi
rm -f "$log"
