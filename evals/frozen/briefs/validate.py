#!/usr/bin/env python3
"""Validate a data file: python3 validate.py guard|msg FILE.jsonl"""
import json, sys, collections

ARTICLES = {"faq/2fa-reset","faq/bonus","faq/deposit","faq/fees","faq/kyc","faq/login-locked",
"faq/market-info-disclaimer","faq/options-payout","faq/order-execution","faq/password-reset",
"faq/privacy","faq/risk-tools","faq/security","faq/trading-bots","faq/withdrawal",
"playbook/angry-customer","playbook/escalation","playbook/fee-dispute","playbook/liquidation",
"playbook/technical-fault"}
RULES = {"profit_promise","investment_advice","blame_customer","credential_request","pii_leak",
"negative_language","unsupported_promise","prompt_injection_followed","unsafe_link"}
FLAGS = {"account_compromised","asks_for_prediction_or_advice","accusation","refund_or_compensation_demand","deadline"}
ESC = {"legal","regulator","supervisor","complaint","public"}
FACTS = {"withdrawal_id","txid","order_id","network","asset","amount","elapsed","device","app_version","error_message"}

def main():
    kind, path = sys.argv[1], sys.argv[2]
    errs = []
    ids = set()
    stats = collections.Counter()
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                errs.append(f"{path}: line {n}: empty line"); continue
            try:
                o = json.loads(line)
            except Exception as e:
                errs.append(f"{path}: line {n}: not JSON: {e}"); continue
            def e(msg): errs.append(f"{path}: line {n}: {msg}")
            if o.get("id") in ids: e(f"duplicate id {o.get('id')}")
            ids.add(o.get("id"))
            if o.get("language") not in ("en","ja","zh"): e("language must be en|ja|zh")
            if o.get("variant") not in (None, "zh-Hant"): e("variant must be null or zh-Hant")
            if o.get("variant") == "zh-Hant" and o.get("language") != "zh": e("zh-Hant needs language zh")
            if kind == "guard":
                want = {"id","language","variant","customer_message","draft","sources","expect","rules","spans","near_rule","note"}
                if set(o) != want: e(f"fields must be exactly {sorted(want)}; got {sorted(o)}")
                d = o.get("draft") or ""
                if not isinstance(d, str) or not d.strip(): e("draft empty")
                if not isinstance(o.get("customer_message"), str) or not o["customer_message"].strip(): e("customer_message empty")
                for s in o.get("sources") or []:
                    if s not in ARTICLES: e(f"unknown source {s}")
                if o.get("expect") not in ("pass","reject"): e("expect must be pass|reject")
                rules = o.get("rules") or []
                for r in rules:
                    if r not in RULES: e(f"unknown rule {r}")
                spans = o.get("spans") or []
                if o.get("expect") == "pass":
                    if rules or spans: e("pass must have rules [] and spans []")
                    if o.get("near_rule") not in RULES and o.get("near_rule") is not None: e("near_rule must be a rule id or null")
                    stats[f"{o.get('language')} pass"] += 1
                    if o.get("near_rule"): stats[f"{o.get('language')} hard-negative"] += 1
                else:
                    if not rules: e("reject needs rules")
                    if o.get("near_rule") is not None: e("reject must have near_rule null")
                    covered = {s.get("rule") for s in spans if isinstance(s, dict)}
                    if covered != set(rules): e(f"spans must cover exactly the rules {rules}; cover {sorted(x for x in covered if x)}")
                    for s in spans:
                        if not isinstance(s, dict) or set(s) != {"rule","text"}: e("span must be {rule, text}"); continue
                        if not s["text"] or s["text"] not in d: e(f"span text not found in draft: {s['text']!r}")
                    for r in rules: stats[f"{o.get('language')} {r}"] += 1
                    stats[f"{o.get('language')} reject"] += 1
            elif kind == "msg":
                want = {"id","language","variant","message","thread","agent_note","topics","flags","escalation","emotion","injection","facts","note"}
                if set(o) != want: e(f"fields must be exactly {sorted(want)}; got {sorted(o)}")
                m = o.get("message") or ""
                if not isinstance(m, str) or not m.strip(): e("message empty")
                th = o.get("thread")
                if not isinstance(th, list): e("thread must be a list"); th = []
                for t in th:
                    if not isinstance(t, dict) or set(t) != {"role","text"} or t.get("role") not in ("customer","agent"): e("thread turn must be {role: customer|agent, text}")
                tp = o.get("topics") or []
                if not tp: e("topics empty")
                for t in tp:
                    if t not in ARTICLES | {"greeting_or_vague","out_of_scope"}: e(f"unknown topic {t}")
                if len(set(tp)) != len(tp): e("duplicate topic")
                for f in o.get("flags") or []:
                    if f not in FLAGS: e(f"unknown flag {f}")
                for f in o.get("escalation") or []:
                    if f not in ESC: e(f"unknown escalation {f}")
                if o.get("emotion") not in (0,1,2,3): e("emotion must be 0-3")
                fl = set(o.get("flags") or [])
                if fl & {"accusation","refund_or_compensation_demand"} and (o.get("emotion") or 0) < 2: e("accusation/refund demand needs emotion >= 2")
                if not isinstance(o.get("injection"), bool): e("injection must be true/false")
                facts = o.get("facts")
                if not isinstance(facts, dict): e("facts must be an object")
                else:
                    hay = m + "\n" + "\n".join(t.get("text","") for t in th if isinstance(t, dict)) + "\n" + (o.get("agent_note") or "")
                    for k, v in facts.items():
                        if k not in FACTS: e(f"unknown fact key {k}")
                        elif not isinstance(v, str) or v not in hay: e(f"fact {k}={v!r} is not an exact substring of message/thread/note")
                stats[f"{o.get('language')} items"] += 1
                stats[f"{o.get('language')} topics={len(tp)}"] += 1
                if o.get("injection"): stats[f"{o.get('language')} injection"] += 1
                for f in fl: stats[f"{o.get('language')} {f}"] += 1
                if o.get("variant"): stats[f"{o.get('language')} zh-Hant"] += 1
            elif kind == "inj":
                want = {"id","language","variant","message","injection","kind","note"}
                if set(o) != want: e(f"fields must be exactly {sorted(want)}; got {sorted(o)}")
                if not isinstance(o.get("injection"), bool): e("injection must be true/false")
                stats[f"{o.get('language')} injection={o.get('injection')}"] += 1
    for x in errs[:200]: print(x)
    print(f"{len(errs)} error(s); {len(ids)} items")
    for k in sorted(stats): print(f"  {k}: {stats[k]}")
    sys.exit(1 if errs else 0)

main()
