# Shared set-up for scripts/demo, scripts/test and scripts/lock: a virtual environment with
# voicecoach installed from the committed lock. Sourced, not run. Needs only Python 3.11-3.13 on
# the machine: espeak-ng and ffmpeg come from PyPI wheels.
set -euo pipefail
# A failure inside $(...) stops the script too (bash 4.4+; macOS's bash 3.2 has no such option).
shopt -s inherit_errexit 2>/dev/null || true
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
    py="$(find_python)" || return 1
    echo "Creating ${dir#"$ROOT"/} with $("$py" --version 2>&1)" >&2
    if ! "$py" -m venv "$dir" >&2; then
      rm -rf "$dir"
      echo "could not create ${dir#"$ROOT"/} (on Debian and Ubuntu: apt install python3-venv)" >&2
      return 1
    fi
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
  # A uv that does not run (its install was cut short) is installed again.
  if ! "$uv" --version >/dev/null 2>&1; then
    # (pip's notes about this machine's unused local package folders are not news to the user)
    local out
    if ! out="$("$vpy" -m pip install --quiet --disable-pip-version-check --require-hashes \
        --force-reinstall --no-deps -r "$REQ/uv.lock" 2>&1)"; then
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

# install_locked VENV_PYTHON LOCK [keep]: exactly the locked versions (checked against their
# hashes), then the project itself without resolving again. Skipped when neither the lock nor
# pyproject.toml changed since the last install into this environment. "keep" installs LOCK's
# pins without removing other packages (the demo: a test set-up's tools stay; run.lock pins
# the same versions as test.lock); otherwise the environment holds exactly LOCK.
install_locked() {
  local vpy="$1" lock="$2" mode="${3:-sync}" stamp begun uv want have="" again=()
  stamp="$(dirname "$(dirname "$vpy")")/.voicecoach-installed"
  begun="$(dirname "$(dirname "$vpy")")/.voicecoach-installing"
  want="$(lock_digest "$vpy" "$lock")"
  [ -f "$stamp" ] && have="$(cat "$stamp")"
  if [ "$have" = "$want" ] && [ ! -f "$begun" ]; then
    return 0
  fi
  # An install cut short (Ctrl-C) leaves packages whose files are partly missing but whose
  # records say installed: the next install then puts every package in again.
  if [ -f "$begun" ]; then
    echo "the last install into ${begun%/*} was cut short: installing every package again" >&2
    again=(--reinstall)
  fi
  rm -f "$stamp"
  touch "$begun"
  echo "Installing voicecoach and the locked packages of ${lock#"$ROOT"/} ..." >&2
  uv="$(uv_in "$vpy")"
  # Compiled now, as pip does: a module first compiled under `python -W error` (as a test does)
  # would turn a library's own invalid escape sequences into errors.
  if [ "$mode" = keep ]; then
    "$uv" pip install --quiet --python "$vpy" --require-hashes --no-deps --compile-bytecode \
      ${again[@]+"${again[@]}"} -r "$lock" >&2
  else
    "$uv" pip sync --quiet --python "$vpy" --require-hashes --compile-bytecode \
      ${again[@]+"${again[@]}"} "$lock" >&2
  fi
  "$uv" pip install --quiet --python "$vpy" --no-deps --no-build-isolation -e . >&2
  echo "$want" >"$stamp"
  rm -f "$begun"
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

