"""Text normalisation shared by the detectors: full-width forms, quotes, case folding."""

from __future__ import annotations

import re

# Full-width ASCII (U+FF01..U+FF5E) -> ASCII, ideographic space -> space: 1:1, offsets kept.
_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def fold_case(regex: str) -> str:
    """Lowercase the literal letters of a regex (escapes such as ``\\S``, group names and inline
    flags kept) so it can run case-sensitively on lowercased text: much faster than
    ``re.IGNORECASE`` and the same matches."""
    out, i = [], 0
    while i < len(regex):
        end = i + 1
        if regex[i] == "\\":
            end = regex.find("}", i) + 1 or len(regex) if regex[i + 1 : i + 3] == "N{" else i + 2
        elif regex.startswith("(?P", i):
            end = regex.find(">" if regex.startswith("(?P<", i) else ")", i) + 1 or len(regex)
        elif regex.startswith("(?", i) and i + 2 < len(regex) and regex[i + 2] in "aiLmsux-":
            end = min(x for x in (regex.find(":", i), regex.find(")", i), len(regex)) if x >= 0) + 1
        piece = regex[i:end]
        out.append(piece if end - i > 1 or len(piece.lower()) != 1 else piece.lower())
        i = end
    return "".join(out)


def halfwidth_regex(regex: str) -> str:
    """``regex`` with its full-width ASCII literals (，！？（ ...) written as the ASCII that
    :func:`to_halfwidth` maps them to, escaped (so ``？`` stays a literal question mark).

    Drafts are matched after :func:`to_halfwidth`; a pattern that says ``[^。，]`` must stop
    at the comma the text now holds, not at a full-width comma that no longer exists."""
    out, i = [], 0
    while i < len(regex):
        ch = regex[i]
        if ch == "\\":
            out.append(regex[i : i + 2])
            i += 2
            continue
        cp = ord(ch)
        if 0xFF01 <= cp <= 0xFF5E:
            out.append(re.escape(chr(cp - 0xFEE0)))
        elif cp == 0x3000:
            out.append("\\ ")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def to_halfwidth(text: str) -> str:
    """Map full-width ASCII characters to ASCII one-to-one (same length, same offsets)."""
    return text.translate(_WIDTH)


_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})


def normalize(text: str) -> str:
    """Full-width ASCII to ASCII and curly quotes to straight ones; same length as ``text``."""
    return to_halfwidth(text).translate(_QUOTES)


def lowercase(text: str) -> str:
    """``text.lower()`` with the same length (a letter whose lowercase is longer is kept)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
