"""The application layer every front end calls: settings, safety, prepare, export, record."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, NamedTuple, Protocol, TypeVar

from voicecoach.audio.options import DEFAULT_DUCK, DEFAULT_LOUDNESS, SoundOptions
from voicecoach.errors import UserError, check_input
from voicecoach.export.mp3 import DEFAULT_BITRATE
from voicecoach.routine.durations import format_clock, format_duration
from voicecoach.routine.wording import counted, fill
from voicecoach.speech.base import DEFAULT_RATE

# The planner, the mixer (numpy) and the routine model (pydantic) are imported where they are
# used: a command that does not need them (`--help`, an export that is up to date) starts
# without them.
if TYPE_CHECKING:
    from voicecoach.audio.prepare import LazyPrepared, Prepared
    from voicecoach.export.outputs import STDOUT, OutputPlan
    from voicecoach.export.tracks import ExportOptions, Track
    from voicecoach.live.player import Onset, Player, SessionResult
    from voicecoach.plan.compose import DEFAULT_EQUIPMENT, Composition, Request
    from voicecoach.plan.timeline import Plan, PlanOptions
    from voicecoach.routine.model import Routine
    from voicecoach.safety.history import SessionRecord
    from voicecoach.safety.rules import (
        QUESTIONS,
        Question,
        Screening,
        Verdict,
    )
    from voicecoach.speech import Engine, VoiceSettings
    from voicecoach.storage.cache import ClipCache


__all__ = [
    # Loaded on first use (see _LAZY).
    "DEFAULT_EQUIPMENT",
    "QUESTIONS",
    "STDOUT",
    "Onset",
    "OutputPlan",
    "Player",
    "Purpose",
    "Request",
    "Session",
    "Settings",
    "counted",
    "export",
    "export_key",
    "fill",
    "format_clock",
    "format_duration",
    "fresh_tracks",
    "is_fresh",
    "load",
    "option_range",
    "plan_json",
    "prepare",
    "record",
    "remember_export",
    "replay_up_to_date",
    "start_memo",
    "written_tracks",
]

#: What front ends may use from the stages above the core, loaded on first use (miniaudio is
#: only for live play).
_LAZY = {"Player": "voicecoach.live.player", "Onset": "voicecoach.live.player",
         "STDOUT": "voicecoach.export.outputs", "OutputPlan": "voicecoach.export.outputs",
         "Request": "voicecoach.plan.compose", "DEFAULT_EQUIPMENT": "voicecoach.plan.compose",
         "QUESTIONS": "voicecoach.safety.rules"}


def option_range(option: str) -> tuple[float, float] | None:
    """The values a number option takes, from the limits the core checks it against."""
    from voicecoach.audio.options import DUCK_RANGE, LOUDNESS_RANGE
    from voicecoach.export.tracks import MPEG2_BITRATES as BITRATES
    from voicecoach.plan.compose import MAX_MINUTES, MIN_MINUTES
    from voicecoach.speech.base import MAX_RATE, MAX_VOLUME, MIN_RATE, MIN_VOLUME

    return {"--volume": (MIN_VOLUME, MAX_VOLUME), "--rate": (MIN_RATE, MAX_RATE),
            "--duck": DUCK_RANGE, "--loudness": LOUDNESS_RANGE,
            "--minutes": (MIN_MINUTES, MAX_MINUTES),
            "--bitrate": (min(BITRATES), max(BITRATES))}.get(option)


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'voicecoach.coach' has no attribute {name!r}")


class Purpose(StrEnum):
    """What a session is prepared for: it sets the lead-in and whether limits apply."""

    EXPORT = "export"
    PLAY = "play"
    SERVE = "serve"

    @property
    def lead_in(self) -> float:
        """Export waits for Bluetooth speakers to wake; live play starts at once; a phone served
        over the LAN gets a short pause to pick itself up."""
        from voicecoach.plan import lead_in

        return {Purpose.EXPORT: lead_in.EXPORT_LEAD_IN, Purpose.PLAY: lead_in.PLAY_LEAD_IN,
                Purpose.SERVE: lead_in.SERVE_LEAD_IN}[self]

    @property
    def live(self) -> bool:
        """Frequency limits are for doing, not for making a track to follow another day."""
        return self is not Purpose.EXPORT


def _env_flag(name: str) -> bool:
    import os

    return os.environ.get(name, "1").strip() != "0"


@dataclass(frozen=True)
class Settings:
    """Every choice a front end offers, with its one default."""

    engine: str | None = None
    voice: str | None = None
    rate: int = DEFAULT_RATE
    volume: float = 1.0
    cache: bool = True
    pace: float = 1.0
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    #: "full" or "short"; None: full until the routine is familiar.
    detail: str | None = None
    #: Seconds of silence before the first word; None: the purpose's (see Purpose.lead_in).
    lead_in: float | None = None
    #: None keeps the routine's own setting.
    chimes: bool | None = None
    ticks: bool | None = None
    music: Path | None = None
    duck: float = DEFAULT_DUCK
    loudness: float = DEFAULT_LOUDNESS
    bitrate: int = DEFAULT_BITRATE
    transcript: bool = False
    #: Build tracks from each cue's cached MP3 frames; False encodes the whole track (as a track
    #: with music always is). Both sound the same (tests/test_stitch.py). $VOICECOACH_STITCH=0
    #: makes False the default, to compare the two (scripts/bench_export.py --encoder).
    stitch: bool = dataclasses.field(default_factory=lambda: _env_flag("VOICECOACH_STITCH"))

    def plan_options(self, purpose: Purpose = Purpose.EXPORT) -> PlanOptions:
        from voicecoach.plan.timeline import PlanOptions

        lead_in = purpose.lead_in if self.lead_in is None else self.lead_in
        return PlanOptions(pace=self.pace, only=self.only, skip=self.skip,
                           detail=self.detail or "full", lead_in=lead_in)

    def sound(self) -> SoundOptions:
        """The sound options, checked (a missing music file is a mistake before any speech)."""

        if self.music is not None:
            check_input(self.music, "music file", fix="give the path of an audio file")
        return SoundOptions(loudness=self.loudness, chimes=self.chimes,
                            countdown_ticks=self.ticks, music=self.music, duck=self.duck)

    def export_options(self) -> ExportOptions:
        from voicecoach.export.tracks import ExportOptions

        return ExportOptions(bitrate=self.bitrate, transcript=self.transcript, volume=self.volume,
                             stitch=self.stitch)


class Speech(NamedTuple):
    """The engine, the voice settings and the clip cache that a Settings speaks with."""

    engine: Engine
    voice: VoiceSettings
    cache: ClipCache


def speech(settings: Settings) -> Speech:
    from voicecoach.speech import VoiceSettings, get_engine
    from voicecoach.storage.cache import ClipCache

    return Speech(get_engine(settings.engine),
                  VoiceSettings(voice=settings.voice, rate=settings.rate, volume=settings.volume),
                  ClipCache(enabled=settings.cache))


@dataclass(frozen=True)
class Notice:
    """Something a front end should tell the user: `code` says what it is, `text` how to say it."""

    code: str
    text: str
    exercise: str | None = None


Notify = Callable[[Notice], None]
#: Asks the screening questions; returns the answers, or None when nobody can answer now.
ScreeningPrompt = Callable[[Sequence["Question"]], "dict[str, bool] | None"]


_T = TypeVar("_T")


class Progress(Protocol):
    def stage(self, label: str, total: float) -> None: ...
    def set(self, done: float) -> None: ...
    def advance(self, amount: float) -> None: ...


def _ignore(_: Notice) -> None:
    pass


# -- routines ------------------------------------------------------------------------------------

TODAY = "today"


def resolve(spec: str, settings: Settings | None = None, *,
            screening_prompt: ScreeningPrompt | None = None, notify: Notify = _ignore) -> Path:
    """A routine argument's file: a bundled id, a path, or `today` (made from the library with
    the settings of the last `make`, timed with the voice the session will speak in). Today's
    session is made once the screening is known: unanswered questions are asked first, so the
    answers shape it instead of cutting it afterwards."""
    from voicecoach.routine import library

    if spec == TODAY and not Path(spec).exists():
        from voicecoach.coach import today

        screened(screening_prompt, notify)
        _, path = today.today_session(today.speech_measure(*speech(settings or Settings())))
        return path
    return library.resolve(spec)


def load(
    source: str | Path, settings: Settings | None = None, *, notify: Notify = _ignore,
    screening_prompt: ScreeningPrompt | None = None,
) -> Routine:
    """A routine by id, path or `today`; what its file probably did not mean is told as
    `lint` notices (`voicecoach validate --strict` makes them mistakes)."""
    from voicecoach.routine.lint import lint
    from voicecoach.routine.loader import load_routine

    path = source if isinstance(source, Path) else resolve(
        source, settings, screening_prompt=screening_prompt, notify=notify)
    routine = load_routine(path)
    for warning in lint(path, routine):
        notify(Notice("lint", warning.line()))
    return routine


def check(path: Path) -> list:  # type: ignore[type-arg]
    """`validate`: load and plan a routine file (RoutineErrors, UserError on mistakes) and
    return its warnings."""
    from voicecoach.plan.timeline import build_plan
    from voicecoach.routine.lint import lint
    from voicecoach.routine.loader import load_routine

    routine = load_routine(path)
    build_plan(routine)
    return lint(path, routine)


def starting_at(routine: Routine, settings: Settings, name: str) -> Settings:
    """`--from NAME`: the settings that play the chosen exercises from NAME on."""
    from voicecoach.plan.timeline import from_onwards

    return dataclasses.replace(settings, skip=(),
                               only=from_onwards(routine, name, settings.only, settings.skip))


def bundled() -> list[Path]:
    """The files of the bundled routines, in id order."""
    from voicecoach.routine import library

    return list(library.bundled().values())


def voices(engine: str | None = None, language: str | None = None) -> list:  # type: ignore[type-arg]
    """The voices an engine offers, optionally only those for a language such as en or en-gb."""
    from voicecoach.speech import get_engine

    found = get_engine(engine).voices()
    if language:
        want = language.lower().replace("_", "-")
        found = [v for v in found if any(lang.lower().startswith(want) for lang in v.languages)]
    return found


def check_outputs(reads: Sequence[tuple[str, Path | None]],
                  writes: Sequence[tuple[str, Path, str | None]]) -> None:
    """Files a command reads and writes (each with the one suffix it may have, or None), checked
    against each other before any work starts."""
    from voicecoach.export.outputs import OutputPlan

    outputs = OutputPlan()
    for what, path in reads:
        outputs.read(what, path)
    for what, path, suffix in writes:
        outputs.write(what, path, suffix=suffix)
    outputs.check()


# -- safety --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """What safety and limits decide a session holds, and the plan options that say it."""

    routine: Routine
    purpose: Purpose
    options: PlanOptions
    verdict: Verdict


def decide(
    routine: Routine,
    settings: Settings,
    purpose: Purpose = Purpose.EXPORT,
    *,
    screening_prompt: ScreeningPrompt | None = None,
    notify: Notify = _ignore,
    force: bool = False,
    i_understand: bool = False,
) -> Decision:
    """Screening, frequency limits (live purposes only) and familiarity decide what the session
    holds. Raises UserError when nothing of it may be done."""
    from voicecoach.plan.timeline import select_exercises
    from voicecoach.safety.history import History
    from voicecoach.safety.rules import LIMIT_CODES, assess

    options = settings.plan_options(purpose)
    screening = screened(screening_prompt, notify)
    if not screening.answered and routine.manipulation:
        notify(Notice("screening-unanswered", f"note: {routine.id} has self-manipulation "
                      "moves and you have not answered the safety questions yet "
                      "(`voicecoach safety`)"))
    verdict = assess(
        routine, history=History(), screening=screening, apply_limits=purpose.live, force=force,
        i_understand=i_understand, detail=settings.detail,
        chosen=select_exercises(routine, options.only, options.skip),
    )
    for note in verdict.notes:
        notify(Notice("safety", f"note: {note}"))
    for left in verdict.excluded:
        if left.code in LIMIT_CODES:
            notify(Notice(f"limit-{left.code}", f"note: {left.exercise} is left out: "
                          f"{left.reason} (add --force to include it)", left.exercise))
    options = dataclasses.replace(options, left_out=verdict.left_out, detail=verdict.detail)
    return Decision(routine, purpose, options, verdict)


def screened(screening_prompt: ScreeningPrompt | None, notify: Notify = _ignore) -> Screening:
    """The stored screening answers; when there are none, the questions asked now (if someone
    can answer) and the answers kept."""
    from voicecoach.safety.rules import QUESTIONS, load_screening, save_screening

    screening = load_screening()
    if screening.answered or screening_prompt is None:
        return screening
    answers = screening_prompt(QUESTIONS)
    if answers is None:
        return screening
    screening = save_screening(answers)
    if screening.rules_out_manipulation:
        notify(Notice("screening-rules-out", "Self-manipulation (cracking) moves will be "
                      "left out; see a doctor or physiotherapist first. Change answers "
                      "with `voicecoach safety`."))
    return screening


# -- prepare ---------------------------------------------------------------------------------------

@dataclass
class Session:
    """A decided session made ready: its plan, its audio (what export encodes and live play
    sends to the speakers), and what safety decided. Close it when done."""

    decision: Decision
    audio: Prepared | LazyPrepared
    started: float

    @property
    def routine(self) -> Routine:
        return self.decision.routine

    @property
    def plan(self) -> Plan:
        return self.audio.plan

    @property
    def verdict(self) -> Verdict:
        return self.decision.verdict

    def stream(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return self.audio.stream(start, end)

    def close(self) -> None:
        self.audio.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def prepare(
    routine: Routine,
    settings: Settings | None = None,
    purpose: Purpose = Purpose.EXPORT,
    *,
    screening_prompt: ScreeningPrompt | None = None,
    notify: Notify = _ignore,
    progress: Progress | None = None,
    force: bool = False,
    i_understand: bool = False,
) -> Session:
    """Decide what the session holds (safety, limits), then speak, level and mix it."""
    settings = settings or Settings()
    decision = decide(routine, settings, purpose, screening_prompt=screening_prompt,
                      notify=notify, force=force, i_understand=i_understand)
    return render(decision, settings, progress=progress)


def render(decision: Decision, settings: Settings, *, progress: Progress | None = None,
           estimate: Plan | None = None, lazy: bool | Literal["checked"] = False) -> Session:
    """Speak (or fetch from the cache) every cue of a decided session and make its sound.
    `estimate` (a plan from text lengths, if one was made already) sizes the progress bar.
    `lazy`: read, level and mix the clips only as they are asked for (a stitched export of
    cached pieces asks for none; voicecoach.audio.prepare.LazyPrepared)."""
    from functools import partial

    from voicecoach.audio.prepare import prepare as prepare_audio

    started = time.time()
    if progress is not None:
        # Made only when a bar is to be sized, and once: an export's job has one already.
        estimate = estimate or estimate_plan(decision, settings)
    audio = _with_progress(partial(prepare_audio, lazy=lazy), decision.routine,
                           decision.options, settings, progress, settings.sound(), estimate)
    return Session(decision, audio, started)


def estimate_plan(decision: Decision, settings: Settings) -> Plan:
    """The plan with speech lengths estimated from text, before any speech is made: it names an
    export's outputs, sizes the progress bar and is `show --estimate`. The one place a plan is
    estimated, so all three agree (chimes included: they move breaths)."""
    from voicecoach.plan.timeline import build_plan

    sound = SoundOptions(chimes=settings.chimes, countdown_ticks=settings.ticks)
    return build_plan(decision.routine, sound.plan_options(decision.options))


def timed_plan(
    decision: Decision, settings: Settings, *, estimate: bool = False,
    progress: Progress | None = None,
) -> Plan:
    """The plan with its times from real speech (or, estimated, from text length), without
    making the audio: what `show` prints and `list` sums."""
    if estimate:
        from voicecoach.audio.prepare import check_speech

        check_speech(*speech(settings)[:2])
        return estimate_plan(decision, settings)
    from voicecoach.audio.prepare import timed_plan as time_plan

    sound = SoundOptions(chimes=settings.chimes, countdown_ticks=settings.ticks)
    return _with_progress(time_plan, decision.routine, decision.options, settings, progress, sound,
                          estimate_plan(decision, settings) if progress is not None else None)


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


def catalogue(settings: Settings | None = None, *, estimate: bool = False,
              progress: Progress | None = None) -> list[Summary]:
    """A summary of every bundled routine, timed as exported with default options (estimated
    from text length, or from the real speech)."""
    from voicecoach.audio.prepare import timed_plan as time_plan
    from voicecoach.plan.timeline import PlanOptions, build_plan
    from voicecoach.routine import library
    from voicecoach.routine.loader import load_routine

    settings = settings or Settings()
    summaries = []
    for path in library.bundled().values():
        routine = load_routine(path)
        plan = (build_plan(routine, PlanOptions()) if estimate else
                _with_progress(time_plan, routine, PlanOptions(), settings, progress, None))
        summaries.append(summarise(routine, plan))
    return summaries


def _with_progress(make: Callable[..., _T], routine: Routine, options: PlanOptions,
                   settings: Settings, progress: Progress | None, sound: SoundOptions | None,
                   estimate: Plan | None = None) -> _T:
    from voicecoach.plan.timeline import build_plan

    engine, voice, cache = speech(settings)
    if progress is not None:
        # The estimated plan names the cues to speak: enough to size the bar.
        estimate = estimate or build_plan(routine, options)
        progress.stage("Speaking cues", len(estimate.spoken_texts()))
    return make(routine, options, engine=engine, settings=voice, cache=cache,
                on_clip=progress.set if progress is not None else None, sound=sound)


# -- history -------------------------------------------------------------------------------------

def record(session: Session, result: SessionResult | None = None, *,
           now: float | None = None) -> SessionRecord:
    """Write a session to history: an export as made whole, a live one as far as it went
    (what was done counts towards the limits even when it stopped or failed)."""
    from voicecoach.safety.history import History, SessionRecord

    verdict, routine = session.verdict, session.routine
    ended = time.time() if now is None else now
    if result is None:
        entry = SessionRecord(routine=routine.id, title=routine.title, kind="export",
                              started=session.started, ended=ended, completed=True,
                              position=session.plan.duration, detail=verdict.detail)
    else:
        entry = SessionRecord(
            routine=routine.id, title=routine.title, kind="live", started=session.started,
            ended=ended, completed=result.completed, position=result.position,
            exercises_done=result.exercises_completed, stopped_at=result.stopped_at,
            forced=bool(verdict.forced), detail=verdict.detail,
            exercises_started=result.exercises_started)
    History().record(entry)
    return entry


def record_remote(routine: Routine, *, started: float, position: float, completed: bool,
                  exercises_done: tuple[str, ...], stopped_at: str | None, detail: str,
                  kind: str = "phone", exercises_started: tuple[str, ...] = ()
                  ) -> SessionRecord:
    """Write a session played elsewhere (a phone, through `serve`) to history; the history
    counts it by the same rule as a live session."""
    from voicecoach.safety.history import History, SessionRecord

    entry = SessionRecord(routine=routine.id, title=routine.title, kind=kind, started=started,
                          ended=time.time(), completed=completed, position=position,
                          exercises_done=exercises_done, stopped_at=stopped_at, detail=detail,
                          exercises_started=exercises_started)
    History().record(entry)
    return entry


def make_track(decision: Decision, settings: Settings, dest: Path) -> tuple[Plan, Track]:
    """Speak, mix and write one track for a decided session to `dest` (atomically), keyed as
    export keys it; nothing is recorded (whoever plays it reports the session)."""
    from voicecoach.export.tracks import export_track

    with render(decision, settings) as session:
        track = export_track(decision.routine, session.audio, dest, settings.export_options(),
                             None, export_key(decision, settings))
        return session.plan, track


def data_dir() -> Path:
    """The folder of the user's history and answers (VOICECOACH_DATA_DIR overrides it)."""
    from voicecoach.safety.history import data_dir as folder

    return folder()


