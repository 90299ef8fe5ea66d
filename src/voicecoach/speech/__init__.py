"""Speech engines behind one interface, and the rendering of cues to clips."""

from __future__ import annotations

import sys
import threading

from voicecoach.errors import EngineError, UserError
from voicecoach.speech.base import Engine, Voice, VoiceSettings
from voicecoach.speech.render import render_clips

__all__ = [
    "Engine",
    "Voice",
    "VoiceSettings",
    "default_engine_name",
    "engine_names",
    "get_engine",
    "render_clips",
]

_ENGINES = ("espeak", "pyttsx3")
_instances: dict[str, Engine] = {}
_lock = threading.Lock()


def engine_names() -> list[str]:
    """The names get_engine accepts."""
    return list(_ENGINES)


def default_engine_name() -> str:
    """espeak on Linux (same voice everywhere, fastest); the system's voices elsewhere."""
    return "espeak" if sys.platform.startswith("linux") else "pyttsx3"


def get_engine(name: str | None = None) -> Engine:
    """The process's engine of that name (None: the platform default), started on first use.

    Only one of the espeak-based engines can be used per process (EngineError).
    """
    if name is not None and name not in _ENGINES:
        raise UserError(
            f"unknown speech engine '{name}'", fix=f"choose one of: {', '.join(_ENGINES)}"
        )
    with _lock:
        wanted = name or default_engine_name()
        if wanted not in _instances:
            _instances[wanted] = _start(wanted, fallback=name is None)
        return _instances[wanted]


def _start(name: str, *, fallback: bool) -> Engine:
    if name == "espeak":
        from voicecoach.speech.espeak import EspeakEngine

        return EspeakEngine()
    from voicecoach.speech.pyttsx3_engine import Pyttsx3Engine

    try:
        return Pyttsx3Engine()
    except EngineError as error:
        if not fallback:
            raise
        # No usable system voice (e.g. a Mac without pyobjc): espeak-ng, if present.
        from voicecoach.speech.espeak import EspeakEngine

        try:
            return EspeakEngine()
        except EngineError:
            raise error from None
