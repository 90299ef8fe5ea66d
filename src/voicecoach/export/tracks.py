"""Export a prepared routine: one chaptered MP3 (or one per exercise with a playlist), plus
captions."""

from __future__ import annotations

import datetime as _dt
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from voicecoach import cancel
from voicecoach.audio.pcm import SAMPLE_RATE
from voicecoach.errors import UserError, os_fault
from voicecoach.export import freshness
from voicecoach.export.mp3 import DEFAULT_BITRATE, encode_mp3
from voicecoach.export.outputs import STDOUT, OutputPlan
from voicecoach.export.stitch import write_stitched
from voicecoach.export.tags import Chapter, TrackTags, write_tags
from voicecoach.plan.timeline import Plan
from voicecoach.routine.durations import format_clock
from voicecoach.routine.model import Routine
from voicecoach.routine.names import slug
from voicecoach.routine.wording import fill
from voicecoach.storage import atomic

if TYPE_CHECKING:
    from voicecoach.audio.prepare import LazyPrepared, Prepared

Progress = Callable[[int], None]


#: The constant bit rates MPEG-2 Layer III (16, 22.05, 24 kHz) has: libmp3lame quietly gives
#: 160 for anything above, and the nearest step for anything between.
MPEG2_BITRATES = (32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)


@dataclass(frozen=True)
class ExportOptions:
    bitrate: int = DEFAULT_BITRATE
    transcript: bool = False
    #: Speech volume: levelling brings every cue to the track's loudness, so a volume could
    #: not change an export; only 1 is accepted, and --loudness sets the level.
    volume: float = 1.0
    #: Copy each cue's cached MP3 frames (voicecoach.export.stitch) instead of encoding the
    #: whole track; a track with a music bed is always encoded whole (it needs a mix).
    stitch: bool = True

    def __post_init__(self) -> None:
        if self.volume != 1.0:
            raise UserError("--volume is for live play: every cue of an export is levelled to "
                            "the track's loudness", fix="set the level with --loudness, e.g. "
                            "--loudness=-14 (louder) or --loudness=-20")
        if self.bitrate not in MPEG2_BITRATES:
            choices = ", ".join(map(str, MPEG2_BITRATES))
            raise UserError(f"--bitrate {self.bitrate}: a {SAMPLE_RATE / 1000:g} kHz MP3 cannot "
                            f"carry it", fix=f"choose one of {choices} kbit/s")


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
    prepared: Prepared | LazyPrepared,
    dest: Path,
    options: ExportOptions,
    on_progress: Progress | None = None,
    key: str | None = None,
) -> Track:
    """The whole routine as one MP3 with a chapter per exercise; `key` (see
    voicecoach.export.freshness) is stored in its tags with the digests of what is written."""
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
    lrc = dest.with_suffix(".lrc")
    companions = {lrc.name: lrc_text(plan, routine.title)} if options.transcript else {}

    finish = partial(_finish, tags=tags, key=key, companions=companions)
    if options.stitch and prepared.stitchable:
        with atomic.atomic_target(dest) as tmp:
            write_stitched(plan, prepared.clips, prepared.chimes, tmp,
                           bitrate=options.bitrate, cache=prepared.cache,
                           on_progress=on_progress)
            cancel.stage("tagging")
            finish(tmp)
            cancel.check()
    else:
        encode_mp3(prepared.stream(), dest, bitrate=options.bitrate, rate=plan.rate,
                   finish=finish, on_progress=on_progress)
    extras: tuple[Path, ...] = ()
    if options.transcript:
        atomic.write_text(lrc, companions[lrc.name])
        extras = (lrc,)
    return Track(dest, plan.duration, dest.stat().st_size, chapters, extras)


