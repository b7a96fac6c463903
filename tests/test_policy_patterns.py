"""Every pattern line of prompts/policy.yaml has a sentence that only it catches.

The sentences live in tests/data/policy_pattern_examples.yaml (one per pattern, lexicon and
exception line; see its header). For each pattern line the full policy rejects its sentence
with the line's rule, and the same policy with only that line removed (built in memory) no
longer fires the rule on it; for each exception line the rule fires on its sentence only
when the exception is removed. A line without an entry, or an entry whose line is gone,
fails :func:`test_every_policy_line_has_an_example`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from copilot.guard.guardrail import PolicyGuardrail
from copilot.guard.policy import Policy, load_policy
from copilot.text.language import detect_language
from copilot.understand.signals import find_injection

ROOT = Path(__file__).resolve().parent.parent
POLICY_FILE = ROOT / "prompts" / "policy.yaml"
EXAMPLES_FILE = Path(__file__).resolve().parent / "data" / "policy_pattern_examples.yaml"
SECTIONS = ("patterns", "lexicon", "exceptions")
ENTRY_FIELDS = {"example", "customer", "re", "phrase", "note", "redundant_with", "reason"}


@dataclass(frozen=True)
class Line:
    """One line of a rule's detection list in the policy file."""

    rule: str
    lang: str
    section: str  # patterns | lexicon | exceptions
    source: str  # the regex (patterns, exceptions) or the phrase (lexicon)
    position: int  # index in Detection.patterns[lang] (lexicon after patterns) or .exceptions
    when: str = "always"

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.rule, self.lang, self.section, self.source)

    @property
    def label(self) -> str:
        return f"{self.rule}-{self.lang}-{self.section}[{self.position}]"


def policy_lines(raw: dict[str, Any]) -> list[Line]:
    """Every pattern, lexicon and exception line of the raw policy YAML, in file order."""
    lines: list[Line] = []
    for rule in raw["rules"]:
        det = rule.get("detection") or {}
        for section in SECTIONS:
            for lang, items in (det.get(section) or {}).items():
                offset = len((det.get("patterns") or {}).get(lang) or ())
                for i, item in enumerate(items):
                    source = item["re"] if isinstance(item, dict) else item
                    when = item.get("when", "always") if isinstance(item, dict) else "always"
                    position = offset + i if section == "lexicon" else i
                    lines.append(Line(rule["id"], lang, section, source, position, when))
    return lines


def load_examples() -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """The entries of the examples file keyed like :attr:`Line.key`."""
    data = yaml.safe_load(EXAMPLES_FILE.read_text(encoding="utf-8"))
    out: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for rule, langs in data.items():
        for lang, sections in langs.items():
            for section, entries in sections.items():
                for entry in entries:
                    source = entry.get("phrase" if section == "lexicon" else "re")
                    out[(rule, lang, section, source)] = entry
    return out


RAW = yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))
LINES = policy_lines(RAW)
EXAMPLES = load_examples()
PAIRS = [(line, EXAMPLES[line.key]) for line in LINES if line.key in EXAMPLES]
CATCHING = [
    pytest.param(line, entry, id=line.label)
    for line, entry in PAIRS
    if line.section != "exceptions" and "redundant_with" not in entry
]
EXCEPTIONS = [
    pytest.param(line, entry, id=line.label)
    for line, entry in PAIRS
    if line.section == "exceptions"
]


@pytest.fixture(scope="module", autouse=True)
def _fast_matcher_builds() -> Iterator[None]:
    """Each test builds a guardrail for a policy one line short. Compiling a policy's
    patterns re-derives the same anchors and lowercased regexes every time: remember them
    (both are pure functions of the regex text), so the 200-odd builds stay quick."""
    import copilot.guard.matching

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            copilot.guard.matching, "anchors_of", functools.cache(copilot.guard.matching.anchors_of)
        )
        mp.setattr(
            copilot.guard.matching, "fold_case", functools.cache(copilot.guard.matching.fold_case)
        )
        yield


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(POLICY_FILE)


