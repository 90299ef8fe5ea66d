"""Regenerate routines/routine.schema.json from the model (tests fail when it is stale)."""

from pathlib import Path

from voicecoach.routine.schema import write_schema

if __name__ == "__main__":
    print(write_schema(Path(__file__).resolve().parents[1] / "routines"))