def export_split(
    routine: Routine,
    prepared: Prepared | LazyPrepared,
    folder: Path,
    options: ExportOptions,
    on_progress: Progress | None = None,
    key: str | None = None,
) -> list[Track]:
    """One MP3 per chapter (introduction, then each exercise) and an .m3u playlist in `folder`.
    Every part carries `key` and the digests of its transcript and of the playlist (made first
    for that), so a part is only as fresh as the whole set."""
    plan = prepared.plan
    parts = plan.chapters()
    names = part_names([title for title, _, _ in parts])
    playlist_text = m3u_text([Track(folder / name, (end - start) / plan.rate, 0)
                              for (_, start, end), name in zip(parts, names, strict=True)],
                             routine.title)
    # The parts are one set: made in a folder beside, then swapped in whole, so an interrupt
    # leaves the old set or the new one, never new parts beside old ones and an old playlist.
    with atomic.replaced_folder(folder) as work:
        tracks = [_write_part(plan, routine, prepared, work / name, number, len(parts),
                              (title, start, end), playlist_text, options, on_progress, key)
                  for number, ((title, start, end), name)
                  in enumerate(zip(parts, names, strict=True), 1)]
        playlist = work / playlist_name(routine.id)
        atomic.write_text(playlist, playlist_text)
    tracks = [Track(folder / t.path.name, t.duration, t.size, t.chapters,
                    tuple(folder / e.name for e in t.extras)) for t in tracks]
    return [*tracks[:-1], _with_extra(tracks[-1], folder / playlist.name)] if tracks else tracks


def _write_part(plan: Plan, routine: Routine, prepared: Prepared | LazyPrepared, dest: Path,
                number: int, count: int, part: tuple[str, int, int], playlist_text: str,
                options: ExportOptions, on_progress: Progress | None, key: str | None) -> Track:
    title, start, end = part
    lrc = dest.with_suffix(".lrc")
    companions = {playlist_name(routine.id): playlist_text}
    if options.transcript:
        companions[lrc.name] = lrc_text(plan, title, start, end)
    tags = TrackTags(title=title, album=routine.title, year=_dt.date.today().year,
                     comment=_comment(routine), track=(number, count),
                     length_ms=_ms(plan, end - start))
    encode_mp3(prepared.stream(start, end), dest, bitrate=options.bitrate, rate=plan.rate,
               finish=partial(_finish, tags=tags,
                              key=None if key is None else freshness.part_key(key, dest.name),
                              companions=companions),
               on_progress=on_progress)
    extras: tuple[Path, ...] = ()
    if options.transcript:
        atomic.write_text(lrc, companions[lrc.name])
        extras = (lrc,)
    return Track(dest, (end - start) / plan.rate, dest.stat().st_size, (), extras)


def check_split_folder(folder: Path, routine_id: str) -> None:
    """A --split folder holds one routine's set, replaced whole: refuse one that holds another
    routine's parts or files that are not parts (they would go with the old set)."""
    try:
        entries = sorted(p.name for p in folder.iterdir())
    except FileNotFoundError:
        return
    except OSError:
        return  # unreadable or not a folder: the output checks and the write say why
    own = playlist_name(routine_id)
    for name in entries:
        if name.endswith(".m3u") and name != own:
            raise UserError(f"{folder}: holds the parts of another routine ({name})",
                            fix=f"give each routine its own folder, e.g. -o {routine_id}")
    foreign = [n for n in entries if n != own and not _PART.match(n) and not atomic.is_temporary(n)]
    if foreign:
        raise UserError(f"{folder}: holds files that are not parts of {routine_id} "
                        f"(e.g. {foreign[0]}); --split replaces the folder's set whole",
                        fix=f"choose a new or empty folder, e.g. -o {routine_id}")


#: The names part_names gives (and their transcripts).
_PART = re.compile(r"^\d{2,}-[\w-]+\.(mp3|lrc)$")


def _finish(tmp: Path, *, tags: TrackTags, key: str | None, companions: dict[str, str]) -> None:
    if key is None:
        write_tags(tmp, tags)
        return
    check = freshness.check_value(companions)
    write_tags(tmp, replace(tags, extra={**tags.extra, freshness.KEY_TAG: key,
                                         freshness.CHECK_TAG: check}))
    try:
        freshness.seal(tmp)
    except OSError as exc:
        raise os_fault(exc, f"writing tags to {tmp.name}") from None


