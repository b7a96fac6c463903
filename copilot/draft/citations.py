"""Citation markers in drafts: ``[faq/withdrawal]``, checked against the retrieved sources."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

_ID = r"[a-z][a-z0-9_-]*/[a-z0-9][a-z0-9_-]*"
# One bracket with one or more ids: [faq/a] or [faq/a, playbook/b]
CITATION_RE = re.compile(rf"\[\s*({_ID}(?:\s*[,;]\s*{_ID})*)\s*\]", re.IGNORECASE)
_SPACE_BEFORE_PUNCT = re.compile(r"[ \t]+([.,;:!?。、，；：！？])")
_DOUBLE_SPACE = re.compile(r"[ \t]{2,}")


@dataclass
class Resolved:
    """A draft after citation repair."""

    text: str
    cited: list[str] = field(default_factory=list)  # allowed ids, order of first use
    removed: list[str] = field(default_factory=list)  # ids that were not among the sources


def find_citations(text: str) -> list[str]:
    """Every cited id in ``text`` (lower-cased), in order of first use."""
    found: list[str] = []
    for m in CITATION_RE.finditer(text):
        found.extend(part.strip().lower() for part in re.split(r"[,;]", m.group(1)))
    return list(dict.fromkeys(found))


def resolve_citations(text: str, allowed: Collection[str]) -> Resolved:
    """Keep citations of ``allowed`` ids (one bracket per id), remove the others.

    Whitespace left behind by a removed marker is tidied (no space before
    punctuation, no double spaces); line breaks are kept.
    """
    allowed_set = {a.lower() for a in allowed}
    cited: list[str] = []
    removed: list[str] = []

    def repl(m: re.Match[str]) -> str:
        keep = []
        for part in re.split(r"[,;]", m.group(1)):
            aid = part.strip().lower()
            if aid in allowed_set:
                keep.append(aid)
                if aid not in cited:
                    cited.append(aid)
            elif aid not in removed:
                removed.append(aid)
        return " ".join(f"[{aid}]" for aid in keep)

    out = CITATION_RE.sub(repl, text)
    if removed:
        lines = [
            _DOUBLE_SPACE.sub(" ", _SPACE_BEFORE_PUNCT.sub(r"\1", ln)).rstrip()
            for ln in out.splitlines()
        ]
        out = "\n".join(lines)
    return Resolved(out.strip(), cited, removed)


def strip_citations(text: str) -> str:
    """``text`` ready for the customer: every citation marker removed (the sources stay in
    the draft's record), the whitespace it leaves tidied; line breaks kept."""
    out = CITATION_RE.sub("", text)
    return "\n".join(
        _DOUBLE_SPACE.sub(" ", _SPACE_BEFORE_PUNCT.sub(r"\1", ln)).rstrip()
        for ln in out.splitlines()
    ).strip()
