"""Print a sha256 of the PCM each bundled routine exports to (export path, no music), through the
public API: run it on two commits with one clip cache to check a change left the sound alone.

Run: PYTHONPATH=<checkout>/src VOICECOACH_CACHE_DIR=<dir> .venv/bin/python \
     scripts/check_pcm_identity.py
The history and safety answers go to a temporary folder unless VOICECOACH_DATA_DIR is set.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile


def main() -> int:
    os.environ.setdefault("VOICECOACH_DATA_DIR", tempfile.mkdtemp(prefix="voicecoach-pcm-"))
    from voicecoach import coach

    settings = coach.Settings()
    for path in coach.bundled():
        routine = coach.load(path, settings)
        decision = coach.decide(routine, settings, coach.Purpose.EXPORT)
        digest, size = hashlib.sha256(), 0
        with coach.render(decision, settings) as session:
            for chunk in session.stream():
                digest.update(chunk)
                size += len(chunk)
        # Bytes, not frames: this script must not depend on the helpers it checks.
        print(f"{routine.id:32} {digest.hexdigest()} {size} bytes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
