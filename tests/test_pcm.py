"""The one audio format: byte counts of PCM are reckoned in audio/pcm.py and nowhere else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from voicecoach.audio import pcm

SRC = Path(__file__).resolve().parents[1] / "src" / "voicecoach"
#: Byte math on PCM with bytes-per-sample written as a number: len(x) // 2, n * 2 inside a
#: slice, bytes(), read(), seek() or ctypes.string_at(), x // 2 * 2, a module's own
#: bytes-per-sample constant.
BYTE_MATH = re.compile(
    r"len\([^()]*\)\s*(//|/|%)\s*2\b|(BYTES|WIDTH)\w*\s*=\s*2\b"
    r"|(bytes|read|seek|truncate|string_at)\((?:[^()]|\([^()]*\))*\*\s*2\b"
    r"|\[[^\[\]]*\*\s*2\s*:|:\s*[^\[\]:]*\*\s*2\s*\]"
    r"|//\s*2\s*\*\s*2\b|\b2\s*\*\s*(len|frames|n|k|count)\b"
)
#: Owned by the encoder and decoder work (issue 12's last step leaves them to it).
NOT_YET: set[str] = set()


def test_counts_and_buffers() -> None:
    assert pcm.nbytes(5) == 5 * pcm.SAMPLE_WIDTH
    assert pcm.frames(pcm.silence(7)) == 7 and set(pcm.silence(7)) == {0}
    assert pcm.frames(memoryview(bytes(9))) == 4
    assert pcm.whole(b"\x01\x02\x03") == b"\x01\x02"
    assert pcm.whole(b"\x01\x02") == b"\x01\x02"


@pytest.mark.parametrize("line", ["x = data[: len(data) // 2 * 2]", "out += bytes(left * 2)",
                                  "clip = clip[: said.speech * 2]", "k = len(pcm) // 2",
                                  "f.seek(frame * 2)", "ctypes.string_at(wav, count * 2)",
                                  "return pcm[start * 2 : end * 2]",
                                  "SAMPLE_BYTES = 2", "pcm[: len(pcm) - len(pcm) % 2]"])
def test_the_sweep_sees_byte_math(line: str) -> None:
    assert BYTE_MATH.search(line)


def test_no_module_reckons_pcm_bytes_itself() -> None:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        name = path.relative_to(SRC).as_posix()
        if name == "audio/pcm.py" or name in NOT_YET:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if BYTE_MATH.search(line.split("#")[0]):
                found.append(f"{name}:{number}: {line.strip()}")
    assert not found, "use voicecoach.audio.pcm (nbytes, frames, silence, whole):\n" + "\n".join(
        found)
