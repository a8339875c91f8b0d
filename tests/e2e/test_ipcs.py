"""util-linux's ipcmk, ipcs and ipcrm in the sandbox print what they print natively.

Why: `ipcs` is how a person looks at System V IPC, and it uses every introspection path
we serve: /proc/sysvipc/{shm,sem,msg} for the listings, IPC_STAT for `-i`, the *_INFO
commands for `-u`, /proc/sys/kernel for `-l`.  The same script runs natively in a fresh IPC
namespace (`unshare -i`, so ids start at 0 there as in a new sandbox) and in the sandbox,
and the outputs must be equal once what cannot be equal is masked: the random keys
ipcmk picks, times and process ids.  Ids are compared as they are: a fresh namespace
numbers its objects the same way on both sides.
"""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from harness import describe, env_flags, run_native, run_sandbox

pytestmark = pytest.mark.slow

TOOLS = ("ipcmk", "ipcs", "ipcrm", "unshare")

#: One section per command, each introduced by "== ARGS" so a difference is easy to place.
SCRIPT = r"""
id_of() { sed -n 's/.*id: \([0-9]*\)$/\1/p'; }
run() { echo "== $*"; "$@"; echo "status $?"; }
m=$(ipcmk -M 10000 -p 0640 | id_of)
m2=$(ipcmk -M 4096 | id_of)
s=$(ipcmk -S 3 -p 0600 | id_of)
q=$(ipcmk -Q -p 0620 | id_of)
echo "ids: $m $m2 $s $q"
run ipcs
run ipcs -a
run ipcs -l
run ipcs -u
run ipcs -c
run ipcs -p
run ipcs -t
run ipcs -b
run ipcs -m -i "$m"
run ipcs -s -i "$s"
run ipcs -q -i "$q"
run ipcs -m -i 31999
run ipcrm -m "$m" -s "$s"
run ipcrm -q "$q"
key=$(ipcs -m | awk '$2 == "'"$m2"'" {print $1}')
run ipcrm -M "$key"
run ipcrm -m 31999
run ipcs
m3=$(ipcmk -M 100 | id_of)
echo "a new segment after removals: id $m3"
run ipcrm -a
run ipcs -m
"""

TIME = re.compile(r"(?:[A-Z][a-z]{2} )?[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d(?: \d{4})?")
KEY = re.compile(r"0x[0-9a-f]{8}")
PID_FIELD = re.compile(r"\b(cpid|lpid|lspid|lrpid)=([1-9]\d*)")
#: `ipcs -p` rows: id, owner, then two pids (padded to the pids' widths)
PID_ROW = re.compile(r"^(\d+) +(\S+) +(\d+) +(\d+) *$", re.M)


def _mask(text: str) -> str:
    """Blank out times, ipcmk's random keys and pids (keeping the columns' widths, but for
    `ipcs -p`, whose padding depends on the pids)."""
    text = TIME.sub(lambda m: "T" * len(m.group()), text)
    text = KEY.sub("0xKEY_____", text)
    text = PID_FIELD.sub(lambda m: f"{m.group(1)}=PID", text)

    def pids(m: re.Match[str]) -> str:
        return " ".join([m.group(1), m.group(2),
                         *("PID" if x != "0" else x for x in (m.group(3), m.group(4)))])

    return PID_ROW.sub(pids, text)


def _need_tools() -> None:
    for tool in TOOLS:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if subprocess.run(["unshare", "-i", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -i is not permitted here (a fresh native IPC namespace)")


def test_ipcs_matches_native() -> None:
    _need_tools()
    native = run_native(["unshare", "-i", "/bin/sh", "-c", SCRIPT], timeout=60)
    assert native.returncode == 0, describe(native)
    assert "ids: 0 1 0 0" in native.stdout, describe(native)  # the script is sound here
    sandboxed = run_sandbox(["/bin/sh", "-c", SCRIPT], extra=env_flags(), timeout=120)
    assert sandboxed.returncode == 0, describe(sandboxed)
    want, got = _mask(native.stdout), _mask(sandboxed.stdout)
    assert got.splitlines() == want.splitlines(), describe(sandboxed, 12000)
    assert _mask(sandboxed.stderr) == _mask(native.stderr)


def test_ipcs_lists_objects_made_in_the_sandbox() -> None:
    """Not only equal to native: the listing shows exactly what was made (catches both
    sides agreeing on nothing, e.g. an empty /proc/sysvipc)."""
    _need_tools()
    res = run_sandbox(["/bin/sh", "-c", "ipcmk -M 12288 -p 0604 >/dev/null; "
                       "ipcmk -S 5 >/dev/null; ipcs -m; ipcs -s; cat /proc/sysvipc/sem"],
                      extra=env_flags(), timeout=60)
    assert res.returncode == 0, describe(res)
    shm_rows = [line.split() for line in res.stdout.splitlines() if line.startswith("0x")]
    assert shm_rows[0][1:] == ["0", "root", "604", "12288", "0"]
    assert shm_rows[1][1:] == ["0", "root", "644", "5"]
    proc = res.stdout.splitlines()[-1].split()
    assert proc[1:4] == ["0", "644", "5"]
