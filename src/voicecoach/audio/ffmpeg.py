"""Locate ffmpeg, decode any audio to the project's PCM format, and hand out a configured pydub."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import threading
import warnings
import wave
from pathlib import Path
from typing import TYPE_CHECKING

from voicecoach.audio.pcm import CHANNELS, SAMPLE_RATE, SAMPLE_WIDTH
from voicecoach.errors import EncoderError

if TYPE_CHECKING:
    from pydub import AudioSegment

_FORMAT = (CHANNELS, SAMPLE_WIDTH, SAMPLE_RATE)

ENV_FFMPEG = "VOICECOACH_FFMPEG"
_QUIET = ("-nostdin", "-hide_banner", "-loglevel", "error")
_FIX = "reinstall voicecoach's dependencies: `pip install --force-reinstall imageio-ffmpeg`"

_lock = threading.Lock()
# (value of VOICECOACH_FFMPEG when resolved, resolved path, its version line): keyed on the
# override so that a test (or user) changing the variable is honoured without a restart.
_resolved: tuple[str | None, str, str] | None = None


def ffmpeg_exe() -> str:
    """Path of a working ffmpeg: $VOICECOACH_FFMPEG, else imageio-ffmpeg's bundled binary."""
    global _resolved
    override = os.environ.get(ENV_FFMPEG) or None
    with _lock:
        if _resolved is None or _resolved[0] != override:
            _resolved = (override, *_locate(override))
        return _resolved[1]


def ffmpeg_version() -> str:
    """The first line of `ffmpeg -version` of the ffmpeg in use (it names its build)."""
    ffmpeg_exe()
    assert _resolved is not None
    return _resolved[2]


def ffmpeg_identity() -> str:
    """The ffmpeg in use named by its file (path, size, modification time), without running it
    (finding and checking it runs `ffmpeg -version` twice): what names the encoder's build in
    the keys of cached MP3 frames, where a warm export then runs no ffmpeg at all. Falls back
    to the version line where the file cannot be named that way."""
    override = os.environ.get(ENV_FFMPEG) or None
    try:
        if override is not None:
            path = shutil.which(override) or override
        else:
            path = os.environ.get("IMAGEIO_FFMPEG_EXE") or _bundled_ffmpeg()
        info = os.stat(path)
    except Exception:  # an imageio-ffmpeg without the bundled binary, or changed inside
        return ffmpeg_version()
    return f"{os.path.abspath(path)}|{info.st_size}|{info.st_mtime_ns}"


def _bundled_ffmpeg() -> str:
    from imageio_ffmpeg import _utils

    return os.path.join(_utils._get_bin_dir(), _utils.FNAME_PER_PLATFORM[_utils.get_platform()])


def pcm_format(rate: int = SAMPLE_RATE) -> list[str]:
    """ffmpeg's options for the project's raw PCM, before `-i` (input) or an output."""
    return ["-f", "s16le", "-ar", str(rate), "-ac", str(CHANNELS)]


def decode_command(source: str) -> list[str]:
    """The one decode: any audio at `source` (`file:PATH` or `pipe:0`) to our PCM on stdout."""
    return [ffmpeg_exe(), *_QUIET, "-i", source, "-vn", "-acodec", "pcm_s16le", *pcm_format(),
            "pipe:1"]


def mp3_command(
    output: str, bitrate: int, rate: int = SAMPLE_RATE, *, reservoir: bool = True,
    header: bool = True,
) -> list[str]:
    """The one MP3 encode: PCM on stdin to a CBR libmp3lame MP3 at `output` (`file:PATH` or
    `pipe:1`). `header`: the Xing/LAME frame (ffmpeg fills it in only on a seekable output);
    without `reservoir` every frame carries all its own bits (frames can be copied singly)."""
    return [
        ffmpeg_exe(), *_QUIET, "-y", *pcm_format(rate), "-i", "pipe:0",
        "-c:a", "libmp3lame", "-b:a", f"{bitrate}k", *([] if reservoir else ["-reservoir", "0"]),
        "-write_xing", "1" if header else "0", "-id3v2_version", "0", "-write_id3v1", "0",
        "-f", "mp3", output,
    ]


