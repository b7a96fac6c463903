"""Eval runs on disk, for the QA page: the report folders ``eval --report DIR`` wrote.

:func:`find_runs` lists the folders under a root that hold a ``report.json`` (newest first),
:func:`load_run` reads one (the same check as ``eval --baseline``), :func:`aggregate_rows`
flattens its per-language or per-category means for a chart, and :func:`diff_runs` is the
run-versus-run comparison ``eval --baseline`` makes (:func:`copilot.evaluation.diff.compare`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError
from copilot.evaluation.diff import DEFAULT_THRESHOLD, compare, load_baseline

#: How deep under the root report folders are looked for (root/run, root/suite/run, ...).
MAX_DEPTH = 3


@dataclass(frozen=True)
class RunInfo:
    """One eval run: its folder and the figures shown in the run list."""

    folder: Path
    name: str
    started_at: str
    backend: str
    model: str
    cases: int
    score: float | None
    problem: str | None = None  # why the report cannot be used, if it cannot


def _summary(folder: Path, root: Path) -> RunInfo:
    name = str(folder.relative_to(root)) if folder != root else folder.name
    try:
        report = load_run(folder)
    except CopilotError as exc:
        return RunInfo(folder, name, "", "", "", 0, None, problem=str(exc))
    meta = report.get("meta") or {}
    overall = (report.get("aggregates") or {}).get("overall") or {}
    score = (overall.get("mean") or {}).get("score")
    backends = sorted({str((c.get("meta") or {}).get("backend") or "") for c in report["cases"]})
    return RunInfo(
        folder,
        name,
        str(meta.get("started_at") or ""),
        str(meta.get("backend") or ", ".join(b for b in backends if b)),
        str(meta.get("model") or ""),
        len(report["cases"]),
        float(score) if isinstance(score, int | float) else None,
    )


def find_runs(root: Path) -> list[RunInfo]:
    """The report folders under ``root`` (``root`` itself too), newest first; an unreadable
    report is listed with its problem rather than hidden."""
    if not root.is_dir():
        return []
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        if (folder / "report.json").is_file():
            found.append(folder)
        if depth >= MAX_DEPTH:
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
        except OSError:
            return
        for child in children:
            if not child.name.startswith("."):
                walk(child, depth + 1)

    walk(root, 0)
    runs = [_summary(f, root) for f in found]
    return sorted(runs, key=lambda r: (r.started_at, r.name), reverse=True)


def load_run(folder: Path) -> dict[str, Any]:
    """A run's ``report.json`` (a clear error when it is not an eval report)."""
    try:
        return load_baseline(folder)
    except CopilotError as exc:
        raise CopilotError(str(exc).replace("--baseline ", "", 1)) from None
    except (json.JSONDecodeError, OSError) as exc:  # pragma: no cover - load_baseline maps these
        raise CopilotError(f"{folder}: not a readable report: {exc}") from None


def aggregate_rows(report: dict[str, Any], by: str) -> list[dict[str, Any]]:
    """``by_language`` or ``by_category`` means as rows ``{group, n, score, <metric>...}``."""
    if by not in ("by_language", "by_category"):
        raise CopilotError(f"aggregate {by!r}: use by_language or by_category")
    groups = (report.get("aggregates") or {}).get(by) or {}
    rows = []
    for group, stats in sorted(groups.items()):
        means = (stats or {}).get("mean") or {}
        rows.append(
            {
                "group": group,
                "n": int((stats or {}).get("n") or 0),
                **{k: v for k, v in means.items() if isinstance(v, int | float)},
            }
        )
    return rows


def diff_runs(
    run: dict[str, Any], baseline: dict[str, Any], *, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, Any]:
    """Per-case deltas of ``run`` against ``baseline`` (a drop over ``threshold`` is a
    regression) and the aggregate deltas: what ``eval --baseline`` reports."""
    return compare(
        run["cases"], baseline, threshold=threshold, aggregates=run.get("aggregates") or {}
    )