def routine_id(path: Path) -> str:
    """The id a routine file is known by (its file name's slug)."""
    from voicecoach.routine.loader import id_from_path

    return id_from_path(path)


def save_screening(answers: dict[str, bool]) -> Screening:
    """Store screening answers where `voicecoach safety` does."""
    from voicecoach.safety.rules import save_screening as save

    return save(answers)


def history(limit: int = 20) -> list:  # type: ignore[type-arg]
    """The most recent sessions and exports, newest first."""
    from voicecoach.safety.history import History

    return History().sessions(limit=limit)


# -- export --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportJob:
    """One track (or split folder) to write, decided and named before any speech is made."""

    decision: Decision
    dest: Path
    #: The plan from text lengths that named the outputs (it also sizes the progress bar).
    estimate: Plan
    #: The key of what this job writes (voicecoach.export.freshness), and each MP3 it writes
    #: with the companions (transcript, playlist) that MP3 vouches for.
    key: str = ""
    files: tuple[tuple[Path, tuple[Path, ...]], ...] = ()
    split: bool = False

    def key_of(self, track: Path) -> str:
        """The key `track` carries: a --split part's names its own file too, so that one part
        of a set never passes for another (voicecoach.export.freshness.part_key)."""
        from voicecoach.export.freshness import part_key

        return part_key(self.key, track.name) if self.split else self.key


