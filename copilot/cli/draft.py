"""``copilot draft``: a grounded, cited, guard-railed reply draft for one message or a JSONL file.

One message: ``--text "MESSAGE" [--name NAME]`` prints the draft, its sources,
the verdict and the flags (exit 1 when the draft is blocked).

A file: ``--input IN.jsonl --output OUT.jsonl``. Input lines are
``{"id", "customer_message", "language"?, "customer_name"?, "history"?: [{"role", "text"}]}``;
each output line is ``{"id", **DraftResult.to_dict()}``, or ``{"id", "error"}``
for a line that failed, and the run goes on. Exit 1 when any line failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "Draft a grounded, cited, guard-railed reply for a customer message or a JSONL file."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the verb."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the customer's message")
    source.add_argument("--input", type=Path, help="JSONL file of messages (needs --output)")
    parser.add_argument("--output", type=Path, help="JSONL file to write the drafts to")
    parser.add_argument("--name", help="the customer's name, for the greeting")
    parser.add_argument("--language", choices=("en", "ja", "zh"), help="default: detected")
    parser.add_argument("--channel", help="chat, email, ... (default chat)")
    parser.add_argument("--note", help="a private note from the agent, used as context")
    parser.add_argument(
        "--backend", choices=("offline", "openai"), help="default: COPILOT_LLM_BACKEND (offline)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON (--text)")


def run(args: argparse.Namespace) -> int:
    """Draft and print, or draft a whole file."""
    from copilot.draft.factory import build_copilot
    from copilot.draft.types import DraftRequest
    from copilot.errors import CopilotError
    from copilot.settings import get_settings

    if args.input is not None and args.output is None:
        raise CopilotError("--input needs --output FILE.jsonl")
    if (
        args.input is not None
        and args.output is not None
        and args.input.resolve() == args.output.resolve()
    ):
        raise CopilotError("--output must not be the --input file")
    copilot = build_copilot(get_settings(), args.backend)
    if args.input is not None:
        return _run_file(copilot, args.input, args.output)
    result = copilot.draft(
        DraftRequest(
            args.text,
            language=args.language,
            customer_name=args.name,
            channel=args.channel,
            agent_note=args.note,
        )
    )
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(render(result))
    return 1 if result.blocked else 0


def render(result: Any) -> str:
    """The draft followed by its sources, verdict and flags, for a terminal."""
    lines = [result.draft, "", "-" * 60, "Sources:"]
    lines += [f"  [{s['id']}] {s['title']}" for s in result.sources] or ["  (none)"]
    if result.abstained:
        lines.append("  retrieval abstained: no article answers this message")
    state = "BLOCKED (do not send as is)" if result.blocked else result.verdict
    lines.append(f"Verdict: {state} after {result.attempts} attempt(s)")
    for v in result.violations:
        lines.append(
            f"  - {v.rule} ({v.severity}): {v.message}" + (f' "{v.excerpt}"' if v.excerpt else "")
        )
    if result.flags:
        lines.append("Flags:")
        for f in result.flags:
            level = f" level {f.level}" if f.level is not None else ""
            lines.append(f"  - {f.kind}{level}: {f.detail or ''}".rstrip(": "))
    lines.append(
        f"Backend: {result.backend} ({result.model}), prompts {result.prompt_version}, "
        f"KB {result.kb_version}, {result.latency_ms.get('total', 0):.0f} ms"
    )
    return "\n".join(lines)


def _request(obj: dict[str, Any], path: Path, line: int) -> Any:
    """A DraftRequest from one input line, or :class:`LineError` naming the field."""
    from copilot.draft.types import DraftRequest, Turn
    from copilot.errors import Problem
    from copilot.jsonl import LineError, require_str

    message = require_str(obj, "customer_message", path, line)
    language = require_str(obj, "language", path, line, optional=True)
    if language is not None and language not in ("en", "ja", "zh"):
        raise LineError(
            Problem(str(path), line, f"field 'language': {language!r} is not en, ja or zh")
        )
    name = require_str(obj, "customer_name", path, line, optional=True)
    history_raw = obj.get("history") or []
    if not isinstance(history_raw, list):
        raise LineError(Problem(str(path), line, "field 'history': must be a list"))
    history = []
    for i, turn in enumerate(history_raw):
        if (
            not isinstance(turn, dict)
            or turn.get("role") not in ("customer", "agent")
            or not isinstance(turn.get("text"), str)
        ):
            raise LineError(
                Problem(
                    str(path),
                    line,
                    f"field 'history[{i}]': must be "
                    '{"role": "customer" or "agent", "text": "..."}',
                )
            )
        history.append(Turn(turn["role"], turn["text"]))
    return DraftRequest(str(message), language=language, customer_name=name, history=history)


def _run_file(copilot: Any, source: Path, target: Path) -> int:
    from copilot.errors import CopilotError, Problem
    from copilot.jsonl import LineError, read_jsonl, write_line

    done = failed = blocked = 0
    try:
        out = target.open("w", encoding="utf-8")
    except OSError as exc:
        raise CopilotError(f"{target}: cannot write file: {exc.strerror}") from None
    with out:
        for number, item in read_jsonl(source):
            row_id = item.get("id") if isinstance(item, dict) else None
            try:
                if isinstance(item, Problem):
                    raise LineError(item)
                if row_id is None:
                    raise LineError(Problem(str(source), number, "field 'id': missing"))
                result = copilot.draft(_request(item, source, number))
            except LineError as exc:
                error = str(exc)
            except CopilotError as exc:
                error = f"{source}: line {number}: {exc}"
            except Exception as exc:  # keep going; the line records what went wrong
                error = f"{source}: line {number}: internal error: {type(exc).__name__}: {exc}"
            else:
                write_line(out, {"id": row_id, **result.to_dict()})
                done += 1
                blocked += int(result.blocked)
                continue
            failed += 1
            print(error, file=sys.stderr)
            write_line(out, {"id": row_id, "error": error})
    print(f"{done} drafted ({blocked} blocked), {failed} failed -> {target}", file=sys.stderr)
    return 1 if failed else 0
