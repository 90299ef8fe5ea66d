"""Commands that make audio files: export, and voices to choose from."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from voicecoach import coach
from voicecoach.cli.app import ARGV, CLOSED_STREAMS, app
from voicecoach.cli.options import (
    _D,
    ChimesOpt,
    DetailOpt,
    DuckOpt,
    EngineOpt,
    JsonOpt,
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
    ask_screening,
    settings,
    tell,
)
from voicecoach.cli.progress import LazyProgress
from voicecoach.errors import UserError


@app.command()
def export(
    routine: Annotated[str | None, typer.Argument(help="A bundled routine id (see `list`) or a path.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The MP3 to write (with --split: a folder; `-` for standard output). Default: ID.mp3 here.")] = None,
    all_dir: Annotated[Path | None, typer.Option("--all", help="Export every bundled routine into this folder.")] = None,
    split: Annotated[bool, typer.Option("--split", help="One MP3 per exercise, plus an .m3u playlist.")] = False,
    transcript: Annotated[bool, typer.Option("--transcript", help="Also write an .lrc file with every cue at its time.")] = False,
    bitrate: Annotated[int, typer.Option("--bitrate", help="MP3 bit rate in kbit/s, constant: 32, 40, 48, 56, 64, 80, 96, 112, 128, 144 or 160 (the most a 22.05 kHz track can carry).")] = _D.bitrate,
    only: OnlyOpt = None,
    skip: SkipOpt = None,
    pace: PaceOpt = _D.pace,
    detail: DetailOpt = None,
    # None: the planner's export lead-in, read without importing the planner at start-up.
    lead_in: Annotated[float | None, typer.Option("--lead-in", min=0.0, max=30.0, help="Silence before the first word, in seconds (default 1.5: Bluetooth speakers wake up in it).")] = None,
    engine: EngineOpt = None,
    voice: VoiceOpt = None,
    rate: RateOpt = _D.rate,
    volume: Annotated[float, typer.Option("--volume", hidden=True, help="Not for export: every cue is levelled; use --loudness.")] = _D.volume,
    chimes: ChimesOpt = None,
    ticks: TicksOpt = None,
    music: MusicOpt = None,
    duck: DuckOpt = _D.duck,
    loudness: LoudnessOpt = _D.loudness,
    no_cache: NoCacheOpt = False,
    i_understand: UnderstandOpt = False,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when the destination already holds this track.")] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Export a routine as an MP3 track with a chapter per exercise, ready for a phone.

    Every cue is levelled to the same loudness and the track to -16 LUFS (true peak under
    -1 dBTP); chimes mark holds and rests; --music adds a bed that ducks under speech.
    A destination that already holds the same track is left alone (`up to date`).

    Example: [bold]voicecoach export five-minute-back -o back.mp3 --music songs.mp3[/bold]
    """
    if all_dir is not None and output is not None:
        raise UserError("--all takes the folder itself; -o is for one routine",
                        fix="e.g. `voicecoach export --all tracks/`")
    if (routine is None) == (all_dir is None):
        raise UserError("give a routine, or --all FOLDER", fix="e.g. `voicecoach export five-minute-back`")
    to_stdout = output == coach.STDOUT
    if to_stdout and as_json:
        raise UserError("-o - writes the MP3 to standard output; --json cannot go there too",
                        fix="leave out --json")
    if to_stdout and "stdout" in CLOSED_STREAMS:
        raise UserError("-o - writes the MP3 to standard output, which is closed",
                        fix="pipe it, e.g. `voicecoach export ID -o - | mpv -`, or give a file")
    if to_stdout and sys.stdout.isatty():
        raise UserError("-o - writes MP3 bytes, not for a terminal",
                        fix="pipe it, e.g. `voicecoach export ID -o - | mpv -`")
    chosen = settings(engine=engine, voice=voice, rate=rate, volume=volume, no_cache=no_cache,
                      only=only, skip=skip, pace=pace, detail=detail, lead_in=lead_in,
                      chimes=chimes, ticks=ticks, music=music, duck=duck, loudness=loudness,
                      bitrate=bitrate, transcript=transcript)
    chosen.sound()
    coach.speech(chosen)
    chosen.export_options()
    start = coach.start_memo(routine, chosen)
    told: list[str] = []  # notices come from the inputs: an answer from memory repeats them
    # Answers given at the terminal change the inputs: such a run is not remembered.
    unremembered: list[object] = []

    def notify(notice: coach.Notice) -> None:
        told.append(notice.text)
        tell(notice)

    def prompt(questions):  # type: ignore[no-untyped-def]
        answers = ask_screening(questions)
        if answers is not None:
            unremembered.append(answers)
        return answers

    sources = (
        [(coach.resolve(routine, chosen, screening_prompt=ask_screening, notify=tell), output)]
        if routine is not None
        else [(path, None) for path in coach.bundled()]
    )
    jobs = coach.plan_exports(sources, chosen, split=split, folder=all_dir,
                              skip_refused=routine is None, screening_prompt=prompt,
                              notify=notify, i_understand=i_understand)
    described: list[dict[str, object]] = []
    fresh: list = []  # type: ignore[type-arg]
    for job in jobs:
        tracks = None if force or to_stdout else coach.fresh_tracks(job, chosen, split=split)
        up_to_date = tracks is not None
        if tracks is None:
            with LazyProgress(quiet or as_json) as progress:
                tracks = coach.export(job, chosen, split=split,
                                      stream=sys.stdout.buffer if to_stdout else None,
                                      progress=progress)
        described.extend({**t.as_json(), "up_to_date": up_to_date} for t in tracks)
        if not as_json:
            for track in tracks:
                typer.echo(_describe(track, "up to date:" if up_to_date else "Wrote"),
                           err=to_stdout)
        if not to_stdout and not unremembered:
            described_again = tracks if up_to_date else coach.written_tracks(job, chosen,
                                                                             split=split)
            if described_again is None:
                unremembered.append(job)  # changed already: the next run checks it the full way
            else:
                fresh.extend(described_again)
    if as_json:
        typer.echo(json.dumps(described, indent=2, ensure_ascii=False))
    if not to_stdout and not unremembered:
        # What the same command will print while nothing changes: it is answered from this.
        coach.remember_export(ARGV, start, jobs, chosen, _said(fresh, as_json),
                              "".join(f"{text}\n" for text in told))