def export_key(decision: Decision, settings: Settings, *, split: bool = False) -> str:
    """The key of a track from its inputs alone (no speech, no timed plan): the routine's
    content, the plan options after safety, limits and familiarity (what is spoken today), the
    sound, the voice as the engine resolves it and the engine's version, the encoder options.
    Left out on purpose: the year tag (a track made last year is still the same track), the
    clip cache setting, --transcript (the .lrc is vouched for by digest, not by key)."""
    from voicecoach import __version__
    from voicecoach.export import freshness

    engine, _, _ = speech(settings)
    sound = settings.sound()
    return freshness.make_key({
        "voicecoach": __version__,
        "routine": decision.routine.model_dump(mode="json"),
        "plan": dataclasses.asdict(sound.plan_options(decision.options)),
        "forced": decision.verdict.forced,
        "sound": {"loudness": sound.loudness, "duck": sound.duck,
                  "music": None if sound.music is None else freshness.file_digest(sound.music)},
        "speech": {"engine": engine.name, "version": engine.version,
                   "voice": engine.resolve_voice(settings.voice).id, "rate": settings.rate,
                   "volume": settings.volume},
        "bitrate": settings.bitrate,
        "stitch": settings.stitch and sound.music is None,
        "split": split,
    })


def is_fresh(job: ExportJob) -> bool:
    """True when every file of `job` is already at its destination, as this job would write it."""
    from voicecoach.export.freshness import is_fresh as fresh

    return bool(job.key and job.files) and all(
        fresh(track, job.key_of(track), companions) for track, companions in job.files)