@pytest.fixture(scope="module")
def full(policy: Policy) -> PolicyGuardrail:
    return PolicyGuardrail(policy, knowledge_dir=None)


def without(policy: Policy, *lines: Line) -> PolicyGuardrail:
    """A guardrail over ``policy`` with exactly ``lines`` removed (the file is not touched)."""
    rules = []
    for rule in policy.rules:
        det = rule.detection
        for field in ("patterns", "exceptions"):
            mine = [
                x
                for x in lines
                if x.rule == rule.id
                and field == ("exceptions" if x.section == "exceptions" else "patterns")
            ]
            if not mine:
                continue
            current = dict(getattr(det, field))
            for lang in {x.lang for x in mine}:
                drop = {x.position: _compiled(x) for x in mine if x.lang == lang}
                items = current[lang]
                assert all(_source(items[i]) == src for i, src in drop.items()), drop
                current[lang] = tuple(item for i, item in enumerate(items) if i not in drop)
            det = dataclasses.replace(det, **{field: MappingProxyType(current)})
        rules.append(dataclasses.replace(rule, detection=det))
    return PolicyGuardrail(dataclasses.replace(policy, rules=tuple(rules)), knowledge_dir=None)


def _source(item: Any) -> str:
    return item if isinstance(item, str) else str(item.regex)


def _compiled(line: Line) -> str:
    """The regex the policy loader makes of a line (a lexicon phrase becomes an escaped regex;
    full-width literals are written as the ASCII drafts are matched in)."""
    if line.section != "lexicon":
        from copilot.text.normalize import halfwidth_regex

        return halfwidth_regex(line.source)
    from copilot.guard.policy import parse_policy

    probe = {
        "version": 1,
        "rules": [
            {
                "id": "probe",
                "description": "probe",
                "severity": "warn",
                "languages": [line.lang],
                "message": "probe",
                "fix": "probe",
                "detection": {"lexicon": {line.lang: [line.source]}},
            }
        ],
    }
    parsed = parse_policy(json.dumps(probe), Path("probe.yaml"), ())
    return parsed.rules[0].detection.patterns[line.lang][0].regex


def fires(guard: PolicyGuardrail, line: Line, entry: dict[str, Any]) -> bool:
    lang = line.lang if line.lang != "any" else "en"
    verdict = guard.check(entry["example"], language=lang, customer_message=entry.get("customer"))
    return line.rule in verdict.rules


def _yaml_entry(line: Line) -> str:
    key = "phrase" if line.section == "lexicon" else "re"
    quoted = "'" + line.source.replace("'", "''") + "'"
    return (
        f"{line.rule}: {line.lang}: {line.section}:\n"
        f'      - example: "..."\n        {key}: {quoted}'
    )


def _example_params() -> list[Any]:
    seen: dict[tuple[str, str, str], int] = {}
    params = []
    for (rule, lang, section, _source), entry in EXAMPLES.items():
        n = seen[(rule, lang, section)] = seen.get((rule, lang, section), -1) + 1
        if section != "exceptions":
            params.append(pytest.param(rule, lang, entry, id=f"{rule}-{lang}-{section}-{n}"))
    return params


@pytest.mark.parametrize(("rule", "lang", "entry"), _example_params())
def test_the_policy_still_catches_every_example_sentence(
    rule: str, lang: str, entry: dict[str, Any], full: PolicyGuardrail
) -> None:
    """Read from the examples file, not the policy: a pattern line deleted from the policy
    (its example left behind) lets a real sentence through, and this names it. Runs before
    the bookkeeping test below so a mutation run (scripts/mutation.sh) reports the sentence."""
    verdict = full.check(
        entry["example"],
        language=lang if lang != "any" else "en",
        customer_message=entry.get("customer"),
    )
    assert rule in verdict.rules, (
        f"{rule}/{lang}: the shipped policy no longer catches {entry['example']!r} "
        "(was its pattern line removed or changed?)"
    )


