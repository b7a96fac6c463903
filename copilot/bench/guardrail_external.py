"""Third-party figures for ``copilot bench guardrails``, read by path from ``../shared/external``.

Never copied into the repository: garak's labelled financial-advice detector outputs
(verdict-level recall and false positives), llm-guard's injection/secrets/PII cases (our input
detectors), PII span recall of masking on presidio's synthetic sample, and injection false flags on
benign customer queries (banking77, clinc150).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXTERNAL = ROOT.parent / "shared" / "external"
# presidio's entity types and the masker's kinds that cover them (find_sensitive)
PRESIDIO_SUPPORTED = {
    "PERSON": {"NAME", "CUSTOMER_NAME"},
    "CREDIT_CARD": {"CARD"},
    "PHONE_NUMBER": {"PHONE"},
    "EMAIL_ADDRESS": {"EMAIL"},
    "US_SSN": {"NATIONAL_ID"},
    "IBAN_CODE": {"IBAN"},
    "IP_ADDRESS": {"IP"},
}


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def ratio(num: int, den: int) -> float | None:
    """``num / den`` rounded to 4 places; None when ``den`` is 0."""
    return round(num / den, 4) if den else None


def scores(tp: int, fp: int, fn: int, tn: int) -> dict[str, Any]:
    """Counts with precision, recall and false-positive rate."""
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "fpr": ratio(fp, fp + tn),
    }


def _binary(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    c = Counter(("t" if want == got else "f") + ("p" if got else "n") for want, got in pairs)
    return scores(c["tp"], c["fp"], c["fn"], c["tn"]) | {"n": len(pairs)}


def _garak(guardrail: Any, path: Path) -> dict[str, Any]:
    """garak's labelled outputs: rejected = flagged; per tier (rules, learned, both)."""
    rows = [r for r in read_rows(path) if r.get("kind") == "detector_test_output"]
    verdicts = [guardrail.check(r["text"], language="en") for r in rows]
    out: dict[str, Any] = {}
    for tier in ("rules", "learned", "both"):
        pairs = [
            (
                r["label"] == "flag",
                any(
                    x.severity == "block"
                    and (tier == "both" or (x.tier == "learned") == (tier == "learned"))
                    for x in v.violations
                ),
            )
            for r, v in zip(rows, verdicts, strict=True)
        ]
        by_detector: dict[str, list[tuple[bool, bool]]] = {}
        for r, pair in zip(rows, pairs, strict=True):
            by_detector.setdefault(r.get("detector", "?"), []).append(pair)
        out[tier] = _binary(pairs) | {
            "by_detector": {k: _binary(v) for k, v in sorted(by_detector.items())}
        }
    return out


Flagger = Callable[[str, str | None], dict[str, bool]]


def rules_flag(text: str, language: str | None = None) -> dict[str, bool]:
    """The cue finder alone (when no guardrail is given)."""
    from copilot.understand.signals import find_injection

    hit = bool(find_injection(text))
    return {"rules": hit, "learned": False, "both": hit}


def _llm_guard(path: Path, flag: Flagger = rules_flag) -> dict[str, Any]:
    from copilot.text.pii import find_pii

    rows = read_rows(path)
    out: dict[str, Any] = {}
    chosen = [r for r in rows if r["scanner"] == "prompt_injection"]
    flags = [flag(r["text"], None) for r in chosen]
    for tier in ("rules", "learned", "both"):
        out[f"prompt_injection ({tier})"] = _binary(
            [(not r["expected_valid"], f[tier]) for r, f in zip(chosen, flags, strict=True)]
        )
    subsets = {
        "secrets": (("secrets",), lambda t: any(p.kind == "SECRET" for p in find_pii(t))),
        "pii": (("pii_anonymize", "pii_output"), lambda t: bool(find_pii(t))),
    }
    for name, (scanners, detect) in subsets.items():
        picked = [r for r in rows if r["scanner"] in scanners]
        out[name] = _binary([(not r["expected_valid"], detect(r["text"])) for r in picked])
    return out


def _presidio(path: Path) -> dict[str, Any]:
    """Span recall of what masking hides before a remote call (``find_sensitive``); the
    guardrail's narrower ``find_pii`` is reported as one figure beside it."""
    from copilot.text.pii import find_pii, find_sensitive

    rows = read_rows(path)
    out = _span_recall(rows, find_sensitive)
    narrow = _span_recall(rows, find_pii)
    out["finder"] = "find_sensitive (masking)"
    out["find_pii_supported_recall"] = narrow["supported_recall"]
    for etype, figures in out["supported_types"].items():
        figures["find_pii_recall"] = narrow["supported_types"][etype]["recall"]
    return out


