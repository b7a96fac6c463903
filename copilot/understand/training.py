"""Training and measuring message understanding (scikit-learn is imported by the heads'
trainer only, never on the run-time path).

Rows are the ``train`` part of the labelled messages (the ``dev`` part is only measured).
Each head's stacked probability is Platt-scaled on its out-of-fold scores (the heads'
trainer weighs classes evenly, which pushes rare labels' probabilities up); the scaling is
folded into the stacking weights, so the shipped heads give calibrated probabilities.
Thresholds: 0.5 for topics and emotion steps (calibrated probabilities); for each flag the
threshold in [0.1, 0.5] with the best out-of-fold F-beta (``FLAG_BETA``: recall counts
twice for a compromised account, since missing one costs more than one extra warning).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from copilot.embed.registry import get_embedder
from copilot.heads.model import HeadSet, data_sha256
from copilot.heads.train import Hyper, TrainSet, train_heads
from copilot.understand.messages import (
    FLAGS,
    TRAIN_DIR,
    LabelledMessage,
    load_many,
    split_of,
    training_files,
)
from copilot.understand.model import (
    EMOTION_HEADS,
    LABELS,
    VIEWS,
    WEIGHTS,
    MessageModel,
    Understanding,
    context_text,
    decide,
)

# F-beta each flag's threshold maximises on out-of-fold scores: recall weighs twice as
# much for a compromised account (missing one costs more than one extra warning)
FLAG_BETA = {
    "account_compromised": 2.0,
    "asks_for_prediction_or_advice": 1.0,
    "accusation": 1.0,
    "refund_or_compensation_demand": 1.0,
    "deadline": 1.0,
}
FLAG_MIN = 0.1  # no flag threshold below this
LANGS = ("en", "ja", "zh")


def label_matrix(messages: Sequence[LabelledMessage]) -> np.ndarray:
    """0/1 labels ``(messages, LABELS)``."""
    out = np.zeros((len(messages), len(LABELS)), np.float32)
    col = {label: j for j, label in enumerate(LABELS)}
    for i, m in enumerate(messages):
        for t in m.topics:
            out[i, col[t]] = 1.0
        for f in m.flags:
            out[i, col[f]] = 1.0
        for k, head in enumerate(EMOTION_HEADS, 1):
            out[i, col[head]] = float(m.emotion >= k)
    return out


def views_of(m: LabelledMessage) -> tuple[str, str]:
    """The (message, context) texts a labelled message is read through."""
    return m.message.strip(), context_text(m.thread, m.agent_note)


def _platt(held: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, c) so that sigmoid(a * logit(p) + c) is calibrated on ``held`` probabilities."""
    from sklearn.linear_model import LogisticRegression

    p = np.clip(held.astype(np.float64), 1e-6, 1 - 1e-6)
    z = np.log(p / (1 - p)).reshape(-1, 1)
    model = LogisticRegression(C=100.0, solver="lbfgs", max_iter=1000)
    model.fit(z, y.astype(np.int64))
    return float(model.coef_[0, 0]), float(model.intercept_[0])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))
    return out


def _flag_threshold(scores: np.ndarray, y: np.ndarray, beta: float) -> float:
    """The threshold in [FLAG_MIN, 0.5] with the best F-beta on (scores, y); the highest
    one on ties."""
    candidates = sorted({float(np.float32(v)) for v in scores if FLAG_MIN <= v <= 0.5} | {0.5})
    positives = float((y > 0).sum())
    if not positives:
        return 0.5
    best, best_f = 0.5, -1.0
    for t in candidates:
        said = scores >= t
        tp = float((said & (y > 0)).sum())
        if not tp:
            continue
        precision, recall = tp / float(said.sum()), tp / positives
        f = (1 + beta**2) * precision * recall / (beta**2 * precision + recall)
        if f >= best_f:
            best, best_f = t, f
    return best