def fresh_tracks(job: ExportJob, settings: Settings, *, split: bool = False) -> list[Track] | None:
    """The tracks at `job`'s destination, described as export() describes what it makes (read
    back from the files and their tags), when they are what `job` would write; None when the
    job must be made."""
    if not is_fresh(job):
        return None
    from voicecoach.export.tracks import read_back

    try:
        return read_back(job.decision.routine, job.estimate, job.dest,
                         settings.export_options(), split=split)
    except (OSError, ValueError):
        return None  # changed since it was checked: made again


class MemoStart(NamedTuple):
    """What an export command saw of its inputs as it began (see remember_export)."""

    started_ns: int
    spec: str | None
    inputs: dict[str, str | None]


def replay_up_to_date(argv: Sequence[str]) -> tuple[str, str] | None:
    """What this export command printed (stdout, stderr) last time it found or made its files,
    when nothing it depends on has changed since (voicecoach.coach.memo); None: run it."""
    from voicecoach.coach import memo

    return memo.replay(argv)


def start_memo(spec: str | None, settings: Settings) -> MemoStart:
    """Read the export's inputs before anything else is: a memo pairs a key only with inputs
    that were the same before and after the key was made."""
    return MemoStart(time.time_ns(), spec, _export_inputs(spec, settings))


