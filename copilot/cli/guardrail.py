"""``copilot guardrail train|eval``: rebuild the learned tier from the policy's examples, or
print its per-rule, per-language table on the dev split (or on any labelled file)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "Train the guardrail's learned tier and the message injection flag (train), print their per-rule, per-language tables (eval), or compare feature sets (ablate)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the verb."""
    parser.add_argument("action", choices=("train", "eval", "ablate"))
    parser.add_argument(
        "--data",
        type=Path,
        help="eval: a labelled-draft JSONL file to score instead of the dev split",
    )
    parser.add_argument(
        "--only",
        choices=("drafts", "injection"),
        help="train or evaluate only the draft heads or only the message injection flag",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _evidence(guardrail: Any) -> tuple[Any, Any]:
    """The rules tier's evidence (fired, cleared spans per rule) on a labelled draft, and on
    a lone sentence."""

    def on_draft(d: Any) -> Any:
        return guardrail.evidence(
            d.draft,
            customer_message=d.customer_message or None,
            language=d.language,
            sources=list(d.sources) or None,
        )

    def on_text(text: str, language: str) -> Any:
        return guardrail.evidence(text, language=language)

    return on_draft, on_text


def run(args: argparse.Namespace) -> int:
    """Train or evaluate; training writes COPILOT_MODELS_DIR/<weights>.npz and .json."""
    from copilot.guard.guardrail import PolicyGuardrail
    from copilot.guard.policy import load_policy
    from copilot.settings import get_settings

    settings = get_settings()
    policy = load_policy(settings.policy_file)
    rules_only = PolicyGuardrail(
        policy, allowed_domains=settings.allowed_domains, knowledge_dir=settings.knowledge_dir
    )
    on_draft, on_text = _evidence(rules_only)
    if args.action == "ablate":
        return _ablate(args, settings, policy, on_draft, on_text)
    if args.action == "train":
        out: dict[str, Any] = {}
        if args.only != "injection":
            out["drafts"] = _train_drafts(args, settings, policy, on_draft, on_text)
        if args.only != "drafts" and policy.learned and policy.learned.injection_weights:
            out["injection"] = _train_injection(args, settings, policy, on_draft)
        if args.json:
            print(json.dumps(out, indent=1, ensure_ascii=False))
        return 0
    if args.only == "injection":
        return _evaluate_injection(args, settings, policy, on_draft)
    return _evaluate(args, settings, policy, on_draft)


def _train_drafts(
    args: argparse.Namespace, settings: Any, policy: Any, on_draft: Any, on_text: Any
) -> dict[str, Any]:
    from copilot.guard.training import train

    heads, report = train(
        policy,
        settings.models_dir,
        on_draft,
        on_text,
        knowledge_dir=settings.knowledge_dir,
        log=lambda line: print(line, file=sys.stderr),
    )
    manifest = heads.manifest
    if not args.json:
        print(
            f"wrote {settings.models_dir / heads.name}.npz and .json "
            f"(weights sha256 {manifest['weights_sha256'][:16]}, data sha256 "
            f"{manifest['data']['sha256'][:16]}, embedder {heads.embedder})"
        )
        print(render(report))
    return dict(manifest)


def _train_injection(
    args: argparse.Namespace, settings: Any, policy: Any, on_draft: Any
) -> dict[str, Any]:
    from copilot.guard.injection_training import train_injection

    heads, report = train_injection(
        policy, settings.models_dir, on_draft, log=lambda line: print(line, file=sys.stderr)
    )
    manifest = heads.manifest
    if not args.json:
        print(
            f"wrote {settings.models_dir / heads.name}.npz and .json "
            f"(weights sha256 {manifest['weights_sha256'][:16]}, data sha256 "
            f"{manifest['data']['sha256'][:16]}, embedder {heads.embedder})"
        )
        print(render_injection(report))
    return dict(manifest)


def _evaluate_injection(args: argparse.Namespace, settings: Any, policy: Any, on_draft: Any) -> int:
    from copilot.errors import CopilotError
    from copilot.guard.examples import split_of
    from copilot.guard.injection_training import (
        draft_messages,
        evaluate,
        injection_data_sha256,
        load_messages,
        message_files,
    )
    from copilot.understand.injection import InjectionFlagger

    if policy.learned is None or not policy.learned.injection_weights:
        raise CopilotError(f"{policy.path}: the policy names no injection_weights")
    flagger = InjectionFlagger.load(
        settings.models_dir,
        policy.learned.injection_weights,
        data_sha256=injection_data_sha256(policy),
    )
    if args.data:
        messages = load_messages(args.data)
        where = str(args.data)
    else:
        every = [m for p in message_files(policy) for m in load_messages(p)]
        every += draft_messages(policy, on_draft)
        messages = [m for m in every if split_of(m.id) == "dev"]
        where = "the dev split"
    report = evaluate(flagger, messages)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"{len(messages)} messages from {where}")
        print(render_injection(report))
    return 0


