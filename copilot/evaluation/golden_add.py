"""A golden case from a reply an agent sent: built, validated by the eval loader, and written
to a new file (an existing file is never overwritten or appended to).

The QA page calls :func:`golden_case` with a stored draft (``Store.get_draft``) and the sent
text, then :func:`write_golden_case`, which writes ``<folder>/<case id>.jsonl`` only when no
file of that name exists and no golden file in the folder has that id already.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError, InputError
from copilot.evaluation.cases import load_golden
from copilot.jsonl import write_line

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def golden_case(
    draft: Mapping[str, Any],
    sent_text: str,
    *,
    case_id: str,
    category: str,
    must_include: Sequence[str] = (),
    must_not_include: Sequence[str] = (),
) -> dict[str, Any]:
    """The golden line for a sent reply: the customer's message, the sent text as the golden
    reply, the draft's language and cited sources, ``expect_verdict: pass``."""
    result = draft.get("result") or {}
    request = draft.get("request") or {}
    return {
        "id": case_id.strip(),
        "language": str(result.get("language") or ""),
        "category": category.strip(),
        "customer_message": str(request.get("customer_message") or ""),
        "golden_reply": sent_text,
        "must_include": [s.strip() for s in must_include if s.strip()],
        "must_not_include": [s.strip() for s in must_not_include if s.strip()],
        "expected_sources": [str(s) for s in result.get("sources") or []],
        "expect_verdict": "pass",
        "source_draft": str(draft.get("id") or ""),
    }


def _ids_in(folder: Path) -> dict[str, Path]:
    ids: dict[str, Path] = {}
    for path in sorted(folder.glob("*.jsonl")):
        if path.name.startswith("."):
            continue  # a file being written
        try:
            for case in load_golden(path).cases:
                ids.setdefault(case.id, path)
        except CopilotError:
            continue  # a broken file elsewhere does not stop a new case
    return ids


def write_golden_case(
    case: Mapping[str, Any], folder: Path, *, max_reply_chars: int | None = None
) -> Path:
    """Validate ``case`` with the eval loader and write it to a new ``<id>.jsonl`` in
    ``folder``; returns the path. Refused with a clear error: an invalid case (the loader's
    field problems), an id some golden file in the folder already has, an existing file."""
    case_id = str(case.get("id") or "").strip()
    name = _SAFE.sub("-", case_id).strip(".-") or "case"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CopilotError(f"cannot create golden folder {folder}: {exc.strerror or exc}") from None
    path = folder / f"{name}.jsonl"
    if path.exists():
        raise CopilotError(
            f"{path} already exists: golden files are never overwritten; choose another case id"
        )
    fd, tmp_name = tempfile.mkstemp(prefix=".golden-", suffix=".jsonl", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            write_line(out, dict(case))
        try:
            load_golden(tmp, max_reply_chars=max_reply_chars)
        except InputError as exc:
            problems = "; ".join(p.message for p in exc.problems)
            raise CopilotError(f"not a valid golden case: {problems}") from None
        taken = _ids_in(folder).get(case_id)
        if taken is not None:
            raise CopilotError(f"golden case id {case_id!r} is already used in {taken}")
        try:
            os.link(tmp, path)  # fails if the name appeared meanwhile: nothing is overwritten
        except FileExistsError:
            raise CopilotError(
                f"{path} already exists: golden files are never overwritten; choose another case id"
            ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return path
