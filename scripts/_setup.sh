# Shared set-up for scripts/demo and scripts/test: a .venv with voicecoach installed.
# Sourced, not run. Needs only Python 3.11+ on the machine: espeak-ng and ffmpeg come from PyPI.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

find_python() {
  local cand
  for cand in "${PYTHON:-}" python3.13 python3.12 python3.11 python3 python; do
    [ -n "$cand" ] || continue
    if "$cand" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)' \
        >/dev/null 2>&1; then
      echo "$cand"
      return 0
    fi
  done
  echo "voicecoach needs Python 3.11, 3.12 or 3.13 (set PYTHON=/path/to/python)" >&2
  return 1
}

VENV="$ROOT/.venv"
if [ -x "$VENV/bin/python" ]; then
  VPY="$VENV/bin/python"
elif [ -x "$VENV/Scripts/python.exe" ]; then
  VPY="$VENV/Scripts/python.exe"
else
  PY="$(find_python)"
  echo "Creating $VENV with $("$PY" --version 2>&1)" >&2
  "$PY" -m venv "$VENV"
  if [ -x "$VENV/bin/python" ]; then VPY="$VENV/bin/python"; else VPY="$VENV/Scripts/python.exe"; fi
fi

install_voicecoach() {
  local extras="$1"
  echo "Installing voicecoach${extras} into .venv ..." >&2
  "$VPY" -m pip install --quiet --disable-pip-version-check -e ".${extras}" >&2
}