def expected_files(
    routine: Routine, plan: Plan, dest: Path, options: ExportOptions, *, split: bool
) -> list[tuple[Path, tuple[Path, ...]]]:
    """Each MP3 an export writes with the companions it vouches for (`plan` may be an estimate)."""
    if split:
        playlist = dest / playlist_name(routine.id)
        names = part_names([title for title, _, _ in plan.chapters()])
        return [(dest / n, (playlist, *([(dest / n).with_suffix(".lrc")] if options.transcript
                                        else []))) for n in names]
    return [(dest, (dest.with_suffix(".lrc"),) if options.transcript else ())]


def read_back(
    routine: Routine, plan: Plan, dest: Path, options: ExportOptions, *, split: bool
) -> list[Track]:
    """The tracks an export to `dest` wrote, as it described them when made, read from disk:
    each MP3's size from stat, its length and chapters from its own tags, its extras named as
    export_track and export_split name them. OSError or ValueError when a file is not there or
    its tag is not export's."""
    tracks = []
    for mp3, _ in expected_files(routine, plan, dest, options, split=split):
        timing = freshness.read_timing(mp3)
        extras = (mp3.with_suffix(".lrc"),) if options.transcript else ()
        tracks.append(Track(mp3, timing.length_ms / 1000, mp3.stat().st_size, timing.chapters,
                            extras))
    if split and tracks:
        tracks[-1] = _with_extra(tracks[-1], dest / playlist_name(routine.id))
    return tracks


def part_names(titles: list[str]) -> list[str]:
    """The file names of --split parts: numbered, so they sort and never collide."""
    width = max(2, len(str(len(titles))))
    return [f"{n:0{width}d}-{safe_name(t, f'part-{n}')}.mp3" for n, t in enumerate(titles, 1)]


def playlist_name(routine_id: str) -> str:
    return f"{safe_name(routine_id, 'routine')}.m3u"


def plan_outputs(
    outputs: OutputPlan, routine: Routine, plan: Plan, dest: Path, options: ExportOptions,
    *, split: bool,
) -> None:
    """Add every file this export will write to `outputs` (checked before any speech is made);
    `plan` may be an estimate: the chapter titles do not depend on speech lengths."""
    if dest == STDOUT:
        if split or options.transcript:
            raise UserError("-o - sends one MP3 to standard output; --split and --transcript "
                            "need files", fix="give a file or folder name with -o")
        outputs.write("track", dest)
        return
    if split:
        outputs.fill("output of --split", dest)
        check_split_folder(dest, routine.id)
        for name in part_names([title for title, _, _ in plan.chapters()]):
            outputs.write("track", dest / name)
            if options.transcript:
                outputs.write("transcript", (dest / name).with_suffix(".lrc"))
        outputs.write("playlist", dest / playlist_name(routine.id))
        return
    outputs.write("track", dest, suffix=".mp3")
    if options.transcript:
        outputs.write("transcript", dest.with_suffix(".lrc"))


def export_to_stream(
    routine: Routine,
    prepared: Prepared | LazyPrepared,
    stream: BinaryIO,
    options: ExportOptions,
    on_progress: Progress | None = None,
) -> Track:
    """The track with its chapters, written to `stream` (e.g. a pipe). It is made in a seekable
    temporary file first: written to a pipe, ffmpeg could not add the header that makes the
    track decode to its exact length, nor could the chapters be tagged."""
    with tempfile.TemporaryDirectory(prefix="voicecoach-") as folder:
        track = export_track(routine, prepared, Path(folder) / "track.mp3", options, on_progress)
        with track.path.open("rb") as made:
            shutil.copyfileobj(made, stream, 1 << 16)
        stream.flush()
    return Track(STDOUT, track.duration, track.size, track.chapters, ())


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
            lines.append(
                f"[{minutes:02d}:{rest // 100:02d}.{rest % 100:02d}]{_one_line(event.text)}"
            )
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
