"""ID3v2.3 tags for exported tracks: title, artist, album, track, year, comment, chapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from voicecoach.errors import Fault, os_fault


@dataclass(frozen=True)
class Chapter:
    title: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class TrackTags:
    title: str
    album: str
    year: int
    comment: str | None = None
    track: tuple[int, int] | None = None
    length_ms: int = 0
    chapters: tuple[Chapter, ...] = ()
    cover_png: bytes | None = None
    artist: str = "voicecoach"
    extra: dict[str, str] = field(default_factory=dict)


def write_tags(path: Path, tags: TrackTags) -> None:
    """Replace any tag in `path` with an ID3v2.3 tag; chapters get a CTOC that lists them in
    order."""
    from mutagen.id3 import (
        APIC,
        CHAP,
        COMM,
        CTOC,
        TALB,
        TCON,
        TDRC,
        TIT2,
        TLEN,
        TPE1,
        TRCK,
        TXXX,
        CTOCFlags,
    )

    id3 = _time_ordered_id3()
    id3.add(TIT2(encoding=3, text=[tags.title]))
    id3.add(TPE1(encoding=3, text=[tags.artist]))
    id3.add(TALB(encoding=3, text=[tags.album]))
    id3.add(TDRC(encoding=3, text=[str(tags.year)]))
    id3.add(TCON(encoding=3, text=["Speech"]))
    if tags.length_ms:
        id3.add(TLEN(encoding=3, text=[str(tags.length_ms)]))
    if tags.track:
        id3.add(TRCK(encoding=3, text=[f"{tags.track[0]}/{tags.track[1]}"]))
    if tags.comment:
        id3.add(COMM(encoding=3, lang="eng", desc="", text=[tags.comment]))
    for key, value in tags.extra.items():
        # Plain text as Latin-1 (v2.3 would make UTF-8 UTF-16): freshness patches the check
        # value in place at a byte offset it finds by hand.
        encoding = 0 if (key + value).isascii() else 3
        id3.add(TXXX(encoding=encoding, desc=key, text=[value]))
    if tags.cover_png:
        id3.add(APIC(encoding=3, mime="image/png", type=3, desc="Cover", data=tags.cover_png))
    ids = [f"chp{i}" for i in range(len(tags.chapters))]
    if tags.chapters:
        id3.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                     child_element_ids=ids, sub_frames=[TIT2(encoding=3, text=["Exercises"])]))
        for element_id, chapter in zip(ids, tags.chapters, strict=True):
            id3.add(CHAP(element_id=element_id, start_time=chapter.start_ms,
                         end_time=chapter.end_ms, start_offset=0xFFFFFFFF, end_offset=0xFFFFFFFF,
                         sub_frames=[TIT2(encoding=3, text=[chapter.title])]))
    from mutagen import MutagenError

    try:
        # v2.3: some phone players drop chapters from v2.4 tags.
        id3.save(str(path), v2_version=3, padding=lambda info: 0)
    except OSError as exc:
        raise os_fault(exc, f"writing tags to {path.name}") from None
    except MutagenError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, OSError):
            raise os_fault(cause, f"writing tags to {path.name}") from None
        raise Fault(f"cannot write tags to {path.name}: {exc}") from None


def _time_ordered_id3():  # type: ignore[no-untyped-def]
    """An ID3 tag that writes its CHAP frames in time order, after every other frame.

    mutagen sorts frames it has no fixed place for by their size, so chapters came out of time
    order; ffmpeg lists chapters in file order and an .m4b made from the track then had chapters
    of zero length."""
    from mutagen.id3 import ID3
    from mutagen.id3._tags import save_frame

    class TimeOrderedID3(ID3):
        def _write(self, config):  # type: ignore[no-untyped-def]
            chapters = sorted(self.getall("CHAP"), key=lambda c: (c.start_time, c.end_time))
            self.delall("CHAP")
            try:
                head = super()._write(config)
            finally:
                for chapter in chapters:
                    self.add(chapter)
            return head + b"".join(save_frame(c, config=config) for c in chapters)

    return TimeOrderedID3()
