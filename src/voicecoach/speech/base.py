"""The speech engine interface and the helpers every engine shares."""

from __future__ import annotations

import array
import contextlib
import ctypes
import difflib
import os
import sys
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Protocol, runtime_checkable

from voicecoach.audio.pcm import SAMPLE_RATE, nbytes, whole
from voicecoach.errors import EngineError, UserError

MIN_RATE, MAX_RATE = 80, 450
MIN_VOLUME, MAX_VOLUME = 0.0, 2.0
DEFAULT_RATE = 165

# Speech edges: samples quieter than this (about -60 dBFS) count as silence, and at most
# KEEP_MS of silence is kept either side so clips are as long as their speech.
SILENCE_THRESHOLD = 32
KEEP_MS = 30


@dataclass(frozen=True)
class Voice:
    """One voice an engine offers; languages are lower-case BCP 47 tags ("en-gb")."""

    id: str
    name: str
    languages: tuple[str, ...]
    gender: str | None


@dataclass(frozen=True)
class VoiceSettings:
    """How to speak: voice (name, id or language code; None = engine default), wpm, volume."""

    voice: str | None = None
    rate: int = DEFAULT_RATE
    volume: float = 1.0


@runtime_checkable
class Engine(Protocol):
    """A text-to-speech engine that renders one cue at a time to PCM at SAMPLE_RATE."""

    name: str
    version: str

    def voices(self) -> list[Voice]: ...

    def resolve_voice(self, spec: str | None) -> Voice: ...

    def synthesize(self, text: str, settings: VoiceSettings) -> bytes: ...


def validate_settings(settings: VoiceSettings) -> None:
    """Raise UserError for a rate or volume outside what every engine can honour."""
    rate = settings.rate
    if isinstance(rate, bool) or not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
        raise UserError(
            f"speech rate {rate!r} is out of range",
            fix=f"use a whole number of words per minute from {MIN_RATE} to {MAX_RATE}",
        )
    volume: float | None = settings.volume
    if isinstance(volume, bool) or not isinstance(volume, int | float):
        volume = None
    if volume is None or not MIN_VOLUME <= volume <= MAX_VOLUME:
        raise UserError(
            f"volume {settings.volume!r} is out of range",
            fix=f"use a number from {MIN_VOLUME:g} (silent) to {MAX_VOLUME:g}; 1 is normal",
        )


def clean_text(text: str) -> str:
    """The text an engine should speak; UserError if nothing speakable is left."""
    # A NUL ends a C string early (espeak would drop the rest); other control
    # characters (escape sequences, form feeds) are not speech either.
    cleaned = "".join(
        " " if unicodedata.category(ch) == "Cc" and ch not in "\n\t" else ch for ch in text
    ).strip()
    if not cleaned:
        raise UserError("a cue has no text to speak", fix="give every cue some words")
    return cleaned


def trim_silence(pcm: bytes, *, keep_ms: int = KEEP_MS) -> bytes:
    """Cut leading and trailing silence down to at most keep_ms each side.

    An all-silent clip (volume 0) is returned whole: its length is still the time
    the speech takes.
    """
    samples = array.array("h")
    samples.frombytes(whole(pcm))
    if sys.byteorder == "big":
        samples.byteswap()
    first = _first_loud(samples)
    if first is None:
        return pcm
    last = _last_loud(samples)
    keep = SAMPLE_RATE * keep_ms // 1000
    start, end = max(0, first - keep), min(len(samples), last + 1 + keep)
    return pcm[nbytes(start) : nbytes(end)]


def _first_loud(samples: array.array[int]) -> int | None:
    """Index of the first sample louder than the threshold, scanning in blocks.

    Blocks keep the scan in C (min/max of a slice); only the silent edges are read.
    """
    for begin in range(0, len(samples), 256):
        block = samples[begin : begin + 256]
        if max(block) > SILENCE_THRESHOLD or min(block) < -SILENCE_THRESHOLD:
            return begin + next(i for i, s in enumerate(block) if abs(s) > SILENCE_THRESHOLD)
    return None


def _last_loud(samples: array.array[int]) -> int:
    for end in range(len(samples), 0, -256):
        block = samples[max(0, end - 256) : end]
        if max(block) > SILENCE_THRESHOLD or min(block) < -SILENCE_THRESHOLD:
            loud = [i for i, s in enumerate(block) if abs(s) > SILENCE_THRESHOLD]
            return max(0, end - 256) + loud[-1]
    raise AssertionError("unreachable: a loud sample was found before")


