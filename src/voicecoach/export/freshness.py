"""Whether an export's destination already holds what it would write: a key in the tags.

Every exported MP3 carries two ID3 TXXX frames:

- `voicecoach-key`: a digest of everything that makes the track what it is (routine content,
  plan options after safety and familiarity, sound and encoder options, engine, engine version,
  voice, voicecoach's version and FORMAT). It is computed from the inputs alone, before any
  speech, so checking costs a tag read.
- `voicecoach-check`: a digest of every byte of the MP3 but that digest's own 32 (the whole ID3
  tag: chapters, titles, the key, the check's own list; and the audio), then the digest of each
  companion file written with it (the .lrc transcript, the --split playlist). So an edited tag,
  a truncated or edited track, or a companion that an interruption left old or missing, is
  never taken for the track the key names. The tag is written with a blank digest of the same
  length, which `seal` then overwrites in place, before the file is renamed into place.

A file is trusted only when both agree; anything unreadable, foreign or damaged is rebuilt.
The .lrc and .m3u share their MP3's key: the MP3 records their digests, and it is written
before them, so an interruption between the two leaves an MP3 whose check fails.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from voicecoach.export.tags import Chapter

#: Bump when what a track holds for the same inputs changes (mixing, tagging, file layout).
FORMAT = 2
KEY_TAG = "voicecoach-key"
CHECK_TAG = "voicecoach-check"
_CHUNK = 1 << 20
#: The check's digest until `seal` writes the real one over it (same length: nothing moves).
_UNSEALED = b"0" * 32
#: The start of the check frame's body: Latin-1 (tags.py writes ASCII text so), so the digest
#: that follows sits at a byte offset the hand reader finds.
_CHECK_HEAD = b"\0" + CHECK_TAG.encode() + b"\0"


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def make_key(inputs: Mapping[str, object]) -> str:
    """The key of a track made from `inputs` (JSON-able values; paths as strings)."""
    text = json.dumps({"format": FORMAT, **inputs}, sort_keys=True, default=str,
                      ensure_ascii=False, separators=(",", ":"))
    return digest(text.encode())


def file_digest(path: Path) -> str:
    """The digest of a file's content (e.g. a music bed: the same path may hold a new song)."""
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def check_value(companions: Mapping[str, str]) -> str:
    """The `voicecoach-check` to tag a track with before `seal`: a blank digest, then the
    digests of its companions' texts by name."""
    files = {name: digest(text.encode()) for name, text in companions.items()}
    return f"{_UNSEALED.decode()} {json.dumps(files, sort_keys=True)}"


def part_key(key: str, name: str) -> str:
    """The key a --split part carries: the set's, and the part's own file name, so a part
    copied or moved over another of its set is not that part."""
    return f"{key} {name}"


def seal(track: Path) -> None:
    """Write the digest of every byte of `track` but the digest's own into its check value, in
    place (raises OSError, or ValueError for a track without a blank check)."""
    with track.open("r+b") as f:
        data = f.read()
        at, _ = _check(data)
        if data[at:at + len(_UNSEALED)] != _UNSEALED:
            raise ValueError(f"{track.name}: its check is not blank")
        f.seek(at)
        f.write(_whole_digest(data, at))


