"""The espeak-ng engine: libespeak-ng driven synchronously through ctypes."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voicecoach import cancel
from voicecoach.audio.pcm import SAMPLE_RATE, nbytes
from voicecoach.errors import EngineError, UserError
from voicecoach.speech.base import (
    Voice,
    VoiceSettings,
    claim_libespeak,
    clean_text,
    normalise_tag,
    quiet_output,
    resolve_voice_spec,
    said,
    trim_silence,
    validate_settings,
)

ENV_DATA = "VOICECOACH_ESPEAK_DATA"
DATA_FIX = "reinstall with `pip install --force-reinstall espeakng-loader`"
VOICE_FIX = "choose another voice: `voicecoach voices` lists them"
LIB_FIX = "install espeak-ng, or on Linux `pip install espeakng-loader`"
DEFAULT_LANGUAGE = "en"

# From espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report a bad data path instead of calling exit(1)
_POS_CHARACTER = 1
_CHARS_UTF8 = 1  # no ENDPAUSE: it only appends ~330 ms of silence that we would trim
_RATE, _VOLUME = 1, 2
_BUFFER_MS = 500  # callback chunk size: larger chunks mean fewer trips into Python
_GENDERS = {1: "male", 2: "female"}
_PHONEME_TAB_SIZE = 16  # sizeof(PHONEME_TAB) in espeak-ng 1.5x
_PHONEME_TAB_NAME = 32

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _VoiceStruct(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, tag, NUL)*, then a 0 byte
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    )


# --- finding the library and its data -------------------------------------------------------


def espeak_library_path() -> str:
    """The libespeak-ng to load: espeakng-loader's copy, else the system's."""
    try:
        import espeakng_loader

        path = str(espeakng_loader.get_library_path())
        if Path(path).is_file():
            return path
    except ImportError:
        pass
    found = ctypes.util.find_library("espeak-ng")
    if not found:
        raise EngineError("libespeak-ng not found", fix=LIB_FIX)
    return found


def espeak_data_path() -> Path | None:
    """espeak-ng's data dir: $VOICECOACH_ESPEAK_DATA, espeakng-loader's, or None (built-in)."""
    override = os.environ.get(ENV_DATA)
    if override:
        return Path(override)
    try:
        import espeakng_loader
    except ImportError:
        return None  # a system libespeak-ng knows where its own data is
    try:
        return Path(espeakng_loader.get_data_path())
    except RuntimeError:  # the loader raises when its data dir is gone
        return Path(espeakng_loader.__file__).parent / "espeak-ng-data"


def check_espeak_data(path: Path) -> None:
    """EngineError unless path looks like intact espeak-ng data.

    espeak-ng trusts its files: a missing phontab exits the process (without
    DONT_EXIT) and a garbled one or a truncated phondata crashes it later.
    """
    if not (path / "phontab").is_file():
        raise EngineError(f"espeak-ng voice data not found at {path}", fix=DATA_FIX)
    _check_phontab(path)
    for name in ("phonindex", "phondata", "intonations"):
        file = path / name
        if not file.is_file() or file.stat().st_size == 0:
            _damaged(path, f"{name} is missing or empty")
    _check_phondata(path)


def _damaged(path: Path, detail: str) -> None:
    raise EngineError(f"espeak-ng voice data at {path} is damaged: {detail}", fix=DATA_FIX)


def _check_phontab(path: Path) -> None:
    """Walk phontab as espeak-ng's LoadPhData does (it checks no bounds) and expect its end."""
    data = (path / "phontab").read_bytes()
    pos = 4
    for _ in range(data[0] if data else 0):
        name = data[pos + 4 : pos + 4 + _PHONEME_TAB_NAME].split(b"\0")[0]
        if pos + 4 + _PHONEME_TAB_NAME > len(data) or not re.fullmatch(rb"[\x21-\x7e]+", name):
            _damaged(path, "phontab is not a phoneme table")
        pos += 4 + _PHONEME_TAB_NAME + data[pos] * _PHONEME_TAB_SIZE
    if not data or pos != len(data):
        _damaged(path, "phontab is not a phoneme table")


