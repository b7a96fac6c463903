"""Figures in drafts and knowledge articles: times, durations, amounts and percentages.

:func:`figures` finds every number with a time, money or percent unit in normalised text
(English, Japanese, Chinese) and reads its value however it is written: ``50,000``,
``5万``, ``二十万五千``, ``2万5千``, ``50k``, ``1.5 million``, ``twenty-four``,
``half an hour``. :func:`figure_keys` gives the keys two figures are compared by: the
unit and value, and for calendar durations the length in seconds, so ``24 hours`` matches
``1 day`` and ``half an hour`` matches ``30 minutes``. English number words only count
before a time unit: the article in "an ETH deposit" is not an amount.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from copilot.text.normalize import fold_case, lowercase, normalize


class Figure(NamedTuple):
    """One number with its unit; ``value`` is None for vague numbers ("a few", 数, 几)."""

    start: int
    end: int
    unit: str
    value: float | None
    raw: str


# ---- reading numbers -------------------------------------------------------------------------
_CJK_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "兩": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CJK_SMALL = {"十": 10, "百": 100, "千": 1000}
_CJK_BIG = {"万": 1e4, "萬": 1e4, "亿": 1e8, "億": 1e8}
_DIGIT_RUN = re.compile(r"\d+(?:,\d{3}(?!\d))*(?:\.\d+)?")
_SCALE_WORDS = {"k": 1e3, "thousand": 1e3, "million": 1e6, "billion": 1e9}

_ONES = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TEENS = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_WORD_VALUES: dict[str, float] = {
    **{w: float(i + 1) for i, w in enumerate(_ONES)},
    **{w: float(i + 10) for i, w in enumerate(_TEENS)},
    **{w: float(10 * (i + 2)) for i, w in enumerate(_TENS)},
    "a": 1.0,
    "an": 1.0,
    "a dozen": 12.0,
    "half a": 0.5,
    "half an": 0.5,
}
_VAGUE_WORDS = ("a few", "several", "a couple of", "a couple", "couple of")


def _cjk_number(s: str) -> float | None:
    """A number in Chinese/Japanese numerals, digit runs allowed (``二十万五千``, ``2万5千``)."""
    total = section = 0.0
    number: float | None = None
    i = 0
    while i < len(s):
        ch = s[i]
        run = _DIGIT_RUN.match(s, i)
        if run is not None:
            number = float(run.group(0).replace(",", ""))
            i = run.end()
            continue
        if ch in _CJK_DIGITS:
            number = float(_CJK_DIGITS[ch])
        elif ch in _CJK_SMALL:
            section += (number if number is not None else 1.0) * _CJK_SMALL[ch]
            number = None
        elif ch in _CJK_BIG:
            section += number or 0.0
            total += (section or 1.0) * _CJK_BIG[ch]
            section, number = 0.0, None
        elif not ch.isspace():
            return None
        i += 1
    return total + section + (number or 0.0)


def _word_number(s: str) -> float | None:
    """An English number word or phrase (``twenty-four``, ``half an``, ``a dozen``)."""
    s = re.sub(r"\s*-\s*|\s+", " ", s)
    if s in _WORD_VALUES:
        return _WORD_VALUES[s]
    tens, _, ones = s.partition(" ")
    if tens in _TENS and ones in _ONES:
        return _WORD_VALUES[tens] + _WORD_VALUES[ones]
    return None


def number_value(raw: str) -> float | None:
    """The value of a number as written (``1,000``, ``500万``, ``三十``, ``twelve``, ``50k``);
    None when it is vague or unreadable."""
    s = re.sub(r"\s+", " ", raw.strip().lower())
    if not s or s in _VAGUE_WORDS or any(c in "数幾几" for c in s):
        return None
    if s[0].isdigit():
        m = _DIGIT_RUN.match(s)
        assert m is not None
        rest = s[m.end() :].strip()
        if rest in _SCALE_WORDS:
            return float(m.group(0).replace(",", "")) * _SCALE_WORDS[rest]
        return _cjk_number(s)
    if s[0] in _CJK_DIGITS or s[0] in _CJK_SMALL or s[0] in _CJK_BIG:
        return _cjk_number(s)
    return _word_number(s)


# ---- finding figures -------------------------------------------------------------------------
# Figures are found from their first character (a digit or a CJK numeral) so re can skip ahead
# in C; English number words ("a few days", "an hour") are found from the unit backwards.
_CJK_NUM = "一二两兩三四五六七八九十百千万萬亿億零〇"
# thousands groups have three digits ("Tier 2，1 business day" is two numbers, not 21)
_DIGITS = r"\d(?<!\d\d)(?<!\d[.,]\d)\d*(?:,\d{3}(?!\d))*(?:\.\d+)?"
_SCALE = rf"(?:\s?(?:[{_CJK_NUM}]|\d)*[{_CJK_NUM}]|\s?k(?![a-z])|\s+(?:thousand|million|billion)\b)"
_NUM_LEAD = rf"(?<!第)(?:{_DIGITS}{_SCALE}?|[{_CJK_NUM}数幾几]+)"  # 数/几: vague (数日, 几十分钟)
_NUM_ANY = rf"(?:\d+(?:,\d{{3}}(?!\d))*(?:\.\d+)?{_SCALE}?|[{_CJK_NUM}数幾几]+|[a-z]+(?:-[a-z]+)?)"
UNITS: tuple[tuple[str, str], ...] = (
    ("minute", r"minutes?|mins?\b|分钟|分鐘|分間|分(?![钟鐘間の])"),
    ("hour", r"hours?|hrs?\b|h\b|个?小时|個?小時|時間"),
    (
        "day",
        r"(?:business|working|calendar)\s+days?|days?|営業日|日間|(?<!月)日(?!本)|个?工作日|個?工作日|天",
    ),
    ("week", r"weeks?|週間|个?星期|周(?!末)"),
    ("month", r"months?|[かヶカケ]月|个月|個月"),
    ("second", r"seconds?|secs?\b|秒"),
    ("money", r"USDT|USDC|USD|BTC|ETH|円|美元|元|ドル|dollars?|yen"),
    ("percent", r"%|percent"),
)
_UNIT_GROUP = "|".join(f"(?P<{name}>{rx})" for name, rx in UNITS)
_FIGURE = re.compile(
    fold_case(
        rf"(?P<a>{_NUM_LEAD})(?:\s*(?:-|–|~|〜|～|to|至|到)\s*(?P<b>{_NUM_ANY}))?\s*(?:個|个)?\s*(?P<unit>{_UNIT_GROUP})"
    )
)
_EN_UNIT = re.compile(
    r"(?:(?:business|working|calendar)\s+days?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|seconds?|secs?)(?![a-z])"
)
_TENS_RX = "|".join(_TENS)
_ONES_RX = "|".join(_ONES)
_WORD_NUMBER = re.compile(
    r"\b(a\s+few|several|a\s+couple\s+of|couple\s+of|half\s+an?|a\s+dozen"
    rf"|(?:{_TENS_RX})(?:[-\s](?:{_ONES_RX}))?|{'|'.join(_TEENS)}|{_ONES_RX}|an?)\s+$"
)
_CJK_PAIR = re.compile(r"[一二两三四五六七八九]{2}")


def _is_cjk(raw: str) -> bool:
    return raw[:1] in _CJK_DIGITS or raw[:1] in _CJK_SMALL or raw[:1] in _CJK_BIG


def figures(text: str) -> list[Figure]:
    """Every number+unit in normalised ``text``; a range ("1-3 days", 一两天) gives both ends."""
    out: list[Figure] = []
    low = lowercase(text)
    for m in _FIGURE.finditer(low):
        unit = next(name for name, _ in UNITS if m.group(name))
        if (
            unit == "day"
            and m.group("unit") == "日"
            and (
                text[m.end() : m.end() + 1] in ("本", "曜")
                or text[m.start() - 1 : m.start()] == "月"
            )
        ):
            continue
        if m.group("a") == "十" and m.group("unit") == "分":  # 十分 = "enough", not ten minutes
            continue
        a, b = m.group("a"), m.group("b")
        start = m.start()
        if b and _is_cjk(a) != _is_cjk(b):  # 一到80% = "as soon as it reaches 80%", not a range
            a, b, start = b, None, m.start("b")
        raw = text[start : m.end()]
        values = [number_value(a)] + ([number_value(b)] if b else [])
        if not b and _CJK_PAIR.fullmatch(a):  # 一两天, 两三个小时: "one or two days"
            values = [number_value(a[0]), number_value(a[1])]
        out += [Figure(start, m.end(), unit, value, raw) for value in values]
    found = [(f.start, f.end) for f in out]
    for m in _EN_UNIT.finditer(low):
        if (m.start() and low[m.start() - 1].isalpha()) or any(
            s <= m.start() < e for s, e in found
        ):
            continue
        word = _WORD_NUMBER.search(low, max(0, m.start() - 24), m.start())
        if word is not None:
            unit = next(name for name, rx in UNITS if re.fullmatch(rx, m.group(0), re.IGNORECASE))
            out.append(
                Figure(
                    word.start(1),
                    m.end(),
                    unit,
                    number_value(word.group(1)),
                    text[word.start(1) : m.end()],
                )
            )
    return out


# ---- comparing figures -----------------------------------------------------------------------
_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
_BUSINESS = re.compile(r"business|working|営業|工作", re.IGNORECASE)
Key = tuple[str, float]


def figure_keys(unit: str, value: float | None, raw: str = "") -> frozenset[Key]:
    """What a figure is compared by: (unit, value), plus ("seconds", n) for calendar durations."""
    if value is None:
        return frozenset()
    keys = {(unit, value)}
    if unit in _SECONDS and not _BUSINESS.search(raw):
        keys.add(("seconds", round(value * _SECONDS[unit], 6)))
    return frozenset(keys)


@lru_cache(maxsize=1024)
def figure_set(text: str, units: tuple[str, ...] | None = None) -> frozenset[Key]:
    """The keys of every figure stated in ``text`` (only ``units`` when given); cached, since
    sources repeat across drafts."""
    keys: set[Key] = set()
    for f in figures(normalize(text)):
        if units is None or f.unit in units:
            keys |= figure_keys(f.unit, f.value, f.raw)
    return frozenset(keys)