def apply_gain(pcm: bytes, gain: float) -> bytes:
    """Scale PCM by gain with clipping (for drivers whose volume stops at 1.0)."""
    if gain == 1.0:
        return pcm
    samples = array.array("h")
    samples.frombytes(pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    scaled = array.array("h", (max(-32768, min(32767, round(s * gain))) for s in samples))
    if sys.byteorder == "big":
        scaled.byteswap()
    return scaled.tobytes()


# --- voice lookup -------------------------------------------------------------------------


def normalise_tag(tag: str) -> str:
    """Language tags compare as lower case with hyphens ("en_US" == "en-us")."""
    return tag.strip().lower().replace("_", "-")


def resolve_voice_spec(
    voices: Sequence[Voice],
    spec: str,
    *,
    language_rank: Callable[[Voice, str], int] | None = None,
) -> Voice:
    """Find a voice by id, then name, then language code; UserError with suggestions if none.

    language_rank orders the voices that speak a language (lower is better); by default
    a voice that lists the language earlier wins, then the engine's own order.
    """
    wanted = normalise_tag(spec)
    for field in ("id", "name"):
        for voice in voices:
            if normalise_tag(getattr(voice, field)) == wanted:
                return voice
    rank = language_rank or (lambda v, tag: v.languages.index(tag))
    speakers = [v for v in voices if wanted in v.languages]
    if speakers:
        return min(speakers, key=lambda v: rank(v, wanted))
    # "en" should find an "en-us"-only voice (macOS, Windows list regional tags only).
    regional = [v for v in voices if any(lang.startswith(wanted + "-") for lang in v.languages)]
    if regional:
        return regional[0]
    raise unknown_voice(voices, spec)


def unknown_voice(voices: Sequence[Voice], spec: str) -> UserError:
    """The error for a voice nobody offers, naming the closest ones that exist."""
    names = {v.id for v in voices} | {v.name for v in voices}
    candidates = sorted(names | {lang for v in voices for lang in v.languages})
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(spec.lower(), list(lowered), n=3, cutoff=0.6)
    fix = "run `voicecoach voices` to list the voices"
    if close:
        fix += "; did you mean " + " or ".join(f"'{lowered[c]}'" for c in close) + "?"
    return UserError(f"unknown voice '{spec}'", fix=fix)


# --- keeping library output off the terminal ------------------------------------------------

_quiet_lock = threading.RLock()
_quiet_sinks: list[IO[bytes]] = []  # the active sink, while a quiet_output is open


@contextlib.contextmanager
def quiet_output() -> Iterator[IO[bytes]]:
    """Send everything written to fds 1 and 2 (C libraries, threads, print) to a temp file.

    Yields that file so a caller can put what a library said into an error message.
    Process-wide by nature, so serialised by a lock; nesting in one thread reuses the sink.
    """
    with _quiet_lock:
        if _quiet_sinks:
            yield _quiet_sinks[0]
            return
        with tempfile.TemporaryFile() as sink, _redirected(sink):
            _quiet_sinks.append(sink)
            try:
                yield sink
            finally:
                _quiet_sinks.clear()


@contextlib.contextmanager
def _redirected(sink: IO[bytes]) -> Iterator[None]:
    # Python-level streams first: their buffers go out to the real terminal before
    # the swap, and whatever a library's thread prints during the call lands in sink.
    _flush_std()
    saved: list[tuple[int, int]] = []
    for fd in (1, 2):
        with contextlib.suppress(OSError):  # fd closed (daemon): nothing to protect
            saved.append((fd, os.dup(fd)))
            os.dup2(sink.fileno(), fd)
    # Line-buffered, so what a library prints can be read back before the block ends.
    text_sink = open(  # noqa: SIM115
        os.dup(sink.fileno()), "w", buffering=1, encoding="utf-8", errors="replace"
    )
    streams = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = text_sink
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams
        text_sink.close()
        _flush_std()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        sink.seek(0)


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # None under pythonw, or already closed
            stream.flush()
    if _libc is not None:
        # C stdio buffers stdout when it is not a terminal: a library's printf must
        # leave its buffer before fd 1 is pointed back at the user's terminal.
        _libc.fflush(None)


def _load_libc() -> ctypes.CDLL | None:
    if sys.platform == "win32":
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.fflush.argtypes = (ctypes.c_void_p,)
    except (OSError, AttributeError):
        return None
    return libc


_libc = _load_libc()


def said(sink: IO[bytes], *, ignore: str | None = None) -> str:
    """The last non-empty line a library wrote into a quiet_output sink.

    Lines starting with ignore (a library's chatter, not a complaint) are skipped.
    """
    sink.seek(0)
    lines = [line.strip() for line in sink.read().decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line and not (ignore and line.startswith(ignore))]
    return lines[-1] if lines else ""


# --- one user of libespeak-ng per process ----------------------------------------------------

_espeak_owner: str | None = None
_owner_lock = threading.Lock()


def claim_libespeak(owner: str) -> None:
    """Reserve the process-global libespeak-ng for one engine.

    libespeak-ng has one synth callback and one set of voice parameters per process:
    two engines on it would take each other's audio. EngineError if another has it.
    """
    global _espeak_owner
    with _owner_lock:
        if _espeak_owner not in (None, owner):
            raise EngineError(
                f"the {_espeak_owner!r} engine already uses libespeak-ng in this process, "
                f"so the {owner!r} engine cannot",
                fix="use one espeak-based engine per process",
            )
        _espeak_owner = owner
