"""``copilot calibrate``: fit an embedder's retrieval scores and abstention thresholds and write
``copilot/retrieval/calibrations/<embedder>.json`` (see copilot.retrieval.fitting); an
endpoint model's (``openai``) goes to ``<COPILOT_DATA_DIR>/calibrations/openai-<model>.json``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = (
    "Fit the retrieval score calibration and abstention thresholds of an embedder and write "
    "its calibration file."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the verb."""
    from copilot.settings import EMBEDDING_MODELS

    parser.add_argument(
        "--embedder",
        choices=EMBEDDING_MODELS,
        help="embedder to calibrate (default: COPILOT_EMBEDDING_MODEL)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="file to write (default: copilot/retrieval/calibrations/<embedder>.json; for "
        "openai: DATA_DIR/calibrations/openai-<api model>.json)",
    )
    parser.add_argument(
        "--queries", type=Path, help="labelled queries (default: evals/retrieval/queries_v1.jsonl)"
    )
    parser.add_argument(
        "--external",
        type=Path,
        help="folder with banking77_dev_queries, banking77_intent_kb and clinc150 JSONL "
        "(default: ../shared/external)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="fit and compare with the file without writing it (exit 1 when they differ)",
    )
    parser.add_argument("--json", action="store_true", help="print the fitted file as JSON")


def run(args: argparse.Namespace) -> int:
    """Fit, print the table, and write (or with --check compare)."""
    from copilot.embed.registry import local_calibration_path
    from copilot.errors import CopilotError
    from copilot.retrieval.calibration import calibration_file, write_calibration
    from copilot.retrieval.fitting import (
        EXTERNAL,
        QUERY_FILE,
        differences,
        fit_calibration,
        read_inputs,
    )
    from copilot.settings import get_settings

    settings = get_settings()
    embedder = args.embedder or settings.embedding_model
    if embedder == "openai" and not (settings.embedding_base_url and settings.embedding_api_model):
        raise CopilotError(
            "calibrating the openai embedder needs COPILOT_EMBEDDING_BASE_URL and "
            "COPILOT_EMBEDDING_API_MODEL"
        )
    path: Path = args.output or (
        local_calibration_path(settings, str(settings.embedding_api_model))
        if embedder == "openai"
        else calibration_file(embedder)
    )
    if embedder == "openai":
        path.parent.mkdir(parents=True, exist_ok=True)
    inputs = read_inputs(args.queries or QUERY_FILE, args.external or EXTERNAL)
    target = path.resolve()
    read = [p.resolve() for p in inputs.files.values()]
    if target in read or target.is_relative_to(inputs.knowledge_dir.resolve()):
        raise CopilotError(f"{path}: is an input of the fit; write the calibration elsewhere")
    body = fit_calibration(
        settings, embedder, inputs, tick=lambda msg: print(msg, file=sys.stderr, flush=True)
    )
    changed: list[str] = []
    if args.check:
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            old = {"unreadable": str(exc)}
        changed = differences(old if isinstance(old, dict) else {}, body)
        status = (
            f"{path}: differs from a fit on today's data in {', '.join(changed[:8])}"
            + (" ..." if len(changed) > 8 else "")
            if changed
            else f"{path}: up to date"
        )
        written = False
    else:
        written = write_calibration(body, path)
        status = f"{'wrote' if written else 'unchanged (same fit, data and model)'}: {path}"
    if args.json:
        print(
            json.dumps(
                {"path": str(path), "written": written, "differs": changed, **body},
                ensure_ascii=False,
            )
        )
    else:
        print(render(body))
        print(status)
    return 1 if args.check and changed else 0


def render(body: dict[str, Any]) -> str:
    """The fit and its figures as a table."""
    data = body["data"]

    def show(x: float | None) -> str:
        return "    -" if x is None else f"{x:5.3f}"

    lines = [
        f"{body['embedder']} ({body['model_id']}, {body['fingerprint'][:19]}...), "
        f"KB {data['kb_version']}, data {data['sha256'][:12]}; rows: "
        + ", ".join(f"{k} {v}" for k, v in data["rows"].items()),
        "",
        "mode        bias  w_dense  w_bm25 thresh | held-out abstained: kb-in  b77-dev "
        "clinc-in clinc-oos(b77) clinc-oos(kb) | r@1/r@5 queries_v1  banking77",
    ]
    for mode, fit in body["modes"].items():
        f = body["figures"][mode]
        h = f["held_out_abstained"]
        kb, b77 = f["recall"]["kb"]["all"], f["recall"]["banking77"]["all"]
        lines.append(
            f"{mode:8s}{fit['bias']:>8.2f}{fit['w_dense']:>9.2f}{fit['w_bm25']:>8.2f}"
            f"{fit['threshold']:>7.2f} | {' ' * 19}{show(h['kb'])}  {show(h['banking77'])}"
            f"    {show(h['clinc-in-b77'])}          {show(h['clinc-oos-b77'])}"
            f"         {show(h['clinc-oos-kb'])} |   {show(kb[0])}/{show(kb[1])}"
            f"  {show(b77[0])}/{show(b77[1])}"
        )
    return "\n".join(lines)
