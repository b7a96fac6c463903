"""Policy patterns compiled for speed: alternatives, the keyword prefilter and the match loop.

Each top-level alternative of a pattern becomes a :class:`Branch` compiled for lowercased
text (:func:`copilot.text.pii.fold_case`), with the literals of which one must occur
(:func:`anchors_of`). Per draft, one trie regex over the anchors finds the sentences worth
running each branch on; branches without anchors run on the whole text. A hit is then
dropped when it is quoted, matches a rule exception in its clause, is negated or, where the
pattern allows it, conditional.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from copilot.guard.checks import Context, Cues, Hit
from copilot.guard.policy_model import Pattern, Policy, Rule
from copilot.text.normalize import fold_case


def split_alternatives(regex: str) -> list[str]:
    """The top-level ``|`` alternatives of a regex source (groups and classes respected)."""
    parts, depth, in_class, start, i = [], 0, False, 0, 0
    while i < len(regex):
        ch = regex[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]" or regex[i - 1] == "["
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(regex[start:i])
            start = i + 1
        i += 1
    return [*parts, regex[start:]]


# Words so common in replies that they make poor anchors (a branch anchored on them runs everywhere).
_COMMON = frozenset(
    re.findall(
        r"\S+",
        "a an and are as at be by can for from has have i if in is it its me my no not "
        "of on or our so that the this to up was we will with you your you're it's i'm "
        "can't don't",
    )
)


def _anchor_score(literals: set[str]) -> tuple[bool, int, int]:
    """Prefer anchor sets without common words, then with longer literals, then smaller sets."""
    common = any(x.strip() in _COMMON for x in literals)
    return (not common, min(len(x) for x in literals), -len(literals))


def anchors_of(regex: str) -> tuple[str, ...]:
    """Literals of which one must appear wherever ``regex`` matches (best guess; () = unknown)."""
    try:
        from re import _parser  # type: ignore[attr-defined]

        parsed = _parser.parse(regex).data
    except Exception:  # any parser trouble just disables the prefilter
        return ()

    def required(seq: Any) -> list[set[str]]:
        found: list[set[str]] = []
        run = ""
        for op, av in seq:
            name = str(op)
            if name == "LITERAL":
                run += chr(av)
                continue
            if run:
                found.append({run})
                run = ""
            if name == "SUBPATTERN":
                found += required(av[-1])
            elif name == "BRANCH":
                alts = [best(required(alt)) for alt in av[1]]
                if all(alts):
                    found.append(set().union(*alts))
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] >= 1:
                found += required(av[2])
        if run:
            found.append({run})
        return found

    def best(sets: list[set[str]]) -> set[str]:
        good = [s for s in sets if s and all(len(x.strip()) >= 2 or not x.isascii() for x in s)]
        return max(good, key=_anchor_score, default=set())

    return tuple(sorted(best(required(parsed))))


def trie_regex(words: Iterable[str]) -> str:
    """A regex matching any of ``words``, longest first, shaped as a trie (fast in ``re``)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(trie)


def spells_negation(regex: str, cues: Iterable[re.Pattern[str]]) -> bool:
    """True when the literal text of ``regex`` itself contains a negation cue ("can't lose",
    "shouldn't have", 就不会): such a pattern handles negation inside its own hit."""
    text = re.sub(r"\\(.)", r"\1", re.sub(r"\\[A-Za-z]", " ", regex))
    return any(cue.search(text) for cue in cues)


@dataclass(frozen=True)
class Branch:
    """One top-level alternative of a policy pattern, compiled for lowercased text.

    ``anchors``: literals of which at least one must occur in the text; the branch then runs
    only on the sentences that contain one (no anchors: it runs on the whole text)."""

    index: int
    regex: re.Pattern[str]
    anchors: tuple[str, ...]
    negation: str
    conditional: bool
    quoted: bool
    when: str


def compile_branches(
    patterns: Iterable[Pattern], branches: list[Branch], cues: tuple[re.Pattern[str], ...] = ()
) -> list[Branch]:
    """Compile every top-level alternative of ``patterns``; append them to ``branches`` too.

    ``auto`` negation becomes ``clause`` (negation cues inside the hit count too: an optional
    slot such as ``(?:\\w+\\s+)?`` must not swallow the "never" of "you should never buy"), or
    ``before`` when the alternative spells out a negation itself ("can't lose")."""
    first = len(branches)
    for p in patterns:
        for alt in split_alternatives(fold_case(p.regex)):
            try:
                regex = re.compile(alt)
            except re.error:  # an alternative that only compiles with its siblings
                regex, alt = re.compile(fold_case(p.regex)), fold_case(p.regex)
            negation = p.negation
            if negation == "auto":
                negation = "before" if spells_negation(alt, cues) else "clause"
            branches.append(
                Branch(
                    len(branches),
                    regex,
                    anchors_of(alt),
                    negation,
                    p.conditional,
                    p.quoted,
                    p.when,
                )
            )
    return branches[first:]


