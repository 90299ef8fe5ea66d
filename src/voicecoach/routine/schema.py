"""The committed JSON Schema for routine files, kept in sync with the model."""

from __future__ import annotations

import json
from pathlib import Path

from voicecoach.routine.model import json_schema

SCHEMA_NAME = "routine.schema.json"
MODELINE = f"# yaml-language-server: $schema={SCHEMA_NAME}"


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schema(folder: Path) -> Path:
    target = folder / SCHEMA_NAME
    target.write_text(schema_text(), encoding="utf-8")
    return target
