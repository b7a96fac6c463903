"""``copilot bench load``: 1, 5 and 20 concurrent agents drafting while an ingest runs.

A team deployment in small: a throwaway ``chroma run`` server and PostgreSQL cluster on
loopback (SQLite, said so in the output, when the PostgreSQL server binaries are missing),
the shipped KB ingested into the server, and one replica's copilot (offline backend, the
KB pointer read every second) shared by N agent threads, as Streamlit sessions share it.
At each level an ingest of a changed KB runs in another process (``copilot ingest``, as
from the one place a team ingests); every agent drafts and saves drafts until it has done
its share, the ingest has finished and the replica serves the new version (it reads the
KB pointer every second), so drafts run before, during and after the switch.

Per level: throughput, p50/p95 of one agent's draft + save, errors (must be 0), rows
written (the store's count) against drafts finished (must match), which KB versions the
drafts recorded (each must be one of the two KBs), how many drafts ran during the ingest,
and whether the replica picked up the new version without a restart.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from copilot.bench import latency_percentiles
from copilot.bench.servers import ChromaServer, postgres_server, postgres_unavailable

LEVELS = (1, 5, 20)
DRAFTS_PER_AGENT = 10  # at least; agents go on until the ingest has finished
QUICK_DRAFTS_PER_AGENT = 2
MAX_SECONDS_PER_LEVEL = 600.0
SWITCH_WAIT_S = 30.0  # after an ingest, drafts go on until the replica serves its version
COLLECTION = "bench-load"
# appended to these articles' key facts to make the second KB version
CHANGED = ("faq/withdrawal.en.md", "faq/deposit.en.md", "faq/fees.en.md")


@contextlib.contextmanager
def _database(tmp: Path) -> Iterator[tuple[str, str]]:
    """(URL, note): a private PostgreSQL cluster, else SQLite in ``tmp`` with the reason."""
    reason = postgres_unavailable()
    if reason is not None:
        yield f"sqlite:///{tmp / 'load.db'}", f"PostgreSQL not available ({reason}): SQLite"
        return
    with postgres_server() as url:
        yield url, "PostgreSQL (private cluster on loopback)"


def _changed_kb(source: Path, dest: Path) -> Path:
    """A copy of the KB with a sentence added to a few articles (a second KB version)."""
    shutil.copytree(source, dest)
    for rel in CHANGED:
        path = dest / rel
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text.replace(
                "{#key-facts}\n", "{#key-facts}\n- Load test note: figures checked today.\n", 1
            ),
            encoding="utf-8",
        )
    return dest


def _ingest_process(settings: Any, kb: Path, data: Path) -> subprocess.Popen[str]:
    """``copilot ingest`` of ``kb`` in another process, against the same server and cache."""
    root = Path(__file__).resolve().parent.parent.parent
    env = {
        **os.environ,
        "COPILOT_CHROMA_URL": str(settings.chroma_url),
        "COPILOT_COLLECTION": COLLECTION,
        "COPILOT_DATA_DIR": str(data),
        "COPILOT_EMBED_CACHE": str(settings.embed_cache_path),
        "COPILOT_EMBEDDING_MODEL": settings.embedding_model,
        "COPILOT_EMBED_ENGINE": settings.embed_engine,
        "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "copilot", "ingest", "--kb", str(kb), "--json"],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _level(
    copilot: Any,
    store: Any,
    requests: list[Any],
    agents: int,
    per_agent: int,
    ingest: subprocess.Popen[str],
    new_version: str,
) -> dict[str, Any]:
    """Run one level; returns its figures (the ingest is already started). Agents stop once
    each has done ``per_agent`` drafts, the ingest has finished and a draft was grounded in
    ``new_version`` (the replica picked it up), or at the deadline."""
    ingest_start = time.monotonic()
    ingest_end: list[float] = []
    finished = threading.Event()

    def watch() -> None:
        ingest.wait()
        ingest_end.append(time.monotonic())
        finished.set()

    threading.Thread(target=watch, daemon=True).start()
    lock = threading.Lock()
    timings: list[tuple[float, float]] = []  # (start, seconds) per finished draft
    versions: dict[str, int] = {}
    errors: list[str] = []
    ids: list[str] = []
    deadline = time.monotonic() + MAX_SECONDS_PER_LEVEL
    picked_up = threading.Event()

    def more(done: int) -> bool:
        if time.monotonic() >= deadline:
            return False
        if done < per_agent or not finished.is_set():
            return True
        # after the ingest: until the replica serves the new version (refresh_s, plus slack)
        return not picked_up.is_set() and time.monotonic() < ingest_end[0] + SWITCH_WAIT_S

    def agent(index: int) -> None:
        done = 0
        while more(done):
            request = requests[(index * 7 + done) % len(requests)]
            start = time.monotonic()
            try:
                result = copilot.draft(request)
                draft_id = store.save_draft(
                    result.to_dict(),
                    {"customer_message": request.customer_message, "agent": f"load-{index}"},
                )
            except Exception as exc:  # every failure is counted and shown, none is fatal
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])
                done += 1
                continue
            elapsed = time.monotonic() - start
            with lock:
                timings.append((start, elapsed))
                versions[result.kb_version] = versions.get(result.kb_version, 0) + 1
                ids.append(draft_id)
            if result.kb_version == new_version:
                picked_up.set()
            done += 1

    before = int(store.stats()["drafts"])
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=agents) as pool:
        list(pool.map(agent, range(agents)))
    wall = time.monotonic() - began
    out, err = ingest.communicate()
    finished.wait(timeout=10)
    end = ingest_end[0] if ingest_end else time.monotonic()
    rows = int(store.stats()["drafts"]) - before
    report: dict[str, Any] = {}
    if ingest.returncode == 0:
        with contextlib.suppress(ValueError, IndexError):
            report = json.loads(out.strip().splitlines()[-1])
    else:
        errors.append(f"ingest exited with {ingest.returncode}: {err.strip()[-300:]}")
    during = sum(1 for start, _ in timings if ingest_start <= start <= end)
    stats = latency_percentiles([s for _, s in timings]) if timings else {}
    return {
        "agents": agents,
        "drafts": len(timings),
        "seconds": round(wall, 3),
        "throughput_per_s": round(len(timings) / wall, 2) if wall > 0 else 0.0,
        "p50_ms": round(stats.get("p50_ms", 0.0), 1),
        "p95_ms": round(stats.get("p95_ms", 0.0), 1),
        "errors": len(errors),
        "error_samples": errors[:5],
        "rows_expected": len(timings),
        "rows_written": rows,
        "distinct_ids": len(set(ids)),
        "drafts_during_ingest": during,
        "kb_versions_seen": versions,
        "ingest_s": round(end - ingest_start, 2),
        "ingest_kb_version": str(report.get("kb_version", "")),
        "ingest_switched": bool(report.get("switched", False)),
        "new_version_served": picked_up.is_set(),
    }


def _requests(settings: Any) -> list[Any]:
    from copilot.bench.draft import _samples
    from copilot.draft.types import DraftRequest

    return [
        DraftRequest(
            row["customer_message"],
            language=row.get("language"),
            customer_name=row.get("customer_name"),
        )
        for row in _samples(settings)
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure and return the figures."""
    from copilot.draft.factory import build_copilot
    from copilot.kb.articles import kb_version, load_kb
    from copilot.kb.ingest import docs_from_articles
    from copilot.retrieval.index import ingest_into
    from copilot.settings import get_settings
    from copilot.store import SqlStore

    quick = bool(getattr(args, "quick", False))
    per_agent = QUICK_DRAFTS_PER_AGENT if quick else DRAFTS_PER_AGENT
    base = get_settings()
    requests = _requests(base)
    with tempfile.TemporaryDirectory(prefix="copilot-load-") as tmp_name:
        tmp = Path(tmp_name)
        kbs = [base.knowledge_dir, _changed_kb(base.knowledge_dir, tmp / "kb-changed")]
        kb_versions = [
            kb_version((a.key, a.content_hash) for a in load_kb(kb)) for kb in kbs
        ]  # fmt: skip
        with ChromaServer(tmp / "chroma") as chroma, _database(tmp) as (db_url, db_note):
            settings = replace(
                base,
                data_dir=tmp / "replica",
                chroma_path=None,
                chroma_url=chroma.url,
                collection=COLLECTION,
                database_url=db_url,
                embed_cache=base.embed_cache_path,
                kb_refresh_s=1.0,
            )
            ingest_into(settings, COLLECTION, docs_from_articles(load_kb(kbs[0])))
            copilot = build_copilot(settings, "offline")
            store = SqlStore.from_url(db_url)
            try:
                for request in requests[:3]:  # warm-up: models, indexes, caches, connection
                    store.save_draft(
                        copilot.draft(request).to_dict(),
                        {"customer_message": request.customer_message, "agent": "warm-up"},
                    )
                levels = []
                for i, agents in enumerate(LEVELS):
                    target = (i + 1) % 2  # each level switches to the other KB
                    ingest = _ingest_process(settings, kbs[target], tmp / f"ingester-{i}")
                    figures = _level(
                        copilot, store, requests, agents, per_agent, ingest, kb_versions[target]
                    )
                    levels.append(figures)
                recorded = {
                    str(r.get("kb_version"))
                    for r in store.recent(sum(lv["drafts"] for lv in levels))
                }
            finally:
                close = getattr(store, "close", None)
                if callable(close):
                    close()
    errors = sum(lv["errors"] for lv in levels)
    switched = all(lv["ingest_switched"] and lv["new_version_served"] for lv in levels)
    match = all(lv["rows_written"] == lv["rows_expected"] == lv["distinct_ids"] for lv in levels)
    known = recorded <= set(kb_versions)
    return {
        "quick": quick,
        "backend": "offline",
        "chroma": "chroma run (loopback)",
        "database": "postgresql" if db_url.startswith("postgres") else "sqlite",
        "database_note": db_note,
        "embedder": settings.embedding_model,
        "drafts_per_agent_at_least": per_agent,
        "kb_versions": kb_versions,
        "levels": levels,
        "recorded_kb_versions": sorted(recorded),
        "targets": {
            "errors == 0": errors == 0,
            "rows written == drafts finished": match,
            "every draft records one of the two KB versions": known,
            "the replica served each new version without restart": switched,
        },
        "load_average": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count() or 1,
    }