def _export_inputs(spec: str | None, settings: Settings) -> dict[str, str | None]:
    from voicecoach.coach import memo
    from voicecoach.routine.library import bundled_dir
    from voicecoach.safety.rules import screening_path

    folder = bundled_dir()
    paths = [folder, *(sorted(folder.iterdir()) if folder.is_dir() else []), screening_path()]
    if spec is not None:
        paths.append(Path(spec).expanduser())
    if settings.music is not None:
        paths.append(settings.music)
    return memo.contents(paths)


def written_tracks(job: ExportJob, settings: Settings, *,
                   split: bool = False) -> list[Track] | None:
    """The tracks `job` has just written, described from the files as an up-to-date export
    describes them (no digest: they were sealed as they were written); None when they cannot
    be read back (changed already: nothing is remembered)."""
    from voicecoach.export.tracks import read_back

    try:
        return read_back(job.decision.routine, job.estimate, job.dest,
                         settings.export_options(), split=split)
    except (OSError, ValueError):
        return None


def remember_export(argv: Sequence[str], start: MemoStart, jobs: Sequence[ExportJob],
                    settings: Settings, said: str, told: str = "") -> None:
    """Remember that `argv` finds `jobs` up to date and prints `said` (and the notices `told`
    on stderr), when its inputs did not
    change while it ran and its engine is espeak-ng (whose files can be stat'ed)."""
    import contextlib

    with contextlib.suppress(OSError, ValueError):  # without a memo the next run is slower
        _remember_export(argv, start, jobs, settings, said, told)