def _said(tracks, as_json: bool) -> str:  # type: ignore[no-untyped-def]
    """What an export prints when `tracks` are up to date."""
    if as_json:
        text = json.dumps([{**t.as_json(), "up_to_date": True} for t in tracks], indent=2,
                          ensure_ascii=False)
        return text + "\n"
    return "".join(_describe(t, "up to date:") + "\n" for t in tracks)


def _describe(track, verb: str) -> str:  # type: ignore[no-untyped-def]
    """`Wrote` or `up to date:` with the track and each file written with it, alike."""
    size = track.size / 1e6
    where = "MP3 to standard output" if str(track.path) == "-" else track.path
    line = f"{verb} {where} ({coach.format_clock(track.duration)}, {size:.1f} MB"
    if track.chapters:
        line += f", {coach.counted(len(track.chapters), 'chapter')}"
    line += ")"
    for extra in track.extras:
        line += f"\n{verb} {extra}"
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
    found = coach.voices(engine, language)
    if as_json:
        typer.echo(json.dumps([{"id": v.id, "name": v.name, "languages": list(v.languages),
                                "gender": v.gender} for v in found], indent=2, ensure_ascii=False))
        return
    if not found:
        raise UserError(f"no voices for language {language!r}", fix="run `voicecoach voices` to see all")
    for v in found:
        typer.echo(f"{v.id:<28} {', '.join(v.languages):<16} {v.name}")
