"""Build the learned tier from the policy's examples: ``python -m copilot guardrail train``.

The policy file's ``learned:`` section names the example-sentence file and the labelled
draft corpus. Training rows are sentences (see :mod:`copilot.guard.examples`), plus every
sentence of the knowledge base's articles as a compliant example (our own published text
is what a good reply sounds like). A stable 20% of the drafts is the dev split, measured but
never trained or tuned on. Each rule's threshold is set per language so that the rule flags
at most :data:`MAX_FPR` of the compliant training drafts, scored out of fold (by heads that
did not see them). The result is written to ``COPILOT_MODELS_DIR`` with a manifest (data
sha256, embedder, views, thresholds, dev figures). Same data, same weights: the run is
deterministic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from copilot.embed.base import Embedder
from copilot.embed.registry import get_embedder
from copilot.errors import CopilotError
from copilot.guard.examples import (
    DraftExample,
    SentenceRow,
    draft_rows,
    load_drafts,
    load_examples,
    split_of,
)
from copilot.guard.learned import (
    DRAFT_SUFFIX,
    DRAFT_VIEWS,
    EXTRAS,
    NO_MESSAGE,
    VIEWS,
    View,
    draft_view_texts,
    extras_for,
    ngram_text,
    sentences_of,
    view_matrix,
    view_texts,
)
from copilot.guard.policy_model import Policy
from copilot.heads.features import fold
from copilot.heads.model import HeadSet, data_sha256
from copilot.heads.train import Hyper, TrainSet, threshold_for_fpr, train_heads
from copilot.text.language import LANGUAGES
from copilot.text.sentences import sentence_spans
from copilot.understand.signals import find_injection

MAX_FPR = 0.003  # per rule and language, on compliant drafts (held-out scores)
EXEMPLARS_PER_RULE = 120  # per language: the "close to" examples shipped with the weights
FLOOR = 0.5
#: the draft heads' hyper-parameters: the linear heads' defaults plus a network of 256 hidden
#: units (L2 0.01) over the views; chosen on the dev split (docs/guardrails.md, "The network")
HYPER = Hyper(mlp_hidden=256, mlp_alpha=0.01)

Spans = dict[str, list[tuple[int, int]]]
Evidence = tuple[Spans, Spans]  # (fired, cleared) per rule, from the rules tier
DraftEvidence = Callable[[DraftExample], Evidence]
TextEvidence = Callable[[str, str], Evidence]


@dataclass
class Corpus:
    """The policy's training material, read and split, with the rules tier's evidence."""

    drafts: list[DraftExample]
    examples: list[SentenceRow]
    files: list[Path]
    evidence: dict[str, Evidence] = field(default_factory=dict)

    def split(self, part: str) -> list[DraftExample]:
        """The ``train`` or ``dev`` drafts."""
        return [d for d in self.drafts if split_of(d.id) == part]


def expand_paths(base: Path, patterns: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for pattern in patterns:
        found = sorted(base.glob(pattern)) if any(c in pattern for c in "*?[") else [base / pattern]
        if not found or not all(p.is_file() for p in found):
            raise CopilotError(f"{base / pattern}: no such file (policy file, learned:)")
        out.extend(found)
    return out


def policy_files(policy: Policy) -> list[Path]:
    """The example-sentence and labelled-draft files the policy names, in order."""
    if policy.learned is None:
        return []
    base = policy.path.parent
    return expand_paths(base, policy.learned.examples) + expand_paths(base, policy.learned.corpus)


def policy_data_sha256(policy: Policy) -> str:
    """The sha256 of the policy's training material (recorded with the weights)."""
    return data_sha256(policy_files(policy))


