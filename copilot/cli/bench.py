"""``copilot bench <target>``: benchmarks that print figures (never asserted in tests)."""

from __future__ import annotations

import argparse
import importlib
import json

HELP = (
    "Run a benchmark: ingest, retrieval, embeddings, guardrails, draft, eval or load"
    " (--json for machine output)."
)

# target -> module under copilot.bench; each defines run(args) -> dict and render(result) -> str
TARGETS = ("ingest", "retrieval", "embeddings", "guardrails", "draft", "eval", "load")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the verb."""
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for smoke runs")
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="embeddings: also time an OpenAI-compatible embeddings endpoint (base URL, e.g. "
        "http://127.0.0.1:8081/v1) beside the bundled models",
    )
    parser.add_argument(
        "--endpoint-model",
        metavar="NAME",
        help="model name sent with --endpoint (default: COPILOT_EMBEDDING_API_MODEL, else "
        "'default')",
    )


def run(args: argparse.Namespace) -> int:
    """Run the chosen benchmark and print its table (or JSON)."""
    module = importlib.import_module(f"copilot.bench.{args.target}")
    result = module.run(args)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(module.render(result))
    return 0