def _locate(override: str | None) -> tuple[str, str]:
    if override is not None:
        path = shutil.which(override) or override
        source = f"${ENV_FFMPEG}={override}"
    else:
        try:
            import imageio_ffmpeg

            path = imageio_ffmpeg.get_ffmpeg_exe()
        except Exception as exc:  # imageio-ffmpeg raises RuntimeError or worse when absent
            raise EncoderError(f"ffmpeg not found: {exc}", fix=_FIX) from None
        source = "imageio-ffmpeg"
    return path, _probe(path, source)


def _probe(path: str, source: str) -> str:
    """Run `ffmpeg -version` once so a missing or broken binary fails early and clearly."""
    try:
        done = subprocess.run(
            [path, *_QUIET, "-version"], capture_output=True, stdin=subprocess.DEVNULL, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as exc:
        message = f"ffmpeg not found or not runnable ({source}): {exc}"
        raise EncoderError(message, fix=_FIX) from None
    if done.returncode != 0 or not done.stdout.startswith(b"ffmpeg"):
        raise EncoderError(
            f"ffmpeg at {path} ({source}) is not usable: {last_line(done.stderr)}", fix=_FIX
        )
    return done.stdout.decode("utf-8", "replace").splitlines()[0].strip()


def decode_pcm(source: str | Path | bytes) -> bytes:
    """Decode audio (file path or bytes; format found from content) to s16le mono SAMPLE_RATE."""
    pcm = _native_wav(source)
    if pcm is not None:
        return pcm
    if isinstance(source, bytes):
        # ffmpeg probes a pipe by content just as it does a file.
        args, stdin, label = ["-i", "pipe:0"], source, "audio data"
    else:
        # The file: protocol stops ffmpeg from reading "name:with:colons" as a URL scheme.
        path = Path(source).resolve()
        args, stdin, label = ["-i", f"file:{path}"], None, str(source)
    cmd = decode_command(args[1])
    done = _run(cmd, stdin, label)
    return done.stdout


def _native_wav(source: str | Path | bytes) -> bytes | None:
    """The samples of a WAV already in our format (what espeak writes), without ffmpeg.

    Starting ffmpeg costs ~10 ms a cue; anything else, or a WAV whose header does not
    match its data, returns None and goes through ffmpeg.
    """
    target: str | io.BytesIO
    try:
        if isinstance(source, bytes):
            head, target = source[:12], io.BytesIO(source)
        else:
            with open(source, "rb") as file:
                head = file.read(12)
            target = str(source)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        with wave.open(target, "rb") as wav:
            params = wav.getparams()
            frames = wav.readframes(params.nframes)
    except (OSError, EOFError, wave.Error):
        return None  # ffmpeg decodes it, or says what is wrong
    ours = (params.nchannels, params.sampwidth, params.framerate) == _FORMAT
    # WAV samples are little-endian on every host, like ours.
    if not ours or len(frames) != params.nframes * SAMPLE_WIDTH:
        return None
    return frames


def _run(cmd: list[str], stdin: bytes | None, label: str) -> subprocess.CompletedProcess[bytes]:
    try:
        done = subprocess.run(
            cmd,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
        )
    except OSError as exc:
        raise EncoderError(f"could not run ffmpeg: {exc}", fix=_FIX) from None
    if done.returncode != 0:
        raise EncoderError(f"ffmpeg could not decode {label}: {last_line(done.stderr)}")
    return done


def last_line(stderr: bytes) -> str:
    """ffmpeg's last non-empty stderr line: its reason for failing."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else "no error message"


def pydub_audio_segment() -> type[AudioSegment]:
    """pydub's AudioSegment, imported quietly and pointed at our ffmpeg."""
    with warnings.catch_warnings():
        # pydub warns at import when ffmpeg is not on PATH (we set it just below), and
        # Python 3.11/3.12 warn about its audioop import; neither concerns the user.
        warnings.filterwarnings("ignore", "Couldn't find ffmpeg", RuntimeWarning)
        warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
        from pydub import AudioSegment
    AudioSegment.converter = ffmpeg_exe()
    return AudioSegment


def configure_pydub() -> None:
    """Make pydub use our ffmpeg; the only sanctioned way to import pydub in voicecoach."""
    pydub_audio_segment()
