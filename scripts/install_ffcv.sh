#!/usr/bin/env bash
# Install FFCV (ffcv==1.0.2) and its runtime dependencies into the environment
# of VENV_PYTHON.  torch and torchvision must already be installed there: their
# installed versions are passed to pip as constraints so it never resolves
# another torch.
#
#   scripts/install_ffcv.sh VENV_PYTHON
#
# Idempotent: exits early when the pinned versions are present and ffcv's C
# extension loads.  FFCV builds a C extension from its sdist against the
# system OpenCV and libjpeg-turbo, so the Debian packages below are installed
# first when missing (only possible as root; `apt-get update` only if needed).
# ffcv's setup.py imports neither numpy nor torch, so pip's default build
# isolation works (no --no-build-isolation needed).
#
# Pins (newest that work together on Python 3.11 with numpy 2.x, torch 2.14,
# timm 1.x, pandas, matplotlib, scikit-learn, snakemake 9).
set -euo pipefail

FFCV_REQUIREMENTS=(
  "ffcv==1.0.2"
  "numba==0.68.1"          # needs numpy>=1.22,<2.6; numba 0.68 + numpy 2.4 work with ffcv 1.0.2
  "llvmlite==0.50.0"
  "opencv-python==5.0.0.93" # needs numpy>=2 (use opencv-python<5 if numpy<2 is forced)
  "pytorch-pfn-extras==0.9.0"
  "fastargs==1.2.0"
  "assertpy==1.1"
  "terminaltables==3.1.10"
  "tqdm"
  "psutil"
  "pillow"                  # used by ffcv but not declared by it
)
APT_PACKAGES=(g++ pkg-config libturbojpeg0-dev libopencv-dev)

die() { echo "install_ffcv.sh: error: $*" >&2; exit 1; }
log() { echo "install_ffcv.sh: $*" >&2; }

[[ $# -eq 1 ]] || die "usage: $0 VENV_PYTHON   (e.g. .venv/bin/python)"
PY=$1
"$PY" -c 'import sys' 2>/dev/null || die "'$PY' is not a runnable Python interpreter"

# ---------------------------------------------------------------- checks
already_installed() {
  "$PY" - "${FFCV_REQUIREMENTS[@]}" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version, PackageNotFoundError
for requirement in sys.argv[1:]:
    name, _, pinned = requirement.partition("==")
    installed = version(name)  # raises PackageNotFoundError when missing
    if pinned and installed != pinned:
        sys.exit(1)
import ffcv.libffcv  # the compiled extension links against system OpenCV/libjpeg-turbo
from ffcv.writer import DatasetWriter
from ffcv.loader import Loader
EOF
}

torch_constraints() {
  "$PY" - <<'EOF'
from importlib.metadata import version, PackageNotFoundError
for name in ("torch", "torchvision"):
    try:
        print(f"{name}=={version(name)}")
    except PackageNotFoundError:
        raise SystemExit(f"{name} is not installed in this environment; install torch and torchvision first")
EOF
}

if already_installed; then
  log "ffcv and pinned dependencies already installed for $PY; nothing to do"
  exit 0
fi

# ---------------------------------------------------------------- Debian build deps
missing_apt_packages() {
  local pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "$@" >/tmp/install_ffcv.apt.log 2>&1
}

has_candidates() {
  local pkg
  for pkg in "$@"; do
    apt-cache policy "$pkg" 2>/dev/null | grep -q "Candidate: [^(]" || return 1
  done
}

install_apt_packages() {
  local missing
  missing=$(missing_apt_packages | tr '\n' ' ')
  [[ -z "${missing// /}" ]] && return 0
  command -v apt-get >/dev/null || die "missing build dependencies ($missing) and no apt-get: install OpenCV, libjpeg-turbo and pkg-config development files"
  [[ $(id -u) -eq 0 ]] || die "missing Debian packages: $missing; run as root or: sudo apt-get install -y $missing"
  log "installing Debian packages: $missing"
  # shellcheck disable=SC2086
  if ! has_candidates $missing; then
    apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null || die "apt-get update failed"
  fi
  # shellcheck disable=SC2086
  if ! apt_install $missing; then
    log "apt-get install failed; refreshing package lists and retrying"
    apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null || die "apt-get update failed"
    # shellcheck disable=SC2086
    apt_install $missing || { tail -20 /tmp/install_ffcv.apt.log >&2; die "apt-get install $missing failed"; }
  fi
}

install_apt_packages
if command -v pkg-config >/dev/null; then
  pkg-config --exists libturbojpeg || die "pkg-config cannot find libturbojpeg (libturbojpeg0-dev)"
  pkg-config --exists opencv4 || pkg-config --exists opencv || die "pkg-config cannot find opencv4 (libopencv-dev)"
else
  die "pkg-config not found"
fi

# ---------------------------------------------------------------- pip
CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
torch_constraints >"$CONSTRAINTS" || die "torch/torchvision must be installed in $PY's environment before ffcv"
log "installing ${FFCV_REQUIREMENTS[*]} (torch kept at: $(tr '\n' ' ' <"$CONSTRAINTS"))"
"$PY" -m pip install --quiet --disable-pip-version-check -c "$CONSTRAINTS" "${FFCV_REQUIREMENTS[@]}" \
  || die "pip install of ffcv failed (see pip output above)"

already_installed || {
  "$PY" -c 'import ffcv.libffcv' || true
  die "ffcv installed but does not import (see the error above)"
}

# ---------------------------------------------------------------- smoke test
log "smoke test: write and read a 4-image .beton"
"$PY" - <<'EOF' || die "ffcv smoke test (write + read a .beton) failed"
import os, tempfile
import numpy as np
from ffcv.writer import DatasetWriter
from ffcv.fields import RGBImageField, IntField
from ffcv.fields.decoders import SimpleRGBImageDecoder, IntDecoder
from ffcv.loader import Loader, OrderOption
from ffcv.transforms import ToTensor

images = [np.full((8, 8, 3), 40 * i, dtype=np.uint8) for i in range(4)]
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "smoke.beton")
    writer = DatasetWriter(path, {"image": RGBImageField(write_mode="jpg"), "label": IntField()}, num_workers=1)
    writer.from_indexed_dataset([(image, i) for i, image in enumerate(images)])
    loader = Loader(path, batch_size=4, num_workers=1, order=OrderOption.SEQUENTIAL,
                    pipelines={"image": [SimpleRGBImageDecoder(), ToTensor()], "label": [IntDecoder(), ToTensor()]})
    (batch, labels), = list(loader)
    assert tuple(batch.shape) == (4, 8, 8, 3) and labels.flatten().tolist() == [0, 1, 2, 3], (batch.shape, labels)
EOF

if ! "$PY" -m pip check >/tmp/install_ffcv.pipcheck.log 2>&1; then
  log "warning: 'pip check' reports conflicts:"
  cat /tmp/install_ffcv.pipcheck.log >&2
fi
log "ffcv installed for $PY"
