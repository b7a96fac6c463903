"""Offline drafts of the blind-review development file, counted for the problems the review
found (``evals/reviews/blind_review_v2.jsonl`` or any file of the same shape: ``id``,
``language``, ``message``, ``thread``, ``agent_note``, ``labels``).

    python scripts/review_report.py [FILE] [--store DIR] [--json OUT]

Every message is drafted again with the offline backend (thread and agent note included),
and per language it counts the drafts that still have:

* ``echo``: the robotic acknowledgement line ("You mentioned amount ... and time since it
  started: ...", 「お知らせいただいた内容（…）を踏まえて」, “您提供的信息：…”);
* ``questionnaire``: the generic "tell me what you were trying to do" questions although
  the message was labelled with an article (``labelled_topic``) or as out of scope
  (``out_of_scope``);
* ``compromise_generic``: ``account_compromised`` messages about a particular situation
  (a drained self-custody wallet, funds sent to a "safe" address, a SIM swap, a
  remote-access "support" scam, a leaked API key: found by this script's own patterns) whose
  draft misses that situation's key step;
* ``claim_ignored``: fee-dispute / liquidation messages (labelled) whose draft states no
  fee rate / mark price and quotes none of the customer's ids or amounts;
* ``wrong_destination_unanswered``: withdrawals sent to a wrong address or network whose
  draft never says an on-chain transfer cannot be reversed;
* ``bank_timeline_missing``: bank deposits / withdrawals whose draft gives no 1-3 business
  day timeline;
* ``advice_fact_missing``: price-advice messages that also ask about copy trading, fees or
  leverage whose draft gives no such figure (10%, 0.06%, 100x);
* ``asks_given``: drafts that ask again for a labelled fact (scripts/facts_report.py);
* ``blocked``: drafts the guardrail rejects.

The patterns are this script's own reading, independent of the drafter's phrases. It drafts
with the tree it lives in (copy it into an older checkout to measure that one).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]  # this tree's copilot, not the venv's

from facts_report import asked_given, offline_copilot  # noqa: E402

DEFAULT = Path(__file__).resolve().parent.parent / "evals" / "reviews" / "blind_review_v2.jsonl"

ECHO = re.compile(
    r"You mentioned (?:amount|coin|network|time since|withdrawal ID|TxID|order ID|device|app "
    r"version|the message)|お知らせいただいた内容（|您提供的信息："
)
QUESTIONNAIRE = re.compile(
    r"tell me what you were trying to do|どのような操作をなさろうとしていたか|请告诉我们您当时想进行什么操作"
)
# situations of a compromised account, read from the message, and what the draft must say
SITUATIONS = {
    "wallet": (
        re.compile(
            r"seed|12 words|recovery phrase|trust ?wallet|metamask|self[- ]custody|"
            r"助记词|助記詞|シードフレーズ|自分のウォレット|外部ウォレット|冷钱包|私人钱包|"
            r"Phantom|Ledger",
            re.I,
        ),
        re.compile(
            r"cannot (?:be )?(?:freeze|reverse|recover)|reversed|取り消す|取り戻す|无法冻结|无法撤回|不可逆",
            re.I,
        ),
    ),
    "sent": (
        re.compile(r"safe (?:address|account)|安全なアドレス|安全(?:账户|帳戶|地址)", re.I),
        re.compile(r"police|警察|警方|报警|報警", re.I),
    ),
    "sim": (
        re.compile(r"\bSIM\b|携帯番号|電話番号が|手机号被|补卡|補卡", re.I),
        re.compile(r"carrier|mobile operator|携帯(?:電話)?会社|通信キャリア|运营商|電信", re.I),
    ),
    "remote": (
        re.compile(r"AnyDesk|TeamViewer|remote|遠隔|远程|遠端", re.I),
        re.compile(r"AnyDesk|TeamViewer|remote[- ]access|遠隔操作|远程控制|遠端", re.I),
    ),
    "api": (
        re.compile(r"API", re.I),
        re.compile(
            r"API Management|API管理|API 管理|delete (?:the|that) (?:API )?key|削除|删除", re.I
        ),
    ),
}
WRONG_DEST = re.compile(
    r"wrong (?:address|network|chain)|(?:間違|誤)(?:った|えた)[^。]{0,6}(?:アドレス|ネットワーク)|"
    r"(?:错|錯)(?:误|誤)?的?(?:地址|网络|網絡|網路|链|鏈)|(?:网络|網絡|網路|地址)(?:选|選)?(?:错|錯)",
    re.I,
)
IRREVERSIBLE = re.compile(
    r"cannot reverse|cannot be reversed|取り消すことはできません|无法撤回|無法撤回", re.I
)
BANK = re.compile(r"\bbank\b|\bSEPA\b|銀行|振込|银行|銀行|汇款|匯款|台币|台幣", re.I)
BANK_DAYS = re.compile(r"1-3 business days|1〜3営業日|1-3个工作日|1-3個工作天|1-3個工作日", re.I)
# a factual question inside a price-advice message, and the figure that answers it
ADVICE_FACTS = (
    (re.compile(r"copy|lead trader|コピー|リードトレーダー|跟单|跟單|带单|帶單", re.I), "10%"),
    (re.compile(r"\bfees?\b|手数料|手续费|手續費", re.I), "0.06%"),
    (re.compile(r"leverage|レバレッジ|杠杆|槓桿", re.I), "100"),
)
CLAIM = re.compile(
    r"mark price|マーク価格|マークプライス|标记价格|\d(?:\.\d+)?\s?%|fee review|手数料の(?:確認|調査)|费用核查|费率"
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", type=Path, nargs="?", default=DEFAULT)
    ap.add_argument("--store", type=Path, default=Path("/tmp/review_report/store"))
    ap.add_argument("--json", type=Path, default=None, help="write per-message rows here")
    args = ap.parse_args(argv)

    from copilot.draft.types import DraftRequest, Turn

    copilot = offline_copilot(args.store)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    out = []
    for line_no, line in enumerate(args.file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        lang = row["language"]
        labels = row.get("labels") or {}
        topics = labels.get("topics") or []
        flags = labels.get("flags") or []
        facts = labels.get("facts") or {}
        history = [Turn(t["role"], t["text"]) for t in row.get("thread") or []]
        res = copilot.draft(
            DraftRequest(
                row["message"], language=lang, history=history, agent_note=row.get("agent_note")
            )
        )
        text = res.draft
        c = counts[lang]
        c["drafts"] += 1
        problems = []
        if ECHO.search(text):
            problems.append("echo")
        if QUESTIONNAIRE.search(text):
            if any("/" in t for t in topics):
                problems.append("questionnaire_labelled_topic")
            if "out_of_scope" in topics:
                problems.append("questionnaire_out_of_scope")
        if "account_compromised" in flags:
            for name, (seen, says) in SITUATIONS.items():
                if seen.search(row["message"]) and not says.search(text):
                    problems.append(f"compromise_generic_{name}")
        if {"playbook/fee-dispute", "playbook/liquidation"} & set(topics):
            given = [str(v) for v in facts.values() if len(str(v)) >= 3]
            if not CLAIM.search(text) and not any(v in text for v in given):
                problems.append("claim_ignored")
        wrong_dest = "faq/withdrawal" in topics and WRONG_DEST.search(row["message"])
        if wrong_dest and not IRREVERSIBLE.search(text):
            problems.append("wrong_destination_unanswered")
        bank = {"faq/withdrawal", "faq/deposit"} & set(topics) and BANK.search(row["message"])
        if bank and not BANK_DAYS.search(text):
            problems.append("bank_timeline_missing")
        if "asks_for_prediction_or_advice" in flags:
            for asked, figure in ADVICE_FACTS:
                if asked.search(row["message"]) and figure not in text:
                    problems.append("advice_fact_missing")
                    break
        if asked_given(text, lang, facts):
            problems.append("asks_given")
        if res.blocked:
            problems.append("blocked")
        for p in problems:
            c[p] += 1
        out.append({"id": row.get("id", line_no), "problems": problems, "draft": text})
    keys = sorted({k for c in counts.values() for k in c} - {"drafts"})
    print(f"{'problem':34s}" + "".join(f"{lang:>6s}" for lang in sorted(counts)) + " total")
    for k in ["drafts", *keys]:
        vals = [counts[lang][k] for lang in sorted(counts)]
        print(f"{k:34s}" + "".join(f"{v:6d}" for v in vals) + f"{sum(vals):6d}")
    if args.json:
        args.json.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
