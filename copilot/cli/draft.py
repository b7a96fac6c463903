"""``copilot draft``: a grounded, cited, guard-railed reply draft for one message or a JSONL file.

One message: ``--text "MESSAGE" [--name NAME]`` prints the draft, its sources,
the verdict and the flags (exit 1 when the draft is blocked).

A file: ``--input IN.jsonl --output OUT.jsonl``. Input lines are
``{"id", "customer_message", "language"?, "customer_name"?, "history"?: [{"role", "text"}],
"agent_note"?}`` (``agent_note``: the agent's internal note for that ticket, as ``--note``);
each output line is ``{"id", **DraftResult.to_dict(), "draft_id"?}``, or ``{"id", "error"}``
for a line that failed, and the run goes on. Exit 1 when any line failed. The output is
written to a temporary file and renamed at the end (a previous output survives a failure);
an output that is the input (or a link to it) is refused.

Every draft is recorded in the database (``origin`` cli, ``draft_id`` in the JSON) unless
``--no-record`` or ``COPILOT_RECORD_DRAFTS=false``. Recording never holds back or fails a
draft: the draft is printed (or written) first; a store error is reported on stderr, and in
a file run the remaining drafts are not recorded after the first failure (one line says how
many). The exit code is the draft's.
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
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="do not store the drafts in the database (default: COPILOT_RECORD_DRAFTS)",
    )
    parser.add_argument("--agent", help="the agent's name, stored with the recorded drafts")


def run(args: argparse.Namespace) -> int:
    """Draft and print, or draft a whole file; record each draft unless told not to."""
    from copilot.draft.types import DraftRequest
    from copilot.errors import CopilotError
    from copilot.jsonl import check_readable, refuse_overwriting_inputs
    from copilot.settings import get_settings
    from copilot.store.recording import RecordingCopilot

    if args.input is not None and args.output is None:
        raise CopilotError("--input needs --output FILE.jsonl")
    if args.input is not None:
        refuse_overwriting_inputs(args.output, {"--input": args.input})
        check_readable(args.input)  # before the copilot is built
    settings = get_settings()
    recorder = RecordingCopilot.from_settings(
        settings, backend=args.backend, origin="cli", record=False if args.no_record else None
    )
    if args.input is not None:
        return _run_file(recorder, args.input, args.output, args.agent)
    request = DraftRequest(
        args.text,
        language=args.language,
        customer_name=args.name,
        channel=args.channel,
        agent_note=args.note,
    )
    result = recorder.copilot.draft(request)
    if args.json:
        done = recorder.record(result, request, agent=args.agent)
        extra = {"draft_id": done.draft_id} if done.draft_id else {}
        print(json.dumps({**result.to_dict(), **extra}, ensure_ascii=False, indent=2), flush=True)
    else:
        print(render(result), flush=True)  # the draft first: recording never holds it back
        done = recorder.record(result, request, agent=args.agent)
    if done.error:
        print(f"warning: {done.error}", file=sys.stderr)
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
    note = require_str(obj, "agent_note", path, line, optional=True)
    return DraftRequest(
        str(message), language=language, customer_name=name, history=history, agent_note=note
    )


def _run_file(recorder: Any, source: Path, target: Path, agent: str | None) -> int:
    from copilot.errors import CopilotError, Problem
    from copilot.jsonl import LineError, atomic_output, read_jsonl, write_line

    done = failed = blocked = unrecorded = 0
    record_error: str | None = None
    lines = read_jsonl(source)
    with atomic_output(target) as out:
        for number, item in lines:
            row_id = item.get("id") if isinstance(item, dict) else None
            try:
                if isinstance(item, Problem):
                    raise LineError(item)
                if row_id is None:
                    raise LineError(Problem(str(source), number, "field 'id': missing"))
                request = _request(item, source, number)
                result = recorder.copilot.draft(request)
            except LineError as exc:
                error = str(exc)
            except CopilotError as exc:
                error = f"{source}: line {number}: {exc}"
            except Exception as exc:  # keep going; the line records what went wrong
                error = f"{source}: line {number}: internal error: {type(exc).__name__}: {exc}"
            else:
                extra: dict[str, Any] = {}
                if recorder.store is not None and record_error is None:
                    saved = recorder.record(result, request, agent=agent)
                    if saved.error:
                        record_error = f"{source}: line {number}: {saved.error}"
                        print(f"warning: {record_error}", file=sys.stderr)
                    else:
                        extra["draft_id"] = saved.draft_id
                if recorder.store is not None and "draft_id" not in extra:
                    unrecorded += 1
                write_line(out, {"id": row_id, **result.to_dict(), **extra})
                done += 1
                blocked += int(result.blocked)
                continue
            failed += 1
            print(error, file=sys.stderr)
            write_line(out, {"id": row_id, "error": error})
    if unrecorded:
        print(
            f"warning: {unrecorded} draft(s) were not recorded in the database "
            "(recording stopped at the first store error; the output file has them all)",
            file=sys.stderr,
        )
    print(f"{done} drafted ({blocked} blocked), {failed} failed -> {target}", file=sys.stderr)
    return 1 if failed else 0