def is_fresh(track: Path, key: str, companions: Sequence[Path] = ()) -> bool:
    """True when `track` holds the key, no byte of it changed since it was sealed, and every
    companion it is asked for is the one written with it. Never raises: whatever cannot be
    read is not fresh."""
    try:
        data = track.read_bytes()
        if _txxx(data).get(KEY_TAG) != key:
            return False
        at, files = _check(data)
        if data[at:at + len(_UNSEALED)] != _whole_digest(data, at):
            return False
        return all(
            path.name in files and digest(path.read_bytes()) == files[path.name]
            for path in companions
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _whole_digest(data: bytes, at: int) -> bytes:
    """The digest of `data` with the check's digest at `at` blank, as 32 ASCII hex digits."""
    view = memoryview(data)
    h = hashlib.blake2b(digest_size=16)
    h.update(view[:at])
    h.update(_UNSEALED)
    h.update(view[at + len(_UNSEALED):])
    return h.hexdigest().encode()


def _check(data: bytes) -> tuple[int, dict[str, str]]:
    """Where the one check frame's digest starts in `data`, and the companions' digests its
    value lists."""
    found = [(start, body) for name, start, body in _frames(data)
             if name == b"TXXX" and body.startswith(_CHECK_HEAD)]
    if len(found) != 1:
        raise ValueError("not exactly one check frame")
    start, body = found[0]
    value = body[len(_CHECK_HEAD):].decode("ascii").rstrip("\0")
    blank, space, files = value.partition(" ")
    if len(blank) != len(_UNSEALED) or not space:
        raise ValueError("a check value of another layout")
    listed = json.loads(files)
    if not isinstance(listed, dict):
        raise ValueError("a check value of another layout")
    return start + len(_CHECK_HEAD), listed


def _id3_size(data: bytes) -> int:
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = 0
    for byte in data[6:10]:
        if byte & 0x80:
            raise ValueError("not a syncsafe ID3 size")
        size = size << 7 | byte
    footer = 10 if data[5] & 0x10 else 0
    return 10 + size + footer


def _txxx(data: bytes) -> dict[str, str]:
    """The TXXX frames of the tag by description."""
    found: dict[str, str] = {}
    for name, _, body in _frames(data):
        if name == b"TXXX" and body[:1] in _TEXT:
            codec, nul = _TEXT[body[:1]]
            desc, value = _split(body[1:], nul)
            found[desc.decode(codec)] = value.decode(codec).rstrip("\0")
    return found


def _frames(data: bytes, start: int = 10,
            end: int | None = None) -> Iterator[tuple[bytes, int, bytes]]:
    """The (name, body offset, body) of each ID3v2.3 frame in data[start:end] (by default the
    whole tag; nothing for a tag export does not write). Read by hand: the check must cost no
    more than reading the file, and a foreign tag only has to be found not ours."""
    if end is None:
        if data[:3] != b"ID3" or data[3] != 3 or data[5] & 0xC0:
            return  # another version, unsynchronised or an extended header: not export's
        end = _id3_size(data)
    pos = start
    while pos + 10 <= end and data[pos:pos + 4] != b"\0\0\0\0":
        size = int.from_bytes(data[pos + 4:pos + 8], "big")
        yield data[pos:pos + 4], pos + 10, data[pos + 10:pos + 10 + size]
        pos += 10 + size


@dataclass(frozen=True)
class Timing:
    """What a track's own tags say of its time: TLEN, and its CHAP frames in time order."""

    length_ms: int
    chapters: tuple[Chapter, ...]


def read_timing(track: Path) -> Timing:
    """The length and chapters an exported MP3 is tagged with, from its tag alone (an
    up-to-date export describes what is on disk without decoding it). ValueError when the tag
    has no length; OSError when the file cannot be read."""
    with track.open("rb") as f:
        head = f.read(10)
        data = head + f.read(max(0, _id3_size(head) - 10))
    length: int | None = None
    chapters = []
    for name, _, body in _frames(data):
        if name == b"TLEN":
            length = int(_text(body))
        elif name == b"CHAP":
            at = body.index(b"\0") + 1
            start, end = (int.from_bytes(body[i:i + 4], "big") for i in (at, at + 4))
            title = next((_text(sub) for sub_name, _, sub in _frames(body, at + 16, len(body))
                          if sub_name == b"TIT2"), "")
            chapters.append(Chapter(title, start, end))
    if length is None:
        raise ValueError(f"{track.name}: no TLEN frame")
    return Timing(length, tuple(sorted(chapters, key=lambda c: (c.start_ms, c.end_ms))))


def _text(body: bytes) -> str:
    """A text frame's value (its first string)."""
    if body[:1] not in _TEXT:
        raise ValueError("text frame in an encoding export does not write")
    codec, _ = _TEXT[body[:1]]
    return body[1:].decode(codec).split("\0")[0]


#: ID3v2.3 text encodings (mutagen writes UTF-8 text as UTF-16 in a v2.3 tag).
_TEXT = {b"\x00": ("latin-1", b"\0"), b"\x01": ("utf-16", b"\0\0")}


def _split(body: bytes, nul: bytes) -> tuple[bytes, bytes]:
    """A TXXX body's description and value, split at the first terminator on a character edge."""
    step = len(nul)
    for at in range(0, len(body) - step + 1, step):
        if body[at:at + step] == nul:
            return body[:at], body[at + step:]
    raise ValueError("TXXX without a terminated description")
