"""Own-data report for issue 12's drafting items: offline drafts of the labelled messages in
``evals/understanding/train_v1`` (never the frozen sets), measured with the labels.

    python scripts/facts_report.py [--part dev|train] [--store DIR] [--json OUT]

For every message it drafts an offline reply (thread and agent note included) and counts:

* ``asks_given``: drafts that ask for a fact the customer already gave (the labelled
  ``facts``; an ask is a request sentence naming that fact, found by the patterns below,
  which are independent of the drafter's own ``fact_asks``);
* ``acknowledged``: drafts of messages with labelled ids/network/amount/elapsed/device/
  version/error that quote at least one of those values;
* ``both_topics``: two-topic messages whose draft cites both labelled topics' articles
  (where both are KB articles);
* ``compromised_safety_first``: ``account_compromised`` messages whose draft cites
  ``faq/security`` and tells the customer to freeze the account before anything else;
* ``blocked``: drafts the guardrail still rejects.

It imports only the public drafting API, so the same script measures an older tree (put
that tree first on PYTHONPATH). Facts extraction figures are printed when the tree has it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# request sentences naming a fact, per language (independent of prompts/offline_phrases.yaml)
_REQUEST = {
    "en": re.compile(
        r"\b(?:please|could you|can you|would you|let me know|reply with|send (?:me|us)|tell me)\b",
        re.I,
    ),
    # a request form, not "thank you for letting us know" (お知らせいただいた, 感谢您提供)
    "ja": re.compile(r"ください|下さい|いただけ(?:ます|ません|れば)|お送りいただければ"),
    "zh": re.compile(r"(?<![申邀])[请請]|麻烦|麻煩|能否|可否"),
}
_NOUNS = {
    "en": {
        "withdrawal_id": r"withdrawal ID",
        "txid": r"\bTxID\b|transaction hash",
        "order_id": r"order ID",
        "network": r"\bnetwork\b",
        "device": r"\bdevice\b",
        "app_version": r"app version",
        "error_message": r"error (?:text|message|wording)|wording of any error",
        "elapsed": r"when it happened|the time it happened",
    },
    "ja": {
        "withdrawal_id": r"出金ID",
        "txid": r"TxID",
        "order_id": r"注文ID",
        "network": r"ネットワーク",
        "device": r"端末",
        "app_version": r"バージョン",
        "error_message": r"エラーの文言|エラーメッセージの文言",
        "elapsed": r"発生(?:日時|時刻)",
    },
    "zh": {
        "withdrawal_id": r"提[币幣]ID",
        "txid": r"TxID",
        "order_id": r"订单号|訂單號",
        "network": r"网络|網路|網絡",
        "device": r"设备|設備",
        "app_version": r"版本",
        "error_message": r"报错原文|報錯原文",
        "elapsed": r"发生的时间|發生的時間",
    },
}
_SENT = re.compile(r"(?<=[.!?。！？])\s*|\n")
_ACKED = ("withdrawal_id", "txid", "order_id", "network", "amount", "elapsed", "device")
_FREEZE = re.compile(r"freeze|凍結|冻结|凍結", re.I)


def asked_given(draft: str, language: str, facts: dict[str, str]) -> list[str]:
    """The labelled facts ``draft`` asks for again."""
    nouns = _NOUNS.get(language, _NOUNS["en"])
    out = []
    for sentence in _SENT.split(draft):
        if not _REQUEST[language].search(sentence):
            continue
        for key, pattern in nouns.items():
            if key in facts and re.search(pattern, sentence, re.I) and key not in out:
                out.append(key)
    return out


def offline_copilot(store: Path) -> Any:
    """The offline copilot of this tree over a private data folder ``store`` (the shipped
    knowledge base ingested there on first use)."""
    from copilot.draft.factory import build_copilot
    from copilot.settings import Settings

    env = {
        "COPILOT_DATA_DIR": str(store),
        "COPILOT_KNOWLEDGE_DIR": str(ROOT / "knowledge"),
        "COPILOT_PROMPTS_DIR": str(ROOT / "prompts"),
        "COPILOT_POLICY_FILE": str(ROOT / "prompts" / "policy.yaml"),
    }
    settings = Settings.load(env=env)
    if not (store / "chroma").exists():
        from copilot.kb.articles import load_kb
        from copilot.kb.ingest import docs_from_articles
        from copilot.retrieval.index import ingest_into

        ingest_into(settings, settings.collection, docs_from_articles(load_kb(ROOT / "knowledge")))
    return build_copilot(settings, "offline")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["dev", "train"], default=None)
    ap.add_argument("--store", type=Path, default=Path("/tmp/facts12/store"))
    ap.add_argument("--json", type=Path, default=None, help="write per-message rows here")
    args = ap.parse_args(argv)

    from copilot.draft.types import DraftRequest, Turn
    from copilot.understand.messages import load_split

    messages = load_split(ROOT / "evals/understanding/train_v1", args.part)
    try:
        from copilot.understand.facts import fact_scores
    except ImportError:
        fact_scores = None
    if fact_scores is not None:
        print("fact extraction (value overlaps the label):")
        for key, v in fact_scores(messages).items():
            print(
                f"  {key:14s} labelled {int(v['labelled']):4d} found {int(v['found']):4d} "
                f"right {int(v['right']):4d}  P {v['precision']:.2f}  R {v['recall']:.2f}"
            )
    copilot = offline_copilot(args.store)
    n = {"drafts": 0, "with_facts": 0, "asks_given": 0, "ackable": 0, "acknowledged": 0}
    n |= {"two_topic": 0, "both_topics": 0, "compromised": 0, "safety_first": 0, "blocked": 0}
    per_key: dict[str, int] = {}
    rows = []
    for m in messages:
        history = [Turn(t.role, t.text) for t in m.thread]  # type: ignore[arg-type]
        res = copilot.draft(
            DraftRequest(m.message, language=m.language, history=history, agent_note=m.agent_note)
        )
        cited = [s["id"] for s in res.sources]
        n["drafts"] += 1
        n["blocked"] += res.blocked
        asked = asked_given(res.draft, m.language, m.facts)
        if m.facts:
            n["with_facts"] += 1
            n["asks_given"] += bool(asked)
            for k in asked:
                per_key[k] = per_key.get(k, 0) + 1
        ackable = [m.facts[k] for k in _ACKED if k in m.facts]
        if ackable:
            n["ackable"] += 1
            n["acknowledged"] += any(v in res.draft for v in ackable)
        arts = [t for t in m.topics if "/" in t]
        if len(arts) >= 2:
            n["two_topic"] += 1
            n["both_topics"] += arts[0] in cited and arts[1] in cited
        if "account_compromised" in m.flags:
            n["compromised"] += 1
            body = res.draft.split("\n\n", 1)[-1]
            first = _FREEZE.search(body)
            reset = re.search(r"Forgot password|パスワードをお忘れ|忘记密码", body)
            n["safety_first"] += bool(
                "faq/security" in cited
                and first
                and (reset is None or reset.start() > first.start())
            )
        rows.append(
            {
                "id": m.id,
                "asked": asked,
                "sources": cited,
                "scenario": res.scenario,
                "draft": res.draft,
            }
        )
    print(json.dumps({**n, "asks_given_by_fact": per_key}, indent=1))
    if args.json:
        args.json.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