def load_corpus(policy: Policy, evidence: DraftEvidence) -> Corpus:
    """The example sentences and labelled drafts the policy names, with the rules tier's
    evidence on each draft (features of the heads)."""
    learned = policy.learned
    if learned is None:
        raise CopilotError(f"{policy.path}: the policy has no 'learned:' section")
    base = policy.path.parent
    example_files = expand_paths(base, learned.examples)
    corpus_files = expand_paths(base, learned.corpus)
    rule_ids = policy.rule_ids
    examples = [row for p in example_files for row in load_examples(p, rule_ids)]
    drafts = [d for p in corpus_files for d in load_drafts(p, rule_ids)]
    corpus = Corpus(drafts, examples, example_files + corpus_files)
    corpus.evidence = {d.id: evidence(d) for d in drafts}
    return corpus


def kb_rows(knowledge_dir: Path | None) -> list[SentenceRow]:
    """Every sentence of the knowledge base's articles, as compliant rows."""
    if knowledge_dir is None or not knowledge_dir.is_dir():
        return []
    from copilot.kb.articles import load_kb

    rows = []
    for art in load_kb(knowledge_dir):
        for s, e in sentence_spans(art.body):
            text = art.body[s:e].strip("#*- >").strip()
            if len(text) >= 8 and not text.startswith("{"):
                rows.append(SentenceRow(text, art.language, f"kb:{art.id}:{art.language}"))
    return rows


@dataclass
class Rows:
    """Training rows with their view texts and extra features."""

    rows: list[SentenceRow]
    views: list[tuple[View, ...]]
    extras: np.ndarray

    def texts(self) -> list[str]:
        """The text each row's n-grams are read from."""
        return [ngram_text(v[0]) for v in self.views]


def build_rows(
    corpus: Corpus,
    drafts: Sequence[DraftExample],
    labels: Sequence[str],
    text_evidence: TextEvidence,
    extra_rows: Sequence[SentenceRow] = (),
    *,
    with_examples: bool = True,
) -> Rows:
    """Sentence rows of ``drafts``, then (``with_examples``) the example sentences, then
    ``extra_rows``."""
    rows = draft_rows(drafts)
    views: list[tuple[View, ...]] = []
    extras: list[np.ndarray] = []
    injected: dict[str, bool] = {}
    split: dict[str, tuple[list[tuple[int, int]], list[str]]] = {}
    for row in rows:
        d = row.draft
        assert d is not None
        if d.id not in injected:
            injected[d.id] = bool(find_injection(d.customer_message))
            spans = sentence_spans(d.draft)
            split[d.id] = (spans, sentences_of(d.draft, spans))
        fired, cleared = corpus.evidence[d.id]
        spans, sentences = split[d.id]
        views.append(view_texts(sentences, spans.index(row.span), d.customer_message))
        extras.append(extras_for([row.span], labels, fired, cleared, injected[d.id])[0])
    for row in [*(corpus.examples if with_examples else []), *extra_rows]:
        fired, cleared = text_evidence(row.text, row.language)
        views.append(((row.text,), (row.text,), (NO_MESSAGE,)))
        extras.append(extras_for([(0, len(row.text))], labels, fired, cleared, False)[0])
        rows.append(row)
    shape = (len(rows), len(labels), len(EXTRAS))
    return Rows(rows, views, np.asarray(extras, np.float32).reshape(shape))


def embed_views(embedder: Embedder, views: Sequence[Sequence[View]]) -> np.ndarray:
    """The concatenated view vectors of each row (every text embedded once)."""
    unique = list(dict.fromkeys(t for row in views for view in row for t in view))
    vectors = embedder.passages(unique)
    return view_matrix(views, dict(zip(unique, vectors, strict=True)))


