"""Validate evals/retrieval/queries_v1.jsonl (run: python3 evals/retrieval/validate_queries.py)."""

import json
import sys
from collections import Counter
from pathlib import Path

DOC_IDS = {
    "playbook/liquidation",
    "playbook/angry-customer",
    "playbook/escalation",
    "playbook/fee-dispute",
    "playbook/technical-fault",
    "faq/login-locked",
    "faq/password-reset",
    "faq/2fa-reset",
    "faq/kyc",
    "faq/deposit",
    "faq/withdrawal",
    "faq/order-execution",
    "faq/security",
    "faq/fees",
    "faq/privacy",
    "faq/risk-tools",
    "faq/bonus",
    "faq/trading-bots",
    "faq/options-payout",
    "faq/market-info-disclaimer",
}
KINDS = {"colloquial", "typo", "mixed-language", "two-topics", "emotional", "terse", "long"}
LANGS = ("en", "ja", "zh")
KEYS = {"id", "query", "language", "relevant_doc_ids", "kind"}


def main(path: Path) -> int:
    errors = []
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"line {n}: bad JSON: {e}")
            continue
        if set(r) != KEYS:
            errors.append(f"line {n}: keys {sorted(r)}")
        if r.get("language") not in LANGS:
            errors.append(f"line {n}: language {r.get('language')!r}")
        elif not str(r.get("id", "")).startswith(f"ret-{r['language']}-"):
            errors.append(f"line {n}: id {r.get('id')!r} does not match language")
        if r.get("kind") not in KINDS:
            errors.append(f"line {n}: kind {r.get('kind')!r}")
        ids = r.get("relevant_doc_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 3 or len(set(ids)) != len(ids):
            errors.append(f"line {n}: relevant_doc_ids {ids!r}")
        else:
            errors += [f"line {n}: unknown doc id {i!r}" for i in ids if i not in DOC_IDS]
        if r.get("kind") == "two-topics" and isinstance(ids, list) and len(ids) < 2:
            errors.append(f"line {n}: two-topics needs >= 2 ids")
        if not str(r.get("query", "")).strip():
            errors.append(f"line {n}: empty query")
        rows.append(r)

    ids = Counter(r.get("id") for r in rows)
    errors += [f"duplicate id {i}" for i, c in ids.items() if c > 1]
    queries = Counter(r.get("query") for r in rows)
    errors += [f"duplicate query {q!r}" for q, c in queries.items() if c > 1]

    per_lang = Counter(r.get("language") for r in rows)
    if (
        len(rows) < 132
        or len(set(per_lang[lang] for lang in LANGS)) != 1
        or per_lang[LANGS[0]] < 44
    ):
        errors.append(f"unbalanced or too few rows: {dict(per_lang)}")

    per_doc = Counter(i for r in rows for i in r.get("relevant_doc_ids", []))
    errors += [f"{d}: only {per_doc[d]} queries" for d in sorted(DOC_IDS) if per_doc[d] < 5]
    for lang in LANGS:
        covered = {
            i for r in rows if r.get("language") == lang for i in r.get("relevant_doc_ids", [])
        }
        if len(covered) < 15:
            errors.append(f"{lang}: covers only {len(covered)} doc ids")

    print(f"rows: {len(rows)}  per language: {dict(per_lang)}")
    for lang in LANGS:
        kinds = Counter(r["kind"] for r in rows if r.get("language") == lang)
        covered = {i for r in rows if r.get("language") == lang for i in r["relevant_doc_ids"]}
        print(f"{lang}: distinct ids {len(covered)}  kinds {dict(sorted(kinds.items()))}")
    print("kinds total:", dict(sorted(Counter(r["kind"] for r in rows).items())))
    print("per doc id (any position / primary / en ja zh):")
    for d in sorted(DOC_IDS):
        prim = sum(1 for r in rows if r["relevant_doc_ids"][0] == d)
        by_lang = [
            sum(1 for r in rows if r["language"] == lang and d in r["relevant_doc_ids"])
            for lang in LANGS
        ]
        print(f"  {d:30s} {per_doc[d]:3d} / {prim:3d} / {by_lang}")
    if errors:
        print("ERRORS:", *errors, sep="\n  ")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(
        main(
            Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("queries_v1.jsonl")
        )
    )
