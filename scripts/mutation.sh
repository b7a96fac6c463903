#!/usr/bin/env bash
# Mutation spot-check (issue #10): break one thing at a time in a temporary copy of the
# repository, run the tests that should notice, print which mutants survive. Exit 0 (a report).
#   scripts/mutation.sh --list               the mutants, file:line and tests; runs nothing
#   scripts/mutation.sh [--budget-min 20]    run them (the working tree is never edited)
#   scripts/mutation.sh --only pii,gates     some families or ids; --all-policy: every policy line
# Uses $PYTHON when set, else .venv (set up as scripts/check.sh does).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  source "$ROOT/scripts/_venv.sh"
  ensure_venv requirements-dev.txt
  PYTHON="$VENV/bin/python"
fi
export ANONYMIZED_TELEMETRY=False
exec "$PYTHON" "$ROOT/scripts/mutation.py" --python "$PYTHON" "$@"
