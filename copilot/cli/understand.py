"""``copilot understand train|eval``: train message understanding on the labelled messages,
or print its figures on the dev split (or any labelled file), beside the rule-based
router's with ``--rules``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

HELP = "Train message understanding on the labelled messages (train) or print its dev figures beside the rule-based router's (eval)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the verb."""
    parser.add_argument("action", choices=("train", "eval"))
    parser.add_argument(
        "--folder",
        type=Path,
        help="the labelled-message folder (default evals/understanding/train_v1)",
    )
    parser.add_argument(
        "--data", type=Path, help="eval: a labelled-message JSONL file instead of the dev split"
    )
    parser.add_argument(
        "--rules",
        action="store_true",
        help="eval: also route the same messages through the rule-based offline drafter",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    """Train (writes COPILOT_MODELS_DIR/understand.npz and .json) or evaluate."""
    from copilot.heads.model import data_sha256
    from copilot.settings import get_settings
    from copilot.understand.messages import TRAIN_DIR, load_messages, load_split, training_files

    settings = get_settings()
    folder = args.folder or TRAIN_DIR
    if args.action == "train":
        from copilot.understand.training import train

        heads, report = train(
            settings.models_dir, folder, log=lambda line: print(line, file=sys.stderr)
        )
        if args.json:
            print(json.dumps(heads.manifest, indent=1, ensure_ascii=False))
            return 0
        manifest = heads.manifest
        print(
            f"wrote {settings.models_dir / heads.name}.npz and .json "
            f"(weights sha256 {manifest['weights_sha256'][:16]}, data sha256 "
            f"{manifest['data']['sha256'][:16]}, embedder {heads.embedder})"
        )
        print(render({"learned": report}))
        return 0
    from copilot.understand.model import MessageModel
    from copilot.understand.training import evaluate

    model = MessageModel.load(settings.models_dir, data_sha256=data_sha256(training_files(folder)))
    messages = load_messages(args.data) if args.data else load_split(folder, "dev")
    reports: dict[str, Any] = {"learned": evaluate(model, messages)}
    if args.rules:
        from copilot.draft.factory import build_copilot
        from copilot.evaluation.understanding import rules_report

        rules_only = dataclasses.replace(settings, understand_learned=False)
        reports["rules"] = rules_report(build_copilot(rules_only, "offline"), messages)
    if args.json:
        print(json.dumps(reports, indent=1))
        return 0
    where = str(args.data) if args.data else "the dev split"
    print(f"{len(messages)} messages from {where}")
    print(render(reports))
    return 0


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.1%}"


def render(reports: dict[str, dict[str, Any]]) -> str:
    """One table per reader: top topic accuracy, emotion and flag recall, per language."""
    lines = []
    for reader, report in reports.items():
        rows = {"overall": report["overall"], **report["by_language"]}
        lines.append(
            f"{reader:10}{'n':>5} {'top topic':>10} {'primary in':>11} {'2nd topic':>10} "
            f"{'emotion±1':>10} {'acc/dem≥2':>10} {'topic ECE':>10}"
        )
        for name, row in rows.items():
            lines.append(
                f"  {name:8}{row['n']:>5} {_pct(row.get('top_topic_acc')):>10} "
                f"{_pct(row.get('primary_in_topics')):>11} "
                f"{_pct(row.get('second_topic_recall')):>10} "
                f"{_pct(row.get('emotion_within_1')):>10} "
                f"{_pct(row.get('accusation_or_demand_ge2')):>10} "
                f"{'-' if row.get('topic_ece') is None else format(row['topic_ece'], '.3f'):>10}"
            )
        flags = report["overall"].get("flags")
        if flags:
            lines.append(f"  {'flag':32}{'n':>5} {'recall':>8} {'precision':>10}")
            for flag, row in flags.items():
                lines.append(
                    f"  {flag:32}{row['n']:>5} {_pct(row['recall']):>8} "
                    f"{_pct(row['precision']):>10}"
                )
        else:
            lines.append("  (no situation flags)")
    return "\n".join(lines)