def _check_phondata(path: Path) -> None:
    """A phondata shorter than the offsets its manifest lists is truncated."""
    manifest = path / "phondata-manifest"
    if not manifest.is_file():
        return
    offsets = re.findall(r"^\w\s+0x([0-9a-fA-F]+)", manifest.read_text("latin-1"), re.M)
    if offsets and max(int(o, 16) for o in offsets) >= (path / "phondata").stat().st_size:
        _damaged(path, "phondata is truncated")


def load_espeak(path: str, *, shared: bool = False) -> ctypes.CDLL:
    """libespeak-ng with the prototypes we use; shared=True makes its symbols global."""
    try:
        lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL if shared else ctypes.DEFAULT_MODE)
    except OSError as exc:
        raise EngineError(f"could not load libespeak-ng from {path}: {exc}", fix=LIB_FIX) from None
    lib.espeak_Initialize.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
    lib.espeak_SetSynthCallback.argtypes = (_SynthCallback,)
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
    lib.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
    lib.espeak_ListVoices.argtypes = (ctypes.c_void_p,)
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_VoiceStruct))
    lib.espeak_Info.argtypes = (ctypes.c_void_p,)
    lib.espeak_Info.restype = ctypes.c_char_p
    lib.espeak_Synth.argtypes = (
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
        ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
    )  # fmt: skip
    return lib


# --- the process-wide library state ---------------------------------------------------------


class _Espeak:
    """libespeak-ng after a successful initialisation; one per process."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.lock = threading.Lock()
        self.buffer = bytearray()
        # Held for the life of the process: the library calls it on every synthesis.
        self.callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self.callback)
        self.version = (lib.espeak_Info(None) or b"?").decode()
        self.voices, self.priorities = list_espeak_voices(lib)
        self.resolved: dict[str | None, Voice] = {}  # lookups are slow next to synthesis
        self.current: str | None = None

    def _collect(self, wav: Any, count: int, _events: int | None) -> int:
        if cancel.requested():
            return 1  # 1 = stop: render() then raises, and the cut clip is never used
        if count > 0:
            self.buffer += ctypes.string_at(wav, nbytes(count))
        return 0  # 0 = go on synthesising

    def render(self, text: str, voice_id: str, rate: int, amplitude: int) -> bytes:
        with self.lock:
            self._select(voice_id)
            for parameter, value in ((_RATE, rate), (_VOLUME, amplitude)):
                if self.lib.espeak_SetParameter(parameter, value, 0) != 0:
                    raise EngineError(f"espeak-ng refused parameter {parameter}={value}")
            self.buffer = bytearray()
            data = text.encode("utf-8")
            status = self.lib.espeak_Synth(
                data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            pcm, self.buffer = bytes(self.buffer), bytearray()
        # Only an utterance that ran to its end is a clip (a cut one must never be cached).
        cancel.check()
        if status != 0:
            raise EngineError(f"espeak-ng could not render {text[:40]!r} (error {status})")
        return pcm

    def _select(self, voice_id: str) -> None:
        if voice_id == self.current:
            return  # loading a voice re-reads its dictionary: only do it on a change
        with quiet_output() as sink:
            status = self.lib.espeak_SetVoiceByName(voice_id.encode())
            complaint = said(sink)
        # A damaged phoneme table is reported only as a message, with status 0.
        if status != 0 or complaint:
            self.current = None
            # espeakng-loader ships a few voices without their dictionary (fo, kaa, xex).
            fix = VOICE_FIX if "dictionary" in complaint else DATA_FIX
            detail = complaint or f"error {status}"
            raise EngineError(f"espeak-ng could not load voice '{voice_id}': {detail}", fix=fix)
        self.current = voice_id


def list_espeak_voices(lib: ctypes.CDLL) -> tuple[list[Voice], dict[tuple[str, str], int]]:
    """The voices and, per (voice id, language), espeak's priority (lower is better)."""
    voices: list[Voice] = []
    priorities: dict[tuple[str, str], int] = {}
    table = lib.espeak_ListVoices(None)
    for i in range(10_000):
        if not table[i]:
            break
        entry = table[i].contents
        vid = (entry.identifier or b"").decode("utf-8", "replace")
        langs = _languages(entry.languages)
        priorities.update({(vid, tag): prio for tag, prio in langs})
        name = (entry.name or b"").decode("utf-8", "replace")
        voices.append(Voice(vid, name, tuple(tag for tag, _ in langs), _GENDERS.get(entry.gender)))
    return voices, priorities