def _span_recall(rows: list[dict[str, Any]], finder: Any) -> dict[str, Any]:
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    ours = ours_hit = 0
    for row in rows:
        spans = finder(row["text"])
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
        t: {"gold": total[t], "found": found[t], "recall": ratio(found[t], total[t])}
        for t in PRESIDIO_SUPPORTED
        if total[t]
    }
    s_gold = sum(total[t] for t in supported)
    s_found = sum(found[t] for t in supported)
    other = sorted(t for t in total if t not in PRESIDIO_SUPPORTED)
    return {
        "supported_types": supported,
        "supported_recall": ratio(s_found, s_gold),
        "all_types_recall": ratio(sum(found.values()), sum(total.values())),
        "span_precision": ratio(ours_hit, ours),
        "not_detected_types": {t: total[t] for t in other},
    }


def _benign_queries(folder: Path, flag: Flagger = rules_flag) -> dict[str, Any]:
    """Injection flags raised on real, benign customer queries (banking77, clinc150)."""
    texts = []
    for name in ("banking77_dev_queries.jsonl", "clinc150_banking_cc_oos_sample.jsonl"):
        path = folder / name
        if path.is_file():
            texts += [str(r.get("query") or r.get("text") or "") for r in read_rows(path)]
    flags = [flag(t, "en") for t in texts]
    out: dict[str, Any] = {"n": len(texts)}
    for tier in ("rules", "learned", "both"):
        flagged = sum(f[tier] for f in flags)
        out[tier] = {"flagged": flagged, "rate": ratio(flagged, len(texts))}
    out["flagged"] = out["both"]["flagged"]
    return out


def run_external(
    guardrail: Any, folder: Path = EXTERNAL, flag: Flagger = rules_flag
) -> dict[str, Any]:
    """Every third-party figure; a missing file is reported, not raised."""
    out: dict[str, Any] = {"benign_queries": _benign_queries(folder, flag)}
    for key, name, fn in (
        ("garak", "garak_financial_probes_cases.jsonl", lambda p: _garak(guardrail, p)),
        ("llm_guard", "llm_guard_labelled_cases.jsonl", lambda p: _llm_guard(p, flag)),
        ("presidio", "presidio_synth_pii_sample.jsonl", _presidio),
    ):
        path = folder / name
        out[key] = fn(path) if path.is_file() else {"error": f"{path} not found"}
    return out


def pct(x: float | None) -> str:
    """A ratio as a percentage, 5 characters wide."""
    return "  -  " if x is None else f"{100 * x:5.1f}"


def render_external(ext: dict[str, Any]) -> list[str]:
    """Lines of the third-party section."""
    lines: list[str] = []
    g = ext["garak"]
    if "error" in g:
        lines.append(f"   garak: {g['error']}")
    else:
        lines.append("   garak financial detector outputs (flag = reject)")
        for tier in ("rules", "learned", "both"):
            s = g[tier]
            lines.append(
                f"      {tier:<8} n {s['n']}  recall {pct(s['recall'])}%  "
                f"precision {pct(s['precision'])}%  FPR {pct(s['fpr'])}%"
            )
        for det, d in g["both"]["by_detector"].items():
            lines.append(
                f"         both, {det:<24} n {d['n']:>3}  recall {pct(d['recall'])}%  FPR {pct(d['fpr'])}%"
            )
    bq = ext["benign_queries"]
    lines.append(
        "   injection false flags on benign customer queries (banking77 + clinc150): "
        + "  ".join(f"{t} {bq[t]['flagged']}/{bq['n']}" for t in ("rules", "learned", "both"))
    )
    lg = ext["llm_guard"]
    if "error" in lg:
        lines.append(f"   llm-guard: {lg['error']}")
    else:
        for name, s in lg.items():
            lines.append(
                f"   llm-guard {name:<28} n {s['n']:>3}  recall {pct(s['recall'])}%  "
                f"precision {pct(s['precision'])}%  FPR {pct(s['fpr'])}%"
            )
    pr = ext["presidio"]
    if "error" in pr:
        lines.append(f"   presidio: {pr['error']}")
    else:
        lines.append(
            f"   presidio PII span recall of masking, supported types {pct(pr['supported_recall'])}%  "
            f"(all types {pct(pr['all_types_recall'])}%, span precision {pct(pr['span_precision'])}%; "
            f"the guardrail's find_pii {pct(pr['find_pii_supported_recall'])}%)"
        )
        for t, s in pr["supported_types"].items():
            lines.append(
                f"      {t:<15} {s['found']:>3}/{s['gold']:<3} {pct(s['recall'])}%"
                f"   (find_pii {pct(s.get('find_pii_recall'))}%)"
            )
        missing = ", ".join(f"{t} {n}" for t, n in pr["not_detected_types"].items())
        lines.append(f"      not targeted (addresses, places, dates...): {missing}")
    return lines
