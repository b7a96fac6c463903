"""Edit distance between two texts: how much an agent changed a draft before sending it.

:func:`edit_distance` is the exact Levenshtein distance in characters (insertions,
deletions, substitutions), computed with the bit-parallel algorithm of Myers (1999) in
Hyyrö's formulation on Python's unbounded integers: one pass over the longer text with a
handful of big-integer operations per character, so two 8,000-character replies take
milliseconds, not the seconds of the textbook table.
"""

from __future__ import annotations


def edit_distance(a: str, b: str) -> int:
    """Characters to insert, delete or replace to turn ``a`` into ``b`` (Levenshtein)."""
    if a == b:
        return 0
    # a common prefix and suffix cost nothing; most edits are local
    start = 0
    limit = min(len(a), len(b))
    while start < limit and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    a, b = a[start:end_a], b[start:end_b]
    if len(a) < len(b):
        a, b = b, a  # b, the shorter, is the bit pattern
    m = len(b)
    if m == 0:
        return len(a)
    peq: dict[str, int] = {}
    for i, char in enumerate(b):
        peq[char] = peq.get(char, 0) | (1 << i)
    mask = (1 << m) - 1
    top = 1 << (m - 1)
    pv, mv, score = mask, 0, m
    for char in a:
        eq = peq.get(char, 0)
        xv = eq | mv
        xh = ((((eq & pv) + pv) & mask) ^ pv) | eq
        ph = mv | (~(xh | pv) & mask)
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = ((ph << 1) | 1) & mask
        mh = (mh << 1) & mask
        pv = mh | (~(xv | ph) & mask)
        mv = ph & xv
    return score
