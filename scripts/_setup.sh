# Shared set-up for scripts/demo, scripts/test and scripts/lock: a virtual environment with
# voicecoach installed from the committed lock. Sourced, not run. Needs only Python 3.11-3.13 on
# the machine: espeak-ng and ffmpeg come from PyPI wheels.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REQ="$ROOT/requirements"

# One set-up at a time per clone: two runs started together (scripts/test twice, or the demo and
# the tests) would create and fill the same virtual environment at once. The lock is released by
# setup_done, before the real work, so the runs themselves go on side by side. Where flock is
# missing (macOS), runs are not serialised.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$ROOT/.voicecoach-setup.lock"
  if ! flock -n 9; then
    echo "waiting for another voicecoach set-up in this folder to finish ..." >&2
    flock 9
  fi
fi
setup_done() {
  exec 9>&-
}

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

# venv_python DIR: the interpreter of the virtual environment DIR, created if missing.
venv_python() {
  local dir="$1" py
  # A folder without the mark was cut short while it was made (Ctrl-C inside ensurepip leaves
  # no pip): made again, rather than failing on every later run.
  if [ -d "$dir" ] && [ ! -f "$dir/.voicecoach-venv" ]; then
    if "$dir/bin/python" -m pip --version >/dev/null 2>&1 \
        || "$dir/Scripts/python.exe" -m pip --version >/dev/null 2>&1; then
      touch "$dir/.voicecoach-venv"  # made whole before the mark existed
    else
      echo "${dir#"$ROOT"/} was left unfinished; making it again" >&2
      rm -rf "$dir"
    fi
  fi
  if [ ! -x "$dir/bin/python" ] && [ ! -x "$dir/Scripts/python.exe" ]; then
    py="$(find_python)"
    echo "Creating ${dir#"$ROOT"/} with $("$py" --version 2>&1)" >&2
    "$py" -m venv "$dir" >&2
    touch "$dir/.voicecoach-venv"
  fi
  if [ -x "$dir/bin/python" ]; then echo "$dir/bin/python"; else echo "$dir/Scripts/python.exe"; fi
}

# uv installs from the lock in a few seconds (pip took ~35 s for the same set). It comes into the
# environment itself, pinned with hashes by requirements/uv.lock, so nothing is needed beforehand.
uv_in() {
  local vpy="$1" uv
  uv="$(dirname "$vpy")/uv"
  [ -x "$uv" ] || uv="$uv.exe"
  if [ ! -x "$uv" ]; then
    # (pip's notes about this machine's unused local package folders are not news to the user)
    local out
    if ! out="$("$vpy" -m pip install --quiet --disable-pip-version-check --require-hashes \
        --no-deps -r "$REQ/uv.lock" 2>&1)"; then
      echo "$out" | grep -v "is ignored: it is neither" >&2
      echo "could not install uv from requirements/uv.lock" >&2
      return 1
    fi
    uv="$(dirname "$vpy")/uv"
    [ -x "$uv" ] || uv="$uv.exe"
  fi
  echo "$uv"
}

lock_digest() {  # VENV_PYTHON LOCK: what an install from LOCK with this pyproject.toml is stamped
  cat "$2" pyproject.toml | "$1" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
}

# install_locked VENV_PYTHON LOCK [SUPERSET]: exactly the locked versions (checked against their
# hashes), then the project itself without resolving again. Skipped when neither the lock nor
# pyproject.toml changed since the last install into this environment, or when the environment
# holds SUPERSET, a lock that pins LOCK's packages to the same versions (scripts/lock makes
# run.lock a subset of test.lock): the demo then leaves the test tools where they are.
install_locked() {
  local vpy="$1" lock="$2" superset="${3:-}" stamp uv want have=""
  stamp="$(dirname "$(dirname "$vpy")")/.voicecoach-installed"
  want="$(lock_digest "$vpy" "$lock")"
  [ -f "$stamp" ] && have="$(cat "$stamp")"
  if [ "$have" = "$want" ]; then
    return 0
  fi
  if [ -n "$superset" ] && [ -n "$have" ] && [ "$have" = "$(lock_digest "$vpy" "$superset")" ]; then
    return 0
  fi
  echo "Installing voicecoach and the locked packages of ${lock#"$ROOT"/} ..." >&2
  uv="$(uv_in "$vpy")"
  # Compiled now, as pip does: a module first compiled under `python -W error` (as a test does)
  # would turn a library's own invalid escape sequences into errors.
  "$uv" pip sync --quiet --python "$vpy" --require-hashes --compile-bytecode "$lock" >&2
  "$uv" pip install --quiet --python "$vpy" --no-deps --no-build-isolation -e . >&2
  echo "$want" >"$stamp"
}

# install_resolved VENV_PYTHON RESOLUTION: a fresh resolution of pyproject.toml's ranges
# (highest: the newest allowed versions; lowest-direct: the oldest allowed ones).
install_resolved() {
  local vpy="$1" resolution="$2" uv
  uv="$(uv_in "$vpy")"
  echo "Resolving pyproject.toml's ranges afresh (--resolution $resolution) ..." >&2
  "$uv" pip install --quiet --python "$vpy" --refresh --reinstall --compile-bytecode \
    --resolution "$resolution" \
    -e ".[test]" >&2
  rm -f "$(dirname "$(dirname "$vpy")")/.voicecoach-installed"
}

# compile_project VENV_PYTHON: byte-compile src/ now. Where PYTHONDONTWRITEBYTECODE is set (it is
# on the CI machines), Python never saves what it compiles on import, so every `voicecoach` run
# (and each of the suite's hundreds of subprocesses) would compile ~60 modules again: ~0.5 s
# CPU each. compileall writes them regardless; a changed source is recompiled by its mtime.
compile_project() {
  "$1" -m compileall -q -j 0 "$ROOT/src" >/dev/null
}

