"""``copilot check``: run the guardrail on drafts, from a JSONL file or one ``--text``.

File mode reads lines ``{"id", "draft", "customer_message"?, "language"?, "sources"?}`` and
writes ``{"id", "verdict", "violations", "flags"}`` per line. Bad lines are reported as
``PATH: line N: ...`` and skipped; the exit code is 1 when any line failed, 2 when the file
cannot be read, else 0. ``--text`` prints a human-readable verdict (exit 0 pass, 1 reject).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "Check reply drafts against the guardrail policy (--input FILE.jsonl --output FILE.jsonl, or --text)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the verb."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--input", type=Path, help="JSONL drafts: id, draft, customer_message?, language?, sources?"
    )
    src.add_argument(
        "--text", help="one draft to check; prints a readable verdict (exit 1 on reject)"
    )
    parser.add_argument(
        "--output", type=Path, help="JSONL verdicts (with --input; default: stdout)"
    )
    parser.add_argument("--customer-message", help="the customer's message (with --text)")
    parser.add_argument(
        "--language", choices=("en", "ja", "zh"), help="draft language (default: detected)"
    )
    parser.add_argument("--sources", help="comma-separated cited article ids (with --text)")


def run(args: argparse.Namespace) -> int:
    """Check drafts and print or write verdicts."""
    from copilot.errors import CopilotError
    from copilot.guard.guardrail import PolicyGuardrail
    from copilot.settings import get_settings

    if args.text is None and args.input is None:
        raise CopilotError("give --input FILE.jsonl or --text 'DRAFT'")
    if args.output is not None and args.input is None:
        raise CopilotError("--output needs --input")
    guardrail = PolicyGuardrail.from_settings(get_settings())
    if args.text is not None:
        sources = [s.strip() for s in (args.sources or "").split(",") if s.strip()] or None
        verdict = guardrail.check(
            args.text,
            customer_message=args.customer_message,
            language=args.language,
            sources=sources,
        )
        print(render_verdict(args.text, verdict))
        return 0 if verdict.verdict == "pass" else 1
    return _check_file(guardrail, args.input, args.output, args.language)


CHECK_BATCH = 256  # drafts whose embeddings are computed together


def _validate(obj: dict[str, Any], path: Path, number: int) -> dict[str, Any]:
    from copilot.errors import Problem
    from copilot.jsonl import LineError

    draft_id = obj.get("id")
    if not isinstance(draft_id, (str, int)) or isinstance(draft_id, bool) or draft_id == "":
        raise LineError(Problem(str(path), number, "field 'id': missing or not a string/number"))
    draft = obj.get("draft")
    if not isinstance(draft, str):
        what = "missing" if draft is None else "must be text"
        raise LineError(Problem(str(path), number, f"field 'draft': {what}"))
    customer = obj.get("customer_message") or None
    if customer is not None and not isinstance(customer, str):
        raise LineError(Problem(str(path), number, "field 'customer_message': must be text"))
    language = obj.get("language")
    if language is not None and language not in ("en", "ja", "zh"):
        raise LineError(
            Problem(str(path), number, f"field 'language': {language!r} is not en, ja or zh")
        )
    sources = obj.get("sources")
    if sources is not None and (
        not isinstance(sources, list) or not all(isinstance(s, str) for s in sources)
    ):
        raise LineError(
            Problem(str(path), number, "field 'sources': must be a list of article ids")
        )
    return {
        "id": draft_id,
        "draft": draft,
        "customer_message": customer,
        "language": language,
        "sources": sources,
    }


def _check_file(guardrail: Any, path: Path, output: Path | None, language: str | None) -> int:
    from copilot.errors import Problem
    from copilot.jsonl import (
        LineError,
        atomic_output,
        read_jsonl,
        refuse_overwriting_inputs,
        write_line,
    )

    refuse_overwriting_inputs(output, {"--input": path})
    failed = passed = rejected = 0
    batch: list[dict[str, Any]] = []

    def flush(handle: Any) -> None:
        # the learned tiers embed a whole batch at once (check_many); order is kept
        nonlocal passed, rejected
        for row, verdict in zip(batch, guardrail.check_many(batch), strict=True):
            write_line(handle, {"id": row["id"], **verdict.to_dict()})
            rejected += verdict.verdict == "reject"
            passed += verdict.verdict == "pass"
        batch.clear()

    lines = read_jsonl(path)  # an unreadable input fails here, before any output exists
    with atomic_output(output) as handle:
        for number, item in lines:
            try:
                if isinstance(item, Problem):
                    raise LineError(item)
                row = _validate(item, path, number)
            except LineError as exc:
                print(exc.problem, file=sys.stderr)
                failed += 1
                continue
            batch.append(row | {"language": row["language"] or language})
            if len(batch) >= CHECK_BATCH:
                flush(handle)
        flush(handle)
    print(
        f"checked {passed + rejected} draft(s): {passed} pass, {rejected} reject; {failed} bad line(s)",
        file=sys.stderr,
    )
    return 1 if failed else 0


def render_verdict(draft: str, verdict: Any) -> str:
    """A readable verdict: the decision, each violation with its excerpt and fix, then flags."""
    lines = [f"{verdict.verdict.upper()} ({verdict.language})"]
    for v in verdict.violations:
        start, end = v.span
        lines.append(
            f"  [{v.severity}] {v.rule} at {start}-{end}: {json.dumps(v.excerpt, ensure_ascii=False)}"
        )
        lines.append(f"      {v.message}")
        lines.append(f"      fix: {v.fix}")
    for f in verdict.flags:
        where = f" at {f.span[0]}-{f.span[1]}" if f.span else ""
        level = f" level {f.level}" if f.level is not None else ""
        lines.append(f"  flag {f.kind}{where}: {f.detail}{level}")
    if not verdict.violations:
        lines.append("  no violations")
    return "\n".join(lines)
