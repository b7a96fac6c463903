#!/usr/bin/env bash
# First README command: set up .venv, ingest the knowledge base if it changed,
# and start the agent workspace on http://localhost:8501 (offline defaults, no API key).
source "$(dirname "$0")/_venv.sh"
ensure_venv requirements.txt
cd "$ROOT"
"$VENV/bin/python" -m copilot validate-kb
"$VENV/bin/python" -m copilot ingest
PORT="${COPILOT_PORT:-8501}"
echo "==> Support Copilot on http://localhost:$PORT (Ctrl-C to stop)"
exec "$VENV/bin/streamlit" run app.py --server.headless true --server.address 127.0.0.1 \
  --server.port "$PORT" --browser.gatherUsageStats false
