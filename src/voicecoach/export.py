"""Export a prepared routine: one chaptered MP3 (or one per exercise with a playlist), plus captions."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from voicecoach import atomic
from voicecoach.cues import fill
from voicecoach.durations import format_clock
from voicecoach.encode import encode_mp3
from voicecoach.model import Routine
from voicecoach.names import slug
from voicecoach.plan import Plan
from voicecoach.session import Prepared
from voicecoach.tags import Chapter, TrackTags, write_tags

Progress = Callable[[int], None]


@dataclass(frozen=True)
class ExportOptions:
    bitrate: int = 64
    transcript: bool = False


@dataclass(frozen=True)
class Track:
    """One written MP3."""

    path: Path
    duration: float
    size: int
    chapters: tuple[Chapter, ...] = ()
    extras: tuple[Path, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "duration": round(self.duration, 3),
            "size": self.size,
            "chapters": [
                {"title": c.title, "start": c.start_ms / 1000, "end": c.end_ms / 1000}
                for c in self.chapters
            ],
            "extras": [str(p) for p in self.extras],
        }


def export_track(
    routine: Routine,
    prepared: Prepared,
    dest: Path,
    options: ExportOptions,
    on_progress: Progress | None = None,
) -> Track:
    """The whole routine as one MP3 with a chapter per exercise."""
    plan = prepared.plan
    chapters = tuple(
        Chapter(title, _ms(plan, start), _ms(plan, end)) for title, start, end in plan.chapters()
    )
    tags = TrackTags(
        title=routine.title,
        album=routine.title,
        year=_dt.date.today().year,
        comment=_comment(routine),
        track=(1, 1),
        length_ms=_ms(plan, plan.total),
        chapters=chapters,
        extra={"voicecoach routine": routine.id},
    )
    encode_mp3(
        prepared.stream(),
        dest,
        bitrate=options.bitrate,
        rate=plan.rate,
        finish=lambda tmp: write_tags(tmp, tags),
        on_progress=on_progress,
    )
    extras: tuple[Path, ...] = ()
    if options.transcript:
        lrc = dest.with_suffix(".lrc")
        atomic.write_text(lrc, lrc_text(plan, routine.title))
        extras = (lrc,)
    return Track(dest, plan.duration, dest.stat().st_size, chapters, extras)


def export_split(
    routine: Routine,
    prepared: Prepared,
    folder: Path,
    options: ExportOptions,
    on_progress: Progress | None = None,
) -> list[Track]:
    """One MP3 per chapter (introduction, then each exercise) and an .m3u playlist in `folder`."""
    plan = prepared.plan
    parts = plan.chapters()
    width = max(2, len(str(len(parts))))
    tracks = []
    for number, (title, start, end) in enumerate(parts, 1):
        name = f"{number:0{width}d}-{safe_name(title, f'part-{number}')}.mp3"
        dest = folder / name
        tags = TrackTags(
            title=title,
            album=routine.title,
            year=_dt.date.today().year,
            comment=_comment(routine),
            track=(number, len(parts)),
            length_ms=_ms(plan, end - start),
        )
        encode_mp3(
            prepared.stream(start, end),
            dest,
            bitrate=options.bitrate,
            rate=plan.rate,
            finish=lambda tmp, tags=tags: write_tags(tmp, tags),
            on_progress=on_progress,
        )
        extras: tuple[Path, ...] = ()
        if options.transcript:
            lrc = dest.with_suffix(".lrc")
            atomic.write_text(lrc, lrc_text(plan, title, start, end))
            extras = (lrc,)
        tracks.append(Track(dest, (end - start) / plan.rate, dest.stat().st_size, (), extras))
    playlist = folder / f"{safe_name(routine.id, 'routine')}.m3u"
    atomic.write_text(playlist, m3u_text(tracks, routine.title))
    return [*tracks[:-1], _with_extra(tracks[-1], playlist)] if tracks else tracks


def _with_extra(track: Track, extra: Path) -> Track:
    return Track(track.path, track.duration, track.size, track.chapters, (*track.extras, extra))


def _ms(plan: Plan, frames: int) -> int:
    return round(frames * 1000 / plan.rate)


def _comment(routine: Routine) -> str:
    parts = []
    if routine.source:
        parts.append(fill("Based on the article: {source}.", source=routine.source))
    if routine.description:
        parts.append(routine.description)
    parts.append("Made with voicecoach.")
    return " ".join(parts)


def lrc_text(plan: Plan, title: str, start: int = 0, end: int | None = None) -> str:
    """Every spoken cue of frames [start, end) at its time in that part, as LRC lyrics that
    phone players scroll along."""
    end = plan.total if end is None else end
    length = format_clock((end - start) / plan.rate)
    lines = [f"[ti:{_one_line(title)}]", "[ar:voicecoach]", f"[length:{length}]"]
    for event in plan.events:
        if event.text and start <= event.start < end:
            centis = round((event.start - start) * 100 / plan.rate)
            minutes, rest = divmod(centis, 6000)
            lines.append(f"[{minutes:02d}:{rest // 100:02d}.{rest % 100:02d}]{_one_line(event.text)}")
    return "\n".join(lines) + "\n"


def m3u_text(tracks: list[Track], title: str) -> str:
    lines = ["#EXTM3U", f"#PLAYLIST:{_one_line(title)}"]
    for track in tracks:
        lines.append(f"#EXTINF:{round(track.duration)},{_one_line(track.path.stem)}")
        lines.append(track.path.name)
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())


_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                     *(f"lpt{i}" for i in range(1, 10))}


def safe_name(text: str, fallback: str, limit: int = 60) -> str:
    """A file name part that is the same on every system: letters, digits and dashes only."""
    text = slug(text)[:limit].rstrip("-")
    if not text or text in _WINDOWS_RESERVED:
        return fallback
    return text
