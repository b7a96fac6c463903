"""JSONL input and output with per-line errors (``PATH: line N: ...``) and no lost lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from copilot.errors import CopilotError, Problem


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | Problem]]:
    """Yield ``(line_number, object)`` or ``(line_number, Problem)`` for each non-blank line.

    A file that cannot be opened or decoded raises :class:`CopilotError` (exit 2).
    """
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise CopilotError(f"{path}: cannot read file: {exc.strerror}", exit_code=2) from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield (
                        number,
                        Problem(
                            str(path), number, f"not valid JSON: {exc.msg} (column {exc.colno})"
                        ),
                    )
                    continue
                if not isinstance(obj, dict):
                    yield number, Problem(str(path), number, "each line must be a JSON object")
                    continue
                yield number, obj
        except UnicodeDecodeError as exc:
            raise CopilotError(f"{path}: not UTF-8 text ({exc.reason})", exit_code=2) from None


def require_str(
    obj: dict[str, Any], name: str, path: Path, line: int, *, optional: bool = False
) -> str | None:
    """The string field ``name`` or a :class:`LineError` naming file, line and field."""
    value = obj.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        what = (
            "missing" if value is None else f"must be non-empty text, got {json.dumps(value)[:40]}"
        )
        raise LineError(Problem(str(path), line, f"field '{name}': {what}"))
    return value


class LineError(Exception):
    """A problem with one input line; the run goes on with the next line."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def write_line(handle: TextIO, obj: dict[str, Any]) -> None:
    """Write one JSON object as a line and flush, so an interrupted run keeps what it wrote."""
    handle.write(json.dumps(obj, ensure_ascii=False) + "\n")
    handle.flush()
