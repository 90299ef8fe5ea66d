"""Today's session: gather the library, safety and history, compose, write, and keep the
settings."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicecoach.errors import Fault, UserError
from voicecoach.plan import compose
from voicecoach.plan.compose import Composition, Entry, Facts, Refusal, Request
from voicecoach.plan.timeline import Measure
from voicecoach.routine.names import slug
from voicecoach.safety.history import History, data_dir
from voicecoach.storage import atomic

if TYPE_CHECKING:
    from voicecoach.safety.rules import Screening
    from voicecoach.speech import Engine, VoiceSettings
    from voicecoach.storage.cache import ClipCache

SETTINGS_FILE = "today.json"
SESSION_FILE = "today.yaml"
#: How far back history matters: the variety window, and the longest wait an article sets.
LOOKBACK_DAYS = compose.VARIETY_DAYS + 2
MADE_MARK = "Made by `voicecoach make`"


def library() -> list[Entry]:
    """Every bundled exercise once; the articles' own versions win over the first-use routine's."""
    from voicecoach.routine.library import DEFAULT_ROUTINE, bundled
    from voicecoach.routine.loader import load_routine

    found = bundled()
    order = sorted(found, key=lambda rid: (rid == DEFAULT_ROUTINE, rid))
    # Parsing is most of a small request's work, so the library is kept while the files say the
    # same: a long-lived process (`serve`) still sees a routine edited, added or removed.
    contents = tuple((rid, str(found[rid]), _content(found[rid])) for rid in order)
    kept = _library.get("last")
    if kept is None or kept[0] != contents:
        kept = (contents, compose.entries([load_routine(found[rid]) for rid in order]))
        _library["last"] = kept  # one assignment: a thread of `serve` sees the old or the new
    return list(kept[1])


#: The last library loaded, with the bytes of the files it was loaded from.
_library: dict[str, tuple[Any, list[Entry]]] = {}


def _content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None  # load_routine says what is wrong with it


def speech_measure(engine: Engine, settings: VoiceSettings, cache: ClipCache) -> Measure:
    """Clip lengths from rendered speech (the cache makes each text once), as `show` times them."""
    from voicecoach.audio.pcm import frames as length
    from voicecoach.speech import render_clips

    frames: dict[str, int] = {}

    def measure(text: str) -> int:
        if text not in frames:
            frames[text] = length(render_clips(engine, [text], settings, cache)[text])
        return frames[text]

    return measure


def planned_moment(day: _dt.date, now: float | None = None) -> float:
    """Today: now. Another day: its start, so yesterday evening's waits still count."""
    now = time.time() if now is None else now
    if _dt.datetime.fromtimestamp(now).date() == day:
        return now
    return _dt.datetime.combine(day, _dt.time()).timestamp()


def facts(day: _dt.date, history: History, screening: Screening, now: float | None = None) -> Facts:
    now = time.time() if now is None else now
    moment = planned_moment(day, now)
    since = _dt.datetime.combine(day, _dt.time()).timestamp() - LOOKBACK_DAYS * 86400
    return Facts(now=moment, present=moment == now,
                 rules_out_manipulation=screening.rules_out_manipulation,
                 done=tuple(history.done_since(since)), ratings=history.ratings())


def make(
    request: Request,
    measure: Measure,
    *,
    history: History | None = None,
    screening: Screening | None = None,
    now: float | None = None,
) -> Composition:
    """Compose the session for `request` from the bundled library and what history says."""
    from voicecoach.safety.rules import load_screening

    history = history or History()
    screening = screening or load_screening()
    return compose.compose(library(), request, facts(request.day, history, screening, now), measure)


def write(composition: Composition, dest: Path, *, force: bool = False) -> None:
    """Write atomically, with a last line holding the digest of the rest; never over a file
    that `make` did not write or that was changed since (it is someone's work), unless force."""
    if dest.exists() and not force:
        try:
            text = dest.read_bytes()[:MAX_MADE].decode("utf-8", errors="replace")
        except OSError as exc:
            raise UserError(f"{dest}: cannot read ({exc.strerror})") from None
        if MADE_MARK not in text[:2000]:
            raise UserError(f"{dest} exists and was not made by `voicecoach make`",
                            fix="choose another -o FILE, move that file away, or add --force")
        if not is_unchanged(text):
            raise UserError(f"{dest} was changed since `voicecoach make` wrote it",
                            fix="choose another -o FILE to keep your changes, or add --force "
                                "to replace it")
    atomic.write_text(dest, stamped(composition.text))


#: The last line of a made file: the digest of everything above it.
STAMP = "# voicecoach make sha256:"
#: A made file is far smaller; reading more would only be to refuse it.
MAX_MADE = 1_000_000


def stamped(text: str) -> str:
    return f"{text}{STAMP}{hashlib.sha256(text.encode('utf-8')).hexdigest()}\n"


def is_unchanged(text: str) -> bool:
    """True when `text` ends with the stamp of exactly the text above it."""
    body, _, last = text.rstrip("\n").rpartition("\n")
    return last.startswith(STAMP) and stamped(body + "\n") == text


def default_output(day: _dt.date) -> Path:
    return Path(f"session-{day.isoformat()}.yaml")


# -- stored settings ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """What `make` was last asked for, reused by `play/export/show today`."""

    minutes: float = 10
    focus: tuple[str, ...] = ()
    equipment: tuple[str, ...] = compose.DEFAULT_EQUIPMENT
    gentle: bool = False
    i_understand: bool = False

    def request(self, day: _dt.date) -> Request:
        return Request(self.minutes, day, self.focus, self.equipment, self.gentle,
                       self.i_understand)


def save_settings(request: Request, folder: Path | None = None) -> None:
    try:
        atomic.write_text((folder or data_dir()) / SETTINGS_FILE,
                          json.dumps(request.as_json(), indent=2) + "\n")
    except UserError as exc:
        raise Fault(exc.message) from None


def load_settings(folder: Path | None = None) -> Settings:
    """The last `make`'s settings; defaults when there are none (or they cannot be read)."""
    try:
        data = json.loads(((folder or data_dir()) / SETTINGS_FILE).read_text(encoding="utf-8"))
        return Settings(float(data["minutes"]), tuple(map(str, data["focus"])),
                        tuple(map(str, data["equipment"])), bool(data["gentle"]),
                        bool(data["i_understand"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Settings()


def today_session(measure: Measure, day: _dt.date | None = None) -> tuple[Composition, Path]:
    """Make today's session from the stored settings and write it where `today` finds it."""
    request = load_settings().request(day or _dt.date.today())
    made = make(request, measure)
    path = data_dir() / SESSION_FILE
    try:
        atomic.write_text(path, made.text)
    except UserError as exc:
        raise Fault(exc.message) from None
    return made, path


# -- taste -------------------------------------------------------------------------------------

RATINGS = {"up": 1, "down": -1, "clear": None}


def rate(name: str, verdict: str, history: History | None = None) -> str:
    """Store a rating for a library exercise; returns its name as the library spells it."""
    import difflib

    if verdict not in RATINGS:
        raise UserError(f"rate with up, down or clear, not {verdict!r}")
    known = {e.key: e.exercise.name for e in library()}
    key = slug(name)
    if key not in known:
        close = difflib.get_close_matches(name, list(known.values()), n=3, cutoff=0.5)
        fix = f"did you mean {', '.join(repr(c) for c in close)}?" if close else (
            "see the exercises with `voicecoach show ROUTINE`")
        raise Refusal(f"no exercise named {name!r} in the library", fix=fix)
    (history or History()).rate(key, RATINGS[verdict])
    return known[key]
