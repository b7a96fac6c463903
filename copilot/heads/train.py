"""Training a set of heads (scikit-learn, imported here only: never on the run-time path).

For every label: a logistic regression over the embeddings and one over the character
n-grams, trained K times (grouped K-fold, so sentences of one draft never sit on both
sides); their out-of-fold logits and the set's extra features train a small stacking
regression. Each final base model is the mean of its K fold models, so its scores on new
text follow the out-of-fold scores that thresholds are calibrated on.

Optionally (``Hyper.mlp_hidden``) a third base model: one small multi-label network over the
embeddings (one hidden ReLU layer shared by every label), which can read combinations of
directions a linear head cannot ("reassures" and "the future" together make a promise). Its
out-of-fold logits come from K fold networks like the others; the network that ships is
refitted on all rows (the mean of networks is not a network).

Everything is deterministic: fixed folds, lbfgs, a seeded network, no other randomness; the
same data gives the same weights file, byte for byte.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from copilot.embed.base import Embedder
from copilot.errors import CopilotError
from copilot.heads.features import NgramVocab, fold
from copilot.heads.model import HeadSet, mlp_logits

SEED = 0


@dataclass
class TrainSet:
    """Rows to learn from: texts, 0/1 labels ``(rows, labels)``, and what goes with them."""

    texts: list[str]
    labels: np.ndarray
    languages: list[str]
    groups: list[str]  # rows of one group stay in one fold (e.g. sentences of one draft)
    extras: np.ndarray | None = None  # (rows, labels, extras)
    use: np.ndarray | None = None  # (rows, labels) bool: which rows a label learns from


@dataclass(frozen=True)
class Hyper:
    """Hyper-parameters (chosen on the dev split; see docs/guardrails.md)."""

    c_emb: float = 4.0
    c_ngr: float = 8.0
    c_stack: float = 1.0
    folds: int = 5
    n_min: int = 1
    n_max: int = 3
    min_df: int = 2
    max_features: int = 60000
    #: which evidence the stacking head sees: "emb" (the embedding head's score), "ngr" (the
    #: n-gram head's score), "mlp" (the network's, when it is trained), "extras" (the rules'
    #: signals); fewer only for the ablation table
    features: tuple[str, ...] = ("emb", "ngr", "mlp", "extras")
    #: hidden units of the multi-label network over the embeddings; 0: no network
    mlp_hidden: int = 0
    mlp_alpha: float = 1e-3
    mlp_epochs: int = 40


def _fit(x: Any, y: np.ndarray, c: float, weight: np.ndarray | None = None) -> Any:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(
        C=c, class_weight="balanced", max_iter=2000, solver="lbfgs", random_state=SEED
    )
    model.fit(x, y, sample_weight=weight)
    return model


def _fit_mlp(x: np.ndarray, y: np.ndarray, hyper: Hyper) -> Any:
    """One network, every label an output (``y`` is ``(rows, labels)``); seeded."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(
        hidden_layer_sizes=(hyper.mlp_hidden,),
        alpha=hyper.mlp_alpha,
        batch_size=min(256, len(x)),
        learning_rate_init=1e-3,
        max_iter=hyper.mlp_epochs,
        random_state=SEED,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed number of epochs
        model.fit(x, y[:, 0] if y.shape[1] == 1 else y)  # one label: a plain binary fit
    return model


