"""Benchmarks behind ``copilot bench``: figures for the closing notes, ratios in the same run."""

from __future__ import annotations

import math
import statistics


def latency_percentiles(seconds: list[float]) -> dict[str, float]:
    """p50 (median) and nearest-rank p95 of timings given in seconds, in milliseconds."""
    ms = sorted(s * 1000 for s in seconds)
    return {
        "p50_ms": statistics.median(ms),
        "p95_ms": ms[min(len(ms) - 1, math.ceil(0.95 * len(ms)) - 1)],
    }
