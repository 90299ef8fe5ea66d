"""Prepare a routine for listening: speak every cue once, level it, and time the plan from the
clips."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voicecoach import cancel
from voicecoach.audio.pcm import frames
from voicecoach.plan.timeline import Plan, PlanOptions, build_plan
from voicecoach.routine.model import Routine
from voicecoach.storage.spool import ClipStore

if TYPE_CHECKING:
    from voicecoach.audio.mix import ClipInfo, Mixer
    from voicecoach.audio.options import SoundOptions
    from voicecoach.speech import Engine, VoiceSettings
    from voicecoach.storage.cache import ClipCache

Notify = Callable[[int], None]


@dataclass(frozen=True)
class Prepared:
    """A plan timed from real clips, the clips as heard (levelled s16le mono PCM by text), and
    the mixer that adds chimes and music to them."""

    plan: Plan
    clips: Mapping[str, bytes]
    mixer: Mixer
    #: Where an export keeps each cue's encoded MP3 frames (voicecoach.export.stitch).
    cache: ClipCache | None = None

    def stream(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The audio of frames [start, end) as s16le mono PCM chunks: what export encodes and
        live play sends to the speakers, so both are always the same."""
        return self.mixer.stream(start, end)

    def close(self) -> None:
        """Let go of the temporary files (clips, music) now rather than at exit."""
        self.mixer.close()


def check_speech(engine: Engine, settings: VoiceSettings) -> None:
    """Refuse what a render would refuse (rate, volume, an unknown voice), without rendering:
    an estimate must not accept options the real thing rejects."""
    from voicecoach.speech.base import validate_settings

    validate_settings(settings)
    engine.resolve_voice(settings.voice)


def timed_plan(
    routine: Routine,
    options: PlanOptions,
    *,
    engine: Engine,
    settings: VoiceSettings,
    cache: ClipCache,
    on_clip: Notify | None = None,
    sound: SoundOptions | None = None,
) -> Plan:
    """The plan timed from real speech, without preparing the audio (for `show` and `list`):
    only the clips' lengths are kept."""
    return _render_and_plan(routine, options, engine, settings, cache, on_clip, sound,
                            _Lengths(), None)


class _Lengths:
    """Stands in for a ClipStore when only each clip's length matters."""

    def __init__(self) -> None:
        self._frames: dict[str, int] = {}

    def add(self, text: str, pcm: bytes) -> None:
        self._frames[text] = frames(pcm)

    def frames(self, text: str) -> int:
        return self._frames[text]

    def __contains__(self, text: object) -> bool:
        return text in self._frames

    def __len__(self) -> int:
        return len(self._frames)


def prepare(
    routine: Routine,
    options: PlanOptions,
    *,
    engine: Engine,
    settings: VoiceSettings,
    cache: ClipCache,
    on_clip: Notify | None = None,
    sound: SoundOptions | None = None,
) -> Prepared:
    """Render (or fetch from the cache) each distinct cue, build the plan from their lengths,
    then make the session's sound: every cue at one loudness, chimes, the music bed, and one
    level for all of it that brings the track to the loudness target (see voicecoach.audio.mix).

    The planner asks for lengths as it goes; a text it has not seen yet is rendered on the spot,
    so the plan is sample-exact and nothing is synthesised that the plan does not use."""
    from voicecoach.audio.mix import make_sound
    from voicecoach.audio.options import SoundOptions

    sound = sound or SoundOptions()
    raw = ClipStore()
    infos: dict[str, ClipInfo] = {}
    try:
        plan = _render_and_plan(routine, options, engine, settings, cache, on_clip, sound, raw,
                                infos)
        mixer = make_sound(plan, raw, infos, sound, cache)  # owns `raw` from here on
    except BaseException:
        raw.close()
        raise
    return Prepared(plan, mixer.clips, mixer, cache)


def _render_and_plan(
    routine: Routine,
    options: PlanOptions,
    engine: Engine,
    settings: VoiceSettings,
    cache: ClipCache,
    on_clip: Notify | None,
    sound: SoundOptions | None,
    clips: ClipStore | _Lengths,
    infos: dict[str, ClipInfo] | None,
) -> Plan:
    from voicecoach.audio.mix import analyse
    from voicecoach.speech import render_clips

    if sound is not None:
        options = sound.plan_options(options)
    cancel.stage("speaking")

    def measure(text: str) -> int:
        if text not in clips:
            raw = render_clips(engine, [text], settings, cache)[text]
            clips.add(text, raw)
            if infos is not None:
                infos[text] = analyse(raw, cache)
            if on_clip is not None:
                on_clip(len(clips))
        return clips.frames(text)

    return build_plan(routine, options, measure)
