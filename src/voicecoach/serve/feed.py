"""The podcast feed (RSS 2.0 with the itunes and podcast namespaces), its chapters and captions."""

from __future__ import annotations

import email.utils
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from voicecoach.serve.tracks import Made

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
CHAPTER_TYPE = "application/json+chapters"
ABOUT = "Back-stretching routines spoken by voicecoach, with today's limits applied."


def chapters_json(made: Made) -> dict[str, Any]:
    """Podcasting 2.0 JSON chapters: the same times as the track's ID3 chapters."""
    return {
        "version": "1.2.0",
        "chapters": [{"startTime": c["start"], "endTime": c["end"], "title": c["title"]}
                     for c in made.meta["chapters"]],
    }


def webvtt(made: Made) -> str:
    """Every spoken cue at its time, as WebVTT captions."""
    lines = ["WEBVTT", ""]
    for event in made.meta["events"]:
        if not event["text"]:
            continue
        start = event["start"]
        end = start + max(event["speech"], 0.5)
        lines += [f"{_stamp(start)} --> {_stamp(end)}", event["text"].replace("-->", "->"), ""]
    return "\n".join(lines)


def _stamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def rss(base: str, tracks: list[Made], refused: list[tuple[str, str]]) -> str:
    """The feed; `base` is the tokened address the phone reached (enclosures must use it)."""
    items = [_item(base, made) for made in tracks]
    notes = "".join(f" {rid}: {why}." for rid, why in refused)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="{ITUNES}" xmlns:podcast="{PODCAST}">
<channel>
<title>voicecoach</title>
<link>{escape(base)}/</link>
<description>{escape(ABOUT + notes)}</description>
<language>en</language>
<itunes:author>voicecoach</itunes:author>
<itunes:block>Yes</itunes:block>
<itunes:explicit>false</itunes:explicit>
<itunes:category text="Health &amp; Fitness"/>
{"".join(items)}</channel>
</rss>
"""


def _item(base: str, made: Made) -> str:
    meta = made.meta
    rid, key = meta["routine"], made.key
    part = quote(rid, safe="")  # an id may be any letters: a URL holds them percent-encoded
    url = f"{base}/track/{part}/{key}.mp3"
    left = "".join(f" Left out today: {x['exercise']} ({x['reason']})." for x in meta["left_out"])
    summary = (meta["description"] + left).strip() or meta["title"]
    return f"""<item>
<title>{escape(meta["title"])}</title>
<guid isPermaLink="false">voicecoach-{escape(rid)}-{key}</guid>
<pubDate>{email.utils.formatdate(meta["made"], usegmt=True)}</pubDate>
<description>{escape(summary)}</description>
<enclosure url={quoteattr(url)} length="{made.size}" type="audio/mpeg"/>
<itunes:duration>{clock(meta["duration"])}</itunes:duration>
<itunes:episodeType>full</itunes:episodeType>
<podcast:chapters url={quoteattr(f"{base}/chapters/{part}/{key}.json")} type="{CHAPTER_TYPE}"/>
<podcast:transcript url={quoteattr(f"{base}/transcript/{part}/{key}.vtt")} type="text/vtt"/>
</item>
"""
