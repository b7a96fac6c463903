"""Calibrated relevance scores: a logistic map from a hit's evidence (cosine, keyword coverage) to P(relevant), and the abstention threshold."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Calibration:
    """Logistic map from a hit's evidence to P(relevant): sigmoid(bias + w_dense*cos + w_bm25*cov).

    ``cos`` is the best cosine similarity of the article's chunks to the query; ``cov`` the
    IDF-weighted share of query tokens found in its best keyword chunk. Fitted per mode by
    ``copilot bench retrieval`` on a calibration split (docs/retrieval.md).
    """

    bias: float
    w_dense: float
    w_bm25: float
    threshold: float

    def probability(self, cos: float, cov: float) -> float:
        """Calibrated relevance probability of one hit."""
        z = self.bias + self.w_dense * cos + self.w_bm25 * cov
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


# Fitted by `copilot bench retrieval` on the calibration half of queries_v1, banking77 dev and
# clinc150 out-of-scope (docs/retrieval.md); p = 0.5 balances in-scope vs out-of-scope top hits.
CALIBRATION: dict[str, Calibration] = {
    "hybrid": Calibration(bias=-41.33, w_dense=46.80, w_bm25=1.30, threshold=0.20),
    "dense": Calibration(bias=-45.94, w_dense=52.72, w_bm25=0.0, threshold=0.30),
    "bm25": Calibration(bias=-1.0, w_dense=0.0, w_bm25=1.97, threshold=0.42),
}


# ---- calibration -------------------------------------------------------------
def fit_logistic(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, l2: float = 1e-3
) -> np.ndarray:
    """Weights (bias first) of a weighted, L2-regularised logistic regression (Newton's method)."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    sw = np.ones(len(y)) if weight is None else weight
    w = np.zeros(xb.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -50, 50)))
        grad = xb.T @ (sw * (p - y)) + l2 * np.r_[0.0, w[1:]]
        hess = (xb * (sw * p * (1 - p))[:, None]).T @ xb + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def fit_mode(mode: str, runs: dict[str, list[dict[str, Any]]]) -> Calibration:
    """Fit P(the top hit is a good source) on the calibration split, then pick the threshold.

    Examples are each query's top hit: positive when it is a labelled relevant article
    (queries_v1, banking77 dev), negative when it is not or the query is out of scope
    (clinc150 out-of-scope vs both KBs). Both classes weigh the same in total, so 0.5
    separates them; the threshold then maximises 0.5 * (in-scope queries kept) +
    0.5 * (out-of-scope queries abstained) on the same split.
    """
    xs, ys = [], []
    for name in ("kb", "banking77", "clinc-oos-b77", "clinc-oos-kb"):
        for r in runs[name]:
            if calibration_split(r["id"]) and r["hits"]:
                xs.append(r["hits"][0])
                ys.append(1.0 if r["ids"][0] in set(r["relevant"]) else 0.0)
    x, y = np.asarray(xs, dtype=float), np.asarray(ys)
    use = [0, 1] if mode == "hybrid" else [0] if mode == "dense" else [1]
    pos = max(1.0, float(y.sum()))
    neg = max(1.0, float(len(y) - y.sum()))
    w = fit_logistic(x[:, use], y, np.where(y > 0, 0.5 / pos, 0.5 / neg) * len(y))
    full = {"bias": float(w[0]), "w_dense": 0.0, "w_bm25": 0.0}
    for col, weight in zip(use, w[1:], strict=True):
        full["w_dense" if col == 0 else "w_bm25"] = float(weight)
    cal = Calibration(threshold=0.5, **full)
    inside = [r for n in ("kb", "banking77", "clinc-in-b77") for r in runs[n]]
    outside = [r for n in ("clinc-oos-b77", "clinc-oos-kb") for r in runs[n]]

    def top(r: dict[str, Any]) -> float:
        return cal.probability(*r["hits"][0]) if r["hits"] else 0.0

    ins = [top(r) for r in inside if calibration_split(r["id"])]
    outs = [top(r) for r in outside if calibration_split(r["id"])]
    best, best_j = 0.5, -1.0
    for t in np.round(np.arange(0.02, 0.99, 0.01), 2):
        j = 0.5 * np.mean([s >= t for s in ins]) + 0.5 * np.mean([s < t for s in outs])
        if j > best_j + 1e-9:
            best, best_j = float(t), float(j)
    return Calibration(cal.bias, cal.w_dense, cal.w_bm25, best)


def calibration_split(qid: str) -> bool:
    """True for the half of the rows used to fit the calibration (stable hash of the id)."""
    return int(hashlib.sha256(qid.encode()).hexdigest(), 16) % 2 == 0
