"""The pyttsx3 engine: the system voices of macOS (nsss) and Windows (sapi5), espeak on Linux."""

from __future__ import annotations

import atexit
import ctypes
import importlib.metadata
import itertools
import os
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from voicecoach import cancel
from voicecoach.audio.ffmpeg import decode_pcm
from voicecoach.errors import EngineError
from voicecoach.speech.base import (
    Voice,
    VoiceSettings,
    apply_gain,
    claim_libespeak,
    clean_text,
    normalise_tag,
    quiet_output,
    resolve_voice_spec,
    said,
    trim_silence,
    validate_settings,
)
from voicecoach.speech.espeak import (
    DEFAULT_LANGUAGE,
    check_espeak_data,
    espeak_data_path,
    espeak_library_path,
    list_espeak_voices,
    load_espeak,
    ranking,
)

# Drivers whose save_to_file returns before the file is written: wait for their
# finished-utterance callback. sapi5's save_to_file is synchronous and sends none.
_CALLBACK_DRIVERS = {"espeak", "nsss"}
# The file type each driver really writes (nsss: AIFF whatever the name); we decode
# by content anyway, the suffix only keeps the temp dir honest.
_SUFFIX = {"nsss": ".aiff"}
# pyttsx3's "rate" is words per minute for all three supported drivers: espeak takes
# wpm, sapi5's driver maps wpm onto SAPI's -10..10 itself (log scale around ~160 wpm),
# and NSSpeechSynthesizer's rate is wpm. So voicecoach's wpm passes straight through.
# avspeech (a multiplier, and no save_to_file) is not supported.
_SUPPORTED = ("espeak", "nsss", "sapi5")
_FIX = "try `--engine espeak`"
_CUE_TIMEOUT_S = 30.0


