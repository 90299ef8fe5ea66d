"""The clip cache: keys, verified entries, atomic writes, and degrading when unwritable."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from voicecoach.speech import Voice, VoiceSettings, render_clips
from voicecoach.speech.espeak import EspeakEngine
from voicecoach.storage import cache as cache_module
from voicecoach.storage.cache import ClipCache, default_cache_dir

TEXTS = ["Breathe in.", "Lift your arms.", "Hold for five seconds.", "Relax.", "Well done."]


class Counting:
    """The real espeak engine, counting the cues it synthesises."""

    def __init__(self, engine: EspeakEngine) -> None:
        self.engine = engine
        self.name, self.version = engine.name, engine.version
        self.synthesised: list[str] = []

    def voices(self) -> list[Voice]:
        return self.engine.voices()

    def resolve_voice(self, spec: str | None) -> Voice:
        return self.engine.resolve_voice(spec)

    def synthesize(self, text: str, settings: VoiceSettings) -> bytes:
        self.synthesised.append(text)
        return self.engine.synthesize(text, settings)


@pytest.fixture(scope="module")
def espeak() -> EspeakEngine:
    return EspeakEngine()


@pytest.fixture
def engine(espeak: EspeakEngine) -> Counting:
    return Counting(espeak)


@pytest.fixture
def cache(tmp_path: Path) -> ClipCache:
    return ClipCache(tmp_path / "clips")


def entries(cache: ClipCache) -> list[Path]:
    return sorted(cache.directory.glob("*/*.pcm"))


def key(text: str = "hello", **changes: object) -> str:
    fields: dict[str, object] = {
        "engine": "espeak", "engine_version": "espeak-ng 1.52.0", "voice": "gmw/en",
        "rate": 165, "volume": 1.0,
    }  # fmt: skip
    fields.update(changes)
    return ClipCache.key(text, **fields)  # type: ignore[arg-type]


def test_key_changes_with_every_input() -> None:
    keys = {
        key(),
        key("hello!"),
        key(engine="pyttsx3"),
        key(engine_version="espeak-ng 1.53.0"),
        key(voice="gmw/en-US"),
        key(rate=166),
        key(volume=0.9),
    }
    assert len(keys) == 7
    assert key() == key()
    assert len(key()) == 64 and int(key(), 16) >= 0


def test_miss_then_hit(cache: ClipCache) -> None:
    assert cache.get(key()) is None
    assert cache.put(key(), b"\x01\x02" * 500)
    assert cache.get(key()) == b"\x01\x02" * 500
    path = cache.path(key())
    assert path.parent.name == key()[:2] and path.parent.parent == cache.directory


def test_empty_clip_round_trips(cache: ClipCache) -> None:
    cache.put(key(), b"")
    assert cache.get(key()) == b""


def damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


def damage_garbage(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


def damage_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01  # one bit of the payload: length and magic still fine
    path.write_bytes(bytes(data))


def damage_header_only(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:10])


DAMAGES = [damage_truncate, damage_garbage, damage_flip, damage_header_only]


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_entry_is_a_miss_and_deleted(cache: ClipCache, damage) -> None:
    cache.put(key(), os.urandom(4000))
    damage(cache.path(key()))
    assert cache.get(key()) is None
    assert not cache.path(key()).exists()


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_entry_is_rendered_again(cache: ClipCache, engine: Counting, damage) -> None:
    render_clips(engine, TEXTS, VoiceSettings(), cache)
    damage(cache.path(key_of(engine, TEXTS[2])))
    engine.synthesised.clear()
    clips = render_clips(engine, TEXTS, VoiceSettings(), cache)
    assert engine.synthesised == [TEXTS[2]]
    assert list(clips) == TEXTS and all(clips.values())
    assert cache.get(key_of(engine, TEXTS[2])) == clips[TEXTS[2]]


def key_of(engine: Counting, text: str, settings: VoiceSettings | None = None) -> str:
    settings = settings or VoiceSettings()
    return ClipCache.key(
        text, engine=engine.name, engine_version=engine.version,
        voice=engine.resolve_voice(settings.voice).id, rate=settings.rate, volume=settings.volume,
    )  # fmt: skip


def test_only_changed_texts_are_synthesised_again(cache: ClipCache, engine: Counting) -> None:
    first = render_clips(engine, TEXTS, VoiceSettings(), cache)
    assert engine.synthesised == TEXTS
    engine.synthesised.clear()
    changed = [*TEXTS[:3], "Relax your shoulders.", *TEXTS[4:]]
    second = render_clips(engine, changed, VoiceSettings(), cache)
    assert engine.synthesised == ["Relax your shoulders."]
    assert all(second[t] == first[t] for t in TEXTS if t in changed)


@pytest.mark.parametrize(
    "settings", [VoiceSettings(rate=200), VoiceSettings(volume=0.8), VoiceSettings(voice="en-us")]
)
def test_other_settings_miss(cache: ClipCache, engine: Counting, settings: VoiceSettings) -> None:
    render_clips(engine, TEXTS, VoiceSettings(), cache)
    engine.synthesised.clear()
    render_clips(engine, TEXTS[:2], settings, cache)
    assert engine.synthesised == TEXTS[:2]


def test_disabled_cache_never_reads_or_writes(tmp_path: Path, engine: Counting) -> None:
    off = ClipCache(tmp_path / "clips", enabled=False)
    render_clips(engine, TEXTS[:2], VoiceSettings(), off)
    render_clips(engine, TEXTS[:2], VoiceSettings(), off)
    assert engine.synthesised == TEXTS[:2] * 2
    assert not (tmp_path / "clips").exists()


def test_unwritable_cache_does_not_fail_rendering(
    tmp_path: Path, engine: Counting, capfd: pytest.CaptureFixture[str]
) -> None:
    # A read-only dir is not read-only for root (CI), but a file in the way is for anyone.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a dir")
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    for directory in (blocker / "clips", readonly):
        unwritable = ClipCache(directory)
        clips = render_clips(engine, TEXTS[:2], VoiceSettings(), unwritable)
        assert list(clips) == TEXTS[:2] and all(clips.values())
        if directory == blocker / "clips" or os.geteuid() != 0:
            assert unwritable.last_error and str(directory) in unwritable.last_error
    assert capfd.readouterr() == ("", "")


def test_disk_full_leaves_no_temp_files(
    cache: ClipCache, engine: Counting, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module.os, "replace", full)
    monkeypatch.setattr(cache_module.os, "link", full)  # a rendered clip is linked into place
    clips = render_clips(engine, TEXTS[:2], VoiceSettings(), cache)
    assert all(clips.values())
    assert "No space left on device" in (cache.last_error or "")
    assert not [p for p in cache.directory.rglob("*") if p.is_file()]


def test_cache_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "env"))
    assert ClipCache().directory == tmp_path / "env"
    monkeypatch.delenv("VOICECOACH_CACHE_DIR")
    assert default_cache_dir().parts[-2:] == ("voicecoach", "clips")


def test_the_cache_stays_under_its_cap_removing_the_least_recently_used(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import time

    cache = ClipCache(tmp_path)
    keys = [f"{i:02x}" + "0" * 62 for i in range(12)]
    for i, key in enumerate(keys):
        assert cache.put(key, bytes([i]) * 10_000)
        os.utime(cache.path(key), (time.time() - 1000 + i, time.time() - 1000 + i))
    assert cache.get(keys[0]) is not None  # used just now: it must survive the pruning
    cache.max_bytes = 100_000
    removed = cache.prune()
    total = sum(p.stat().st_size for p in tmp_path.rglob("*.pcm"))
    assert removed > 0 and total <= 75_000
    assert cache.get(keys[0]) == bytes([0]) * 10_000
    assert cache.get(keys[1]) is None  # the oldest unused ones went first


def test_pruning_goes_on_when_another_process_removes_folders_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every shard folder vanishes just before this process lists it (another process pruned
    it, or the user cleared the cache): pruning is then simply nothing left to do, never a
    fault that fails the export writing the entry."""
    import shutil

    cache = ClipCache(tmp_path, max_bytes=50_000)
    keys = [f"{i:02x}" + "0" * 62 for i in range(12)]
    for i, key in enumerate(keys):
        assert cache.put(key, bytes([i]) * 10_000)
    listing = cache_module._listing

    def vanishing(folder: Path) -> list[os.DirEntry[str]]:
        if folder != tmp_path:
            shutil.rmtree(folder, ignore_errors=True)
        return listing(folder)

    monkeypatch.setattr(cache_module, "_listing", vanishing)
    assert cache.prune() == 0
    assert cache.put("ff" + "0" * 62, b"x" * 10_000)  # and writing goes on


