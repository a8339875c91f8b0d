"""config.json parsing (runtime/spec.py) and cgroup path rules (runtime/cgroups.py): the
runtime's untrusted input, refused in one line or turned into plain values."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from snakevisor.runtime.cgroups import CgroupError, cgroup_path
from snakevisor.runtime.container import RuntimeFailure
from snakevisor.runtime.oci_cli import parse_signal
from snakevisor.runtime.spec import SpecError, default_spec, load, parse, parse_resources


def bundle(tmp_path: Path, **changes) -> Path:
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    config = default_spec(["sh"])
    for key, value in changes.items():
        config[key] = value
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_default_spec_round_trip(tmp_path: Path) -> None:
    spec = load(str(bundle(tmp_path)))
    assert spec.rootfs == str(tmp_path / "rootfs") and spec.readonly_root
    assert spec.process.args == ["sh"] and spec.process.env["PATH"].startswith("/usr/local")
    assert spec.process.rlimits == {7: (1024, 1024)}  # RLIMIT_NOFILE
    assert spec.netns == "new" and spec.binds == [] and spec.tmpfs == []


@pytest.mark.parametrize("change, words", [
    ({"ociVersion": 1}, "ociVersion"),
    ({"root": {"path": "nowhere"}}, "no such directory"),
    ({"process": {"args": []}}, "must not be empty"),
    ({"process": {"args": ["sh"], "env": ["NOEQUALS"]}}, "KEY=VALUE"),
    ({"process": {"args": ["sh"], "cwd": "relative"}}, "absolute"),
    ({"process": {"args": ["sh"], "user": {"uid": -1}}}, "uid"),
    ({"process": {"args": ["sh"], "user": {"uid": 0, "username": "x"}}}, "username"),
    ({"process": {"args": ["sh"], "rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1,
                                              "hard": 1}]}}, "unknown limit"),
    ({"process": {"args": ["sh"], "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2,
                                              "hard": 1}]}}, "above its hard"),
    ({"mounts": [{"destination": "/x", "type": "nfs", "source": "a:/b"}]}, "not supported"),
    ({"mounts": [{"destination": "/x", "type": "bind", "source": "/nonexistent-src",
                  "options": ["rbind"]}]}, "no such file"),
    ({"hooks": {"prestart": [{"path": "relative"}]}}, "absolute"),
    ({"hooks": {"startContainer": [{"path": "bin/true"}]}}, "absolute"),
    ({"hooks": {"bogus": []}}, "unknown kind"),
    ({"linux": {"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}]}}, "by path"),
    ({"linux": {"namespaces": [{"type": "nonsense"}]}}, "unknown type"),
    ({"linux": {"resources": {"memory": {"limit": "lots"}}}}, "integer"),
])
def test_bad_configs_are_one_clear_error(tmp_path: Path, change: dict, words: str) -> None:
    with pytest.raises(SpecError, match=words):
        load(str(bundle(tmp_path, **change)))


def test_mounts_and_namespaces(tmp_path: Path) -> None:
    host_file = tmp_path / "resolv.conf"
    host_file.write_text("nameserver 1.1.1.1\n")
    config = default_spec(["sh"])
    config["mounts"] += [
        {"destination": "/etc/resolv.conf", "type": "bind", "source": str(host_file),
         "options": ["rbind", "ro"]},
        {"destination": "/scratch", "type": "tmpfs", "options": ["size=1m", "mode=700"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}]
    config["linux"]["namespaces"] = [{"type": "network", "path": "/var/run/netns/x"}]
    (tmp_path / "rootfs").mkdir()
    spec = parse(config, str(tmp_path))
    assert [(b.source, b.destination, b.readonly) for b in spec.binds] == \
        [(str(host_file), "/etc/resolv.conf", True)]
    assert [(t.destination, t.size, t.mode) for t in spec.tmpfs] == [("/scratch", 1 << 20, 0o700)]
    assert spec.netns == "/var/run/netns/x"


def test_resources_keep_what_is_applied() -> None:
    assert parse_resources({"memory": {"limit": 5, "kernel": 9}, "pids": {"limit": 3},
                            "cpu": {"shares": 2, "cpus": "0-1"}, "devices": [{}]}) == {
        "memory": {"limit": 5}, "pids": {"limit": 3}, "cpu": {"shares": 2, "cpus": "0-1"}}
    with pytest.raises(SpecError):
        parse_resources({"pids": {"limit": True}})


def test_signal_names() -> None:
    assert parse_signal("9") == 9 and parse_signal("TERM") == 15 and parse_signal("SIGUSR1") == 10
    for bad in ("0", "65", "SIGNOPE", "-1"):
        with pytest.raises(RuntimeFailure):
            parse_signal(bad)


def test_cgroup_paths() -> None:
    assert cgroup_path("", "c1") == "/snakevisor/c1"
    assert cgroup_path("/docker/abc", "abc") == "/docker/abc"
    assert cgroup_path("relative/x", "c") == "/relative/x"
    assert cgroup_path("system.slice:docker:abc", "abc", systemd=True) == \
        "/system.slice/docker-abc.scope"
    with pytest.raises(CgroupError):
        cgroup_path("/../../etc", "c")