def _maybe(regex: str | None) -> re.Pattern[str] | None:
    return re.compile(regex, re.IGNORECASE) if regex else None


def compile_cues(policy: Policy) -> dict[str, Cues]:
    """The negation and conditional cues of each language of ``policy``, compiled."""
    return {
        lang: Cues(
            before=_maybe(policy.negation_before.get(lang)),
            after=_maybe(policy.negation_after.get(lang)),
            conditional=_maybe(policy.conditional.get(lang)),
        )
        for lang in policy.languages
    }


Finder = tuple[re.Pattern[str] | None, dict[str, tuple[str, ...]]]


class Matcher:
    """Every pattern and exception of a policy, compiled once; finds the pattern hits of a rule."""

    def __init__(self, policy: Policy, cues: Mapping[str, Cues]) -> None:
        self.cues = cues
        self.groups: dict[tuple[str, str], list[Branch]] = {}
        self.branches: list[Branch] = []
        self.exceptions: dict[tuple[str, str], re.Pattern[str]] = {}
        for rule in policy.rules:
            for lang in (*rule.languages, "any"):
                if rule.detection.patterns.get(lang):
                    langs = policy.languages if lang == "any" else (lang,)
                    before = tuple(c.before for x in langs if (c := cues.get(x)) and c.before)
                    self.groups[(rule.id, lang)] = compile_branches(
                        rule.detection.patterns[lang], self.branches, before
                    )
                if rule.detection.exceptions.get(lang):
                    joined = "|".join(f"(?:{r})" for r in rule.detection.exceptions[lang])
                    self.exceptions[(rule.id, lang)] = re.compile(joined, re.IGNORECASE)
        self.by_anchor: dict[str, list[int]] = {}
        for b in self.branches:
            for a in b.anchors:
                self.by_anchor.setdefault(a, []).append(b.index)
        self._finders: dict[tuple[str, ...], Finder] = {}

    def finder(self, languages: Iterable[str]) -> Finder:
        """One trie regex over the anchors of every branch that can run for ``languages``
        (built once per set of languages) and, per anchor, the anchors inside it."""
        key = tuple(sorted(set(languages)))
        if key not in self._finders:
            wanted = {*key, "any"}
            anchors = {
                a
                for (_, lang), branches in self.groups.items()
                if lang in wanted
                for b in branches
                for a in b.anchors
            }
            regex = re.compile(trie_regex(anchors)) if anchors else None
            parts = {a: tuple(x for x in anchors if x in a) for a in anchors}
            self._finders[key] = (regex, parts)
        return self._finders[key]

    def warm(self, languages: Iterable[str]) -> int:
        """Build now the finder of every language set a check can use (English plus any of
        ``languages``), so no draft pays the 30-80 ms of compiling one; returns how many."""
        others = sorted(set(languages) - {"en"})
        for size in range(len(others) + 1):
            for combo in combinations(others, size):
                self.finder(("en", *combo))
        return len(self._finders)

    def active(self, ctx: Context, languages: tuple[str, ...]) -> dict[int, set[tuple[int, int]]]:
        """Per branch index, the sentences of the draft that hold one of its anchors."""
        ctx.anchor_finder, ctx.anchor_parts = self.finder(languages)
        active: dict[int, set[tuple[int, int]]] = {}
        for anchor, wins in ctx.anchor_windows.items():
            for index in self.by_anchor.get(anchor, ()):
                active.setdefault(index, set()).update(wins)
        return active

    def hits(
        self,
        rule: Rule,
        ctx: Context,
        languages: list[str],
        active: dict[int, set[tuple[int, int]]],
        cleared: list[Hit] | None = None,
    ) -> list[Hit]:
        """Pattern hits of ``rule`` in the draft, after quotes, exceptions, negation and
        conditionals are taken into account; the hits those cleared go to ``cleared``."""
        hits: list[Hit] = []
        whole = {(0, len(ctx.lower))}
        for lang in [*languages, "any"]:
            groups = self.groups.get((rule.id, lang))
            if not groups or (lang not in rule.languages and lang != "any"):
                continue
            saved = ctx.cues
            ctx.cues = self.cues.get(lang if lang != "any" else ctx.language, Cues())
            exceptions = self.exceptions.get((rule.id, lang))
            for group in groups:
                if group.when == "injection" and not ctx.injection:
                    continue
                windows = active.get(group.index) if group.anchors else whole
                if not windows:
                    continue
                for lo, hi in windows:
                    for m in group.regex.finditer(ctx.lower, lo, hi):
                        start, end = m.span()
                        if end <= start:
                            continue
                        if (
                            (group.quoted and ctx.quoted(start, end))
                            or (
                                exceptions is not None
                                and exceptions.search(ctx.text, *ctx.clause(start, end))
                            )
                            or ctx.negated(start, end, group.negation)
                            or (group.conditional and ctx.conditional(start, end))
                        ):
                            if cleared is not None:
                                cleared.append((start, end, ""))
                            continue
                        hits.append((start, end, ""))
            ctx.cues = saved
        return hits