def _mlp_arrays(model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    (w1, w2), (b1, b2) = model.coefs_, model.intercepts_
    return (
        w1.astype(np.float32),
        b1.astype(np.float32),
        w2.T.astype(np.float32).reshape(-1, w1.shape[1]),
        b2.astype(np.float32).reshape(-1),
    )


def _folds(groups: Sequence[str], k: int) -> list[np.ndarray]:
    """Fold number of each row: groups hashed into ``k`` folds, stable across runs."""
    import hashlib

    ids = np.asarray(
        [int(hashlib.sha256(g.encode()).hexdigest()[:8], 16) % k for g in groups], dtype=np.int64
    )
    return [np.flatnonzero(ids == f) for f in range(k)]


def train_heads(
    name: str,
    label_names: Sequence[str],
    extra_names: Sequence[str],
    data: TrainSet,
    embedder: Embedder,
    hyper: Hyper = Hyper(),
    *,
    embeddings: np.ndarray | None = None,
    log: Any = None,
) -> tuple[HeadSet, np.ndarray]:
    """Train one head per label (see the module docstring); also return the out-of-fold
    probabilities ``(rows, labels)`` (NaN where a label does not use a row), honest
    held-out scores to calibrate thresholds on."""
    start = time.perf_counter()
    n, n_labels = data.labels.shape
    if n_labels != len(label_names):
        raise CopilotError(f"{name}: {n_labels} label columns for {len(label_names)} labels")
    folded = [fold(t) for t in data.texts]
    vocab = NgramVocab.fit(
        folded,
        n_min=hyper.n_min,
        n_max=hyper.n_max,
        min_df=hyper.min_df,
        max_features=hyper.max_features,
    )
    x_ngr = vocab.matrix(folded)
    x_emb = embeddings if embeddings is not None else embedder.passages(data.texts)
    extras = (
        data.extras
        if data.extras is not None
        else np.zeros((n, n_labels, len(extra_names)), np.float32)
    )
    use = data.use if data.use is not None else np.ones((n, n_labels), dtype=bool)
    folds = _folds(data.groups, hyper.folds)
    held_out = np.full((n, n_labels), np.nan, np.float32)
    with_mlp = hyper.mlp_hidden > 0
    mlp_oof = np.zeros((n, n_labels), np.float32)
    mlp: tuple[np.ndarray, ...] = (
        np.zeros((0, 0), np.float32),
        np.zeros(0, np.float32),
        np.zeros((0, 0), np.float32),
        np.zeros(0, np.float32),
    )
    if with_mlp:
        if data.use is not None:
            raise CopilotError(f"{name}: the network needs every label on every row")
        y_all = data.labels.astype(np.int64)
        for k, held in enumerate(folds):
            mask = np.ones(n, dtype=bool)
            mask[held] = False
            fitted = _fit_mlp(x_emb[mask], y_all[mask], hyper)
            mlp_oof[held] = mlp_logits(x_emb[held], *_mlp_arrays(fitted))
            if log:
                log(f"{name}: network fold {k + 1}/{len(folds)}")
        w1, b1, w2, b2 = _mlp_arrays(_fit_mlp(x_emb, y_all, hyper))
        # rounded as the weights file stores it, so the dev figures are the shipped model's
        mlp = (w1.astype(np.float16).astype(np.float32), b1, w2, b2)
    bases = 3 if with_mlp else 2
    w_emb = np.zeros((n_labels, x_emb.shape[1]), np.float32)
    b_emb = np.zeros(n_labels, np.float32)
    w_ngr = np.zeros((n_labels, len(vocab)), np.float32)
    b_ngr = np.zeros(n_labels, np.float32)
    w_stack = np.zeros((n_labels, bases + len(extra_names)), np.float32)
    b_stack = np.zeros(n_labels, np.float32)
    for j, label in enumerate(label_names):
        rows = np.flatnonzero(use[:, j])
        y = data.labels[rows, j].astype(np.int64)
        if y.min() == y.max():
            raise CopilotError(f"{name}: label {label!r} needs positive and negative examples")
        oof = np.zeros((len(rows), 2), np.float32)
        position = {r: i for i, r in enumerate(rows)}
        emb_models, ngr_models = [], []
        for held in folds:
            held_rows = [r for r in held if r in position]
            if not held_rows:
                continue
            mask = np.ones(len(rows), dtype=bool)
            mask[[position[r] for r in held_rows]] = False
            if len(set(y[mask])) < 2:
                continue
            train_rows = rows[mask]
            m_emb = _fit(x_emb[train_rows], y[mask], hyper.c_emb)
            m_ngr = _fit(x_ngr[train_rows], y[mask], hyper.c_ngr)
            emb_models.append(m_emb)
            ngr_models.append(m_ngr)
            idx = [position[r] for r in held_rows]
            oof[idx, 0] = m_emb.decision_function(x_emb[held_rows])
            oof[idx, 1] = m_ngr.decision_function(x_ngr[held_rows])
        base_x = np.hstack([oof, mlp_oof[rows, j : j + 1]]) if with_mlp else oof
        stack_x = np.hstack([base_x, extras[rows, j, :]])
        # an ablated feature is a column of zeros: its stacking weight comes out 0
        for col, feature in ((0, "emb"), (1, "ngr"), (2, "mlp"))[:bases]:
            if feature not in hyper.features:
                stack_x[:, col] = 0.0
        if "extras" not in hyper.features:
            stack_x[:, bases:] = 0.0
        m_stack = _fit(stack_x, y, hyper.c_stack)
        held_out[rows, j] = m_stack.predict_proba(stack_x)[:, 1]
        # the final heads are the mean of the fold models (a linear model's mean is linear):
        # scores on new text then follow the out-of-fold scores the thresholds are set on
        w_emb[j] = np.mean([m.coef_[0] for m in emb_models], axis=0)
        b_emb[j] = float(np.mean([m.intercept_[0] for m in emb_models]))
        w_ngr[j] = np.mean([m.coef_[0] for m in ngr_models], axis=0)
        b_ngr[j] = float(np.mean([m.intercept_[0] for m in ngr_models]))
        w_stack[j], b_stack[j] = m_stack.coef_[0], m_stack.intercept_[0]
        if log:
            log(f"{name}: {label}: {int(y.sum())} positive / {len(y)} rows")
    heads = HeadSet(
        name=name,
        labels=tuple(label_names),
        extras=tuple(extra_names),
        embedder=embedder.name,
        embedder_model=embedder.model_id,
        vocab=vocab,
        w_emb=w_emb,
        b_emb=b_emb,
        w_ngr=w_ngr,
        b_ngr=b_ngr,
        w_stack=w_stack,
        b_stack=b_stack,
        w_mlp1=mlp[0],
        b_mlp1=mlp[1],
        w_mlp2=mlp[2],
        b_mlp2=mlp[3],
    )
    if log:
        log(f"{name}: trained {n_labels} heads on {n} rows in {time.perf_counter() - start:.0f} s")
    return heads, held_out


def threshold_for_fpr(negatives: np.ndarray, max_fpr: float, floor: float = 0.5) -> float:
    """The lowest threshold (at least ``floor``) that flags at most ``max_fpr`` of
    ``negatives`` (the scores of items that must not be flagged)."""
    if len(negatives) == 0:
        return floor
    ordered = np.sort(negatives)[::-1]
    allowed = int(np.floor(max_fpr * len(ordered)))
    # flag only scores strictly above the (allowed+1)-th highest negative
    cut = float(ordered[allowed]) if allowed < len(ordered) else 0.0
    return max(floor, float(np.nextafter(np.float32(cut), np.float32(1.0))))
