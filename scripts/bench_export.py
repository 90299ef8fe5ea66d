"""Benchmark `voicecoach export` against ffmpeg alone encoding the same PCM, for 30 min and 2 h.

Run: .venv/bin/python scripts/bench_export.py [--repeat 3] [--encoder]
Every figure is measured in this run on this machine; the ratios are what matter.
Stitched exports (the default; issue 15), each a ratio to ffmpeg alone on the track's own PCM:
warm <= 0.1x (2 h) and <= 0.25x (30 min), one cue changed <= 0.3x (30 min), an unchanged
re-export (`up to date`) <= 0.5 s wall; `voicecoach --help` is timed too.
With --encoder, the whole-track encoder path (music beds use it; Settings(stitch=False)):
targets: warm <= 1.15x ffmpeg alone, cold <= 1.3x, peak RSS <= 150 MB for 2 h and within 20%
of the 30-minute figure. The same with a music bed (--music, a 3-minute piece the script makes,
looped): its cost is reported beside the plain export, and against ffmpeg alone encoding the
same mixed PCM (music keeps the encoder busier than speech and silence do).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from voicecoach import coach
from voicecoach.audio.pcm import SAMPLE_RATE
from voicecoach.export.mp3 import _command

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_routines import write_routine


def _child_cpu() -> float:
    """User + system CPU seconds of every child waited for so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(cmd: list[str], env: dict[str, str] | None = None,
          stdin: Path | None = None) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one command run to its end. CPU is the steadier
    figure on a shared, loaded machine: waiting for a core counts in wall time only."""
    cpu, start = _child_cpu(), time.perf_counter()
    with (stdin.open("rb") if stdin is not None else open(os.devnull, "rb")) as source:
        done = subprocess.run(cmd, env=env, stdin=source, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{cmd[:4]} failed: {done.stderr.decode()[-2000:]}")
    return wall, _child_cpu() - cpu


def _env(cache: Path) -> dict[str, str]:
    # Compiled modules are kept (as an installed package has them), in the run's own folder.
    env = {**os.environ, "VOICECOACH_CACHE_DIR": str(cache),
           "PYTHONPYCACHEPREFIX": str(cache.parent / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def export_times(routine: Path, out: Path, cache: Path, extra: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one export run as a user runs it."""
    return timed([sys.executable, "-m", "voicecoach", "export", str(routine), "-o", str(out),
                  "--quiet", *extra], _env(cache))


