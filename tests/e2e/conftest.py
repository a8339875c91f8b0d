"""Fixtures of the end-to-end tests (the helpers they use are in harness.py)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness import CPrograms, Scratch, build_dir, on_demand_libraries, shared_libraries


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: runs real programs in the sandbox (still run in CI)")


@pytest.fixture(scope="session")
def c_programs() -> CPrograms:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    return CPrograms(build_dir())


@pytest.fixture
def scratch(tmp_path: Path, c_programs: CPrograms) -> Scratch:
    root, native = tmp_path / "root", tmp_path / "native"
    (root / "bin").mkdir(parents=True)
    (root / "w").mkdir()
    (native / "w").mkdir(parents=True)
    libs: set[str] = set()
    for name in c_programs.names():
        shutil.copy2(c_programs.path(name, "static"), root / "bin" / name)
        dyn = c_programs.path(name, "dynamic")
        shutil.copy2(dyn, root / "bin" / f"{name}-dyn")
        if not libs:
            libs.update(shared_libraries(dyn))
            libs.update(on_demand_libraries(libs))
    for lib in libs:
        dest = root / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(lib), dest)
    return Scratch(root, native)


@pytest.fixture
def outside_marker(tmp_path: Path) -> Path:
    """A host file beside (outside) the scratch root that no sandbox may reach."""
    marker = tmp_path / "outside-secret"
    marker.write_text("host secret\n")
    return marker


@pytest.fixture
def rt(tmp_path: Path):
    """The OCI runtime CLI with a state root of its own (test_oci_runtime.Runtime); every
    container left is deleted afterwards."""
    from test_oci_runtime import Runtime
    runtime = Runtime(tmp_path / "state", tmp_path / "log.json")
    yield runtime
    for cid in os.listdir(runtime.root) if runtime.root.exists() else []:
        runtime("delete", "--force", cid, check=False)