def draft_level_rows(
    corpus: Corpus,
    drafts: Sequence[DraftExample],
    labels: Sequence[str],
    text_evidence: TextEvidence,
    extra_rows: Sequence[SentenceRow] = (),
    *,
    with_examples: bool = True,
) -> Rows:
    """One row per draft (plus each example sentence and ``extra_rows`` as a one-sentence
    draft) for the draft heads; a draft row breaks the rules its draft breaks."""
    rows: list[SentenceRow] = []
    views: list[tuple[View, ...]] = []
    extras: list[np.ndarray] = []
    for d in drafts:
        if d.rules and not d.spans:
            continue  # labelled_v1 rejects without spans: used like the sentence heads do
        fired, cleared = corpus.evidence[d.id]
        injected = bool(find_injection(d.customer_message))
        rows.append(SentenceRow(d.draft, d.language, d.id, set(d.rules), d, (0, len(d.draft))))
        sentences = sentences_of(d.draft, sentence_spans(d.draft))
        views.append(draft_view_texts(sentences, d.customer_message))
        extras.append(extras_for([(0, len(d.draft))], labels, fired, cleared, injected)[0])
    for row in [*(corpus.examples if with_examples else []), *extra_rows]:
        fired, cleared = text_evidence(row.text, row.language)
        rows.append(row)
        views.append(((row.text,), (NO_MESSAGE,)))
        extras.append(extras_for([(0, len(row.text))], labels, fired, cleared, False)[0])
    shape = (len(rows), len(labels), len(EXTRAS))
    return Rows(rows, views, np.asarray(extras, np.float32).reshape(shape))


@dataclass
class DraftScores:
    """Per draft and rule: the highest sentence probability and the rules tier's verdict."""

    drafts: list[DraftExample]
    learned: np.ndarray  # (drafts, rules) max sentence probability
    rules_hit: np.ndarray  # (drafts, rules) bool: the rules tier fired


def score_drafts(
    heads: HeadSet,
    drafts: Sequence[DraftExample],
    corpus: Corpus,
    embedder: Embedder,
    draft_heads: HeadSet | None = None,
) -> DraftScores:
    """Score every draft as the learned tier does: each sentence by the sentence heads,
    averaged with the draft heads' score of the whole draft; a draft's score per rule is its
    best sentence's."""
    labels = heads.labels
    no_evidence: TextEvidence = lambda text, lang: ({}, {})  # noqa: E731
    built = build_rows(corpus, drafts, labels, no_evidence, with_examples=False)
    owners = [row.draft for row in built.rows]
    probs = heads.probabilities(
        embed_views(embedder, built.views), [fold(t) for t in built.texts()], built.extras
    )
    index = {d.id: i for i, d in enumerate(drafts)}
    whole = np.zeros((len(drafts), len(labels)), np.float32)
    if draft_heads is not None:
        level = draft_level_rows(corpus, drafts, labels, no_evidence, with_examples=False)
        scored = draft_heads.probabilities(
            embed_views(embedder, level.views), [fold(t) for t in level.texts()], level.extras
        )
        for k, row in enumerate(level.rows):
            assert row.draft is not None
            whole[index[row.draft.id]] = scored[k]
    best = np.zeros((len(drafts), len(labels)), np.float32)
    for k, d in enumerate(owners):
        if d is not None:
            i = index[d.id]
            p = (probs[k] + whole[i]) / 2 if draft_heads is not None else probs[k]
            best[i] = np.maximum(best[i], p)
    hit = np.zeros((len(drafts), len(labels)), dtype=bool)
    for i, d in enumerate(drafts):
        fired = corpus.evidence[d.id][0]
        for j, rule in enumerate(labels):
            hit[i, j] = bool(fired.get(rule))
    return DraftScores(list(drafts), best, hit)


def calibrate(labels: Sequence[str], held_out: DraftScores) -> dict[str, dict[str, float]]:
    """Thresholds per rule and language: the lowest that flags at most :data:`MAX_FPR` of the
    compliant drafts, scored out of fold (no draft is scored by a head that saw it)."""
    out: dict[str, dict[str, float]] = {}
    for j, rule in enumerate(labels):
        out[rule] = {}
        for lang in LANGUAGES:
            neg = [
                held_out.learned[i, j]
                for i, d in enumerate(held_out.drafts)
                if d.language == lang and not d.rules
            ]
            out[rule][lang] = round(threshold_for_fpr(np.asarray(neg), MAX_FPR, FLOOR), 4)
    return out


