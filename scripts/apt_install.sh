# Sourced by scripts/install_slurm.sh and scripts/install_chromium.sh (not run on its own).
#
#   apt_install NAME PACKAGE...
#
# Installs Debian packages quietly as root, or with passwordless sudo. Without either, or without
# apt-get, or when apt-get fails, it says why on stderr (prefixed with NAME) and returns 1.

apt_install() {
    local name=$1
    shift
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            echo "$name: run as root to install $*" >&2
            return 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$name: apt-get not found; install $* by hand" >&2
        return 1
    fi
    local log
    log=$(mktemp "/tmp/$name.XXXXXX.log")
    if ! { "${sudo[@]}" apt-get update -qq \
           && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; } \
         >"$log" 2>&1; then
        echo "$name: apt-get failed; last lines of $log:" >&2
        tail -n 20 "$log" >&2
        return 1
    fi
    rm -f "$log"
}