# -- one clip per cue, whoever renders it ------------------------------------------------------


def test_the_first_clip_stored_is_the_one_every_renderer_goes_on_with(tmp_path: Path,
                                                                   monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cache = ClipCache(tmp_path)
    first, second = b"\x01\x00" * 100, b"\x02\x00" * 101
    assert cache.adopt("ab" * 32, first) == first
    assert cache.adopt("ab" * 32, second) == first and cache.get("ab" * 32) == first
    # A damaged entry is no clip to go on with: the new one replaces it.
    path = cache.path("ab" * 32)
    path.write_bytes(path.read_bytes()[:-1])
    assert cache.adopt("ab" * 32, second) == second and cache.get("ab" * 32) == second
    # A file system without hard links: the entry is replaced, as `put` does.
    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(cache_module.os, "link", no_links)
    assert cache.adopt("cd" * 32, first) == first and cache.get("cd" * 32) == first
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")], "temporaries left"


_RENDER = """
import json, sys
from voicecoach.speech import VoiceSettings, get_engine, render_clips
from voicecoach.storage.cache import ClipCache
texts = json.loads(sys.argv[1])
clips = render_clips(get_engine(None), texts, VoiceSettings(), ClipCache())
print(json.dumps({t: len(clips[t]) for t in texts}))
"""


def test_processes_rendering_the_same_cues_at_once_time_them_alike(tmp_path: Path) -> None:
    """espeak-ng renders a text a few samples differently after other texts: two processes that
    render the same cues at once, one having spoken something else first, must still time every
    cue alike, as every later run reading the cache does."""
    import json
    import subprocess
    import sys

    texts = [f"Hold the stretch for {n} breaths, then {word}." for n in range(2, 14)
             for word in ("relax", "let go")]
    env = {**os.environ, "VOICECOACH_CACHE_DIR": str(tmp_path / "cache")}
    runs = [subprocess.Popen([sys.executable, "-c", _RENDER, json.dumps(order)], env=env,
                             stdout=subprocess.PIPE, text=True)
            for order in (texts, ["A different opening sentence, said first.", *texts])]
    lengths = [json.loads(run.communicate(timeout=120)[0]) for run in runs]
    assert all(run.returncode == 0 for run in runs)
    later = json.loads(subprocess.run([sys.executable, "-c", _RENDER, json.dumps(texts)],
                                      env=env, capture_output=True, text=True, check=True).stdout)
    differ = {t: (lengths[0][t], lengths[1][t], later[t]) for t in texts
              if not lengths[0][t] == lengths[1][t] == later[t]}
    assert not differ, differ


RETRY_ROUTINE = """\
title: Retry
cautions: ["Stop if it hurts."]
defaults: {rest: 2s, countdown: 0}
exercises:
  - name: Arms up
    hold: 2s
  - name: Knees in
    hold: 2s
"""


def test_a_checked_retry_makes_the_track_from_the_clips_it_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a stale header, an export is made again from clips read and checked one by one.
    The cache is shared and capped: another process may prune or replace any entry between that
    read and the encoding. The retry makes the track from what it read and timed, never from a
    second visit to the cache (the clip spoken again would differ from the plan: an escaped
    StaleHeaders, seen as `internal error` after a full disk in the --oldest lane)."""
    from voicecoach import coach, speech
    from voicecoach.audio.ffmpeg import decode_pcm
    from voicecoach.audio.pcm import frames
    from voicecoach.export.tracks import ExportOptions, export_track

    monkeypatch.setenv("VOICECOACH_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "r.yaml").write_text(RETRY_ROUTINE, encoding="utf-8")
    routine = coach.load(tmp_path / "r.yaml")
    settings = coach.Settings()
    decision = coach.decide(routine, settings)
    with coach.render(decision, settings) as warm:  # every clip cached, as a first export leaves
        total = warm.audio.plan.total
    spoken_again: list[str] = []
    real = speech.render_clips

    def other_process_speaks(engine, texts, voice, cache, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Speech made after the read differs (as espeak-ng's does by a few samples).
        spoken_again.extend(texts)
        return {t: pcm + bytes(4) for t, pcm in real(engine, texts, voice, cache,
                                                     *args, **kwargs).items()}

    with coach.render(decision, settings, lazy="checked") as session:
        # Between the read and the encoding, another process prunes the whole cache, and
        # anything spoken from here on comes out different.
        for entry in (tmp_path / "cache").rglob("*"):
            if entry.is_file():
                entry.unlink()
        monkeypatch.setattr(speech, "render_clips", other_process_speaks)
        track = export_track(routine, session.audio, tmp_path / "out.mp3", ExportOptions())
    assert not spoken_again
    assert track.duration == pytest.approx(total / session.audio.plan.rate)
    assert frames(decode_pcm(tmp_path / "out.mp3")) == total
