"""Finding ffmpeg and decoding audio by its content with the real binary."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

import pytest

from voicecoach.audio import ffmpeg
from voicecoach.audio.ffmpeg import decode_pcm, ffmpeg_exe
from voicecoach.audio.pcm import CHANNELS, SAMPLE_RATE, SAMPLE_WIDTH
from voicecoach.errors import EncoderError


def make_audio(path: Path, fmt: str, seconds: float = 1.0) -> Path:
    """A 44.1 kHz stereo tone in the given container, whatever path's extension says."""
    tone = f"sine=frequency=440:duration={seconds}:sample_rate=44100"
    codec = {"wav": "pcm_s16le", "aiff": "pcm_s16be", "mp3": "libmp3lame"}[fmt]
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", tone,
         "-ac", "2", "-c:a", codec, "-f", fmt, "-y", str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_project_format() -> None:
    assert (SAMPLE_RATE, SAMPLE_WIDTH, CHANNELS) == (22050, 2, 1)


def test_ffmpeg_exe_is_found_and_cached() -> None:
    path = ffmpeg_exe()
    assert Path(path).is_file()
    assert ffmpeg_exe() == path


def test_missing_ffmpeg_is_an_encoder_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VOICECOACH_FFMPEG", str(tmp_path / "no-ffmpeg"))
    with pytest.raises(EncoderError, match="ffmpeg not found"):
        ffmpeg_exe()
    with pytest.raises(EncoderError):
        decode_pcm(b"RIFF")


def test_broken_ffmpeg_is_an_encoder_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    broken = tmp_path / "ffmpeg"
    broken.write_text("#!/bin/sh\necho 'libavcodec.so.61: cannot open' >&2\nexit 127\n")
    broken.chmod(0o755)
    monkeypatch.setenv("VOICECOACH_FFMPEG", str(broken))
    with pytest.raises(EncoderError, match=r"not usable: libavcodec\.so\.61: cannot open"):
        ffmpeg_exe()


def test_override_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ffmpeg_exe()
    monkeypatch.setenv("VOICECOACH_FFMPEG", real)
    assert ffmpeg_exe() == real


def test_formats_are_told_by_content_not_extension(tmp_path: Path) -> None:
    # As macOS writes AIFF and Windows WAV whatever the name says.
    wav = make_audio(tmp_path / "really-wav.mp3", "wav")
    aiff = make_audio(tmp_path / "really-aiff.wav", "aiff")
    mp3 = make_audio(tmp_path / "really-mp3.aiff", "mp3")
    lengths = {name: len(decode_pcm(path)) // SAMPLE_WIDTH for name, path in
               (("wav", wav), ("aiff", aiff), ("mp3", mp3))}  # fmt: skip
    assert abs(lengths["wav"] - SAMPLE_RATE) <= 1
    assert abs(lengths["aiff"] - lengths["wav"]) <= 1
    assert abs(lengths["mp3"] - lengths["wav"]) <= 1152  # at most one MP3 frame of padding


def test_bytes_decode_like_files(tmp_path: Path) -> None:
    aiff = make_audio(tmp_path / "tone.bin", "aiff", seconds=0.5)
    assert decode_pcm(aiff.read_bytes()) == decode_pcm(aiff) == decode_pcm(str(aiff))


def test_our_own_wav_skips_ffmpeg_but_matches_it(tmp_path: Path) -> None:
    path = tmp_path / "ours.wav"
    pcm = bytes(range(256)) * 100
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm)
    assert decode_pcm(path) == pcm
    via_ffmpeg = subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-f", "s16le", "pipe:1"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert via_ffmpeg == pcm


def test_name_with_colon_is_a_file(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "cue:1.wav", "aiff", seconds=0.2)
    assert len(decode_pcm(path)) // 2 == pytest.approx(SAMPLE_RATE * 0.2, abs=1)


def test_garbage_gives_ffmpegs_message(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="Invalid data found when processing input"):
        decode_pcm(b"not audio at all" * 100)
    with pytest.raises(EncoderError, match="No such file or directory"):
        decode_pcm(tmp_path / "absent.wav")


def test_pydub_is_configured_without_warnings() -> None:
    code = (
        "from voicecoach.audio.ffmpeg import pydub_audio_segment, ffmpeg_exe\n"
        "assert pydub_audio_segment().converter == ffmpeg_exe()\n"
    )
    # pydub's own source has invalid escape sequences: compiled under -W error (no .pyc yet)
    # they would be errors that say nothing about how voicecoach configures it.
    done = subprocess.run(
        [sys.executable, "-W", "error", "-W", "ignore::SyntaxWarning", "-c", code],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    ffmpeg.configure_pydub()