def train(
    models_dir: Path,
    folder: Path = TRAIN_DIR,
    *,
    embedder_name: str = "use-m3",
    hyper: Hyper | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[HeadSet, dict[str, Any]]:
    """Train, calibrate and write ``models_dir/understand.{npz,json}``; returns the heads
    and the dev report."""
    hyper = hyper or Hyper()
    files = training_files(folder)
    messages = load_many(files)
    train_rows = [m for m in messages if split_of(m.id) == "train"]
    dev_rows = [m for m in messages if split_of(m.id) == "dev"]
    embedder = get_embedder(embedder_name)
    views = [views_of(m) for m in train_rows]
    unique = list(dict.fromkeys(t for v in views for t in v))
    vectors = embedder.passages(unique)
    index = {t: i for i, t in enumerate(unique)}
    x = np.asarray(
        [np.concatenate([vectors[index[t]] for t in v]) for v in views], dtype=np.float32
    )
    y = label_matrix(train_rows)
    data = TrainSet(
        texts=[v[0] for v in views],
        labels=y,
        languages=[m.language for m in train_rows],
        groups=[m.id for m in train_rows],
    )
    heads, held = train_heads(WEIGHTS, LABELS, (), data, embedder, hyper, embeddings=x, log=log)
    thresholds: dict[str, dict[str, float]] = {}
    for j, label in enumerate(LABELS):
        a, c = _platt(held[:, j], y[:, j])
        heads.w_stack[j] *= a
        heads.b_stack[j] = heads.b_stack[j] * a + c
        p = np.clip(held[:, j].astype(np.float64), 1e-6, 1 - 1e-6)
        calibrated = _sigmoid(a * np.log(p / (1 - p)) + c)
        if label in FLAG_BETA:
            thresholds[label] = {"*": _flag_threshold(calibrated, y[:, j], FLAG_BETA[label])}
        else:
            thresholds[label] = {"*": 0.5}
    heads.thresholds = thresholds
    model = MessageModel(heads, embedder)
    report = evaluate(model, dev_rows)
    manifest = {
        "trained": dt.date.today().isoformat(),
        "views": list(VIEWS),
        "data": {
            "files": [p.name for p in files],
            "sha256": data_sha256(files),
            "messages": {"train": len(train_rows), "dev": len(dev_rows)},
        },
        "hyper": vars(hyper),
        "flag_f_beta": FLAG_BETA,
        "calibration": "Platt scaling of each head on out-of-fold training scores; "
        "flag thresholds: best out-of-fold F-beta in [0.1, 0.5]; the dev figures are measured, "
        "not tuned on",
        "dev": report,
    }
    heads.save(models_dir, manifest)
    return heads, report


def predict(model: MessageModel, messages: Sequence[LabelledMessage]) -> list[Understanding]:
    """The model's reading of each labelled message (batched)."""
    probs = model.probabilities([views_of(m) for m in messages])
    return [decide(model.heads, probs[i], m.language) for i, m in enumerate(messages)]


def score(
    messages: Sequence[LabelledMessage],
    primary: Sequence[str],
    emotion: Sequence[int] | None = None,
    topics: Sequence[Sequence[str]] | None = None,
    flags: Sequence[Sequence[str]] | None = None,
    probabilities: Sequence[dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Figures of one reader (the model or the rules) on labelled messages, overall and per
    language: top topic accuracy (primary = labelled primary), primary among the labelled
    topics, second-topic recall, flag recall and precision, emotion within +-1 and exact,
    accusations/demands read at level >= 2, and the calibration error of P(topic)."""

    def part(idx: list[int]) -> dict[str, Any]:
        n = len(idx)
        row: dict[str, Any] = {"n": n}
        if not n:
            return row
        row["top_topic_acc"] = sum(primary[i] == messages[i].topics[0] for i in idx) / n
        row["primary_in_topics"] = sum(primary[i] in messages[i].topics for i in idx) / n
        if topics is not None:
            two = [i for i in idx if len(messages[i].topics) > 1]
            found = sum(len(set(messages[i].topics[1:]) & set(topics[i])) for i in two)
            wanted = sum(len(messages[i].topics) - 1 for i in two)
            row["second_topic_recall"] = found / wanted if wanted else None
        if emotion is not None:
            row["emotion_within_1"] = (
                sum(abs(emotion[i] - messages[i].emotion) <= 1 for i in idx) / n
            )
            row["emotion_exact"] = sum(emotion[i] == messages[i].emotion for i in idx) / n
            hot = [
                i
                for i in idx
                if {"accusation", "refund_or_compensation_demand"} & set(messages[i].flags)
            ]
            row["accusation_or_demand_ge2"] = (
                sum(emotion[i] >= 2 for i in hot) / len(hot) if hot else None
            )
        if flags is not None:
            per: dict[str, Any] = {}
            for f in FLAGS:
                pos = [i for i in idx if f in messages[i].flags]
                said = [i for i in idx if f in flags[i]]
                hit = len([i for i in pos if f in flags[i]])
                per[f] = {
                    "n": len(pos),
                    "recall": hit / len(pos) if pos else None,
                    "precision": hit / len(said) if said else None,
                }
            row["flags"] = per
        if probabilities is not None:
            row["topic_ece"] = _ece(
                [probabilities[i][t] for i in idx for t in _topic_ids()],
                [float(t in messages[i].topics) for i in idx for t in _topic_ids()],
            )
        return row

    everyone = list(range(len(messages)))
    return {
        "overall": part(everyone),
        "by_language": {
            lang: part([i for i in everyone if messages[i].language == lang]) for lang in LANGS
        },
    }


def _topic_ids() -> tuple[str, ...]:
    from copilot.understand.messages import TOPICS

    return TOPICS


def _ece(p: Sequence[float], y: Sequence[float], bins: int = 10) -> float:
    """Expected calibration error of probabilities ``p`` against outcomes ``y``."""
    pa, ya = np.asarray(p, np.float64), np.asarray(y, np.float64)
    which = np.minimum((pa * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.sum() / len(pa) * abs(pa[sel].mean() - ya[sel].mean())
    return float(total)


def evaluate(model: MessageModel, messages: Sequence[LabelledMessage]) -> dict[str, Any]:
    """The model's figures on ``messages`` (see :func:`score`)."""
    read = predict(model, messages)
    return score(
        messages,
        [u.primary for u in read],
        [u.emotion for u in read],
        [[t for t, _ in u.topics] for u in read],
        [[f for f, _ in u.flags] for u in read],
        [u.probabilities for u in read],
    )