def run_export(
    routine: Path, out: Path, cache: Path, extra: list[str], watch: bool = False
) -> tuple[float, float]:
    """Wall time and peak RSS (MB, voicecoach's own process) of one export run as a user runs it.

    The peak is the kernel's VmHWM of the process, read from /proc while it runs (ru_maxrss is no
    use here: a forked child inherits its parent's high-water mark)."""
    env = {**os.environ, "VOICECOACH_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-m", "voicecoach", "export", str(routine), "-o", str(out), "--quiet",
           *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while proc.poll() is None:
        if watch:
            peak = max(peak, _hwm(proc.pid))
        time.sleep(0.02 if watch else 0.005)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        assert proc.stderr is not None
        sys.exit(f"export failed: {proc.stderr.read().decode()}")
    return elapsed, peak


def _hwm(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def ffmpeg_alone(frames: int, out: Path, pcm: bytes | None = None) -> float:
    """ffmpeg encoding the same length of PCM at the same settings, fed from a pipe."""
    pcm = _speechlike(frames) if pcm is None else pcm
    start = time.perf_counter()
    proc = subprocess.Popen(_command(out, 64, SAMPLE_RATE), stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    view = memoryview(pcm)
    for i in range(0, len(view), 1 << 20):
        proc.stdin.write(view[i : i + (1 << 20)])
    proc.stdin.close()
    proc.wait()
    return time.perf_counter() - start


def _speechlike(frames: int) -> bytes:
    """Real rendered speech, repeated, with silences: what an export feeds the encoder."""
    from voicecoach.speech import VoiceSettings, get_engine

    engine = get_engine()
    clip = engine.synthesize("Lie on your back and hug both knees to your chest.", VoiceSettings())
    unit = clip + bytes(len(clip) * 3)
    reps = frames * 2 // len(unit) + 1
    return (unit * reps)[: frames * 2]


def make_music(path: Path, seconds: float = 180.0) -> Path:
    """A stand-in for a song: a slow chord over soft pink noise, with a beat, as an MP3."""
    from voicecoach.audio.ffmpeg import ffmpeg_exe

    sources = []
    for freq in (110, 165, 220, 330):
        sources += ["-f", "lavfi", "-i",
                    f"sine=frequency={freq}:sample_rate=44100:duration={seconds}"]
    sources += ["-f", "lavfi", "-i",
                f"anoisesrc=color=pink:amplitude=0.2:sample_rate=44100:duration={seconds}"]
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", *sources,
                    "-filter_complex", "amix=inputs=5:normalize=0,volume=0.3,tremolo=f=2:d=0.5",
                    "-c:a", "libmp3lame", "-b:a", "128k", str(path)], check=True)
    return path


def mixed_pcm(routine: Path, music: Path, cache: Path) -> bytes:
    """The exact PCM an export with this music encodes (for ffmpeg alone on the same signal)."""
    os.environ["VOICECOACH_CACHE_DIR"] = str(cache)
    with coach.prepare(coach.load(routine), coach.Settings(music=music)) as session:
        return b"".join(session.stream())


def track_pcm(routine: Path, cache: Path, dest: Path) -> int:
    """The exact PCM the export of `routine` holds, written to `dest`; its frame count."""
    os.environ["VOICECOACH_CACHE_DIR"] = str(cache)
    with coach.prepare(coach.load(routine), coach.Settings()) as session, dest.open("wb") as out:
        for chunk in session.stream():
            out.write(chunk)
    return dest.stat().st_size // 2


def ffmpeg_on_file(pcm: Path, out: Path) -> float:
    """ffmpeg encoding the PCM in `pcm` at export's settings, fed from a pipe."""
    start = time.perf_counter()
    proc = subprocess.Popen(_command(out, 64, SAMPLE_RATE), stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    with pcm.open("rb") as source:
        while block := source.read(1 << 20):
            proc.stdin.write(block)
    proc.stdin.close()
    proc.wait()
    return time.perf_counter() - start


def changed_copy(routine: Path, dest: Path, n: int) -> Path:
    """`routine` with its first exercise's first step said differently (a new cue)."""
    data = yaml.safe_load(routine.read_text(encoding="utf-8"))
    setup = data["exercises"][0]["setup"]
    setup[0] = f"{setup[0]} Take your time, {n + 1} breaths."
    dest.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return dest


def stitched(args: argparse.Namespace, folder: Path) -> None:
    """Each figure as wall and CPU seconds (median of the runs), and as a ratio to ffmpeg alone
    encoding the track's own PCM, wall to wall and CPU to CPU."""
    help_cmd = [sys.executable, "-m", "voicecoach", "--help"]
    timed(help_cmd, _env(folder / "hcache"))  # compiles the modules, as an install does
    helps = [timed(help_cmd, _env(folder / "hcache")) for _ in range(args.repeat)]
    print(f"voicecoach --help: wall {_med(helps, 0):.2f} s  cpu {_med(helps, 1):.2f} s  "
          f"runs {_fmt2(helps)}")
    for minutes, targets in ((30, (0.25, 0.3)), (120, (0.1, None))):
        routine = write_routine(folder / f"bench-{minutes}.yaml", minutes=minutes)
        cache = folder / f"scache-{minutes}"
        out = folder / f"s{minutes}.mp3"
        cold = export_times(routine, out, cache, [])
        frames = track_pcm(routine, cache, folder / "track.pcm")
        alone, warm, changed, unchanged = [], [], [], []
        encode = _command(folder / "alone.mp3", 64, SAMPLE_RATE)
        for i in range(args.repeat):
            alone.append(timed(encode, stdin=folder / "track.pcm"))
            warm.append(export_times(routine, out, cache, ["--force"]))
            edited = changed_copy(routine, folder / f"changed-{minutes}-{i}.yaml", i)
            changed.append(export_times(edited, folder / f"c{minutes}-{i}.mp3", cache, []))
            unchanged.append(export_times(routine, out, cache, []))
        (folder / "track.pcm").unlink()
        wall, cpu = _med(alone, 0), _med(alone, 1)
        print(f"{minutes} min routine ({frames / SAMPLE_RATE / 60:.1f} min of audio):")
        print(f"  ffmpeg alone on its PCM:   wall {wall:6.2f} s  cpu {cpu:6.2f} s  "
              f"runs {_fmt2(alone)}")
        print(f"  first export (cold):       wall {cold[0]:6.2f} s  cpu {cold[1]:6.2f} s  "
              f"{cold[0] / wall:.2f}x / {cold[1] / cpu:.2f}x")
        for label, runs, goal in (("stitched warm:", warm, targets[0]),
                                  ("one cue changed:", changed, targets[1]),
                                  ("unchanged (up to date):", unchanged, "0.5 s wall")):
            w, c = _med(runs, 0), _med(runs, 1)
            unit = "" if isinstance(goal, str) else "x"
            print(f"  {label:25s} wall {w:6.2f} s  cpu {c:6.2f} s  runs {_fmt2(runs)}  "
                  f"wall {w / wall:.3f}x  cpu {c / cpu:.3f}x"
                  + ("" if goal is None else f" (target <= {goal}{unit})"))
        print(f"  voicecoach --help:         wall {_med(helps, 0) / wall:.3f}x  "
              f"cpu {_med(helps, 1) / cpu:.3f}x of ffmpeg alone")


def _med(runs: list[tuple[float, float]], i: int) -> float:
    return statistics.median(r[i] for r in runs)


def _fmt2(runs: list[tuple[float, float]]) -> str:
    return " ".join(f"{w:.2f}/{c:.2f}" for w, c in runs) + " (wall/cpu)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--encoder", action="store_true",
                        help="measure the whole-track encoder path (and music, memory) instead")
    args = parser.parse_args()
    if not args.encoder:
        with tempfile.TemporaryDirectory(prefix="vc-bench-") as tmp:
            stitched(args, Path(tmp))
        return
    os.environ["VOICECOACH_STITCH"] = "0"
    with tempfile.TemporaryDirectory(prefix="vc-bench-") as tmp:
        folder = Path(tmp)
        r30 = write_routine(folder / "bench-30.yaml", minutes=30)
        r120 = write_routine(folder / "bench-120.yaml", minutes=120)
        plain = coach.Settings()
        frames = coach.timed_plan(coach.decide(coach.load(r30), plain), plain, estimate=True).total
        print(f"routine: {r30.name}, about {frames / SAMPLE_RATE / 60:.1f} min")
        cold, warm, alone, rss30 = [], [], [], []
        for i in range(args.repeat):
            cache = folder / f"cache-{i}"
            cold.append(run_export(r30, folder / "cold.mp3", cache, [])[0])
            warm.append(run_export(r30, folder / "warm.mp3", cache, [])[0])
            alone.append(ffmpeg_alone(frames, folder / "alone.mp3"))
        # Memory in separate runs: watching /proc costs a little time.
        music = make_music(folder / "music.mp3")
        with_music = ["--music", str(music)]
        mcold, mwarm, malone = [], [], []
        mixed = mixed_pcm(r30, music, folder / "cache-0")
        for i in range(args.repeat):
            cache = folder / f"mcache-{i}"
            mcold.append(run_export(r30, folder / "mcold.mp3", cache, with_music)[0])
            mwarm.append(run_export(r30, folder / "mwarm.mp3", cache, with_music)[0])
            malone.append(ffmpeg_alone(frames, folder / "malone.mp3", mixed))
        del mixed
        # Memory in separate runs: watching /proc costs a little time.
        # The 2 h routine has cues the 30 min one lacks: its first run also levels those clips
        # (two threads, memory bounded by the longest clip, not the track), so it is measured
        # again warm, like the 30 min figure.
        rss30.append(run_export(r30, folder / "mem.mp3", folder / "cache-0", [], watch=True)[1])
        _, rss120_first = run_export(r120, folder / "long.mp3", folder / "cache-0", [], watch=True)
        _, rss120 = run_export(r120, folder / "long.mp3", folder / "cache-0", [], watch=True)
        _, mrss30 = run_export(r30, folder / "mmem.mp3", folder / "cache-0", with_music,
                               watch=True)
        _, mrss120_first = run_export(r120, folder / "mlong.mp3", folder / "cache-0",
                                      with_music, watch=True)
        _, mrss120 = run_export(r120, folder / "mlong.mp3", folder / "cache-0", with_music,
                                watch=True)
        ref = statistics.median(alone)
        c, w = statistics.median(cold), statistics.median(warm)
        mref = statistics.median(malone)
        mc, mw = statistics.median(mcold), statistics.median(mwarm)
        m30 = max(rss30)
        print(f"ffmpeg alone (30 min PCM from a pipe): {ref:.2f} s  runs {_fmt(alone)}")
        print(f"cold export (empty cache):             {c:.2f} s  runs {_fmt(cold)}  "
              f"ratio {c / ref:.2f}x (target <= 1.30x)")
        print(f"warm export:                           {w:.2f} s  runs {_fmt(warm)}  "
              f"ratio {w / ref:.2f}x (target <= 1.15x)")
        print(f"ffmpeg alone on the music mix:         {mref:.2f} s  runs {_fmt(malone)}")
        print(f"cold export with music:                {mc:.2f} s  runs {_fmt(mcold)}  "
              f"{mc / c:.2f}x plain cold, {mc / mref:.2f}x ffmpeg on the mix, "
              f"{mc / ref:.2f}x ffmpeg alone")
        print(f"warm export with music:                {mw:.2f} s  runs {_fmt(mwarm)}  "
              f"{mw / w:.2f}x plain warm, {mw / mref:.2f}x ffmpeg on the mix, "
              f"{mw / ref:.2f}x ffmpeg alone")
        print(f"peak RSS 30 min: {m30:.0f} MB; 2 h: {rss120:.0f} MB "
              f"({(rss120 / m30 - 1) * 100:+.0f}% vs 30 min; target <= 150 MB and within 20%); "
              f"2 h with its new clips still to level: {rss120_first:.0f} MB")
        print(f"peak RSS with music 30 min: {mrss30:.0f} MB; 2 h: {mrss120:.0f} MB "
              f"({(mrss120 / mrss30 - 1) * 100:+.0f}% vs 30 min); "
              f"first run: {mrss120_first:.0f} MB")


def _fmt(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
