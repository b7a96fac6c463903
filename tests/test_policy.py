"""Policy file: the shipped policy loads; every kind of mistake is reported with file, line, rule and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot.errors import InputError
from copilot.guard.checks import CHECKS
from copilot.guard.policy import load_policy, parse_policy

ROOT = Path(__file__).resolve().parent.parent
RULES = (
    "profit_promise",
    "investment_advice",
    "blame_customer",
    "credential_request",
    "pii_leak",
    "negative_language",
    "unsupported_promise",
    "prompt_injection_followed",
    "unsafe_link",
)
CHECK_NAMES = tuple(sorted(CHECKS))

GOOD = """\
version: 1
languages: [en, ja]
negation:
  en: {before: '\\bnot\\b'}
conditional:
  en: '\\bif\\b'
rules:
  - id: demo
    description: Demo rule.
    severity: block
    languages: [en, ja]
    message: Bad.
    fix: Do better.
    detection:
      patterns:
        en: ['\\bfoo\\b', {re: 'bar', negation: none, when: injection}]
      lexicon:
        ja: [ダメ]
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(InputError) as info:
        parse_policy(text, Path("policy.yaml"), CHECK_NAMES)
    return [str(p) for p in info.value.problems]


def test_shipped_policy_loads_with_every_rule_in_three_languages() -> None:
    policy = load_policy(ROOT / "prompts" / "policy.yaml")
    assert policy.version >= 1
    assert set(RULES) <= set(policy.rule_ids)
    for rule_id in RULES:
        rule = policy.rule(rule_id)
        assert rule.severity == "block"
        assert set(rule.languages) == {"en", "ja", "zh"}
        assert rule.message_for("ja") and rule.fix_for("zh")
        det = rule.detection
        assert det.check or all(det.patterns.get(lang) for lang in ("en", "ja", "zh")), rule_id
    assert any(r.severity == "warn" for r in policy.rules)
    assert len(policy.sha256) == 64


def test_small_valid_policy_is_frozen() -> None:
    policy = parse_policy(GOOD, Path("p.yaml"), CHECK_NAMES)
    rule = policy.rule("demo")
    assert [p.regex for p in rule.detection.patterns["en"]] == ["\\bfoo\\b", "bar"]
    assert rule.detection.patterns["en"][1].negation == "none"
    assert rule.detection.patterns["en"][1].when == "injection"
    assert rule.detection.patterns["ja"][0].regex == "ダメ"
    with pytest.raises(AttributeError):
        rule.id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        rule.detection.patterns["en"] = ()  # type: ignore[index]
    with pytest.raises(KeyError):
        policy.rule("nope")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "severity: block",
            "severity: error",
            "line 10: rule 'demo': field 'severity': 'error' is not one of block, warn",
        ),
        ("    fix: Do better.\n", "", "rule 'demo': field 'fix': missing"),
        (
            "'\\bfoo\\b'",
            "'(unclosed'",
            "line 16: rule 'demo': field 'detection.patterns.en[0]': not a valid regular expression",
        ),
        ("'\\bfoo\\b'", "'(?P<x>foo)'", "field 'detection.patterns.en[0]': named groups"),
        ("'\\bfoo\\b'", "'a?'", "field 'detection.patterns.en[0]': matches the empty string"),
        (
            "negation: none,",
            "negation: sometimes,",
            "field 'detection.negation': 'sometimes' is not one of none, before, clause",
        ),
        (
            "when: injection",
            "when: later",
            "field 'detection.patterns.en[1].when': 'later' is not one of always, injection",
        ),
        (
            "languages: [en, ja]\n    message",
            "languages: [en, fr]\n    message",
            "rule 'demo': field 'languages'",
        ),
        (
            "        ja: [ダメ]",
            "        zh: [不行]",
            "field 'detection.lexicon.zh': language not in the rule's languages",
        ),
        (
            "    severity: block\n",
            "    severity: block\n    colour: red\n",
            "rule 'demo': field 'colour': unknown field",
        ),
        ("version: 1", "version: zero", "field 'version': 'zero' must be a whole number >= 1"),
        (
            "  en: '\\bif\\b'",
            "  en: '(?<=a+)b'",
            "line 6: field 'conditional.en': not a valid regular expression",
        ),
        (
            "      patterns:",
            "      check: no_such_check\n      patterns:",
            "field 'detection.check': 'no_such_check' is not a known check",
        ),
    ],
)
def test_mistakes_are_reported_with_file_line_rule_and_field(
    old: str, new: str, expected: str
) -> None:
    assert old in GOOD
    found = problems_of(GOOD.replace(old, new, 1))
    assert any(expected in p for p in found), found
    assert all(p.startswith("policy.yaml: line ") for p in found)


def test_all_problems_are_listed_at_once() -> None:
    text = GOOD.replace("severity: block", "severity: maybe").replace("'\\bfoo\\b'", "'(bad'")
    text = text.replace("  - id: demo", "  - id: Demo Rule")
    found = problems_of(text)
    assert len(found) >= 3
    assert any("field 'id'" in p for p in found)


def test_duplicate_rule_ids_and_empty_rules() -> None:
    rule = GOOD[GOOD.index("  - id: demo") :]
    found = problems_of(GOOD + rule)
    assert any("rule 'demo': field 'id': duplicate rule id" in p for p in found)
    assert any(
        "field 'rules': must be a non-empty list" in p
        for p in problems_of("version: 1\nrules: []\n")
    )


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    found = problems_of("version: 1\nrules: [\n")
    assert found and "not valid YAML" in found[0]
    with pytest.raises(InputError) as info:
        load_policy(tmp_path / "missing.yaml")
    assert "policy file does not exist" in str(info.value)
    assert info.value.exit_code == 2


def test_detection_needs_something_to_match() -> None:
    text = GOOD.replace(
        "      patterns:\n        en: ['\\bfoo\\b', {re: 'bar', negation: none, when: injection}]\n      lexicon:\n        ja: [ダメ]\n",
        "      negation: before\n",
    )
    assert any(
        "field 'detection': needs patterns, a lexicon or a check" in p for p in problems_of(text)
    )