class _Driver:
    """The one pyttsx3 engine of the process, held strongly (pyttsx3 caches it weakly)."""

    def __init__(self, driver_name: str | None) -> None:
        driver_name = driver_name or _default_driver()
        if driver_name not in _SUPPORTED:
            raise EngineError(f"pyttsx3 driver {driver_name!r} cannot render to files", fix=_FIX)
        espeak = _prepare_espeak() if driver_name == "espeak" else None
        self.driver_name = driver_name
        self.engine = _init_pyttsx3(driver_name)
        self.lock = threading.Lock()
        self.finished = threading.Event()
        self.completed = False  # what the last finished-utterance said: cut short or not
        self.errors: list[BaseException] = []
        self.engine.connect("finished-utterance", self._on_finished)
        self.engine.connect("error", self._on_error)
        self.stopping = False  # a stop we asked for (a signal, a cue that never finished)
        self._guard_stop()
        self.tempdir = Path(tempfile.mkdtemp(prefix="voicecoach-tts-"))
        atexit.register(shutil.rmtree, self.tempdir, True)
        self.counter = itertools.count()
        self.voice_id: str | None = None  # our own record: driver read-backs lag or lie
        # espeak's own list has every language of a voice and their priorities;
        # pyttsx3's keeps only the first language.
        self.voices, self.priorities = (
            list_espeak_voices(espeak) if espeak else (_list_voices(self.engine), {})
        )
        self.system_voice = str(self.engine.getProperty("voice") or "")
        self.resolved: dict[str | None, Voice] = {}  # lookups are slow next to synthesis
        # pyttsx3 queues every command until a first runAndWait; after one, setProperty
        # takes effect at once, so a cue's settings can be applied before its utterance.
        with quiet_output():
            self.engine.runAndWait()

    def _on_finished(self, completed: bool = True, **_: Any) -> None:
        self.completed = bool(completed)
        self.finished.set()

    def _on_error(self, exception: BaseException | None = None, **_: Any) -> None:
        self.errors.append(exception or RuntimeError("unknown pyttsx3 error"))

    def render(self, text: str, voice_id: str, rate: int, volume: float) -> bytes:
        with self.lock:
            suffix = _SUFFIX.get(self.driver_name, ".wav")
            path = self.tempdir / f"cue-{next(self.counter):06d}{suffix}"
            try:
                self._render_to(path, text, voice_id, rate, volume)
                pcm = decode_pcm(path)
            finally:
                path.unlink(missing_ok=True)
        if not pcm:  # a cancelled utterance: a valid file with no samples
            raise EngineError(f"pyttsx3 ({self.driver_name}) rendered {text[:40]!r} as nothing")
        return pcm

    def _render_to(self, path: Path, text: str, voice_id: str, rate: int, volume: float) -> None:
        # Library output (the espeak driver prints "Audio saved to ..." from its own
        # thread) must not reach the terminal: silence fds 1 and 2 for the whole cue.
        with quiet_output() as sink:
            self.errors.clear()
            try:
                self._apply(voice_id, rate, volume)
                self._settle()
                self.finished.clear()
                self.completed = False
                # One save_to_file per runAndWait: queued utterances cancel each other.
                self.engine.save_to_file(text, str(path))
                self.engine.runAndWait()
                self._wait(text)
            finally:
                self._forget_cue()
            complaint = said(sink, ignore="Audio saved to")
        self._check(path, text, complaint)

    def _check(self, path: Path, text: str, complaint: str) -> None:
        # Errors inside pyttsx3's queue (a voice it could not set) only reach the
        # "error" callback; espeak-ng reports a voice without its dictionary on stderr.
        failure: object = self.errors[0] if self.errors else None
        if failure is None and complaint and self.driver_name == "espeak":
            failure = complaint
        if failure is not None:
            self.voice_id = None
            raise EngineError(f"pyttsx3 ({self.driver_name}) failed: {failure}", fix=_FIX)
        if not path.is_file() or path.stat().st_size == 0:
            detail = f": {complaint}" if complaint else ""
            what = f"pyttsx3 ({self.driver_name}) wrote no audio for {text[:40]!r}"
            raise EngineError(what + detail)

    def _apply(self, voice_id: str, rate: int, volume: float) -> None:
        """Queue this cue's settings; they run in order before the save_to_file."""
        if voice_id != self.voice_id:
            self.engine.setProperty("voice", voice_id)
            self.voice_id = voice_id
        self.engine.setProperty("rate", rate)
        self.engine.setProperty("volume", volume)

    def _wait(self, text: str) -> None:
        """Wait until the file is complete: runAndWait and isBusy return too early (espeak)."""
        if self.driver_name not in _CALLBACK_DRIVERS:
            return
        timeout = _CUE_TIMEOUT_S + len(text) / 20
        try:
            finished = cancel.wait(self.finished, timeout)
        except cancel.Interrupted:
            self._stop()
            raise
        if not finished:
            self._stop()
            what = f"pyttsx3 ({self.driver_name}) did not finish a cue in {timeout:.0f} s"
            raise EngineError(what, fix=_FIX)
        self._settle()
        # Only an utterance the engine reports finished is a clip (a cut one is never cached).
        cancel.check()
        if not self.completed:
            cancel.check()  # a signal that cut the utterance short is the cause, not the engine
            raise EngineError(f"pyttsx3 ({self.driver_name}) stopped before the end of "
                              f"{text[:40]!r}", fix=_FIX)

    def _settle(self) -> None:
        """Let espeak's thread finish pending work (settings, the last utterance's tail), and
        forget a stop already carried out, so that it cannot cut the next utterance."""
        if self.driver_name == "espeak":
            _espeak_idle()
            driver = _espeak_driver(self.engine)
            if driver is not None:
                driver._stopping = False

    def _guard_stop(self) -> None:
        """Let only a stop we ask for cancel espeak's work.

        pyttsx3 calls its driver's stop() at the start of every run loop, and the espeak
        driver's stop() cancels whatever espeak is still doing and marks the next utterance
        cut short. Waiting for espeak to be idle first only narrows that race: on a loaded
        machine espeak can still be applying the cue's settings, and the stop then cancels
        them (a clip at the wrong volume) and the cue itself (an error with no cause).
        """
        driver = _espeak_driver(self.engine)
        if driver is None:
            return
        original = driver.stop

        def stop_when_asked() -> None:
            if self.stopping:
                original()

        driver.stop = stop_when_asked

    def _stop(self) -> None:
        self.stopping = True
        try:
            self.engine.stop()
        finally:
            self.stopping = False

    def _forget_cue(self) -> None:
        # The espeak driver keeps the last file name and text: a later say() or
        # runAndWait would write to the old path again. Clear them.
        driver = getattr(getattr(self.engine, "proxy", None), "_driver", None)
        for attribute in ("_save_file", "_text_to_say"):
            if hasattr(driver, attribute):
                setattr(driver, attribute, None)


def _espeak_driver(engine: Any) -> Any:
    """pyttsx3's espeak driver object behind `engine`, or None for another driver."""
    driver = getattr(getattr(engine, "proxy", None), "_driver", None)
    return driver if type(driver).__module__.endswith(".espeak") else None


def _default_driver() -> str:
    try:
        from pyttsx3.engine import default_engine_by_sys_platform
    except ImportError as exc:
        raise EngineError(f"pyttsx3 is not usable: {exc}", fix=_FIX) from None
    return str(default_engine_by_sys_platform())