def _remember_export(argv: Sequence[str], start: MemoStart, jobs: Sequence[ExportJob],
                     settings: Settings, said: str, told: str) -> None:
    from voicecoach.coach import memo
    from voicecoach.speech.espeak import espeak_data_path, espeak_library_path

    engine, _, _ = speech(settings)
    library = Path(espeak_library_path())
    if engine.name != "espeak" or not library.is_absolute() or not jobs:
        return
    if _export_inputs(start.spec, settings) != start.inputs:
        return
    data = espeak_data_path()
    engine_files = [library, *([data, data / "voices", data / "lang", data / "phontab"]
                               if data is not None else [])]
    memo.remember(argv, started_ns=start.started_ns, inputs=start.inputs,
                  sessions={job.decision.routine.id: job.decision.verdict.sessions_before
                            for job in jobs},
                  engine=engine_files,
                  key=[job.key_of(track) for job in jobs for track, _ in job.files],
                  files=[f for job in jobs for f in job.files], said=said, told=told)


def default_output(routine_id: str, *, folder: Path | None = None, split: bool = False) -> Path:
    """Where an export goes when no -o is given: ID.mp3 (with --split: a folder ID)."""
    if split:
        return folder / routine_id if folder else Path(routine_id)
    return (folder or Path(".")) / f"{routine_id}.mp3"


