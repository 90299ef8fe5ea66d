"""Find routines: the bundled library shipped in the package, or a user's file by path."""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from voicecoach.errors import UserError, check_input
from voicecoach.routine.loader import id_from_path, load_routine
from voicecoach.routine.model import Routine

DEFAULT_ROUTINE = "five-minute-back"
_SUFFIXES = (".yaml", ".yml")


def bundled_dir() -> Path:
    """routines/ inside the installed package, or beside src/ in a source checkout."""
    packaged = Path(str(resources.files("voicecoach"))) / "routines"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "routines"


def bundled() -> dict[str, Path]:
    """Bundled routine ids and their files, sorted by id."""
    folder = bundled_dir()
    files = sorted(p for p in folder.iterdir() if p.suffix in _SUFFIXES) if folder.is_dir() else []
    return {id_from_path(p): p for p in files}


def resolve(spec: str) -> Path:
    """A bundled id or a path to a routine file."""
    path = Path(spec).expanduser()
    library = bundled()
    if spec in library and not path.exists():
        return library[spec]
    looks_like_path = path.suffix in _SUFFIXES or "/" in spec or "\\" in spec or path.exists()
    if looks_like_path:
        if not path.exists():
            check_input(path, "routine file", shown=spec,
                        fix="check the path, or run `voicecoach list`")
        return path
    close = difflib.get_close_matches(spec, list(library), n=3, cutoff=0.5)
    fix = f"did you mean {', '.join(close)}?" if close else "run `voicecoach list` to see them"
    raise UserError(f"unknown routine {spec!r}", fix=fix)


def load(spec: str) -> Routine:
    return load_routine(resolve(spec))
