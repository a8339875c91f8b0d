"""Real, unmodified binaries from the host's root run in the sandbox and print what they print
natively: coreutils, busybox (static) applets, and CPython doing file I/O.

Only single-process commands for now (fork arrives with a later issue): busybox `sh -c`
is used only with builtins.
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from harness import assert_same_output, describe, env_flags, run_native, run_sandbox

pytestmark = pytest.mark.slow

BUSYBOX = "/bin/busybox"
PYTHON3 = "/usr/bin/python3"


def both(args: list[str], input: str | None = None, extra: list[str] | None = None, timeout: float = 120):
    """Run args natively and in the sandbox (default root, DET_ENV on both sides)."""
    native = run_native(args, input=input, timeout=timeout)
    sandboxed = run_sandbox(args, extra=[*env_flags(), *(extra or [])], input=input, timeout=timeout)
    return native, sandboxed


def compare(args: list[str], input: str | None = None, extra: list[str] | None = None) -> None:
    native, sandboxed = both(args, input, extra)
    assert native.returncode == 0, describe(native)
    assert_same_output(native, sandboxed)


def need(path: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} is not installed")


# --------------------------------------------------------------------------- coreutils

def test_echo() -> None:
    compare(["/bin/echo", "hello", "from", "the sandbox"])


def test_echo_exit_status_and_stderr_empty() -> None:
    res = run_sandbox(["/bin/echo", "-n", "x"], extra=env_flags())
    assert (res.returncode, res.stdout) == (0, "x"), describe(res)
    assert "Traceback" not in res.stderr, describe(res)


def test_true_false() -> None:
    assert run_sandbox(["/bin/true"]).returncode == 0
    assert run_sandbox(["/bin/false"]).returncode == 1


def test_cat_os_release() -> None:
    compare(["/bin/cat", "/etc/os-release"])


def test_cat_large_file() -> None:
    """Many read/write rounds; output identical byte for byte."""
    big = "/usr/lib/python3.11/typing.py"
    need(big)
    compare(["/bin/cat", big, big])


def test_cat_stdin() -> None:
    text = "".join(f"line {i}\n" for i in range(2000))
    compare(["/bin/cat"], input=text)


def test_cat_missing_file() -> None:
    native, sandboxed = both(["/bin/cat", "/nonexistent-file"])
    assert native.returncode == 1
    assert sandboxed.returncode == 1, describe(sandboxed)
    assert "No such file or directory" in sandboxed.stderr, describe(sandboxed)


def test_wc_and_head() -> None:
    compare(["/usr/bin/wc", "/etc/os-release", "/etc/passwd"])
    compare(["/usr/bin/head", "-c", "100", "/etc/os-release"])


def test_sha256sum() -> None:
    compare(["/usr/bin/sha256sum", "/etc/os-release", "/bin/busybox" if os.path.exists("/bin/busybox") else "/bin/ls"])


def test_stat_command() -> None:
    compare(["/usr/bin/stat", "-c", "%n %s %a %F %h %U %G", "/etc/os-release", "/usr", "/bin", "/etc/passwd"])


def test_readlink_and_realpath() -> None:
    compare(["/usr/bin/readlink", "/bin", "/lib64/ld-linux-x86-64.so.2"])
    compare(["/usr/bin/realpath", "/bin/sh", "/usr/lib/../bin/."])


def test_ls_dir_stable() -> None:
    compare(["/bin/ls", "-la", "--time-style=+%s", "/usr/lib/python3.11/json"])


#: Entries of / whose metadata the host changes at any time, or that are kernel mounts.
VOLATILE = {"proc", "sys", "dev", "tmp", "run", "root", "work", "farm", "var", "mnt", ".", ".."}


def _ls_entries(out: str) -> dict[str, str]:
    entries = {}
    for line in out.splitlines():
        if line.startswith("total "):
            continue
        fields = line.split(None, 6)
        assert len(fields) == 7, f"unexpected ls line {line!r}"
        name = fields[6].split(" -> ")[0]
        entries[name] = " ".join(fields)  # column widths follow the widest entry (/proc's links)
    return entries


def test_ls_la_root() -> None:
    """`ls -la /`: the same entries; identical lines except for directories the host itself
    changes (their timestamps and link counts may move between the two runs)."""
    args = ["/bin/ls", "-la", "--time-style=+%s", "/"]
    before, sandboxed = both(args)
    after = run_native(args)
    assert before.returncode == 0, describe(before)
    assert sandboxed.returncode == 0, describe(sandboxed)
    assert not [l for l in sandboxed.stderr.splitlines() if l.startswith("ls:")], describe(sandboxed)
    a, b, s = _ls_entries(before.stdout), _ls_entries(after.stdout), _ls_entries(sandboxed.stdout)
    assert sorted(s) == sorted(b), describe(sandboxed)
    for name, line in s.items():
        if name in VOLATILE or a[name] != b[name]:
            assert line[0] == b[name][0], f"type of {name} differs: {line!r} vs {b[name]!r}"
        else:
            assert line == b[name], f"ls line of {name} differs:\nnative:  {b[name]}\nsandbox: {line}"


# --------------------------------------------------------------------------- env

def test_env_flag_reaches_application() -> None:
    res = run_sandbox(["/usr/bin/env"], extra=["--env", "SNAKE_A=1", "--env=SNAKE_B=two words"])
    assert res.returncode == 0, describe(res)
    lines = res.stdout.splitlines()
    assert "SNAKE_A=1" in lines and "SNAKE_B=two words" in lines, describe(res)


def test_env_flag_overrides() -> None:
    res = run_sandbox(["/usr/bin/env"], extra=["--env", "TZ=Europe/Paris"])
    assert "TZ=Europe/Paris" in res.stdout.splitlines(), describe(res)
    assert "TZ=UTC" not in res.stdout.splitlines(), describe(res)


def test_env_i_exact() -> None:
    # `env -i A=1 B=2` with no command prints exactly its new environment (no exec needed).
    compare(["/usr/bin/env", "-i", "A=1", "B=2"])


# --------------------------------------------------------------------------- busybox

@pytest.mark.parametrize("applet", [
    ["echo", "hello", "busybox"],
    ["ls", "/"],
    ["ls", "-l", "/usr/lib/python3.11/json"],
    ["cat", "/etc/os-release"],
    ["wc", "/etc/os-release"],
    ["head", "-n", "3", "/etc/passwd"],
    ["md5sum", "/etc/os-release"],
    ["basename", "/a/b/c.txt", ".txt"],
    ["uname", "-s", "-m"],
    ["stat", "-c", "%s %a %F", "/etc/os-release", "/usr"],
    ["find", "/usr/lib/python3.11/json"],
    ["sh", "-c", "echo hi; echo $((6*7)); test -d /usr && echo dir"],
    ["printf", "%s-%d\\n", "x", "42"],
], ids=lambda a: "-".join(a[:2]).replace("/", "_"))
def test_busybox_applet(applet: list[str]) -> None:
    need(BUSYBOX)
    compare([BUSYBOX, *applet])


def test_busybox_wc_stdin() -> None:
    need(BUSYBOX)
    compare([BUSYBOX, "wc", "-l"], input="a\nb\nc\n")


def test_busybox_pwd_follows_cwd() -> None:
    need(BUSYBOX)
    res = run_sandbox([BUSYBOX, "pwd"], extra=["--cwd", "/usr/lib"])
    assert (res.returncode, res.stdout) == (0, "/usr/lib\n"), describe(res)


@pytest.mark.parametrize("code", [0, 3, 255])
def test_busybox_sh_exit_status(code: int) -> None:
    need(BUSYBOX)
    res = run_sandbox([BUSYBOX, "sh", "-c", f"exit {code}"])
    assert res.returncode == code, describe(res)


def test_busybox_false() -> None:
    need(BUSYBOX)
    assert run_sandbox([BUSYBOX, "false"]).returncode == 1


# --------------------------------------------------------------------------- python3

PY_READER = textwrap.dedent("""
    import errno, hashlib, json, os, sys
    data = open('/etc/os-release', 'rb').read()
    info = dict(l.split('=', 1) for l in data.decode().splitlines() if '=' in l)
    print(json.dumps(info, sort_keys=True))
    print(hashlib.sha256(data).hexdigest())
    h, n = hashlib.sha256(), 0
    for root, dirs, files in os.walk('/usr/lib/python3.11/email'):
        dirs.sort()
        for name in sorted(files):
            with open(os.path.join(root, name), 'rb') as f:
                h.update(f.read())
            n += 1
    print(n, h.hexdigest())
    st = os.stat('/etc/os-release')
    print(st.st_size, oct(st.st_mode), os.path.islink('/bin'), os.readlink('/bin'))
    print(sorted(os.listdir('/usr/lib/python3.11/json')))
    try:
        open('/nonexistent/file')
    except OSError as e:
        print('missing:', errno.errorcode[e.errno])
    import decimal, fractions, statistics
    print(statistics.mean([1, 2, 3, 4]), fractions.Fraction(3, 12), decimal.Decimal(1) / 7)
    print(os.getcwd())
