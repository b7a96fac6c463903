"""Train the input-side prompt-injection flag (:mod:`copilot.understand.injection`).

Training material: the labelled customer messages the policy's ``learned.injection_corpus``
names (one JSON object per line with ``id``, ``language``, ``message``, ``injection``), plus
the customer messages of the guardrail's labelled drafts (a message is an injection when a
draft answering it obeys or refuses an injected instruction: rule or near-miss
``prompt_injection_followed``). A stable 20% of the messages (hash of the id) is the dev
split, never trained or calibrated on.

Rows: every message as a whole; the windows, quoted blocks and decoded runs of benign
messages (all benign); the decoded runs of injections (what the encoding hid). The
threshold per language lets at most :data:`MAX_FPR` of the benign training messages through,
scored out of fold at message level (the best of its segments).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from copilot.embed.registry import get_embedder
from copilot.errors import CopilotError, InputError, Problem
from copilot.guard.examples import split_of
from copilot.guard.policy_model import Policy
from copilot.guard.training import expand_paths, load_corpus
from copilot.heads.model import HeadSet, data_sha256
from copilot.heads.train import Hyper, TrainSet, threshold_for_fpr, train_heads
from copilot.jsonl import read_objects
from copilot.text.language import LANGUAGES
from copilot.understand.injection import (
    EXTRAS,
    LABEL,
    VIEWS,
    InjectionFlagger,
    segment_extras,
    segments,
)
from copilot.understand.signals import find_injection

MAX_FPR = 0.01  # per language, on benign training messages (held-out scores)
FLOOR = 0.5


@dataclass(frozen=True)
class LabelledMessage:
    """One customer message labelled for prompt injection."""

    id: str
    language: str
    message: str
    injection: bool
    source: str


def load_messages(path: Path) -> list[LabelledMessage]:
    """Labelled messages of one JSONL file; every bad line is reported with its field."""
    rows, problems = read_objects(path)
    out: list[LabelledMessage] = []
    for n, obj in rows:
        bad = [
            Problem(str(path), n, f"field {name!r}: {why}")
            for name, ok, why in (
                ("id", isinstance(obj.get("id"), str) and obj.get("id"), "must be a string"),
                ("message", isinstance(obj.get("message"), str), "must be a string"),
                ("injection", isinstance(obj.get("injection"), bool), "must be true or false"),
                ("language", obj.get("language") in LANGUAGES, f"must be one of {LANGUAGES}"),
            )
            if not ok
        ]
        if bad:
            problems += bad
            continue
        out.append(
            LabelledMessage(obj["id"], obj["language"], obj["message"], obj["injection"], path.name)
        )
    problems.sort(key=lambda p: p.line)  # in file order, whatever found them
    if problems:
        raise InputError(problems)
    return out


def draft_messages(policy: Policy, evidence: Any) -> list[LabelledMessage]:
    """The distinct customer messages of the guardrail's labelled drafts, labelled."""
    corpus = load_corpus(policy, evidence)
    by_text: dict[str, LabelledMessage] = {}
    for d in corpus.drafts:
        text = d.customer_message
        if not text.strip():
            continue
        injected = "prompt_injection_followed" in d.rules or (
            d.near_rule == "prompt_injection_followed"
        )
        old = by_text.get(text)
        if old is None or (injected and not old.injection):
            by_text[text] = LabelledMessage(d.id, d.language, text, injected, d.source)
    return list(by_text.values())


def message_files(policy: Policy) -> list[Path]:
    """The labelled-message files the policy names."""
    learned = policy.learned
    if learned is None or not learned.injection_weights:
        raise CopilotError(f"{policy.path}: the policy names no injection_weights")
    return expand_paths(policy.path.parent, learned.injection_corpus)


def injection_data_sha256(policy: Policy) -> str:
    """The hash the weights are checked against: message files, then draft corpus files."""
    learned = policy.learned
    assert learned is not None
    base = policy.path.parent
    return data_sha256([*message_files(policy), *expand_paths(base, learned.corpus)])


def training_rows(
    messages: Sequence[LabelledMessage],
) -> tuple[list[tuple[str, str]], list[int], np.ndarray, list[int]]:
    """(segment text, whole-message text) per row, its label, its extras, its message index."""
    views: list[tuple[str, str]] = []
    labels: list[int] = []
    extras: list[np.ndarray] = []
    owner: list[int] = []
    for i, m in enumerate(messages):
        segs = segments(m.message)
        keep = [s for s in segs if not m.injection or s.kind in ("message", "decoded")]
        whole = segs[0].text
        views += [(s.text, whole) for s in keep]
        labels += [int(m.injection)] * len(keep)
        extras.append(segment_extras(keep))
        owner += [i] * len(keep)
    return views, labels, np.concatenate(extras, axis=0), owner


