"""The guardrail policy file (``prompts/policy.yaml``): load, validate, freeze.

A compliance lead edits the file without touching code. Every problem is
reported as ``FILE: line N: rule 'ID': field 'NAME': what is wrong`` and all
problems are listed at once (:class:`copilot.errors.InputError`, exit code 2).
See ``docs/guardrails.md`` for the format.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

from copilot.errors import InputError, Problem
from copilot.files import (
    ConfigError,
    items_with_lines,
    line_of,
    parse_yaml,
    read_text,
    sha256_bytes,
)
from copilot.guard.policy_model import Detection, Learned, Pattern, Policy, Rule
from copilot.text.normalize import halfwidth_regex

__all__ = ["Detection", "Pattern", "Policy", "Rule", "load_policy", "parse_policy"]

SEVERITIES = ("block", "warn")
NEGATION_MODES = ("none", "before", "clause", "auto")
TOP_FIELDS = ("version", "languages", "negation", "conditional", "rules", "learned")
LEARNED_FIELDS = ("weights", "heads", "examples", "corpus", "injection_weights", "injection_corpus")
RULE_FIELDS = ("id", "description", "severity", "languages", "message", "fix", "detection")
DETECTION_FIELDS = (
    "patterns",
    "lexicon",
    "exceptions",
    "check",
    "negation",
    "conditional",
    "quoted",
)
PATTERN_FIELDS = ("re", "negation", "conditional", "quoted", "when")
WHEN = ("always", "injection")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")


# ---- validation --------------------------------------------------------------------------
class _Checker:
    """Collects every problem; each names file, line, rule and field."""

    def __init__(self, path: Path, known_checks: tuple[str, ...]) -> None:
        self.path = path
        self.known_checks = known_checks
        self.problems: list[Problem] = []

    def bad(self, line: int, rule: str | None, where: str, message: str) -> None:
        prefix = f"rule '{rule}': " if rule else ""
        self.problems.append(Problem(str(self.path), line, f"{prefix}field '{where}': {message}"))

    def unknown(
        self, obj: Any, allowed: tuple[str, ...], rule: str | None, prefix: str = ""
    ) -> None:
        for key in sorted(set(obj) - set(allowed), key=str):
            self.bad(
                line_of(obj, key),
                rule,
                f"{prefix}{key}",
                f"unknown field; allowed: {', '.join(allowed)}",
            )

    def regex(self, source: Any, line: int, rule: str | None, where: str) -> str | None:
        problem = None
        if not isinstance(source, str) or not source.strip():
            problem = "must be a non-empty regular expression"
        else:
            try:
                compiled = re.compile(source)
            except re.error as exc:
                problem = f"not a valid regular expression: {exc}"
            else:
                if compiled.groupindex:
                    problem = "named groups (?P<name>...) are not allowed"
                elif "(?-i" in source:
                    problem = "patterns are always case-insensitive; (?-i...) is not allowed"
                elif compiled.match(""):
                    problem = "matches the empty string"
        if problem:
            self.bad(line, rule, where, problem)
            return None
        return halfwidth_regex(str(source))

    def text_map(self, obj: Any, key: str, rule: str, langs: tuple[str, ...]) -> dict[str, str]:
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return {"en": value.strip()}
        if (
            isinstance(value, dict)
            and value
            and all(isinstance(v, str) and v.strip() for v in value.values())
        ):
            if set(value) - set(langs):
                self.bad(
                    line_of(obj, key),
                    rule,
                    key,
                    f"unknown language(s) {sorted(set(value) - set(langs))}",
                )
            return {str(k): v.strip() for k, v in value.items()}
        self.bad(line_of(obj, key), rule, key, "must be text, or a mapping language -> text")
        return {}

    def per_language(
        self, det: Any, key: str, rule: str, langs: tuple[str, ...]
    ) -> dict[str, list[tuple[Any, int]]]:
        value = det.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.bad(
                line_of(det, key), rule, f"detection.{key}", "must be a mapping language -> list"
            )
            return {}
        out: dict[str, list[tuple[Any, int]]] = {}
        for lang, items in value.items():
            where = f"detection.{key}.{lang}"
            if lang not in langs and lang != "any":
                self.bad(
                    line_of(value, lang),
                    rule,
                    where,
                    f"language not in the rule's languages {list(langs)}",
                )
            elif not isinstance(items, list) or not items:
                self.bad(line_of(value, lang), rule, where, "must be a non-empty list")
            else:
                out[lang] = items_with_lines(items)
        return out

    def options(
        self, obj: Any, rule: str, defaults: tuple[str, bool, bool], where: str
    ) -> tuple[str, bool, bool]:
        negation = {True: "auto", False: "none"}.get(
            obj.get("negation"), obj.get("negation", defaults[0])
        )
        if negation not in NEGATION_MODES:
            self.bad(
                line_of(obj, "negation"),
                rule,
                f"{where}negation",
                f"{negation!r} is not one of {', '.join(NEGATION_MODES)}",
            )
            negation = defaults[0]
        flags = []
        for key, default in (("conditional", defaults[1]), ("quoted", defaults[2])):
            value = obj.get(key, default)
            if not isinstance(value, bool):
                self.bad(
                    line_of(obj, key), rule, f"{where}{key}", f"{value!r} must be true or false"
                )
                value = default
            flags.append(value)
        return str(negation), flags[0], flags[1]


def _detection(obj: Any, chk: _Checker, rule: str, langs: tuple[str, ...]) -> Detection | None:
    det = obj.get("detection")
    if not isinstance(det, dict):
        chk.bad(
            line_of(obj, "detection"),
            rule,
            "detection",
            "must be a mapping with patterns, lexicon or check",
        )
        return None
    chk.unknown(det, DETECTION_FIELDS, rule, "detection.")
    defaults = chk.options(det, rule, ("auto", False, True), "detection.")
    patterns: dict[str, list[Pattern]] = {}
    for lang, items in chk.per_language(det, "patterns", rule, langs).items():
        for i, (item, line) in enumerate(items):
            where = f"detection.patterns.{lang}[{i}]"
            opts, when, source = defaults, "always", item
            if isinstance(item, dict):
                chk.unknown(item, PATTERN_FIELDS, rule, f"{where}.")
                opts = chk.options(item, rule, defaults, "detection.")
                source, when = item.get("re"), item.get("when", "always")
                if when not in WHEN:
                    chk.bad(
                        line, rule, f"{where}.when", f"{when!r} is not one of {', '.join(WHEN)}"
                    )
            regex = chk.regex(source, line, rule, where)
            if regex is not None:
                patterns.setdefault(lang, []).append(Pattern(regex, *opts, when=str(when)))
    for lang, items in chk.per_language(det, "lexicon", rule, langs).items():
        for i, (item, line) in enumerate(items):
            if not isinstance(item, str) or not item.strip():
                chk.bad(line, rule, f"detection.lexicon.{lang}[{i}]", "must be a non-empty phrase")
                continue
            body = r"\s+".join(re.escape(w) for w in item.split())
            if item.isascii():
                body = (
                    (r"\b" if item.strip()[0].isalnum() else "")
                    + body
                    + (r"\b" if item.strip()[-1].isalnum() else "")
                )
            patterns.setdefault(lang, []).append(Pattern(halfwidth_regex(body), *defaults))
    exceptions: dict[str, list[str]] = {}
    for lang, items in chk.per_language(det, "exceptions", rule, langs).items():
        for i, (item, line) in enumerate(items):
            regex = chk.regex(item, line, rule, f"detection.exceptions.{lang}[{i}]")
            if regex is not None:
                exceptions.setdefault(lang, []).append(regex)
    check = det.get("check")
    if check is not None and check not in chk.known_checks:
        chk.bad(
            line_of(det, "check"),
            rule,
            "detection.check",
            f"{check!r} is not a known check; use one of {', '.join(chk.known_checks)}",
        )
        check = None
    if not patterns and check is None:
        chk.bad(
            line_of(obj, "detection"), rule, "detection", "needs patterns, a lexicon or a check"
        )
        return None
    return Detection(
        patterns=MappingProxyType({k: tuple(v) for k, v in patterns.items()}),
        exceptions=MappingProxyType({k: tuple(v) for k, v in exceptions.items()}),
        check=check,
    )


def _rule(
    obj: Any, chk: _Checker, langs: tuple[str, ...], index: int, seen: set[str]
) -> Rule | None:
    if not isinstance(obj, dict):
        chk.bad(line_of(obj), None, f"rules[{index}]", "must be a mapping")
        return None
    rid = obj.get("id")
    name = rid if isinstance(rid, str) else f"#{index + 1}"
    before = len(chk.problems)
    if not isinstance(rid, str) or not _ID_RE.match(rid):
        chk.bad(line_of(obj, "id"), name, "id", f"{rid!r} must be lowercase letters, digits and _")
    elif rid in seen:
        chk.bad(line_of(obj, "id"), name, "id", "duplicate rule id")
    seen.add(str(rid))
    for key in RULE_FIELDS:
        if key not in obj:
            chk.bad(line_of(obj), name, key, "missing")
    chk.unknown(obj, RULE_FIELDS, name)
    severity = obj.get("severity")
    if "severity" in obj and severity not in SEVERITIES:
        chk.bad(
            line_of(obj, "severity"),
            name,
            "severity",
            f"{severity!r} is not one of {', '.join(SEVERITIES)}",
        )
    rule_langs = obj.get("languages", list(langs))
    if (
        not isinstance(rule_langs, list)
        or not rule_langs
        or not all(lang in langs for lang in rule_langs)
    ):
        chk.bad(
            line_of(obj, "languages"),
            name,
            "languages",
            f"{rule_langs!r} must be a list drawn from {list(langs)}",
        )
        rule_langs = list(langs)
    description = obj.get("description")
    if "description" in obj and (not isinstance(description, str) or not description.strip()):
        chk.bad(line_of(obj, "description"), name, "description", "must be non-empty text")
    message = chk.text_map(obj, "message", name, langs) if "message" in obj else {}
    fix = chk.text_map(obj, "fix", name, langs) if "fix" in obj else {}
    detection = _detection(obj, chk, name, tuple(rule_langs)) if "detection" in obj else None
    if len(chk.problems) > before or detection is None:
        return None
    return Rule(
        str(rid),
        str(description).strip(),
        str(severity),
        tuple(rule_langs),
        MappingProxyType(message),
        MappingProxyType(fix),
        detection,
    )


def _cues(data: Any, chk: _Checker, langs: tuple[str, ...]) -> tuple[dict[str, str], ...]:
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    conditional: dict[str, str] = {}
    negation, cond = data.get("negation", {}), data.get("conditional", {})
    for key, value in (("negation", negation), ("conditional", cond)):
        if not isinstance(value, dict):
            chk.bad(line_of(data, key), None, key, "must be a mapping by language")
    for lang, cues in negation.items() if isinstance(negation, dict) else ():
        if lang not in langs or not isinstance(cues, dict) or set(cues) - {"before", "after"}:
            chk.bad(
                line_of(negation, lang),
                None,
                f"negation.{lang}",
                "must be a known language with 'before' and/or 'after' regexes",
            )
            continue
        for key, target in (("before", before), ("after", after)):
            regex = (
                chk.regex(cues[key], line_of(cues, key), None, f"negation.{lang}.{key}")
                if key in cues
                else None
            )
            if regex is not None:
                target[lang] = regex
    for lang, source in cond.items() if isinstance(cond, dict) else ():
        regex = chk.regex(source, line_of(cond, lang), None, f"conditional.{lang}")
        if lang not in langs:
            chk.bad(line_of(cond, lang), None, f"conditional.{lang}", "unknown language")
        elif regex is not None:
            conditional[lang] = regex
    return before, after, conditional


def parse_policy(text: str, path: Path, known_checks: tuple[str, ...]) -> Policy:
    """Validate policy YAML ``text`` (reported as ``path``); :class:`InputError` lists every problem."""
    chk = _Checker(path, known_checks)
    try:
        data = parse_yaml(text, path)
    except ConfigError as exc:
        raise InputError([exc.problem]) from None
    if not isinstance(data, dict):
        raise InputError(
            [Problem(str(path), 1, "the policy must be a mapping with 'version' and 'rules'")]
        )
    chk.unknown(data, TOP_FIELDS, None)
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        chk.bad(
            line_of(data, "version"), None, "version", f"{version!r} must be a whole number >= 1"
        )
    langs = data.get("languages", ["en", "ja", "zh"])
    if not isinstance(langs, list) or not langs or not all(isinstance(x, str) for x in langs):
        chk.bad(line_of(data, "languages"), None, "languages", "must be a list of language codes")
        langs = ["en", "ja", "zh"]
    before, after, conditional = _cues(data, chk, tuple(langs))
    rules_raw = data.get("rules")
    rules: list[Rule] = []
    seen: set[str] = set()
    if not isinstance(rules_raw, list) or not rules_raw:
        chk.bad(line_of(data, "rules"), None, "rules", "must be a non-empty list of rules")
    for i, obj in enumerate(rules_raw if isinstance(rules_raw, list) else []):
        rule = _rule(obj, chk, tuple(langs), i, seen)
        if rule is not None:
            rules.append(rule)
    learned = (
        _learned(data.get("learned"), chk, {r.id for r in rules}) if "learned" in data else None
    )
    if chk.problems:
        raise InputError(chk.problems)
    return Policy(
        path=path,
        version=int(version),  # type: ignore[arg-type]
        languages=tuple(langs),
        negation_before=MappingProxyType(before),
        negation_after=MappingProxyType(after),
        conditional=MappingProxyType(conditional),
        rules=tuple(rules),
        sha256=sha256_bytes(text.encode("utf-8")),
        learned=learned,
    )


def _learned(obj: Any, chk: _Checker, rule_ids: set[str]) -> Learned | None:
    """The ``learned:`` section: weights name, the rules with heads, example and corpus files."""
    if not isinstance(obj, dict):
        chk.bad(1, None, "learned", "must be a mapping with weights, heads, examples, corpus")
        return None
    chk.unknown(obj, LEARNED_FIELDS, None)
    line = line_of(obj)
    weights = obj.get("weights")
    if not isinstance(weights, str) or not weights.strip():
        chk.bad(line_of(obj, "weights"), None, "learned.weights", "must name the weights file")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("heads", "examples", "corpus"):
        value = obj.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            chk.bad(
                line_of(obj, key) if key in obj else line,
                None,
                f"learned.{key}",
                "must be a non-empty list",
            )
            value = []
        lists[key] = tuple(value)
    for rule in lists["heads"]:
        if rule not in rule_ids:
            chk.bad(
                line_of(obj, "heads"),
                None,
                "learned.heads",
                f"{rule!r} is not a rule of this policy",
            )
    inj_weights = obj.get("injection_weights")
    if inj_weights is not None and (not isinstance(inj_weights, str) or not inj_weights.strip()):
        chk.bad(
            line_of(obj, "injection_weights"),
            None,
            "learned.injection_weights",
            "must name the injection flag's weights file",
        )
        inj_weights = None
    inj_corpus = obj.get("injection_corpus", [])
    if not isinstance(inj_corpus, list) or not all(isinstance(v, str) for v in inj_corpus):
        chk.bad(
            line_of(obj, "injection_corpus"),
            None,
            "learned.injection_corpus",
            "must be a list of labelled-message files",
        )
        inj_corpus = []
    if inj_weights and not inj_corpus:
        chk.bad(
            line_of(obj, "injection_weights"),
            None,
            "learned.injection_corpus",
            "injection_weights needs the labelled-message files it is trained on",
        )
    return Learned(
        str(weights or ""),
        lists["heads"],
        lists["examples"],
        lists["corpus"],
        injection_weights=str(inj_weights) if inj_weights else None,
        injection_corpus=tuple(inj_corpus),
    )


def load_policy(path: Path) -> Policy:
    """Read and validate the policy file; unreadable files and every problem raise :class:`InputError`."""
    from copilot.guard.checks import CHECKS

    try:
        _, text = read_text(
            path, "policy file", hint="COPILOT_POLICY_FILE", missing="does not exist"
        )
    except ConfigError as exc:
        raise InputError([exc.problem]) from None
    return parse_policy(text, path, tuple(sorted(CHECKS)))
