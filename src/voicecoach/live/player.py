"""Play a prepared routine live: the sound device's clock is the timeline's clock."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Protocol

from voicecoach import cancel
from voicecoach.audio.pcm import silence
from voicecoach.errors import Fault, VoicecoachError
from voicecoach.live.transport import (
    FADE_MS,
    MAX_GAIN_DB,
    MIN_GAIN_DB,
    RESTART_GRACE,
    VOLUME_STEP_DB,
    Mark,
    Onset,
    PlayerState,
    Record,
    SessionResult,
    Skip,
    Transport,
    exercise_start,
    scale,
    sections,
)

#: What the player reports and its limits come from the transport; they are part of its API.
__all__ = ["FADE_MS", "MAX_GAIN_DB", "MIN_GAIN_DB", "RESTART_GRACE", "VOLUME_STEP_DB", "Mark",
           "NoSoundDevice", "Onset", "Player", "PlayerState", "Record", "SessionResult",
           "Skip", "Transport", "exercise_start", "open_device", "scale", "sections"]

if TYPE_CHECKING:
    from voicecoach.audio.prepare import LazyPrepared, Prepared

#: Frames the device asks for at a time. Small, so commands act within ~10 ms and onsets are
#: stamped finely; the device keeps one or two more periods queued against scheduling hiccups.
PERIOD_MS = 10
#: --audio: the platform's sound system, miniaudio's silent real-time null device, or a backend.
AUDIO_CHOICES = ("default", "none", "pulseaudio", "alsa", "jack", "oss", "sndio", "coreaudio",
                 "wasapi", "dsound", "winmm")



class NoSoundDevice(Fault):
    """The sound system would not open a playback device. A fault (exit 1), not a user error:
    the command was right, this machine cannot do it; the line says what will work instead."""

    detail = ""


class Device(Protocol):
    """What the player needs of a miniaudio PlaybackDevice."""

    def start(self, callback_generator: Generator[bytes, int, None]) -> None: ...

    def close(self) -> None: ...


#: (sample rate, period in ms) -> an opened, not yet started device.
DeviceFactory = Callable[[int, int], Device]


def open_device(audio: str, rate: int, period_ms: int = PERIOD_MS) -> Device:
    """A mono s16 playback device; NoSoundDevice (one line, no library noise) if none opens."""
    import miniaudio

    from voicecoach.speech.base import quiet_output

    backend = miniaudio.Backend
    if audio == "none":
        backends = [backend.NULL]
    elif audio == "default":
        # miniaudio's own default list ends with the null device: never fall back to silence.
        backends = [b for b in backend if b not in (backend.NULL, backend.CUSTOM)]
    else:
        backends = [backend[audio.upper()]]
    failed = ""
    with quiet_output():  # ALSA prints a page of noise when there is no sound card
        try:
            return miniaudio.PlaybackDevice(  # type: ignore[no-any-return]
                output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=rate,
                buffersize_msec=period_ms, backends=backends, app_name="voicecoach",
            )
        except miniaudio.MiniaudioError as exc:
            # Leaving this block drops the half-made device, whose clean-up may print too.
            failed = str(exc)
    error = NoSoundDevice(
        "no sound device found" if audio in ("default", "none") else f"no {audio} sound device",
        fix="try `--audio none` to run silently, or `voicecoach export` to make an MP3",
    )
    error.detail = failed  # miniaudio's words, for --debug tracebacks and bug reports
    raise error


# --- the player -------------------------------------------------------------------------------


class Player:
    """Streams `prepared.stream(...)` to a device. Commands are thread-safe and take effect at the
    device's next period; the position is the count of timeline frames handed to the device."""

    def __init__(
        self,
        prepared: Prepared | LazyPrepared,
        *,
        audio: str = "default",
        start: int = 0,
        gain_db: float = 0.0,
        device_factory: DeviceFactory | None = None,
        tap: Callable[[bytes], None] | None = None,
        period_ms: int = PERIOD_MS,
    ) -> None:
        self.prepared = prepared
        self.plan = plan = prepared.plan
        self.rate = plan.rate
        self._factory = device_factory or (lambda rate, period: open_device(audio, rate, period))
        self._tap = tap
        self._period_ms = period_ms
        self._records: queue.SimpleQueue[Record] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._finished = threading.Event()
        self._device: Device | None = None
        self._started = False
        self._feeder = _Feeder(prepared.stream)
        self._error: BaseException | None = None
        #: The state machine; changed by the audio thread and by commands, always under _lock.
        self._t = Transport(plan, prepared.clips, self._feeder, start=start, gain_db=gain_db,
                            on_record=self._records.put, on_end=self._finished.set)
        self.log = self._t.log

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Open the device and start playing (NoSoundDevice if it cannot)."""
        from voicecoach.speech.base import quiet_output

        device = self._factory(self.rate, self._period_ms)
        generator = self._generator()
        next(generator)
        try:
            # The first audio is ready before the device asks for it: the first word is on time.
            self._feeder.start(self._t.position)
            self._feeder.wait_ready(5.0)
            with quiet_output():
                device.start(generator)
        except BaseException as exc:  # Ctrl-C or SIGTERM here too: leave no device or thread
            with quiet_output():
                device.close()
            self._feeder.close()
            if not isinstance(exc, Exception):
                raise
            raise NoSoundDevice("the sound device would not start",
                                fix="try `--audio none`, or `voicecoach export`") from exc
        self._device, self._started = device, True

    def wait(self, timeout: float | None = None) -> SessionResult | None:
        """The result once playback has ended (device closed), or None after `timeout`."""
        if not self._finished.wait(timeout):
            return None
        self.close()
        if isinstance(self._error, VoicecoachError):
            raise self._error
        if self._error is not None:
            raise Fault(f"live playback failed: {type(self._error).__name__}: {self._error}")
        return self.result()

    def close(self) -> None:
        """Stop (with a fade, if still playing) and release the device. Idempotent."""
        from voicecoach.speech.base import quiet_output

        with self._close_lock:
            device, self._device = self._device, None
            if device is not None:
                if not self._finished.is_set():
                    self.stop()
                    self._finished.wait(0.5)
                with quiet_output():
                    device.close()
            self._feeder.close()
            self._mark_done()

    def __enter__(self) -> Player:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def drain(self) -> list[Record]:
        """Onsets and marks since the last call, in order (for a view or an events file)."""
        out = []
        while True:
            try:
                out.append(self._records.get_nowait())
            except queue.Empty:
                return out

    # -- commands (any thread) ---------------------------------------------------------------

    def pause(self) -> None:
        with self._lock:
            self._t.pause()

    def resume(self) -> None:
        with self._lock:
            self._t.resume()

    def toggle_pause(self) -> None:
        with self._lock:
            self._t.toggle_pause()

    def stop(self) -> None:
        """Ask playback to fade out and end; returns at once (wait() or close() to finish)."""
        with self._lock:
            self._t.stop()
            if not self._started:
                self._t.finish(time.monotonic(), completed=False)

    def next_exercise(self) -> None:
        """Go to the next exercise's first cue; from the last one, to the closing words."""
        with self._lock:
            self._t.next_exercise()

    def previous_exercise(self) -> None:
        """Restart the current exercise; within RESTART_GRACE of its start, go to the one before."""
        with self._lock:
            self._t.previous_exercise()

    def repeat_last_cue(self) -> None:
        """Say the latest cue again, after the one being spoken if any; the timeline waits."""
        # Read the candidate clips here, not in the audio callback: reading may wait on disk.
        with self._lock:
            wanted = self._t.repeat_candidates(self._t.position)
        clips = {text: bytes(self.prepared.clips[text]) for text in wanted}
        with self._lock:
            for text, clip in clips.items():
                self._t.keep_clip(text, clip)
            self._t.repeat_last_cue()

    def volume_up(self) -> None:
        self.set_gain(self._t.gain_db + VOLUME_STEP_DB)

    def volume_down(self) -> None:
        self.set_gain(self._t.gain_db - VOLUME_STEP_DB)

    def set_gain(self, db: float) -> None:
        with self._lock:
            self._t.set_gain(db)

    # -- snapshots ---------------------------------------------------------------------------

    def state(self) -> PlayerState:
        with self._lock:
            return self._t.state()

    def result(self) -> SessionResult:
        with self._lock:
            return self._t.result()

    # -- the audio thread --------------------------------------------------------------------

    def _generator(self) -> Generator[bytes, int, None]:
        frames = yield b""
        while True:
            now = time.monotonic()
            try:
                with self._lock:
                    out = self._t.fill(frames, now)
                if self._tap is not None:
                    self._tap(out)
            except Exception as exc:  # an exception here would only be printed by cffi
                with self._lock:
                    self._error = exc
                    self._t.finish(now, completed=False)
                out = silence(frames)
            frames = yield out

    def _mark_done(self) -> None:
        with self._lock:
            self._t.finish(time.monotonic(), completed=False)


