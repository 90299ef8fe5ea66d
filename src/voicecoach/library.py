"""Find routines: the bundled library shipped in the package, or a user's file by path."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from voicecoach.errors import UserError
from voicecoach.loader import id_from_path, load_routine
from voicecoach.model import Routine
from voicecoach.plan import Plan, PlanOptions, build_plan

DEFAULT_ROUTINE = "five-minute-back"
_SUFFIXES = (".yaml", ".yml")


def bundled_dir() -> Path:
    """routines/ inside the installed package, or beside src/ in a source checkout."""
    packaged = Path(str(resources.files("voicecoach"))) / "routines"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "routines"


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
            raise UserError(f"{spec}: no such file", fix="check the path, or run `voicecoach list`")
        return path
    close = difflib.get_close_matches(spec, list(library), n=3, cutoff=0.5)
    fix = f"did you mean {', '.join(close)}?" if close else "run `voicecoach list` to see them"
    raise UserError(f"unknown routine {spec!r}", fix=fix)


def load(spec: str) -> Routine:
    return load_routine(resolve(spec))


@dataclass(frozen=True)
class Summary:
    id: str
    title: str
    exercises: int
    duration: float
    equipment: tuple[str, ...]
    areas: tuple[str, ...]
    source: str | None
    manipulation: bool

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "exercises": self.exercises,
            "duration": round(self.duration, 3),
            "equipment": list(self.equipment),
            "areas": list(self.areas),
            "source": self.source,
            "manipulation": self.manipulation,
        }


def summarise(routine: Routine, plan: Plan) -> Summary:
    return Summary(
        id=routine.id,
        title=routine.title,
        exercises=len(routine.exercises),
        duration=plan.duration,
        equipment=tuple(routine.equipment),
        areas=tuple(routine.areas),
        source=routine.source,
        manipulation=routine.manipulation,
    )


def catalogue(timing: Callable[[Routine], Plan] | None = None) -> list[Summary]:
    """A summary of every bundled routine; `timing` plans each one (default: estimated speech)."""
    timing = timing or (lambda r: build_plan(r, PlanOptions()))
    return [summarise(r, timing(r)) for r in map(load_routine, bundled().values())]
