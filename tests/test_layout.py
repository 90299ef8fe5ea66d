"""The package layout is the pipeline: each stage imports only stages below it, no cycles, and
the command line goes through the application layer (docs/architecture.md draws it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "voicecoach"
DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"

#: Shared by every stage: failures, cancellation, and the one audio format (and ffmpeg, which
#: turns any audio into it).
BASE = {"voicecoach", "voicecoach.errors", "voicecoach.cancel", "voicecoach.audio.pcm",
        "voicecoach.audio.ffmpeg", "voicecoach._entry", "voicecoach.__main__"}
#: Stages from the bottom up; a stage may import its own package and anything lower.
LAYERS = [("routine",), ("plan",), ("storage",), ("speech", "safety"), ("audio",),
          ("export", "live"), ("coach",), ("serve",), ("cli",)]
#: What the command line may import at run time: the application layer and nothing of the
#: stages under it (type-only imports are not run).
CLI_ALLOWED = {"voicecoach", "voicecoach.coach", "voicecoach.errors", "voicecoach.cancel",
               "voicecoach.serve.server"}
#: The LAN server is a front end too: it asks the application layer, never the stages that
#: decide (safety, plan, audio, export) - its own files and tokens are kept with storage's
#: atomic writes.
SERVE_ALLOWED = CLI_ALLOWED | {"voicecoach.storage.atomic", "voicecoach.storage.cache"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> set[str]:
    """voicecoach modules a file imports when it runs (not under `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING"
                   for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("voicecoach")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("voicecoach"):
            for alias in node.names:  # `from voicecoach.x import y`: y may be a module
                sub = f"{node.module}.{alias.name}"
                found.add(sub if _exists(sub) else node.module)  # type: ignore[arg-type]
    return found


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


MODULES = {module_name(p): runtime_imports(p) for p in sorted(SRC.rglob("*.py"))}


def layer(module: str) -> int | None:
    if module in BASE:
        return None
    top = module.split(".")[1]
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_every_module_is_in_a_stage() -> None:
    for module in MODULES:
        assert module in BASE or module.split(".")[1] in {n for g in LAYERS for n in g}, module


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_reaches_up_or_across(module: str) -> None:
    mine = layer(module)
    if mine is None:
        assert all(layer(m) is None for m in MODULES[module] if m != "voicecoach.cli"), module
        return
    for target in MODULES[module]:
        theirs = layer(target)
        same_package = target.split(".")[:2] == module.split(".")[:2]
        assert theirs is None or theirs < mine or same_package, f"{module} imports {target}"


def test_cli_imports_only_the_application_layer() -> None:
    for module, imports in MODULES.items():
        if module.startswith("voicecoach.cli"):
            outside = {m for m in imports if not m.startswith("voicecoach.cli")} - CLI_ALLOWED
            assert not outside, f"{module} imports {sorted(outside)}"


def test_the_server_asks_the_application_layer() -> None:
    for module, imports in MODULES.items():
        if module.startswith("voicecoach.serve"):
            outside = {m for m in imports if not m.startswith("voicecoach.serve")} - SERVE_ALLOWED
            assert not outside, f"{module} imports {sorted(outside)}"


def test_no_import_cycle() -> None:
    graph = {m: {t for t in imports if t in MODULES and t != m} for m, imports in MODULES.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt):], nxt]
                raise AssertionError(" -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_architecture_doc_names_every_package() -> None:
    text = DOC.read_text(encoding="utf-8")
    packages = {p.parent.name for p in SRC.glob("*/__init__.py")}
    for package in packages:
        assert f"`{package}/`" in text, package
    assert all(f"`{p}/`" not in text or p in packages
               for p in ("session", "sound", "timeline")), "names a package that is gone"