class _Feeder:
    """Reads `stream(start)` a few chunks ahead on its own thread, so the audio callback only
    copies bytes: making a chunk (clips read back from disk, music mixed in) may take longer than
    a device period. A restart (a seek) drops what was read ahead."""

    AHEAD = 2  # chunks of timeline.CHUNK_FRAMES: about 3 s

    def __init__(self, stream: Callable[[int], Iterator[bytes]]) -> None:
        self._stream = stream
        self._cond = threading.Condition(threading.Lock())
        self._chunks: deque[bytes] = deque()
        self._generation = 0
        self._start = 0
        self._ended = self._closed = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self, start: int) -> None:
        self._start = start
        self._thread = threading.Thread(target=self._run, name="voicecoach-feeder", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not (self._chunks or self._ended) and time.monotonic() < deadline:
                cancel.check()
                self._cond.wait(cancel.POLL)

    def restart(self, start: int) -> None:
        with self._cond:
            self._generation += 1
            self._start = start
            self._chunks.clear()
            self._ended = False
            self._cond.notify_all()

    def take(self) -> bytes | None:
        """The next chunk; None if it is not ready yet; b"" at the end of the stream."""
        with self._cond:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._cond.notify_all()
                return chunk
            if self._error is not None:
                raise self._error
            return b"" if self._ended else None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        generation, start = -1, 0
        source: Iterator[bytes] | None = None
        while True:
            with self._cond:
                def wanted(seen: int = generation) -> bool:
                    return self._closed or self._generation != seen or (
                        not self._ended and len(self._chunks) < self.AHEAD)

                self._cond.wait_for(wanted)
                if self._closed:
                    return
                if self._generation != generation:
                    generation, start, source = self._generation, self._start, None
            try:
                if source is None:
                    source = self._stream(start)
                chunk = next(source, None)  # the slow part, outside the lock
            except cancel.Interrupted:
                # The main thread is stopping the session: the stream is not at its end (that
                # would count as completed), it just has no more to give.
                return
            except Exception as exc:
                with self._cond:
                    self._error, self._ended = exc, True
                    self._cond.notify_all()
                return
            with self._cond:
                if generation != self._generation:
                    continue  # a seek came meanwhile: this chunk is of the old place
                if chunk is None:
                    self._ended = True
                else:
                    self._chunks.append(chunk)
                self._cond.notify_all()


