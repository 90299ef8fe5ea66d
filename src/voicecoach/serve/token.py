"""The secret in every URL: kept in the data dir so that subscriptions survive a restart."""

from __future__ import annotations

import hmac
import re
import secrets
from pathlib import Path

from voicecoach.storage import atomic

TOKEN_FILE = "serve-token"
_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


def token_path(folder: Path | None = None) -> Path:
    from voicecoach.coach import data_dir

    return (folder or data_dir()) / TOKEN_FILE


def load_or_make(renew: bool = False, folder: Path | None = None) -> str:
    """The stored token; a new one when asked, or when none (or a damaged one) is stored."""
    path = token_path(folder)
    if not renew:
        try:
            stored = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            stored = ""
        if _SHAPE.match(stored):
            return stored
    made = secrets.token_urlsafe(24)
    atomic.write_text(path, made + "\n")
    path.chmod(0o600)
    return made


def matches(given: str, token: str) -> bool:
    """Constant-time: how long a guess took says nothing about how much of it was right."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode())
