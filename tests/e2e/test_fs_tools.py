"""Everyday tools on the overlay root, compared with the same script run natively."""
from __future__ import annotations

import shutil
import subprocess
import tempfile

import pytest

from harness import describe, run_sandbox

pytestmark = pytest.mark.slow

TOOLS = r'''
set -e
cd "$1"
mkdir -p src/a/b && echo one > src/a/f && echo two > src/a/b/g && ln -s a/f src/link
chmod 640 src/a/f
cp -a src copy && find copy | sort
stat -c '%n %a %F' copy/a/f copy/link
mv copy moved && ls
tar czf t.tgz moved && mkdir out && tar xzf t.tgz -C out && find out -type f | sort
chmod -R go-rwx out && stat -c '%a' out/moved/a/b/g
du -s --apparent-size -b out/moved/a/f | cut -f1
ln -s moved/a sym && cat sym/f && readlink sym
rm -rf moved out t.tgz sym && ls
git init -q repo && cd repo && git -c user.email=a@b -c user.name=n commit -q --allow-empty -m first
echo data > f && git add f && git -c user.email=a@b -c user.name=n commit -qm second
git log --format=%s | tr '\n' ' '; echo
git status --porcelain | wc -l
'''


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_tools_on_the_overlay_root() -> None:
    with tempfile.TemporaryDirectory() as native_dir:
        native = subprocess.run(["/bin/bash", "-c", TOOLS, "bash", native_dir],
                                capture_output=True, text=True, timeout=120,
                                env={"PATH": "/usr/bin:/bin", "HOME": native_dir, "LC_ALL": "C"})
    script = "mkdir -p /work-tools && exec /bin/bash -c \"$0\" bash /work-tools"
    sandboxed = run_sandbox(["/bin/bash", "-c", script, TOOLS], timeout=120,
                            extra=["--env", "HOME=/work-tools", "--env", "LC_ALL=C"])
    assert native.returncode == 0, native.stderr
    assert (sandboxed.returncode, sandboxed.stdout) == (0, native.stdout), describe(sandboxed)
