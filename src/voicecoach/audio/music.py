"""A music bed: any file ffmpeg decodes, spooled once as PCM to a temporary file and read back in
loops, so a session of any length holds only the chunk being played in memory."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from voicecoach import cancel
from voicecoach.audio.ffmpeg import decode_command, last_line
from voicecoach.audio.loudness import (
    CELL,
    REACH_AFTER,
    REACH_BEFORE,
    cell_energies,
    gated,
    limiter_gain,
)
from voicecoach.audio.pcm import SAMPLE_RATE, frames_in, from_s16, nbytes, whole
from voicecoach.audio.pcm import to_s16 as _pcm
from voicecoach.errors import EncoderError, UserError, check_input, os_fault

#: Cells per read from the decoder: 6 s of audio.
_READ_CELLS = 60
#: Shorter music would buzz rather than loop.
MIN_SECONDS = 1.0
#: Each end of a looped piece is faded over this long, so the loop point does not click.
SEAM = 0.01


class MusicBed:
    """Decoded music (s16le mono SAMPLE_RATE) in a temporary file, and its loudness.

    Only the first `frames` frames are kept: music longer than the session is trimmed, shorter
    music loops. `cells` is the K-weighted energy of each 100 ms of the kept music."""

    def __init__(self, path: Path, frames: int) -> None:
        self.path = Path(path)
        check_input(self.path, "music file", fix="give the path of an audio file")
        # Open for the life of this object (closed by close()), not one block.
        self._file = tempfile.TemporaryFile(prefix="voicecoach-music-")  # noqa: SIM115
        self._lock = threading.Lock()
        try:
            self.length, cells = self._decode(max(1, frames))
        except BaseException:
            self._file.close()
            raise
        self.cells = cells
        self.loudness = gated(cells)
        if self.length < MIN_SECONDS * SAMPLE_RATE:
            self.close()
            raise UserError(f"the music in {path} is shorter than {MIN_SECONDS:g} s",
                            fix="use a longer piece: it is looped to the session's length")
        if self.loudness < -70:
            self.close()
            raise UserError(f"the music in {path} is silent", fix="choose another file")
        self.loops = self.length < frames
        if self.loops:
            self._soften_seam()

    def _decode(self, frames: int) -> tuple[int, np.ndarray]:
        cmd = decode_command(f"file:{self.path.resolve()}")
        with tempfile.TemporaryFile() as errors:
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=errors)
            except OSError as exc:
                raise EncoderError(f"could not start ffmpeg: {exc}") from None
            assert proc.stdout is not None
            got, energies, want = 0, [], nbytes(frames)
            stopped = False
            try:
                while got < want:
                    cancel.check()
                    data = proc.stdout.read(min(nbytes(_READ_CELLS * CELL), want - got))
                    if not data:
                        break
                    data = whole(data)
                    self._file.write(data)
                    got += len(data)
                    if got % nbytes(CELL) and got < want:
                        # Keep reads cell-aligned so each cell is measured whole.
                        rest = proc.stdout.read(nbytes(CELL) - got % nbytes(CELL))
                        self._file.write(rest)
                        data += rest
                        got += len(rest)
                    energies.append(cell_energies(from_s16(data)))
            except OSError as exc:
                raise os_fault(exc, "spooling the music") from None
            except cancel.Interrupted:
                stopped = True
                raise
            finally:
                trimmed = got >= want
                if trimmed or stopped:
                    proc.kill()
                proc.stdout.close()
                code = proc.wait()
            if code != 0 and not trimmed:
                errors.seek(0)
                reason = last_line(errors.read())
                raise UserError(f"cannot read the music in {self.path}: {reason}",
                                fix="give an audio file ffmpeg can decode: mp3, ogg, wav, m4a...")
        if got == 0:
            raise UserError(f"no audio in {self.path}", fix="give an audio file")
        frames_got = frames_in(min(got, want))
        self._file.truncate(nbytes(frames_got))
        cells = np.concatenate(energies) if energies else np.zeros(0)
        return frames_got, cells[: -(-frames_got // CELL)]

    def _soften_seam(self) -> None:
        n = min(round(SEAM * SAMPLE_RATE), self.length // 4)
        ramp = (np.arange(n) + 0.5) / n
        head = self.read(0, n) * ramp
        tail = self.read(self.length - n, n) * ramp[::-1]
        self._write_at(0, _pcm(head))
        self._write_at(self.length - n, _pcm(tail))

    def set_level(self, gain: float, ceiling: float) -> None:
        """Scale the spooled music by `gain` and limit it under `ceiling`, once, so the mix only
        needs limiting where a cue or chime sounds over it."""
        block = _READ_CELLS * CELL
        out = tempfile.TemporaryFile(prefix="voicecoach-music-")  # noqa: SIM115 (returned open)
        try:
            for lo in range(0, self.length, block):
                cancel.check()
                hi = min(self.length, lo + block)
                w_lo, w_hi = max(0, lo - REACH_BEFORE), min(self.length, hi + REACH_AFTER)
                window = self._linear(w_lo, w_hi - w_lo) * gain
                window = window * limiter_gain(window, ceiling)
                out.write(_pcm(window[lo - w_lo : hi - w_lo]))
            out.flush()
        except OSError as exc:
            out.close()
            raise os_fault(exc, "spooling the music") from None
        except BaseException:
            out.close()
            raise
        with self._lock:
            self._file.close()
            self._file = out

    # Seek and read under the lock rather than os.pread/os.pwrite, which Windows lacks.
    def _read_at(self, frame: int, n: int) -> bytes:
        with self._lock:
            self._file.seek(nbytes(frame))
            return self._file.read(nbytes(n))

    def _write_at(self, frame: int, data: bytes) -> None:
        with self._lock:
            try:
                self._file.seek(nbytes(frame))
                self._file.write(data)
                self._file.flush()
            except OSError as exc:
                raise os_fault(exc, "spooling the music") from None

    def _linear(self, start: int, n: int) -> np.ndarray:
        return from_s16(self._read_at(start, n))

    def read(self, start: int, n: int) -> np.ndarray:
        """n frames of the (looped) music from frame `start` of the session, as floats."""
        out = np.empty(n, dtype=np.float64)
        done = 0
        while done < n:
            at = (start + done) % self.length
            take = min(n - done, self.length - at)
            data = self._read_at(at, take)
            out[done : done + take] = np.frombuffer(data, "<i2")
            done += take
        out /= 32768.0
        return out

    def energy(self, starts: np.ndarray, lengths: np.ndarray | int) -> np.ndarray:
        """K-weighted energy of the music under session frames [start, start + length), from the
        per-cell measure (linear within a cell), following the loop."""
        edges = np.arange(len(self.cells) + 1) * CELL
        cum = np.concatenate([[0.0], np.cumsum(self.cells)])
        total = cum[-1]

        def upto(frame: np.ndarray) -> np.ndarray:
            laps, at = np.divmod(frame, self.length)
            return laps * total + np.interp(at, edges, cum)

        starts = np.asarray(starts, dtype=np.float64)
        return upto(starts + lengths) - upto(starts)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()