def plan_exports(
    sources: Sequence[tuple[Path, Path | None]],
    settings: Settings,
    *,
    split: bool = False,
    folder: Path | None = None,
    skip_refused: bool = False,
    screening_prompt: ScreeningPrompt | None = None,
    notify: Notify = _ignore,
    i_understand: bool = False,
) -> list[ExportJob]:
    """Every file of every export named and checked against the inputs and each other before
    any speech is made: one mistake stops it all. With skip_refused (`--all`), a routine that
    safety refuses whole is told as a `skipped` notice and left out."""
    from voicecoach.export.outputs import STDOUT, OutputPlan
    from voicecoach.export.tracks import expected_files, plan_outputs

    settings.sound()  # a missing music file is a mistake before anything is planned
    export_options = settings.export_options()
    outputs = OutputPlan()
    outputs.read("music file", settings.music)
    jobs = []
    for source, dest in sources:
        routine = load(source, settings, notify=notify)
        outputs.read("routine file", source)
        try:
            decision = decide(routine, settings, Purpose.EXPORT, screening_prompt=screening_prompt,
                              notify=notify, i_understand=i_understand)
        except UserError as exc:
            if not skip_refused:
                raise
            notify(Notice("skipped", f"note: skipped {routine.id}: {exc.line()}"))
            continue
        dest = dest or default_output(routine.id, folder=folder, split=split)
        estimate = estimate_plan(decision, settings)
        plan_outputs(outputs, routine, estimate, dest, export_options, split=split)
        files = () if dest == STDOUT else tuple(
            expected_files(routine, estimate, dest, export_options, split=split))
        jobs.append(ExportJob(decision, dest, estimate,
                              export_key(decision, settings, split=split), files, split))
    outputs.check()
    return jobs


def export(
    job: ExportJob, settings: Settings, *, split: bool = False, stream: BinaryIO | None = None,
    progress: Progress | None = None,
) -> list[Track]:
    """Make one job's audio, write it (a track, split tracks, or to `stream`) and record it.
    It is made whether or not the destination is fresh: ask is_fresh(job) first."""
    from voicecoach.audio.prepare import StaleHeaders

    # Lazily (from the cache's headers) only where a retry cannot repeat output: not to a
    # stream, whose bytes are gone once written.
    lazy = (settings.export_options().stitch and not split and stream is None
            and settings.music is None)
    try:
        return _export(job, settings, split, stream, progress, lazy=lazy)
    except StaleHeaders:
        # A damaged cache entry: read, check (a bad entry is deleted and spoken again) and time
        # every clip from what it holds. Nothing was kept: the track went to a temporary.
        return _export(job, settings, split, stream, progress, lazy="checked")


