"""Commands that make audio files: export, and voices to choose from."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from voicecoach import library
from voicecoach.cli.app import app
from voicecoach.cli.options import (
    ChimesOpt,
    DetailOpt,
    DuckOpt,
    EngineOpt,
    JsonOpt,
    LeadInOpt,
    LoudnessOpt,
    MusicOpt,
    NoCacheOpt,
    OnlyOpt,
    PaceOpt,
    QuietOpt,
    RateOpt,
    SkipOpt,
    TicksOpt,
    UnderstandOpt,
    VoiceOpt,
    apply_safety,
    load_routine_file,
    plan_options,
    prepare_with_progress,
    record_session,
    routine_path_arg,
    sound_options,
    speech_setup,
)
from voicecoach.cli.progress import LazyProgress
from voicecoach.durations import format_clock
from voicecoach.errors import UserError


@app.command()
def export(
    routine: Annotated[str | None, typer.Argument(help="A bundled routine id (see `list`) or a path.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The MP3 to write (with --split: a folder; `-` for standard output). Default: ID.mp3 here.")] = None,
    all_dir: Annotated[Path | None, typer.Option("--all", help="Export every bundled routine into this folder.")] = None,
    split: Annotated[bool, typer.Option("--split", help="One MP3 per exercise, plus an .m3u playlist.")] = False,
    transcript: Annotated[bool, typer.Option("--transcript", help="Also write an .lrc file with every cue at its time.")] = False,
    bitrate: Annotated[int, typer.Option("--bitrate", help="MP3 bit rate in kbit/s, constant: 32, 40, 48, 56, 64, 80, 96, 112, 128, 144 or 160 (the most a 22.05 kHz track can carry).")] = 64,
    only: OnlyOpt = None,
    skip: SkipOpt = None,
    pace: PaceOpt = 1.0,
    detail: DetailOpt = None,
    lead_in: LeadInOpt = 1.5,
    engine: EngineOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = 165,
    volume: Annotated[float, typer.Option("--volume", hidden=True, help="Not for export: every cue is levelled; use --loudness.")] = 1.0,
    chimes: ChimesOpt = None,
    ticks: TicksOpt = None,
    music: MusicOpt = None,
    duck: DuckOpt = -12.0,
    loudness: LoudnessOpt = -16.0,
    no_cache: NoCacheOpt = False,
    i_understand: UnderstandOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Export a routine as an MP3 track with a chapter per exercise, ready for a phone.

    Every cue is levelled to the same loudness and the track to -16 LUFS (true peak under
    -1 dBTP); chimes mark holds and rests; --music adds a bed that ducks under speech.

    Example: [bold]voicecoach export five-minute-back -o back.mp3 --music songs.mp3[/bold]
    """
    from voicecoach.export import (
        ExportOptions,
        export_split,
        export_to_stream,
        export_track,
        plan_outputs,
    )
    from voicecoach.outputs import STDOUT, OutputPlan
    from voicecoach.plan import build_plan

    if all_dir is not None and output is not None:
        raise UserError("--all takes the folder itself; -o is for one routine",
                        fix="e.g. `voicecoach export --all tracks/`")
    if (routine is None) == (all_dir is None):
        raise UserError("give a routine, or --all FOLDER", fix="e.g. `voicecoach export five-minute-back`")
    to_stdout = output == STDOUT
    if to_stdout and as_json:
        raise UserError("-o - writes the MP3 to standard output; --json cannot go there too",
                        fix="leave out --json")
    if to_stdout and sys.stdout.isatty():
        raise UserError("-o - writes MP3 bytes, not for a terminal",
                        fix="pipe it, e.g. `voicecoach export ID -o - | mpv -`")
    sound = sound_options(chimes, ticks, music, duck, loudness)
    speech = speech_setup(engine, voice, rate, volume, no_cache)
    options = plan_options(only, skip, pace, detail, lead_in)
    export_options = ExportOptions(bitrate=bitrate, transcript=transcript, volume=volume)
    sources = (
        [(routine_path_arg(routine, speech), output)]
        if routine is not None
        else [(path, None) for path in library.bundled().values()]
    )
    # Every file is named and checked before any speech is made: one mistake stops it all.
    outputs = OutputPlan()
    outputs.read("music file", music)
    jobs = []
    for source, dest in sources:
        loaded = load_routine_file(source)
        outputs.read("routine file", source)
        # Frequency limits are for doing, not for making a track to follow another day.
        try:
            session_options, verdict = apply_safety(
                loaded, options, detail=detail, apply_limits=False, force=False,
                i_understand=i_understand,
            )
        except UserError as exc:
            if routine is not None:
                raise
            typer.echo(f"note: skipped {loaded.id}: {exc.line()}", err=True)
            continue
        if split:
            dest = dest or (all_dir / loaded.id if all_dir else Path(loaded.id))
        else:
            dest = dest or (all_dir or Path(".")) / f"{loaded.id}.mp3"
        estimate = build_plan(loaded, sound.plan_options(session_options))
        plan_outputs(outputs, loaded, estimate, dest, export_options, split=split)
        jobs.append((loaded, dest, session_options, verdict))
    outputs.check()
    written = []
    for loaded, dest, session_options, verdict in jobs:
        started = time.time()
        with LazyProgress(quiet or as_json) as progress:
            prepared = prepare_with_progress(loaded, session_options, speech, progress, sound)
            try:
                progress.stage(f"Encoding {loaded.id}", prepared.plan.total)
                if split:
                    tracks = export_split(loaded, prepared, dest, export_options,
                                          progress.advance)
                elif to_stdout:
                    tracks = [export_to_stream(loaded, prepared, sys.stdout.buffer,
                                               export_options, progress.advance)]
                else:
                    tracks = [export_track(loaded, prepared, dest, export_options,
                                           progress.advance)]
            finally:
                prepared.close()
        written.extend(tracks)
        record_session(loaded, "export", started, prepared.plan.duration, completed=True,
                       detail=verdict.detail)
        if not as_json:
            for track in tracks:
                typer.echo(_describe(track), err=to_stdout)
    if as_json:
        typer.echo(json.dumps([t.as_json() for t in written], indent=2, ensure_ascii=False))


def _describe(track) -> str:  # type: ignore[no-untyped-def]
    size = track.size / 1e6
    where = "MP3 to standard output" if str(track.path) == "-" else track.path
    line = f"Wrote {where} ({format_clock(track.duration)}, {size:.1f} MB"
    if track.chapters:
        line += f", {len(track.chapters)} chapters"
    line += ")"
    for extra in track.extras:
        line += f"\nWrote {extra}"
    return line


@app.command()
def voices(
    language: Annotated[str | None, typer.Option("--language", "-l", help="Only voices for this language, e.g. en or en-gb.")] = None,
    engine: EngineOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the voices the speech engine offers.

    Example: [bold]voicecoach voices --language en[/bold]
    """
    from voicecoach.speech import get_engine

    found = get_engine(engine).voices()
    if language:
        want = language.lower().replace("_", "-")
        found = [v for v in found if any(lang.lower().startswith(want) for lang in v.languages)]
    if as_json:
        typer.echo(json.dumps([{"id": v.id, "name": v.name, "languages": list(v.languages),
                                "gender": v.gender} for v in found], indent=2, ensure_ascii=False))
        return
    if not found:
        raise UserError(f"no voices for language {language!r}", fix="run `voicecoach voices` to see all")
    for v in found:
        typer.echo(f"{v.id:<28} {', '.join(v.languages):<16} {v.name}")