def out_of_fold(
    labels: Sequence[str],
    rows: Sequence[SentenceRow],
    held: np.ndarray,
    drafts: Sequence[DraftExample],
    draft_rows_: Sequence[SentenceRow] = (),
    draft_held: np.ndarray | None = None,
) -> DraftScores:
    """Draft scores (best sentence, averaged with the draft heads' score) from out-of-fold
    probabilities: what the thresholds are calibrated on."""
    index = {d.id: i for i, d in enumerate(drafts)}
    whole = np.zeros((len(drafts), len(labels)), np.float32)
    if draft_held is not None:
        for r, row in enumerate(draft_rows_):
            if row.draft is not None and row.draft.id in index:
                whole[index[row.draft.id]] = np.nan_to_num(draft_held[r])
    best = np.zeros((len(drafts), len(labels)), np.float32)
    for r, row in enumerate(rows):
        if row.draft is not None and row.draft.id in index:
            i = index[row.draft.id]
            p = np.nan_to_num(held[r])
            if draft_held is not None:
                p = (p + whole[i]) / 2
            best[i] = np.maximum(best[i], p)
    return DraftScores(list(drafts), best, np.zeros_like(best, dtype=bool))


def exemplars(
    rows: Sequence[SentenceRow], vectors: np.ndarray, labels: Sequence[str], dim: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to :data:`EXEMPLARS_PER_RULE` positive sentences per rule and language (sentence
    view only), shipped to explain a decision."""
    picked: list[int] = []
    label_of: list[int] = []
    for j, rule in enumerate(labels):
        for lang in LANGUAGES:
            mine = [i for i, r in enumerate(rows) if rule in r.rules and r.language == lang]
            step = max(1, len(mine) // EXEMPLARS_PER_RULE)
            chosen = mine[::step][:EXEMPLARS_PER_RULE]
            picked += chosen
            label_of += [j] * len(chosen)
    return (
        np.asarray([rows[i].text for i in picked], dtype=np.str_),
        np.asarray(label_of, dtype=np.int16),
        vectors[picked, :dim].astype(np.float16),
    )


def train(
    policy: Policy,
    models_dir: Path,
    evidence: DraftEvidence,
    text_evidence: TextEvidence,
    *,
    knowledge_dir: Path | None = None,
    embedder_name: str = "use-m3",
    hyper: Hyper | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[HeadSet, dict[str, Any]]:
    """Train, calibrate and write the learned tier; returns it and its dev report."""
    if policy.learned is None:
        raise CopilotError(f"{policy.path}: the policy has no 'learned:' section")
    hyper = hyper or HYPER
    corpus = load_corpus(policy, evidence)
    labels = policy.learned.heads
    embedder = get_embedder(embedder_name)
    train_drafts, dev_drafts = corpus.split("train"), corpus.split("dev")
    kb = kb_rows(knowledge_dir)
    built = build_rows(corpus, train_drafts, labels, text_evidence, kb)
    rows = built.rows
    y = np.asarray([[float(rule in r.rules) for rule in labels] for r in rows], np.float32)
    vectors = embed_views(embedder, built.views)
    data = TrainSet(
        texts=built.texts(),
        labels=y,
        languages=[r.language for r in rows],
        groups=[r.group for r in rows],
        extras=built.extras,
    )
    heads, held = train_heads(
        policy.learned.weights, labels, EXTRAS, data, embedder, hyper, embeddings=vectors, log=log
    )
    level = draft_level_rows(corpus, train_drafts, labels, text_evidence, kb)
    level_data = TrainSet(
        texts=level.texts(),
        labels=np.asarray(
            [[float(rule in r.rules) for rule in labels] for r in level.rows], np.float32
        ),
        languages=[r.language for r in level.rows],
        groups=[r.group for r in level.rows],
        extras=level.extras,
    )
    draft_heads, draft_held = train_heads(
        policy.learned.weights + DRAFT_SUFFIX,
        labels,
        EXTRAS,
        level_data,
        embedder,
        hyper,
        embeddings=embed_views(embedder, level.views),
        log=log,
    )
    heads.thresholds = calibrate(
        labels, out_of_fold(labels, rows, held, train_drafts, level.rows, draft_held)
    )
    heads.ex_text, heads.ex_label, heads.ex_emb = exemplars(rows, vectors, labels, embedder.dim)
    dev = score_drafts(heads, dev_drafts, corpus, embedder, draft_heads)
    report = dev_report(heads, dev)
    manifest = {
        "trained": dt.date.today().isoformat(),
        "views": list(VIEWS),
        "draft_heads": draft_heads.name,
        "policy": {"version": policy.version, "sha256": policy.sha256},
        "data": {
            "files": [p.name for p in corpus.files],
            "sha256": data_sha256(corpus.files),
            "drafts": {"train": len(train_drafts), "dev": len(dev_drafts)},
            "example_sentences": len(corpus.examples),
            "knowledge_base_sentences": len(kb),
            "rows": len(rows),
        },
        "hyper": vars(hyper),
        "max_fpr_per_rule": MAX_FPR,
        "calibration": "thresholds per rule and language from out-of-fold scores of the "
        "compliant training drafts; the dev figures are measured, not tuned on",
        "dev": report,
    }
    heads.save(models_dir, manifest)
    draft_heads.save(
        models_dir,
        {
            "views": list(DRAFT_VIEWS),
            "data": manifest["data"],
            "weights_of": heads.manifest["weights_sha256"],
            "note": f"draft heads of {heads.name}; thresholds are in {heads.name}.json",
        },
    )
    return heads, report


def dev_report(heads: HeadSet, dev: DraftScores) -> dict[str, Any]:
    """Recall and false positives on the dev drafts: learned tier, rules tier, both."""
    out: dict[str, Any] = {"by_rule": {}, "by_language": {}}
    flagged = np.zeros_like(dev.rules_hit)
    for j, rule in enumerate(heads.labels):
        for i, d in enumerate(dev.drafts):
            flagged[i, j] = dev.learned[i, j] >= heads.threshold(rule, d.language)
    union = flagged | dev.rules_hit

    def rates(select: Callable[[DraftExample], bool], cols: Any) -> dict[str, Any]:
        """Recall and false-positive rate of each tier over the selected drafts."""
        items = [i for i, d in enumerate(dev.drafts) if select(d)]
        bad = [i for i in items if dev.drafts[i].rules]
        good = [i for i in items if not dev.drafts[i].rules]
        res = {}
        for name, m in (("learned", flagged), ("rules", dev.rules_hit), ("both", union)):
            caught = sum(1 for i in bad if m[i, cols].any())
            false = sum(1 for i in good if m[i, cols].any())
            res[name] = {
                "recall": round(caught / len(bad), 3) if bad else None,
                "fpr": round(false / len(good), 3) if good else None,
            }
        return {"n": len(items), **res}

    every = slice(None)
    out["overall"] = rates(lambda d: True, every)
    for lang in LANGUAGES:
        out["by_language"][lang] = rates(_in_language(lang), every)
    for j, rule in enumerate(heads.labels):
        out["by_rule"][rule] = rates(_about_rule(rule), [j])
    return out


def _in_language(lang: str) -> Callable[[DraftExample], bool]:
    def select(d: DraftExample) -> bool:
        return d.language == lang

    return select


def _about_rule(rule: str) -> Callable[[DraftExample], bool]:
    def select(d: DraftExample) -> bool:
        return not d.rules or rule in d.rules

    return select