def _export(job: ExportJob, settings: Settings, split: bool, stream: BinaryIO | None,
            progress: Progress | None, *, lazy: bool | Literal["checked"]) -> list[Track]:
    from voicecoach.export.tracks import export_split, export_to_stream, export_track

    options = settings.export_options()
    routine = job.decision.routine
    session = render(job.decision, settings, progress=progress, estimate=job.estimate, lazy=lazy)
    advance = progress.advance if progress is not None else None
    with session:
        if progress is not None:
            progress.stage(f"Encoding {routine.id}", session.plan.total)
        if split:
            tracks = export_split(routine, session.audio, job.dest, options, advance, job.key)
        elif stream is not None:
            tracks = [export_to_stream(routine, session.audio, stream, options, advance)]
        else:
            tracks = [export_track(routine, session.audio, job.dest, options, advance, job.key)]
    record(session)
    return tracks


# -- made sessions ---------------------------------------------------------------------------------

def make(request: Request, dest: Path | None = None,
         settings: Settings | None = None, *, force: bool = False) -> tuple[Composition, Path]:
    """Compose a session from the library for `request`, timed with the settings' voice; write
    it (never over a file `make` did not write) and keep the request for `today`."""
    from voicecoach.coach import today

    if dest is not None:  # a path mistake is found before any speech, as export finds it
        if str(dest) == "-":
            raise UserError("`make` writes a routine file, not to standard output (-o -)",
                            fix="give -o FILE.yaml, e.g. -o session.yaml, or see today's "
                            "session with `voicecoach show today`")
        if dest.suffix.lower() not in (".yaml", ".yml"):
            raise UserError(f"{dest}: a made session is a routine file ending in .yaml",
                            fix=f"e.g. -o {dest.stem or 'session'}.yaml")
        check_outputs([], [("session file", dest, None)])
    made = today.make(request, today.speech_measure(*speech(settings or Settings())))
    dest = dest or today.default_output(request.day)
    today.write(made, dest, force=force)
    today.save_settings(request)
    return made, dest


def rate(exercise: str, verdict: str) -> str:
    """Thumb a library exercise up, down or clear; returns its name as the library spells it."""
    from voicecoach.coach import today

    return today.rate(exercise, verdict)


# -- screening and history report -----------------------------------------------------------------

def screening(answers: Sequence[str] | None = None, *,
              ask: ScreeningPrompt | None = None) -> Screening:
    """The stored screening answers, after merging `KEY=yes|no` pairs or asking anew."""
    from voicecoach.safety.rules import QUESTIONS, load_screening, parse_answers, save_screening

    current = load_screening()
    if answers:
        return save_screening({**(current.answers or {}), **parse_answers(answers)})
    if ask is not None:
        asked = ask(QUESTIONS)
        if asked is not None:
            return save_screening(asked)
    return current


def gentle_routines() -> list[str]:
    from voicecoach.safety.rules import gentle_routines as gentle

    return gentle()


@dataclass(frozen=True)
class Report:
    """What `history` shows: recent sessions, the streak, and each limit's next time."""

    sessions: list  # type: ignore[type-arg]
    streak: tuple[int, int]
    limits: list[dict[str, object]]


def report(limit: int = 20) -> Report:
    from voicecoach.safety.history import History, streaks
    from voicecoach.safety.rules import limits_overview

    store = History()
    return Report(store.sessions(limit=limit), streaks(store.active_days()),
                  limits_overview(store))


# -- data ----------------------------------------------------------------------------------------

def plan_json(plan: Plan) -> dict[str, object]:
    """The stable `--json` shape of a plan."""
    return {
        "routine": plan.routine_id,
        "title": plan.title,
        "duration": round(plan.duration, 3),
        "left_out": [{"exercise": name, "reason": reason} for name, reason in plan.left_out],
        "events": [
            {
                "start": round(plan.seconds(e.start), 3),
                "duration": round(plan.seconds(e.length), 3),
                "speech": round(plan.seconds(e.speech), 3),
                "kind": e.kind.value,
                "text": e.text,
                "exercise": e.exercise,
            }
            for e in plan.events
        ],
        "chimes": [
            {"start": round(plan.seconds(c.start), 3), "duration": round(plan.seconds(c.length), 3),
             "kind": c.kind.value}
            for c in plan.chimes
        ],
    }
