"""The committed JSON Schema is the model's, and it tells editors what the loader enforces."""

from __future__ import annotations

import json
from pathlib import Path

from voicecoach.routine.schema import SCHEMA_NAME, schema_text

ROUTINES = Path(__file__).resolve().parents[1] / "routines"


def test_committed_schema_is_in_sync_with_the_model() -> None:
    committed = (ROUTINES / SCHEMA_NAME).read_text(encoding="utf-8")
    assert committed == schema_text(), (
        "routines/routine.schema.json is stale: run .venv/bin/python scripts/gen_schema.py"
    )


def test_schema_forbids_unknown_keys_and_knows_durations() -> None:
    schema = json.loads(schema_text())
    assert schema["additionalProperties"] is False
    for name, definition in schema["$defs"].items():
        if definition.get("type") == "object":
            assert definition.get("additionalProperties") is False, name
    hold = schema["$defs"]["Exercise"]["properties"]["hold"]
    assert "20s" in json.dumps(hold)
    assert "id" not in schema["properties"]
