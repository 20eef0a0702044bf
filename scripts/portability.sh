#!/usr/bin/env bash
# `make portability`: the numerics fingerprint (tests/numerics/fingerprint.json) recomputed in portable mode under
# emulated CPUs of both vendors (qemu-user: an Intel AVX2 CPU and an AMD AVX2 CPU), each compared with the
# committed hashes; names the first differing tensor. Installs Debian's qemu-user when root. docs/numerics.md.
#
#   bash scripts/portability.sh PYTHON [--confirm]   (--confirm: add each emulated CPU that matches to the file)
set -euo pipefail
cd "$(dirname "$0")/.."
python=$1
action=${2:---check}
fingerprint=tests/numerics/fingerprint.json
cpus=(Haswell EPYC-Rome)

if ! command -v qemu-x86_64 >/dev/null 2>&1; then
    source scripts/apt_install.sh
    apt_install portability.sh qemu-user || { echo "portability.sh: qemu-user is needed (apt-get install qemu-user)" >&2; exit 1; }
fi
status=0
for cpu in "${cpus[@]}"; do
    echo "==> numerics fingerprint under qemu-x86_64 -cpu $cpu (a few minutes: qemu emulates every instruction)"
    # qemu warns about host features its emulator lacks (pcid, x2apic, ...); they do not reach the computation
    if ! qemu-x86_64 -cpu "$cpu" "$python" -m bench_powerprop.fingerprint "$action" "$fingerprint" \
           --label "qemu-x86_64 -cpu $cpu" 2> >(grep -v "TCG doesn't support requested feature" >&2); then
        status=1
    fi
done
exit $status