def _prepare_espeak() -> ctypes.CDLL:
    """Point pyttsx3's espeak driver at espeakng-loader's library and checked data.

    The driver initialises espeak-ng without DONT_EXIT: bad data would exit(1) the
    whole process, so the data is checked first.
    """
    data = espeak_data_path()
    if data is not None:
        check_espeak_data(data)
        os.environ["ESPEAK_DATA_PATH"] = str(data)
    claim_libespeak("pyttsx3")
    # Same soname: the driver's dlopen("libespeak-ng.so.1") then finds this copy.
    return load_espeak(espeak_library_path(), shared=True)


def _init_pyttsx3(driver_name: str) -> Any:
    with quiet_output() as sink:
        try:
            import pyttsx3

            return pyttsx3.init(driver_name)
        except Exception as exc:  # ImportError, OSError, RuntimeError, COMError...
            complaint = said(sink)
            detail = f" ({complaint})" if complaint else ""
            message = f"pyttsx3 could not start {driver_name!r}: {exc}{detail}"
    raise EngineError(message, fix=_FIX)


def _espeak_idle() -> None:
    from pyttsx3.drivers import _espeak

    deadline = time.monotonic() + 2
    while _espeak.IsPlaying() and time.monotonic() < deadline:
        cancel.check()
        time.sleep(0.0005)


def _list_voices(engine: Any) -> list[Voice]:
    voices = []
    for v in engine.getProperty("voices") or []:
        langs = tuple(
            normalise_tag(lang.decode("utf-8", "replace") if isinstance(lang, bytes) else str(lang))
            for lang in (getattr(v, "languages", None) or [])
        )
        said = str(getattr(v, "gender", None) or "").lower()
        gender = "female" if "female" in said else "male" if "male" in said else None
        voices.append(Voice(str(v.id), str(getattr(v, "name", None) or v.id), langs, gender))
    return voices


def _version(state: _Driver) -> str:
    pyttsx3_version = importlib.metadata.version("pyttsx3")
    if state.driver_name == "espeak":
        from pyttsx3.drivers import _espeak

        return f"pyttsx3 {pyttsx3_version}; espeak-ng {_espeak.Info().decode()}"
    # The system's voices change with the OS release.
    return f"pyttsx3 {pyttsx3_version}; {state.driver_name}; {platform.platform(terse=True)}"


_state: _Driver | None = None
_state_lock = threading.Lock()


def _driver(driver_name: str | None) -> _Driver:
    global _state
    with _state_lock:
        if _state is None:
            _state = _Driver(driver_name)
        elif driver_name not in (None, _state.driver_name):
            raise EngineError(
                f"pyttsx3 already runs the {_state.driver_name!r} driver in this process",
                fix="use one pyttsx3 driver per process",
            )
        return _state


class Pyttsx3Engine:
    """Text to speech through pyttsx3, one cue per file, decoded by content with ffmpeg.

    All instances share the process's one pyttsx3 engine. On Linux its espeak driver
    uses the process-global libespeak-ng, so EspeakEngine cannot be used in the same
    process (EngineError).
    """

    name = "pyttsx3"

    def __init__(self, driver: str | None = None) -> None:
        self._driver = _driver(driver)
        self.driver_name = self._driver.driver_name
        self.version = _version(self._driver)

    def voices(self) -> list[Voice]:
        return list(self._driver.voices)

    def resolve_voice(self, spec: str | None) -> Voice:
        resolved = self._driver.resolved
        if spec not in resolved:
            resolved[spec] = self._lookup(spec)
        return resolved[spec]

    def _lookup(self, spec: str | None) -> Voice:
        voices = self._driver.voices
        if not voices:
            raise EngineError(f"pyttsx3 ({self.driver_name}) offers no voices", fix=_FIX)
        if spec is None:
            if self.driver_name == "espeak":
                return self._lookup(DEFAULT_LANGUAGE)
            system = [v for v in voices if v.id == self._driver.system_voice]
            return system[0] if system else voices[0]
        priorities = self._driver.priorities
        rank = ranking(priorities) if priorities else None
        return resolve_voice_spec(voices, spec, language_rank=rank)

    def synthesize(self, text: str, settings: VoiceSettings) -> bytes:
        validate_settings(settings)
        voice = self.resolve_voice(settings.voice)
        volume, gain = settings.volume, 1.0
        if self.driver_name != "espeak" and volume > 1.0:
            # nsss and sapi5 stop at 1.0: the rest is applied to the samples.
            volume, gain = 1.0, volume
        pcm = self._driver.render(clean_text(text), voice.id, settings.rate, volume)
        return trim_silence(apply_gain(pcm, gain))