""")


def test_python_reads_files() -> None:
    """A dynamic program making thousands of calls: imports, stat storms, reads."""
    need(PYTHON3)
    native = run_native([PYTHON3, "-I", "-c", PY_READER], cwd="/usr")
    sandboxed = run_sandbox([PYTHON3, "-I", "-c", PY_READER], extra=[*env_flags(), "--cwd", "/usr"],
                            timeout=120)
    assert native.returncode == 0, describe(native)
    assert_same_output(native, sandboxed)


PY_WRITER = textwrap.dedent("""
    import os, json
    os.mkdir('d')
    for i in range(50):
        with open(f'd/f{i:02}', 'w') as f:
            json.dump({'i': i, 'sq': i * i}, f)
    os.rename('d/f00', 'd/first')
    os.symlink('first', 'd/link')
    total = 0
    for name in sorted(os.listdir('d')):
        with open(os.path.join('d', name)) as f:
            total += json.load(f)['sq']
    print(len(os.listdir('d')), total, os.readlink('d/link'))
    os.unlink('d/f01')
    print(sorted(os.listdir('d'))[:3])
    with open('d/first', 'r+b') as f:
        f.seek(0, 2); f.write(b' '); f.truncate(5); f.seek(0); print(f.read())
""")


def test_python_writes_files(tmp_path: Path) -> None:
    need(PYTHON3)
    native_dir, sandbox_dir = tmp_path / "native", tmp_path / "sandbox"
    native_dir.mkdir()
    sandbox_dir.mkdir()
    native = run_native([PYTHON3, "-I", "-c", PY_WRITER], cwd=native_dir)
    sandboxed = run_sandbox([PYTHON3, "-I", "-c", PY_WRITER],
                            extra=[*env_flags(), "--writable-root", "--cwd", str(sandbox_dir)], timeout=120)
    assert native.returncode == 0, describe(native)
    assert_same_output(native, sandboxed)
    assert sorted(os.listdir(sandbox_dir / "d")) == sorted(os.listdir(native_dir / "d"))


def test_python_write_to_readonly_root_is_erofs(tmp_path: Path) -> None:
    need(PYTHON3)
    target = tmp_path / "created-by-python"
    script = (f"import errno\ntry:\n    open({str(target)!r}, 'w')\n"
              f"except OSError as e:\n    print(errno.errorcode[e.errno])\nelse:\n    print('opened')\n")
    res = run_sandbox([PYTHON3, "-I", "-c", script], extra=[*env_flags(), "--overlay2", "none"])
    assert (res.returncode, res.stdout) == (0, "EROFS\n"), describe(res)
    assert not target.exists()


def test_python_writes_stay_in_the_overlay(tmp_path: Path) -> None:
    """The default overlay: the write works inside and never reaches the host."""
    need(PYTHON3)
    target = tmp_path / "created-by-python"
    script = (f"open({str(target)!r}, 'w').write('inside')\n"
              f"print(open({str(target)!r}).read())\n")
    res = run_sandbox([PYTHON3, "-I", "-c", script], extra=env_flags())
    assert (res.returncode, res.stdout) == (0, "inside\n"), describe(res)
    assert not target.exists()


def test_python_version() -> None:
    need(PYTHON3)
    compare([PYTHON3, "-I", "-c", "import sys, platform; print(sys.version); print(platform.machine())"])


def test_python_without_site() -> None:
    """`python3 -S` (no site module) makes far fewer calls: tells a failure of the bare
    interpreter apart from one in site.py."""
    need(PYTHON3)
    compare([PYTHON3, "-I", "-S", "-c", "print(sum(range(10**5)))"])


def test_dynamic_ls_of_missing_path_status() -> None:
    native, sandboxed = both(["/bin/ls", "/nonexistent-dir"])
    assert sandboxed.returncode == native.returncode == 2, describe(sandboxed)


def test_shell_script_which() -> None:
    """/usr/bin/which is a `#!/bin/sh` script using only builtins: exercises `#!` loading."""
    need("/usr/bin/which")
    compare(["/usr/bin/which", "ls", "python3"])
