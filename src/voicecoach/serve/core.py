"""The one place the server asks the core: routines, today's limits, tracks and sessions."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from voicecoach import __version__ as VERSION
from voicecoach.errors import UserError
from voicecoach.plan.timeline import Plan, PlanOptions, build_plan, select_exercises
from voicecoach.routine import library
from voicecoach.routine.loader import id_from_path, load_routine
from voicecoach.routine.model import Routine

#: Silence before the first word: a Bluetooth speaker or headset wakes up in it (as export's).
LEAD_IN = 1.5
#: Speech as the other commands speak by default (engine, voice, words per minute).
ENGINE: str | None = None
VOICE: str | None = None
RATE = 165


def routines(folders: Sequence[Path], with_library: bool = True) -> dict[str, Path]:
    """Routine ids and their files: the library's, then each folder's (an id seen first wins)."""
    found = dict(library.bundled()) if with_library else {}
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.suffix in (".yaml", ".yml") and path.is_file():
                found.setdefault(id_from_path(path), path)
    return found


@dataclass(frozen=True)
class Decision:
    """What a session of one routine holds today, as `play` would decide it."""

    routine: Routine
    options: PlanOptions
    detail: str
    left_out: tuple[tuple[str, str], ...]
    key: str
    refused: str | None = None


def decide(path: Path) -> Decision:
    """Load a routine and apply today's screening and frequency limits (the live-play rules)."""
    from voicecoach.audio.options import SoundOptions
    from voicecoach.safety.history import History
    from voicecoach.safety.rules import assess, load_screening

    content = path.read_bytes()
    routine = load_routine(path)
    history = History()
    try:
        verdict = assess(routine, history=history, screening=load_screening(), apply_limits=True,
                         chosen=select_exercises(routine, (), ()))
    except UserError as exc:
        return Decision(routine, PlanOptions(), "full", (), "", refused=exc.message)
    finally:
        history.close()
    options = SoundOptions().plan_options(PlanOptions(
        lead_in=LEAD_IN, left_out=verdict.left_out, detail=verdict.detail))
    key = _key(content, options)
    return Decision(routine, options, verdict.detail, verdict.left_out, key)


def _key(content: bytes, options: PlanOptions) -> str:
    # Everything that changes the audio: the routine as written, what today leaves out, the
    # voice, and the program that speaks it.
    payload = json.dumps([hashlib.sha256(content).hexdigest(), repr(options), ENGINE, VOICE,
                          RATE, VERSION], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def estimate(decision: Decision) -> Plan:
    """The plan with estimated speech lengths: enough for a list of routines."""
    return build_plan(decision.routine, decision.options)


def make_track(decision: Decision, dest: Path) -> tuple[Plan, dict[str, object]]:
    """Write the track `export` would make for this session to `dest` (atomically); return its
    plan and the track's description (duration, size, chapters as tagged)."""
    from voicecoach.audio.options import SoundOptions
    from voicecoach.audio.prepare import prepare
    from voicecoach.export.tracks import ExportOptions, export_track
    from voicecoach.speech import VoiceSettings, get_engine
    from voicecoach.storage.cache import ClipCache

    prepared = prepare(decision.routine, decision.options, engine=get_engine(ENGINE),
                       settings=VoiceSettings(voice=VOICE, rate=RATE), cache=ClipCache(),
                       sound=SoundOptions())
    try:
        track = export_track(decision.routine, prepared, dest, ExportOptions())
    finally:
        prepared.close()
    return prepared.plan, track.as_json()


def record_phone_session(decision: Decision, started: float, position: float, *,
                         completed: bool, exercises_done: tuple[str, ...],
                         stopped_at: str | None) -> None:
    """A session played on the phone, in history like a live one (the same rule counts it)."""
    from voicecoach.safety.history import History, SessionRecord

    history = History()
    try:
        history.record(SessionRecord(
            routine=decision.routine.id, title=decision.routine.title, kind="phone",
            started=started, ended=time.time(), completed=completed, position=position,
            exercises_done=exercises_done, stopped_at=stopped_at, detail=decision.detail))
    finally:
        history.close()


def screening() -> dict[str, object]:
    from voicecoach.safety.rules import load_screening

    return load_screening().as_json()


def save_screening(answers: dict[str, bool]) -> dict[str, object]:
    """Store the answers where `voicecoach safety` does."""
    from voicecoach.safety.rules import save_screening as save

    return save(answers).as_json()


def question_keys() -> list[str]:
    from voicecoach.safety.rules import QUESTIONS

    return [q.key for q in QUESTIONS]

