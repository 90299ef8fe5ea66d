"""Speech engines, rendering real speech with the bundled espeak-ng."""

from __future__ import annotations

import array
import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from voicecoach.audio.pcm import SAMPLE_RATE
from voicecoach.errors import EngineError, UserError
from voicecoach.speech import (
    Engine,
    VoiceSettings,
    default_engine_name,
    engine_names,
    get_engine,
    render_clips,
)
from voicecoach.speech.base import KEEP_MS, SILENCE_THRESHOLD, trim_silence
from voicecoach.speech.espeak import EspeakEngine, espeak_data_path

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="espeak driver")

FIRST_WORDS = [
    "Breathe", "Stretch", "Relax", "Lift", "Hold", "Turn", "Lower", "Rest", "Reach", "Bend",
    "Slowly", "Gently", "Now", "Again", "Roll", "Press", "Keep", "Let", "Feel", "Open",
]  # fmt: skip


def cue_texts(n: int) -> list[str]:
    """n distinct cues; neighbours start with different words and differ in length."""
    tails = ["your back.", "both arms up high.", "for five seconds, then slowly release.", "."]
    return [f"{FIRST_WORDS[i % 20]} {i}, {tails[i % 4]}" for i in range(n)]


def samples(pcm: bytes) -> array.array[int]:
    values = array.array("h")
    values.frombytes(pcm)
    return values


def envelope(pcm: bytes, frame: int = 441) -> list[int]:
    """Peak level per 20 ms: a cheap fingerprint of what was said."""
    values = samples(pcm)
    return [max(map(abs, values[i : i + frame])) for i in range(0, len(values), frame)]


def distance(a: list[int], b: list[int]) -> float:
    shared = min(len(a), len(b))
    return sum(abs(x - y) for x, y in zip(a, b, strict=False)) / shared + 500 * abs(len(a) - len(b))