def evaluate(flagger: InjectionFlagger, messages: Sequence[LabelledMessage]) -> dict[str, Any]:
    """Recall and false flags per language: learned flag, rules alone, either."""
    flags = {
        "learned": {m.id: flagger.hit(m.message, m.language) is not None for m in messages},
        "rules": {m.id: bool(find_injection(m.message)) for m in messages},
    }
    flags["both"] = {k: flags["learned"][k] or flags["rules"][k] for k in flags["rules"]}

    def rate(ms: Sequence[LabelledMessage], tier: str) -> float:
        return round(sum(flags[tier][m.id] for m in ms) / len(ms), 3) if ms else 0.0

    out: dict[str, Any] = {}
    for lang in (*LANGUAGES, "all"):
        mine = [m for m in messages if lang in ("all", m.language)]
        pos = [m for m in mine if m.injection]
        neg = [m for m in mine if not m.injection]
        out[lang] = {"n": len(mine), "injections": len(pos)}
        for tier in ("learned", "rules", "both"):
            out[lang][tier] = {"recall": rate(pos, tier), "false_flags": rate(neg, tier)}
    return out


def train_injection(
    policy: Policy,
    models_dir: Path,
    evidence: Any,
    *,
    hyper: Hyper | None = None,
    embedder_name: str = "use-m3",
    log: Callable[[str], None] | None = None,
) -> tuple[HeadSet, dict[str, Any]]:
    """Train, calibrate and write the injection flag; returns it and its dev report."""
    learned = policy.learned
    if learned is None or not learned.injection_weights:
        raise CopilotError(f"{policy.path}: the policy names no injection_weights")
    hyper = hyper or Hyper()
    files = message_files(policy)
    messages = [m for p in files for m in load_messages(p)]
    messages += draft_messages(policy, evidence)
    seen: set[str] = set()
    unique = []
    for m in messages:
        if m.message not in seen:
            seen.add(m.message)
            unique.append(m)
    train_msgs = [m for m in unique if split_of(m.id) == "train"]
    dev_msgs = [m for m in unique if split_of(m.id) == "dev"]
    embedder = get_embedder(embedder_name)
    views, labels, extras, owner = training_rows(train_msgs)
    flat = list(dict.fromkeys(t for v in views for t in v))
    vecs = embedder.passages(flat)
    index = {t: i for i, t in enumerate(flat)}
    x = np.stack([np.concatenate([vecs[index[a]], vecs[index[b]]]) for a, b in views])
    data = TrainSet(
        texts=[v[0] for v in views],
        labels=np.asarray(labels, np.float32)[:, None],
        languages=[train_msgs[o].language for o in owner],
        groups=[train_msgs[o].id for o in owner],
        extras=extras,
    )
    heads, held = train_heads(
        learned.injection_weights, (LABEL,), EXTRAS, data, embedder, hyper, embeddings=x, log=log
    )
    best = np.zeros(len(train_msgs), np.float32)
    for r, o in enumerate(owner):
        best[o] = max(best[o], float(np.nan_to_num(held[r, 0])))
    heads.thresholds = {
        LABEL: {
            lang: threshold_for_fpr(
                np.asarray(
                    [
                        best[i]
                        for i, m in enumerate(train_msgs)
                        if not m.injection and m.language == lang
                    ]
                ),
                MAX_FPR,
                FLOOR,
            )
            for lang in LANGUAGES
        }
    }
    report = evaluate(InjectionFlagger(heads, embedder), dev_msgs)
    heads.save(
        models_dir,
        {
            "trained": dt.date.today().isoformat(),
            "views": list(VIEWS),
            "data": {
                "files": [p.name for p in files] + ["(customer messages of the draft corpus)"],
                "sha256": injection_data_sha256(policy),
                "messages": {"train": len(train_msgs), "dev": len(dev_msgs)},
                "injections": {"train": sum(m.injection for m in train_msgs)},
                "rows": len(views),
            },
            "hyper": vars(hyper),
            "max_fpr": MAX_FPR,
            "calibration": "threshold per language from out-of-fold message scores of the "
            "benign training messages; the dev figures are measured, not tuned on",
            "dev": report,
        },
    )
    return heads, report