def ranking(priorities: dict[tuple[str, str], int]) -> Callable[[Voice, str], int]:
    """Order voices speaking a language as espeak-ng does: by the voice's priority for it."""
    return lambda voice, tag: priorities.get((voice.id, tag), 99)


def _languages(pointer: int | None) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    while pointer and (priority := ctypes.string_at(pointer, 1)[0]):
        tag = ctypes.string_at(pointer + 1)
        found.append((normalise_tag(tag.decode("ascii", "replace")), priority))
        pointer += len(tag) + 2
    return found


def _start() -> _Espeak:
    data = espeak_data_path()
    if data is not None:
        check_espeak_data(data)
    lib = load_espeak(espeak_library_path())
    claim_libespeak("espeak")
    with quiet_output() as sink:
        path = str(data).encode() if data is not None else None
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, path, _INITIALIZE_DONT_EXIT
        )
        complaint = said(sink)
    if rate <= 0:  # espeak-ng returns 0 Hz when it could not read its data
        where = f" at {data}" if data is not None else ""
        message = f"espeak-ng could not start{where}: {complaint or 'no data'}"
        raise EngineError(message, fix=DATA_FIX)
    if rate != SAMPLE_RATE:
        raise EngineError(f"espeak-ng renders at {rate} Hz; voicecoach needs {SAMPLE_RATE} Hz")
    return _Espeak(lib)


_state: _Espeak | None = None
_state_lock = threading.Lock()


def _espeak() -> _Espeak:
    global _state
    with _state_lock:
        if _state is None:
            _state = _start()
        return _state


# --- the engine -------------------------------------------------------------------------


class EspeakEngine:
    """Text to speech with espeak-ng, about 1,700x real time on one core.

    All instances share the one libespeak-ng of the process (it is process-global);
    the pyttsx3 engine on Linux uses it too, so only one of the two may be used per
    process (EngineError otherwise).
    """

    name = "espeak"

    def __init__(self) -> None:
        self._espeak = _espeak()
        self.version = f"espeak-ng {self._espeak.version}"

    def voices(self) -> list[Voice]:
        return list(self._espeak.voices)

    def resolve_voice(self, spec: str | None) -> Voice:
        resolved = self._espeak.resolved
        if spec not in resolved:
            resolved[spec] = self._lookup(spec)
        return resolved[spec]

    def _lookup(self, spec: str | None) -> Voice:
        voices = self._espeak.voices
        if not voices:
            raise EngineError("espeak-ng has no voices", fix=DATA_FIX)
        if spec is None:
            try:
                return self._lookup(DEFAULT_LANGUAGE)
            except UserError:  # data without English: any voice is better than none
                return voices[0]
        return resolve_voice_spec(voices, spec, language_rank=ranking(self._espeak.priorities))

    def synthesize(self, text: str, settings: VoiceSettings) -> bytes:
        validate_settings(settings)
        voice = self.resolve_voice(settings.voice)
        # espeak's amplitude: 100 is its normal loudness, 200 its maximum.
        amplitude = round(settings.volume * 100)
        pcm = self._espeak.render(clean_text(text), voice.id, settings.rate, amplitude)
        return trim_silence(pcm)
