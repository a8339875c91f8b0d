#!/usr/bin/env bash
# Install everything snakevisor's demo, tests and benchmarks need on Debian 12, idempotently:
#   1. Debian packages (apt-get update runs only when one is missing),
#   2. a venv at .venv made from the system Python (/usr/bin/python3, not a pyenv shim),
#      with requirements-dev.txt (pip runs only when that file changed),
#   3. the stub program (compiled from snakevisor/platform/stub/stub.c when missing or stale).
# A second run with everything in place takes well under a second.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SYSTEM_PYTHON=/usr/bin/python3
VENV="$ROOT/.venv"
REQUIREMENTS="$ROOT/requirements-dev.txt"
APT_PACKAGES=(gcc make libc6-dev busybox-static manpages-dev strace python3 python3-venv runc diod sqlite3 git procps
              redis-server redis-tools memcached libmemcached-tools postgresql docker.io
              containerd podman crun debootstrap)

say() { printf 'install-deps: %s\n' "$*" >&2; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

# -- 1. Debian packages ------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == installed ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get: install them by hand"
    [[ $EUID -eq 0 ]] || die "missing packages (${missing[*]}): run as root, or apt-get install them first"
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
fi

# -- 2. the venv -------------------------------------------------------------------------
[[ -x $SYSTEM_PYTHON ]] || die "$SYSTEM_PYTHON not found (Debian's python3 package)"
"$SYSTEM_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$SYSTEM_PYTHON is older than 3.11"

# A venv from another interpreter (e.g. pyenv's python3 on PATH) is replaced: the sandbox
# and its tests are specified against Debian's Python.
if [[ -e $VENV ]] && ! grep -qx "home = ${SYSTEM_PYTHON%/*}" "$VENV/pyvenv.cfg" 2>/dev/null; then
    say "replacing $VENV: it was not made from $SYSTEM_PYTHON"
    rm -rf "$VENV"
fi
if [[ ! -x $VENV/bin/python ]]; then
    say "creating $VENV with $SYSTEM_PYTHON"
    rm -rf "$VENV"
    "$SYSTEM_PYTHON" -m venv "$VENV" || die "python3 -m venv failed (is python3-venv installed?)"
fi

stamp="$VENV/.requirements-dev.sha256"
want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    say "installing requirements-dev.txt into $VENV"
    PIP_NO_INPUT=1 "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -r "$REQUIREMENTS" || die "pip install -r requirements-dev.txt failed"
    echo "$want" >"$stamp"
fi

# The work tree is the package: a .pth puts it on the venv's path and a launcher gives
# `.venv/bin/snakevisor`, without a build step (the runtime has no dependencies).
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$ROOT" >"$site/snakevisor-worktree.pth"
cat >"$VENV/bin/snakevisor" <<LAUNCHER
#!$VENV/bin/python -I
import sys
sys.path.insert(0, "$ROOT")
from snakevisor.runtime.cli import main
sys.exit(main())
LAUNCHER
chmod 755 "$VENV/bin/snakevisor"

# -- 3. the stub -------------------------------------------------------------------------
cd "$ROOT"
PYTHONPATH="$ROOT" "$SYSTEM_PYTHON" -c \
    'from snakevisor.platform.ptrace import stub_binary; stub_binary()' \
    || die "building the stub failed (see the error above)"
