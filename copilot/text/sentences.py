"""Sentences of a reply or a message, as spans into the text (for sentence-level classifiers).

A sentence ends at ``. ! ?`` followed by a space or the end, at ``。！？`` and at a line
break; list items and lines stand alone. Citation marks (``[faq/withdrawal]``) stay with
the sentence they close. Very short pieces (a lone greeting word) are merged into the next.
"""

from __future__ import annotations

import re

_END = re.compile(
    r"(?<=[.!?])(?:\s*\[[a-z]+/[a-z0-9-]+\])*\s+|(?<=[。！？])(?:\s*\[[a-z]+/[a-z0-9-]+\])*|\n+"
)
MIN_CHARS = 4


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, whitespace trimmed, in order."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _END.finditer(text):
        end = m.end() if not m.group(0).isspace() and "\n" not in m.group(0) else m.start()
        if m.group(0).strip() and "[" in m.group(0):
            end = m.start() + len(m.group(0).rstrip())
        _add(text, start, end, spans)
        start = m.end()
    _add(text, start, len(text), spans)
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if merged and len(text[merged[-1][0] : merged[-1][1]].strip()) < MIN_CHARS:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def _add(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    piece = text[start:end]
    if not piece.strip():
        return
    lead = len(piece) - len(piece.lstrip())
    trail = len(piece) - len(piece.rstrip())
    spans.append((start + lead, end - trail))


def sentences(text: str) -> list[str]:
    """The sentences of ``text``."""
    return [text[s:e] for s, e in sentence_spans(text)]
