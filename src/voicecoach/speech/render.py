"""Render the clips of many cues, reading what the clip cache already holds."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from voicecoach import cancel
from voicecoach.routine.wording import speakable
from voicecoach.speech.base import Engine, VoiceSettings, validate_settings
from voicecoach.storage.cache import ClipCache


def render_clips(
    engine: Engine,
    texts: Iterable[str],
    settings: VoiceSettings,
    cache: ClipCache | None = None,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, bytes]:
    """PCM for each distinct text: cached clips are read, the others synthesised and stored.

    on_progress(done, total) is called after each distinct text.
    """
    validate_settings(settings)
    unique = list(dict.fromkeys(texts))
    voice = engine.resolve_voice(settings.voice)
    clips: dict[str, bytes] = {}
    for done, text in enumerate(unique, 1):
        cancel.check()
        spoken = speakable(text)
        key = clip_key(engine, voice.id, text, settings)
        pcm = cache.get(key) if cache is not None else None
        if pcm is None:
            # Nothing left to say (a cue of emoji alone) is a clip of no length.
            pcm = engine.synthesize(spoken, settings) if spoken else b""
            if cache is not None:
                pcm = cache.adopt(key, pcm)
        clips[text] = pcm
        if on_progress is not None:
            on_progress(done, len(unique))
    return clips


def clip_key(engine: Engine, voice_id: str, text: str, settings: VoiceSettings) -> str:
    """The clip cache key of a cue's clip (`voice_id`: the voice as the engine resolves it)."""
    return ClipCache.key(speakable(text), engine=engine.name, engine_version=engine.version,
                         voice=voice_id, rate=settings.rate, volume=settings.volume)