def test_every_policy_line_has_an_example() -> None:
    missing = [line for line in LINES if line.key not in EXAMPLES]
    known = {line.key for line in LINES}
    stale = [key for key in EXAMPLES if key not in known]
    assert not missing, (
        f"{len(missing)} line(s) of {POLICY_FILE.name} have no example in {EXAMPLES_FILE.name}; "
        "add one sentence that only this line catches:\n"
        + "\n".join(_yaml_entry(line) for line in missing)
    )
    assert not stale, (
        f"{EXAMPLES_FILE.name} has entries for lines that are not in {POLICY_FILE.name} "
        f"(changed or removed?): {stale}"
    )
    assert len({line.key for line in LINES}) == len(LINES), "a policy line is repeated"


def test_example_entries_are_well_formed() -> None:
    for (rule, lang, _section, _source), entry in EXAMPLES.items():
        assert set(entry) <= ENTRY_FIELDS, (rule, sorted(set(entry) - ENTRY_FIELDS))
        assert isinstance(entry.get("example"), str) and entry["example"].strip()
        if lang in ("en", "ja", "zh"):
            assert detect_language(entry["example"]) == lang, (rule, lang, entry["example"])
        if "redundant_with" in entry:
            assert entry.get("reason"), f"{rule}/{lang}: say why the line is redundant"


def test_injection_only_lines_have_an_injected_customer_message(full: PolicyGuardrail) -> None:
    """``when: injection`` lines: the example needs the customer's injection to be caught."""
    checked = 0
    for line, entry in PAIRS:
        if line.when != "injection":
            continue
        assert find_injection(entry.get("customer") or ""), line.label
        assert fires(full, line, entry), line.label
        assert not fires(full, line, {**entry, "customer": None}), line.label
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize(("line", "entry"), CATCHING)
def test_only_this_pattern_line_catches_its_example(
    line: Line, entry: dict[str, Any], policy: Policy, full: PolicyGuardrail
) -> None:
    verdict = full.check(
        entry["example"],
        language=line.lang if line.lang != "any" else "en",
        customer_message=entry.get("customer"),
    )
    assert verdict.verdict == "reject" and line.rule in verdict.rules, verdict.to_dict()
    assert not fires(without(policy, line), line, entry), (
        f"{line.label}: another line also catches {entry['example']!r}; pick a sentence only "
        "this line catches, or mark the line redundant_with the other one"
    )


@pytest.mark.parametrize(("line", "entry"), EXCEPTIONS)
def test_exception_line_lets_its_example_pass(
    line: Line, entry: dict[str, Any], policy: Policy, full: PolicyGuardrail
) -> None:
    assert not fires(full, line, entry), f"{line.label}: the full policy fires on the example"
    assert fires(without(policy, line), line, entry), (
        f"{line.label}: without this exception the rule should fire on {entry['example']!r}"
    )


def test_redundant_lines_are_declared_and_really_redundant(policy: Policy) -> None:
    """A line marked ``redundant_with`` another: each of the two catches the example alone
    and removing both lets it through (so deleting either one is still noticed here)."""
    by_source = {(line.rule, line.lang, line.source): line for line in LINES}
    for line, entry in PAIRS:
        if "redundant_with" not in entry:
            continue
        other = by_source[(line.rule, line.lang, entry["redundant_with"])]
        assert fires(without(policy, line), line, entry), line.label
        assert fires(without(policy, other), line, entry), line.label
        assert not fires(without(policy, line, other), line, entry), line.label


def test_always_comes_back_is_a_profit_promise(full: PolicyGuardrail) -> None:
    """The profit_promise en line's 'always' alternative once lacked the space before its verb
    ('alwayscomes back' was all it could match); "will come back" kept working."""
    for text in ("Your balance always comes back.", "The market always bounces back."):
        assert "profit_promise" in full.check(text, language="en").rules, text
    assert "profit_promise" in full.check("It will surely come back.", language="en").rules
    assert not full.check("The link always comes with your code.", language="en").rules
