"""Undo the tricks that hide words from a reader of plain text: invisible characters,
full-width and other compatibility forms, look-alike letters from other scripts, s p a c e d
letters, and base64 or percent-encoded runs (decoded into segments of their own).

Used on customer messages before the prompt-injection flag reads them, so an instruction
written as ``ｉｇｎｏｒｅ``, ``ig\u200bnore``, ``іgnоrе`` (Cyrillic) or ``aWdub3Jl...`` reads as
the words it hides. The functions return new text; offsets into the original are kept by
the callers that need spans (``encoded_runs`` gives spans into its input).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterator
from urllib.parse import unquote

# Format characters (Unicode category Cf: zero-width space/joiners, bidi marks, soft hyphen,
# word joiner, BOM...) and a few invisible letters that are not Cf.
_INVISIBLE_EXTRA = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800", "\u180e"}

# Latin look-alikes from Cyrillic and Greek (lower and upper case), applied only inside
# words that also hold Latin letters, or in words wholly made of look-alikes next to Latin
# words: a Russian sentence stays Russian.
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
        "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
        "ԛ": "q", "ԝ": "w", "ո": "n", "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M",
        "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "У": "Y", "Х": "X", "І": "I",
        "Ј": "J", "Ѕ": "S", "α": "a", "ο": "o", "ρ": "p", "ν": "v", "ι": "i", "κ": "k",
        "τ": "t", "υ": "u", "χ": "x", "ε": "e", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z",
        "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T",
        "Υ": "Y", "Χ": "X",
    }
)  # fmt: skip
_LOOKALIKES = frozenset(k for k in "авекмнорстухіјѕԁԛԝոАВЕКМНОРСТУХІЈЅαορνικτυχεΑΒΕΖΗΙΚΜΝΟΡΤΥΧ")
_WORD = re.compile(r"\w+")
_LATIN = re.compile(r"[A-Za-z]")

# "i g n o r e", "i.g.n.o.r.e", "i-g-n-o-r-e": five or more single letters with one
# separator between them (a list like "a, b, c" has a space after the comma, so two).
_SPACED = re.compile(
    r"(?<![\w])(?:[A-Za-z][ .\-_*](?=[A-Za-z](?:[ .\-_*]|\b))){4,}[A-Za-z](?![\w])"
)

_B64_RUN = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_PCT_RUN = re.compile(
    r"(?:%[0-9A-Fa-f]{2}|[A-Za-z0-9._~+\-])*(?:%[0-9A-Fa-f]{2}){3,}(?:%[0-9A-Fa-f]{2}|[A-Za-z0-9._~+\-])*"
)


def strip_invisible(text: str) -> str:
    """``text`` without format characters and invisible fillers."""
    return "".join(
        ch for ch in text if unicodedata.category(ch) != "Cf" and ch not in _INVISIBLE_EXTRA
    )


def _unhomoglyph_word(m: re.Match[str]) -> str:
    word = m.group(0)
    if any(ch in _LOOKALIKES for ch in word) and (
        _LATIN.search(word) or all(ch in _LOOKALIKES or not ch.isalpha() for ch in word)
    ):
        return word.translate(_HOMOGLYPHS)
    return word


def unhomoglyph(text: str) -> str:
    """Cyrillic and Greek look-alike letters read as Latin inside mixed-script words (and in
    words made only of look-alikes, when the text also holds Latin words)."""
    if not any(ch in _LOOKALIKES for ch in text):
        return text
    if not _LATIN.search(text):
        return text
    return _WORD.sub(_unhomoglyph_word, text)


def unspace(text: str) -> str:
    """Spaced-out letters joined: ``i g n o r e`` -> ``ignore``."""
    return _SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), text)


def _printable_share(s: str) -> float:
    if not s:
        return 0.0
    good = sum(1 for ch in s if ch.isprintable() or ch in "\n\t")
    return good / len(s)


def _decode_b64(run: str) -> str | None:
    if not ((re.search(r"[A-Z]", run) and re.search(r"[a-z]", run)) or run.endswith("=")):
        return None  # hex ids, TXIDs and plain words are not base64 text
    body = run.rstrip("=")
    padded = body + "=" * (-len(body) % 4)
    for decoder in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decoder(padded)
        except (binascii.Error, ValueError):
            continue
        try:
            out = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if len(out) >= 6 and _printable_share(out) >= 0.95 and re.search(r"\w{2,}", out):
            return out
    return None


def encoded_runs(text: str) -> Iterator[tuple[int, int, str]]:
    """Base64 and percent-encoded runs of ``text`` that decode to readable text, as
    (start, end, decoded)."""
    for m in _B64_RUN.finditer(text):
        decoded = _decode_b64(m.group(0))
        if decoded is not None:
            yield m.start(), m.end(), decoded
    for m in _PCT_RUN.finditer(text):
        try:
            decoded = unquote(m.group(0).replace("+", " "), errors="strict")
        except UnicodeDecodeError:
            continue
        if decoded != m.group(0) and _printable_share(decoded) >= 0.95:
            yield m.start(), m.end(), decoded


def deobfuscate(text: str) -> str:
    """Plain reading of ``text``: invisible characters removed, compatibility forms folded
    (NFKC: full-width letters, half-width katakana, circled letters), look-alike letters
    read as Latin, spaced-out letters joined. Encoded runs are left in place (see
    :func:`encoded_runs`)."""
    out = strip_invisible(text)
    out = unicodedata.normalize("NFKC", out)
    out = unhomoglyph(out)
    return unspace(out)