def render(r: dict[str, Any]) -> str:
    """A plain-text table."""
    lines = [
        f"load: offline drafts against {r['chroma']} and {r['database_note']}; an ingest of a "
        f"changed KB runs at every level ({r['embedder']}, >= {r['drafts_per_agent_at_least']} "
        "drafts per agent)",
        f"  {'agents':>6} {'drafts':>6} {'drafts/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'errors':>6} {'rows':>11} {'in ingest':>9} {'ingest s':>8}  KB versions seen",
    ]
    for lv in r["levels"]:
        seen = ", ".join(f"{v[:8]} x{n}" for v, n in sorted(lv["kb_versions_seen"].items()))
        lines.append(
            f"  {lv['agents']:>6} {lv['drafts']:>6} {lv['throughput_per_s']:>8.1f} "
            f"{lv['p50_ms']:>8.1f} {lv['p95_ms']:>8.1f} {lv['errors']:>6} "
            f"{lv['rows_written']:>5}/{lv['rows_expected']:<5} {lv['drafts_during_ingest']:>9} "
            f"{lv['ingest_s']:>8.1f}  {seen}"
        )
        for sample in lv["error_samples"]:
            lines.append(f"         error: {sample}")
    lines += [f"target {name}: {'met' if ok else 'MISSED'}" for name, ok in r["targets"].items()]
    lines.append(
        f"(latency = one agent's draft + save; 1-minute load average at the end: "
        f"{r['load_average']} on {r['cpus']} cores)"
    )
    return "\n".join(lines)