def assert_right_clips(texts: list[str], clips: dict[str, bytes], reference: Engine) -> None:
    """Every cue has a non-empty clip of its own text, none lost or swapped."""
    assert list(clips) == texts
    assert all(len(pcm) > SAMPLE_RATE // 4 and len(pcm) % 2 == 0 for pcm in clips.values())
    pcms = [clips[t] for t in texts]
    for before, after in itertools.pairwise(pcms):
        assert len(before) != len(after)
        assert before[:4000] != after[:4000]
    # Each clip is closest to a fresh render of its own text, not of a neighbour's.
    fresh = [envelope(reference.synthesize(t, VoiceSettings())) for t in texts]
    for i, pcm in enumerate(pcms):
        own = distance(envelope(pcm), fresh[i])
        for j in (i - 1, i + 1):
            if 0 <= j < len(texts):
                assert own < distance(envelope(pcm), fresh[j]), (texts[i], texts[j])


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh interpreter (libespeak-ng is process-global)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        text=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def engine() -> EspeakEngine:
    return EspeakEngine()


# --- settings and voices --------------------------------------------------------------------


def test_engine_satisfies_the_protocol(engine: EspeakEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.name == "espeak"
    assert engine.version.startswith("espeak-ng 1.")


def test_voices_include_english(engine: EspeakEngine) -> None:
    voices = engine.voices()
    assert any("en" in v.languages for v in voices)
    assert all(v.id and v.name for v in voices)


@pytest.mark.parametrize(
    ("spec", "voice_id"),
    [
        ("en", "gmw/en"),
        (None, "gmw/en"),
        ("en-gb", "gmw/en"),
        ("en-us", "gmw/en-US"),
        ("EN_US", "gmw/en-US"),
        ("English (America)", "gmw/en-US"),
        ("gmw/en-us", "gmw/en-US"),
        ("fr", "roa/fr"),
    ],
)
def test_resolve_voice(engine: EspeakEngine, spec: str | None, voice_id: str) -> None:
    assert engine.resolve_voice(spec).id == voice_id


def test_unknown_voice_suggests_close_matches(engine: EspeakEngine) -> None:
    with pytest.raises(UserError) as caught:
        engine.resolve_voice("en-uss")
    assert caught.value.message == "unknown voice 'en-uss'"
    assert "voicecoach voices" in (caught.value.fix or "")
    assert "'en-us'" in (caught.value.fix or "")


@pytest.mark.parametrize(
    "settings",
    [
        VoiceSettings(rate=79),
        VoiceSettings(rate=451),
        VoiceSettings(rate=True),  # type: ignore[arg-type]
        VoiceSettings(volume=-0.1),
        VoiceSettings(volume=2.01),
        VoiceSettings(volume="loud"),  # type: ignore[arg-type]
    ],
)
def test_invalid_settings_are_user_errors(engine: EspeakEngine, settings: VoiceSettings) -> None:
    with pytest.raises(UserError):
        engine.synthesize("hello", settings)


@pytest.mark.parametrize("text", ["", "   ", "\x00\x1b"])
def test_empty_text_is_a_user_error(engine: EspeakEngine, text: str) -> None:
    with pytest.raises(UserError):
        engine.synthesize(text, VoiceSettings())


def test_nul_does_not_cut_the_text(engine: EspeakEngine) -> None:
    whole = engine.synthesize("one two three four", VoiceSettings())
    with_nul = engine.synthesize("one two\x00 three four", VoiceSettings())
    assert abs(len(with_nul) - len(whole)) < len(whole) // 10


# --- the audio --------------------------------------------------------------------------


def test_clip_length_grows_with_the_text(engine: EspeakEngine) -> None:
    short = engine.synthesize("one", VoiceSettings())
    long = engine.synthesize("one two three four five", VoiceSettings())
    assert len(long) > 2.5 * len(short)


def test_rate_and_volume_change_the_audio(engine: EspeakEngine) -> None:
    text = "Keep your shoulders relaxed and breathe."
    slow = engine.synthesize(text, VoiceSettings(rate=120))
    fast = engine.synthesize(text, VoiceSettings(rate=300))
    assert len(fast) < 0.6 * len(slow)
    clips = [engine.synthesize(text, VoiceSettings(volume=v)) for v in (0.5, 1, 2)]
    peaks = [max(map(abs, samples(pcm))) for pcm in clips]
    assert peaks[0] < peaks[1] < peaks[2]


def test_silent_edges_are_at_most_30_ms(engine: EspeakEngine) -> None:
    limit = SAMPLE_RATE * KEEP_MS // 1000
    for text in ["one", "Hold it.", "Breathe in... and out."]:
        values = samples(engine.synthesize(text, VoiceSettings()))
        loud = [i for i, s in enumerate(values) if abs(s) > SILENCE_THRESHOLD]
        assert loud[0] <= limit
        assert len(values) - 1 - loud[-1] <= limit


def test_trim_silence_keeps_30_ms_each_side() -> None:
    second, tone = bytes(2 * SAMPLE_RATE), array.array("h", [0, 3000, 0, -3000] * 1000).tobytes()
    trimmed = trim_silence(second + tone + second)
    keep = SAMPLE_RATE * KEEP_MS // 1000 * 2
    assert len(trimmed) == len(tone) - 2 + 2 * keep  # the tone starts on a zero sample
    assert trim_silence(second) == second  # all silence (volume 0): its length is kept


# The fast lane speaks 20 cues in a row; the full suite 200.
@pytest.mark.parametrize("cues", [20, pytest.param(200, marks=pytest.mark.slow)])
def test_200_cues_in_a_row(engine: EspeakEngine, cues: int) -> None:
    texts = cue_texts(cues)
    clips = {t: engine.synthesize(t, VoiceSettings()) for t in texts}
    assert_right_clips(texts, clips, engine)


def test_render_clips_renders_each_distinct_text_once(engine: EspeakEngine) -> None:
    progress: list[tuple[int, int]] = []
    clips = render_clips(
        engine, ["one", "two", "one"], VoiceSettings(), on_progress=lambda *p: progress.append(p)
    )
    assert list(clips) == ["one", "two"]
    assert progress == [(1, 2), (2, 2)]


def test_no_library_output_on_the_terminal(
    engine: EspeakEngine, capfd: pytest.CaptureFixture[str]
) -> None:
    for text in ["<speak>tags</speak>", "日本語", "emoji 😀", "x" * 2000]:
        engine.synthesize(text, VoiceSettings())
    # A voice whose dictionary the wheel lacks makes espeak-ng complain on stderr.
    with pytest.raises(EngineError, match="fo_dict"):
        engine.synthesize("hello", VoiceSettings(voice="gmq/fo"))
    assert engine.synthesize("hello", VoiceSettings())
    assert capfd.readouterr() == ("", "")


def test_init_is_silent_too(capfd: pytest.CaptureFixture[str]) -> None:
    # A fresh process, inheriting capfd's file descriptors.
    code = """
        from voicecoach.speech.espeak import EspeakEngine
        from voicecoach.speech import VoiceSettings
        assert EspeakEngine().synthesize("hello", VoiceSettings())
    """
    assert subprocess.run([sys.executable, "-c", textwrap.dedent(code)], timeout=60).returncode == 0
    assert capfd.readouterr() == ("", "")


# --- engine selection -------------------------------------------------------------------


def test_engine_names_and_default() -> None:
    assert engine_names() == ["espeak", "pyttsx3"]
    if sys.platform.startswith("linux"):
        assert default_engine_name() == "espeak"
        assert isinstance(get_engine(), EspeakEngine)
        assert get_engine() is get_engine("espeak")


def test_unknown_engine_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown speech engine 'festival'"):
        get_engine("festival")


@linux_only
@pytest.mark.parametrize(
    "order", [("EspeakEngine", "Pyttsx3Engine"), ("Pyttsx3Engine", "EspeakEngine")]
)
def test_one_espeak_engine_per_process(order: tuple[str, str]) -> None:
    first, second = order
    done = run_python(f"""
        from voicecoach.errors import EngineError
        from voicecoach.speech.espeak import EspeakEngine
        from voicecoach.speech.pyttsx3_engine import Pyttsx3Engine
        {first}()
        try:
            {second}()
        except EngineError as error:
            print(error.line())
    """)
    assert done.returncode == 0, done.stderr
    assert "already uses libespeak-ng in this process" in done.stdout


# --- damaged voice data: an error, never espeak-ng's exit(1) ----------------------------------


def _broken_data(tmp_path: Path, kind: str) -> Path:
    real = espeak_data_path()
    assert real is not None
    target = tmp_path / kind
    if kind == "missing":
        return target
    target.mkdir()
    if kind == "empty-phontab":
        (target / "phontab").write_bytes(b"")
        return target
    for item in real.iterdir():  # links are enough: only one file is damaged
        (target / item.name).symlink_to(item)
    damaged = "phondata" if kind == "truncated-phondata" else "phontab"
    (target / damaged).unlink()
    original = (real / damaged).read_bytes()
    broken = original[: len(original) // 2] if kind == "truncated-phondata" else os.urandom(5000)
    (target / damaged).write_bytes(broken)
    return target


BROKEN_DATA = {
    "missing": "espeak-ng voice data not found at",
    "empty-phontab": "phontab is not a phoneme table",
    "garbage-phontab": "phontab is not a phoneme table",
    "truncated-phondata": "phondata is truncated",
}


@linux_only
@pytest.mark.parametrize("engine_class", ["EspeakEngine", "Pyttsx3Engine"])
@pytest.mark.parametrize("kind", list(BROKEN_DATA))
def test_broken_voice_data_is_an_engine_error(tmp_path: Path, kind: str, engine_class: str) -> None:
    data = _broken_data(tmp_path, kind)
    done = run_python(
        f"""
        from voicecoach.errors import EngineError
        from voicecoach.speech.espeak import EspeakEngine
        from voicecoach.speech.pyttsx3_engine import Pyttsx3Engine
        try:
            {engine_class}()
        except EngineError as error:
            print("caught:", error.line())
        """,
        VOICECOACH_ESPEAK_DATA=str(data),
    )
    assert done.returncode == 0, done.stderr  # not espeak-ng's exit(1), not a crash
    assert done.stdout.startswith("caught: ")
    assert BROKEN_DATA[kind] in done.stdout
    assert str(data) in done.stdout
    assert "pip install --force-reinstall espeakng-loader" in done.stdout
    assert done.stderr == ""


# --- pyttsx3 (its espeak driver shares the process-global libespeak-ng: a subprocess) -------


@linux_only
@pytest.mark.parametrize("cues", [20, pytest.param(200, marks=pytest.mark.slow)])
def test_pyttsx3_200_cues_in_a_row(
    tmp_path: Path, engine: EspeakEngine, capfd: pytest.CaptureFixture[str], cues: int
) -> None:
    texts = cue_texts(cues)
    (tmp_path / "texts").write_text("\n".join(texts), encoding="utf-8")
    code = f"""
        from pathlib import Path
        from voicecoach.speech import VoiceSettings
        from voicecoach.speech.pyttsx3_engine import Pyttsx3Engine
        out = Path({str(tmp_path)!r})
        engine = Pyttsx3Engine()
        assert engine.resolve_voice("en").id == "gmw/en"
        assert engine.resolve_voice(None).id == "gmw/en"
        for i, text in enumerate((out / "texts").read_text(encoding="utf-8").splitlines()):
            (out / f"{{i:03d}}.pcm").write_bytes(engine.synthesize(text, VoiceSettings()))
        one = engine.synthesize("one", VoiceSettings())
        five = engine.synthesize("one two three four five", VoiceSettings())
        assert len(five) > 2.5 * len(one), (len(one), len(five))
    """
    # fds inherited from capfd: anything pyttsx3 or espeak-ng prints would show up. A temp folder
    # of its own: other runs on the machine make (and clean up) their own voicecoach-tts-* folders.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], timeout=120,
                          env={**os.environ, "TMPDIR": str(scratch)})
    assert capfd.readouterr() == ("", "")
    assert done.returncode == 0
    clips = {t: (tmp_path / f"{i:03d}.pcm").read_bytes() for i, t in enumerate(texts)}
    # Same synthesiser underneath: each clip matches EspeakEngine's render of its text.
    assert_right_clips(texts, clips, engine)
    assert not list(scratch.iterdir())


@linux_only
def test_pyttsx3_cues_stay_whole_and_keep_their_settings_while_espeak_is_busy(seed: int) -> None:
    """pyttsx3 stops its driver as each run loop begins; that stop used to cancel whatever espeak
    was still doing: the cue's own settings (a clip at the wrong volume) and the cue itself
    ("stopped before the end", found by the fault storm on a loaded CI machine). Here espeak is
    kept busy with queued commands at every cue's start, and the wait for it to be idle is taken
    away, as a loaded machine does by losing that race. A stop that did happen (a signal during a
    cue) must not cut the cue after it either."""
    done = run_python(f"""
        import array, os, random, signal, threading
        from voicecoach import cancel
        from voicecoach.speech import VoiceSettings
        from voicecoach.speech import pyttsx3_engine
        engine = pyttsx3_engine.Pyttsx3Engine()
        engine.synthesize("Warm up.", VoiceSettings())
        from pyttsx3.drivers import _espeak
        pyttsx3_engine._espeak_idle = lambda: None
        def peak(pcm):
            return max(map(abs, array.array("h", pcm)))
        rng = random.Random({seed})
        text = "Lie on your back."
        peaks = {{0.3: [], 2.0: []}}
        for i in range(30):
            for _ in range(rng.randint(1, 40)):
                _espeak.SetParameter(_espeak.PUNCTUATION, 0, 0)
            volume = rng.choice([0.3, 2.0])
            peaks[volume].append(peak(engine.synthesize(text, VoiceSettings(volume=volume))))
        assert max(peaks[0.3]) < 0.5 * min(peaks[2.0]), peaks
        cancel.install()
        whole = len(engine.synthesize(text, VoiceSettings()))
        stopped = 0
        for i in range(8):
            timer = threading.Timer(rng.uniform(0.0, 0.05), os.kill, (os.getpid(), signal.SIGINT))
            timer.start()
            try:
                engine.synthesize("Hug both knees to your chest, and breathe slowly.",
                                  VoiceSettings())
            except cancel.Interrupted:
                stopped += 1
            timer.join()
            while not cancel.requested():  # the handler runs on this thread, between bytecodes
                pass
            cancel.reset()
            assert abs(len(engine.synthesize(text, VoiceSettings())) - whole) < 2000, i
        print("ok", stopped)
    """)
    assert done.returncode == 0, f"seed {seed}: {done.stderr}"
    assert done.stdout.startswith("ok"), done.stdout


@linux_only
def test_pyttsx3_voices_and_settings() -> None:
    done = run_python("""
        import array
        from voicecoach.errors import EngineError, UserError
        from voicecoach.speech import VoiceSettings, get_engine
        engine = get_engine("pyttsx3")
        assert engine.name == "pyttsx3" and "espeak-ng" in engine.version
        assert any("en" in v.languages for v in engine.voices())
        assert engine.resolve_voice("en-us").id == "gmw/en-US"
        try:
            engine.resolve_voice("no-such-voice-xyz")
            raise SystemExit("an unknown voice was accepted")
        except UserError as error:
            assert "voicecoach voices" in error.fix
        def peak(pcm):
            return max(map(abs, array.array("h", pcm)))
        text = "Keep your shoulders relaxed."
        quiet, loud = (engine.synthesize(text, VoiceSettings(volume=v)) for v in (0.3, 2.0))
        slow, fast = (engine.synthesize(text, VoiceSettings(rate=r)) for r in (100, 350))
        us = engine.synthesize(text, VoiceSettings(voice="en-us"))
        assert peak(quiet) < peak(loud) and len(fast) < 0.6 * len(slow)
        try:
            engine.synthesize(text, VoiceSettings(voice="gmq/fo"))  # the wheel lacks fo_dict
            raise SystemExit("a voice without its dictionary was accepted")
        except EngineError as error:
            assert "fo_dict" in error.message
        assert engine.synthesize(text, VoiceSettings())
        print("ok", len(us))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok") and done.stderr == ""
