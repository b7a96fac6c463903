"""The offline drafter's phrases file (prompts/offline_phrases.yaml): loaded, validated, and the greeting and name helpers built on it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.draft.offline.scenario import TOPICAL_PLAYBOOKS
from copilot.errors import CopilotError
from copilot.files import ConfigError, read_versioned
from copilot.text.language import LANGUAGES

EMPATHY_VARIANTS = ("default", "after_apology", "after_understanding", "after_both")


CUE_KINDS = ("thanks", "apology", "understanding", "handover", "sign_off")


_SECTIONS = (
    "greeting",
    "sign_off",
    "empathy",
    "handover",
    "abstain",
    "facts_lead_in",
    "cues",
    "after_dropped_list",
)


@dataclass(frozen=True)
class Phrases:
    """The phrases file, validated."""

    version: int
    sha256: str
    path: Path
    data: dict[str, Any]
    cues: dict[str, dict[str, re.Pattern[str]]] = field(default_factory=dict, repr=False)
    joins: dict[str, list[tuple[re.Pattern[str], str]]] = field(default_factory=dict, repr=False)
    scenarios: dict[str, dict[str, tuple[re.Pattern[str], ...]]] = field(
        default_factory=dict, repr=False
    )

    def optional(self, section: str, lang: str) -> str:
        """The text of an optional section in ``lang`` ("" when the file has none)."""
        table = self.data.get(section)
        value = table.get(lang) if isinstance(table, dict) else None
        return value.strip() if isinstance(value, str) else ""

    @classmethod
    def load(cls, path: Path) -> Phrases:
        """Read ``offline_phrases.yaml``; every section must cover en, ja and zh."""
        try:
            loaded = read_versioned(path, "offline phrases file")
        except ConfigError as exc:
            raise CopilotError(str(exc)) from None
        data = loaded.data
        for section in _SECTIONS:
            table = data.get(section)
            if not isinstance(table, dict):
                raise CopilotError(f"{path}: missing section '{section}'")
            for lang in LANGUAGES:
                if lang not in table:
                    raise CopilotError(f"{path}: section '{section}' has no '{lang}' entry")
        cues: dict[str, dict[str, re.Pattern[str]]] = {}
        joins: dict[str, list[tuple[re.Pattern[str], str]]] = {}
        for lang in LANGUAGES:
            levels = data["empathy"][lang]
            if not isinstance(levels, dict) or sorted(levels) != [1, 2, 3]:
                raise CopilotError(f"{path}: empathy.{lang} needs levels 1, 2 and 3")
            for level, variants in levels.items():
                if not isinstance(variants, dict) or any(
                    not isinstance(variants.get(v), str) for v in EMPATHY_VARIANTS
                ):
                    raise CopilotError(
                        f"{path}: empathy.{lang}.{level} needs the texts "
                        + ", ".join(EMPATHY_VARIANTS)
                        + " (an empty string adds nothing)"
                    )
            table = data["cues"][lang]
            cues[lang] = {}
            for kind in CUE_KINDS:
                cues[lang][kind] = _compile(
                    path,
                    f"cues.{lang}.{kind}",
                    table.get(kind) if isinstance(table, dict) else None,
                )
            pairs = data["after_dropped_list"][lang] or []
            joins[lang] = []
            for i, pair in enumerate(pairs):
                if not (
                    isinstance(pair, list)
                    and len(pair) == 2
                    and all(isinstance(x, str) for x in pair)
                ):
                    raise CopilotError(
                        f"{path}: after_dropped_list.{lang}[{i}] must be [pattern, replacement]"
                    )
                joins[lang].append(
                    (_compile(path, f"after_dropped_list.{lang}[{i}]", pair[0]), pair[1])
                )
        return cls(
            loaded.version,
            loaded.sha256,
            path,
            data,
            cues,
            joins,
            _scenario_cues(path, data.get("scenario_cues")),
        )

    def get(self, section: str, language: str) -> Any:
        """The entry of ``section`` for ``language``."""
        return self.data[section][language]

    def cue(self, kind: str, language: str) -> re.Pattern[str]:
        """The compiled ``cues.<language>.<kind>`` pattern."""
        return self.cues[language][kind]

    def evidence(self, message: str, language: str) -> set[str]:
        """The topical playbooks whose situation ``message`` shows (``scenario_cues``).

        A playbook counts when every one of its patterns matches, in ``language`` or in
        English (customers writing Japanese or Chinese often mix in English terms).
        """
        found = set()
        for playbook, table in self.scenarios.items():
            own, english = table.get(language, ()), table.get("en", ())
            if (
                all(
                    a.search(message) or b.search(message)
                    for a, b in zip(own, english, strict=False)
                )
                and own
            ):
                found.add(playbook)
        return found

    @property
    def label(self) -> str:
        """``offline_phrases@<version>``."""
        return f"offline_phrases@{self.version}"


def _scenario_cues(path: Path, table: Any) -> dict[str, dict[str, tuple[re.Pattern[str], ...]]]:
    """``scenario_cues``: for each topical playbook and language, patterns that must all match."""
    if not isinstance(table, dict) or sorted(table) != sorted(TOPICAL_PLAYBOOKS):
        raise CopilotError(
            f"{path}: section 'scenario_cues' needs exactly " + ", ".join(TOPICAL_PLAYBOOKS)
        )
    out: dict[str, dict[str, tuple[re.Pattern[str], ...]]] = {}
    for playbook in TOPICAL_PLAYBOOKS:
        langs = table[playbook]
        if not isinstance(langs, dict) or any(lang not in langs for lang in LANGUAGES):
            raise CopilotError(f"{path}: scenario_cues.{playbook} needs en, ja and zh")
        patterns = {lang: langs[lang] for lang in LANGUAGES}
        sizes = {len(p) if isinstance(p, list) else -1 for p in patterns.values()}
        if len(sizes) != 1 or min(sizes) < 1:
            raise CopilotError(
                f"{path}: scenario_cues.{playbook} must list the same number "
                "of patterns (at least one) for en, ja and zh"
            )
        out[playbook] = {
            lang: tuple(
                _compile(path, f"scenario_cues.{playbook}.{lang}[{i}]", x, re.ASCII)
                for i, x in enumerate(pats)
            )
            for lang, pats in patterns.items()
        }
    return out


def _compile(path: Path, key: str, pattern: Any, flags: int = 0) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise CopilotError(f"{path}: {key} must be a non-empty regular expression")
    try:
        return re.compile(pattern, re.IGNORECASE | flags)
    except re.error as exc:
        raise CopilotError(f"{path}: {key} is not a valid regular expression: {exc}") from None


_NAME_JUNK = re.compile(r"[\[\]{}<>\n\r\t]")


_HONORIFICS = ("様", "さま", "サマ", "さん", "殿")


_TITLES = re.compile(r"^(?:mr|mrs|ms|miss|mx|dr)\.?\s+(?=\S)", re.IGNORECASE)


_PLACEHOLDER = re.compile(r"^\[[A-Z][A-Z0-9_]*\]$")


def clean_name(name: str | None, language: str) -> str:
    """The name as shown in a greeting: no brackets or line breaks, no doubled honorific.

    Japanese greetings add 様, so a name that already carries an honorific
    (様, さま, さん, 殿, or a title such as "Mr.") is shown without it.
    """
    if name and _PLACEHOLDER.match(name):
        return name
    clean = " ".join(_NAME_JUNK.sub(" ", name or "").split())[:60]
    if language == "ja":
        clean = _TITLES.sub("", clean)
        for suffix in _HONORIFICS:
            if clean.endswith(suffix) and len(clean) > len(suffix):
                clean = clean[: -len(suffix)].strip()
    return clean


def greeting(phrases: Phrases, language: str, name: str | None) -> str:
    """The greeting line: en "Hi Ken," / ja "山田様" / zh "李明您好，", or the neutral form.

    A placeholder such as ``[CUSTOMER_NAME]`` is kept as it is (masked LLM prompts).
    """
    clean = clean_name(name, language)
    table = phrases.get("greeting", language)
    if not clean:
        return str(table["anonymous"])
    return str(table["named"]).replace("{name}", clean)