def render_injection(report: dict[str, Any]) -> str:
    """Recall on injections and false flags on benign messages, per language, per tier."""
    lines = [
        f"{'':12}{'n':>5}{'inj':>5}   {'rules: recall false':>20}   "
        f"{'learned: recall false':>22}   {'both: recall false':>19}"
    ]
    for lang, row in report.items():
        cells = "   ".join(
            f"{row[t]['recall']:>12.0%} {row[t]['false_flags']:>6.1%}"
            for t in ("rules", "learned", "both")
        )
        lines.append(f"{lang:12}{row['n']:>5}{row['injections']:>5}   {cells}")
    return "\n".join(lines)


def _evaluate(args: argparse.Namespace, settings: Any, policy: Any, on_draft: Any) -> int:
    from copilot.guard.examples import load_drafts
    from copilot.guard.learned import LearnedTier
    from copilot.guard.training import dev_report, load_corpus, score_drafts

    if policy.learned is None:
        from copilot.errors import CopilotError

        raise CopilotError(f"{policy.path}: the policy has no 'learned:' section")
    tier = LearnedTier.load(settings.models_dir, policy.learned.weights)
    corpus = load_corpus(policy, on_draft)
    if args.data:
        drafts = load_drafts(args.data, policy.rule_ids)
        corpus.evidence.update({d.id: on_draft(d) for d in drafts})
    else:
        drafts = corpus.split("dev")
    scores = score_drafts(tier.heads, drafts, corpus, tier.embedder, tier.draft_heads)
    report = dev_report(tier.heads, scores)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        where = str(args.data) if args.data else "the dev split"
        print(f"{len(drafts)} drafts from {where}")
        print(render(report))
    return 0


def render(report: dict[str, Any]) -> str:
    """The per-rule and per-language table: recall and false positives of each tier."""

    def cells(row: dict[str, Any]) -> str:
        out = []
        for tier in ("rules", "learned", "both"):
            r, f = row[tier]["recall"], row[tier]["fpr"]
            out.append(
                f"{'-' if r is None else f'{r:.0%}':>6} {'-' if f is None else f'{f:.1%}':>6}"
            )
        return "   ".join(out)

    head = f"{'':28}{'n':>5}   {'rules: recall  FPR':>14}   {'learned: recall FPR':>14}   {'both: recall FPR':>14}"
    lines = [head, f"{'overall':28}{report['overall']['n']:>5}   {cells(report['overall'])}"]
    for lang, row in report["by_language"].items():
        lines.append(f"{'language ' + lang:28}{row['n']:>5}   {cells(row)}")
    for rule, row in report["by_rule"].items():
        lines.append(f"{rule:28}{row['n']:>5}   {cells(row)}")
    return "\n".join(lines)


#: The feature sets the ablation compares (docs/guardrails.md, "The learned tier").
ABLATIONS: dict[str, tuple[str, ...]] = {
    "embeddings + network + n-grams + rule signals (shipped)": ("emb", "mlp", "ngr", "extras"),
    "embeddings + n-grams + rule signals": ("emb", "ngr", "extras"),
    "embeddings + n-grams": ("emb", "ngr"),
    "embeddings + rule signals": ("emb", "extras"),
    "n-grams + rule signals": ("ngr", "extras"),
}


def _ablate(
    args: argparse.Namespace, settings: Any, policy: Any, on_draft: Any, on_text: Any
) -> int:
    """Train the draft heads once per feature set into a temporary folder (the shipped
    weights are not touched) and print the dev split's figures of each."""
    import dataclasses
    import tempfile

    from copilot.guard.training import HYPER, train

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="copilot-ablate-") as tmp:
        for name, features in ABLATIONS.items():
            print(f"training: {name}", file=sys.stderr)
            _, report = train(
                policy,
                Path(tmp),
                on_draft,
                on_text,
                knowledge_dir=settings.knowledge_dir,
                hyper=dataclasses.replace(
                    HYPER,
                    features=features,
                    mlp_hidden=HYPER.mlp_hidden if "mlp" in features else 0,
                ),
                log=lambda line: print(line, file=sys.stderr),
            )
            results[name] = report
    if args.json:
        print(json.dumps(results, indent=1, ensure_ascii=False))
    else:
        print(render_ablation(results))
    return 0


def render_ablation(results: dict[str, Any]) -> str:
    """One row per feature set: the learned tier's recall / false rejects on the dev split,
    overall and per language, and the union with the rules."""
    head = "| features | learned recall | learned FPR | en | ja | zh | rules+learned recall | FPR |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]

    def pct(x: Any) -> str:
        return "-" if x is None else f"{100 * x:.0f}%"

    for name, rep in results.items():
        o = rep["overall"]
        langs = [pct(rep["by_language"][lang]["learned"]["recall"]) for lang in ("en", "ja", "zh")]
        lines.append(
            f"| {name} | {pct(o['learned']['recall'])} | {pct(o['learned']['fpr'])} | "
            + " | ".join(langs)
            + f" | {pct(o['both']['recall'])} | {pct(o['both']['fpr'])} |"
        )
    return "\n".join(lines)
