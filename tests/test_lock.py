"""The committed lock fits pyproject.toml: every range is met by the locked version, on every
platform and Python the lock is for, and the run, test and uv locks agree with each other."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
REQ = ROOT / "requirements"

#: Environments the lock promises (scripts/lock: --universal, Python 3.11-3.13).
ENVIRONMENTS = [
    {"sys_platform": platform, "platform_system": system, "python_version": py,
     "python_full_version": f"{py}.0", "implementation_name": "cpython",
     "platform_python_implementation": "CPython", "platform_release": "24.0",
     "platform_machine": "x86_64", "os_name": "nt" if platform == "win32" else "posix"}
    for platform, system in (("linux", "Linux"), ("darwin", "Darwin"), ("win32", "Windows"))
    for py in ("3.11", "3.12", "3.13")
]

_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def _locked(path: Path) -> list[tuple[str, Version, Marker | None]]:
    pins = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _PIN.match(line)
        if m:
            marker = Marker(m[3]) if m[3] else None
            pins.append((canonicalize_name(m[1]), Version(m[2]), marker))
    return pins


def _in(pins: list[tuple[str, Version, Marker | None]], env: dict[str, str]) -> dict[str, Version]:
    return {name: version for name, version, marker in pins
            if marker is None or marker.evaluate(env)}


def _requirements(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


def _inputs(name: str) -> list[Requirement]:
    lines = (REQ / name).read_text(encoding="utf-8").splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(("lock", "extras", "inputs"), [
    ("test.lock", ("test",), ("build.in", "uv.in")),
    ("run.lock", (), ("build.in", "uv.in")),
    ("uv.lock", None, ("uv.in",)),
])
def test_every_range_is_met_by_the_locked_version_everywhere(
    lock: str, extras: tuple[str, ...] | None, inputs: tuple[str, ...]
) -> None:
    pins = _locked(REQ / lock)
    wanted = [] if extras is None else _requirements(*extras)
    for name in inputs:
        wanted += _inputs(name)
    for env in ENVIRONMENTS:
        have = _in(pins, env)
        for req in wanted:
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            name = canonicalize_name(req.name)
            where = f"{lock} for {env['sys_platform']} Python {env['python_version']}"
            assert name in have, f"{req.name} is not in {where}: run scripts/lock"
            assert have[name] in req.specifier, (
                f"{req.name}=={have[name]} in {where} does not meet {req}: run scripts/lock")


def test_the_locks_agree_with_each_other() -> None:
    test = {(n, m and str(m)): v for n, v, m in _locked(REQ / "test.lock")}
    for other in ("run.lock", "uv.lock"):
        for name, version, marker in _locked(REQ / other):
            key = (name, marker and str(marker))
            assert test.get(key) == version, (
                f"{name} is {version} in {other} but {test.get(key)} in test.lock: "
                "run scripts/lock")


def test_every_locked_package_carries_hashes() -> None:
    for lock in ("test.lock", "run.lock", "uv.lock"):
        text = (REQ / lock).read_text(encoding="utf-8")
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
        for block in blocks:
            if _PIN.match(block.splitlines()[0]):
                assert "--hash=sha256:" in block, f"{lock}: {block.splitlines()[0]} has no hash"
