"""Personal-data detection and reversible masking (before any remote LLM call).

``find_pii(text)`` returns non-overlapping :class:`PiiSpan` objects for e-mail
addresses, phone numbers, Luhn-valid card numbers, IBANs (mod-97), national ID
numbers (Chinese resident ID: by its check character, or by an ID word nearby;
Japanese My Number, US SSN), crypto wallet
addresses (BTC/ETH/TRON), transaction hashes, order/withdrawal ids, API secrets
and IP addresses. ``mask(text)`` replaces them with placeholders such as
``[EMAIL_1]`` or ``[CARD_1]`` (the same value always gets the same placeholder)
and ``unmask(text, mapping)`` puts the values back.

Spans index into the text as given: full-width digits and letters are mapped
one-to-one to ASCII before matching, so offsets never shift.

``find_pii`` is what the guardrail's leak rule and the input flags read. Masking before a
remote call uses the wider :func:`find_sensitive`: ``find_pii`` plus person names
(:mod:`copilot.text.names`, and the names the caller already knows), card security codes,
seed phrases, e-mail addresses and phone numbers written to dodge filters, and exchange ids
(:mod:`copilot.text.pii_extra`). :class:`Vault` is the one masking step in front of every
remote call: it masks several texts with one numbering and restores the model's answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from copilot.text.names import find_names, name_parts
from copilot.text.normalize import lowercase, to_halfwidth
from copilot.text.pii_extra import find_extra

# Placeholder name of each kind (``[EMAIL_1]``); also the priority order when spans overlap.
PLACEHOLDERS: dict[str, str] = {
    "EMAIL": "EMAIL",
    "SECRET": "SECRET",
    "TXID": "TXID",
    "WALLET": "WALLET",
    "IBAN": "IBAN",
    "CARD": "CARD",
    "NATIONAL_ID": "ID",
    "SEED": "SEED",
    "ORDER": "ORDER",
    "PHONE": "PHONE",
    "CVV": "CVV",
    "IP": "IP",
    "CUSTOMER_NAME": "CUSTOMER_NAME",
    "NAME": "NAME",
}
CUSTOMER_NAME = "[CUSTOMER_NAME]"  # the customer's name as given (one placeholder, no number)
_PRIORITY = {kind: i for i, kind in enumerate(PLACEHOLDERS)}


@dataclass(frozen=True)
class PiiSpan:
    """One piece of personal data: its kind, offsets into the text and the matched value."""

    kind: str
    start: int
    end: int
    value: str


@dataclass(frozen=True)
class Masked:
    """Masked text and the placeholder -> original value mapping that undoes it."""

    text: str
    mapping: dict[str, str] = field(default_factory=dict)


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum used by payment cards."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(value: str) -> bool:
    """True when ``value`` (spaces allowed) passes the IBAN mod-97 check."""
    s = value.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


def cn_id_ok(value: str) -> bool:
    """True when an 18-character Chinese resident ID has a valid check character."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(c) * w for c, w in zip(value[:17], weights, strict=True))
    return "10X98765432"[total % 11] == value[17].upper()


def my_number_ok(digits: str) -> bool:
    """True when a 12-digit Japanese My Number has a valid check digit."""
    body = [int(c) for c in digits[:11]][::-1]
    total = sum(d * (i + 2 if i < 6 else i - 4) for i, d in enumerate(body))
    rest = total % 11
    return (0 if rest <= 1 else 11 - rest) == int(digits[11])


_B58 = "1-9A-HJ-NP-Za-km-z"
_ID_CONTEXT = re.compile(
    r"my ?number|個人番号|マイナンバー|个人番号|番号卡|national id|resident id|id card|"
    r"id number|身份证|身分証|身分證|证件号|證件號|ssn|social security",
    re.IGNORECASE,
)
# A Chinese resident ID number (18 characters, the last may be X) is personal data when its
# check character is right (cn_id_ok), wherever it appears. One whose check character is wrong
# (a typo, or a number that only has the shape) is still masked when an ID word stands near
# it (30 characters before, 15 after): in doubt, masking stays on the safe side for privacy.
# Without either it is a plain number. docs/guardrails.md says the same.
_CN_ID_CONTEXT = re.compile(
    _ID_CONTEXT.pattern + r"|身份号码|身份號碼|身份證|公民身份|居民身份|证件号码|證件號碼",
    re.IGNORECASE,
)
_CN_ID_BEFORE, _CN_ID_AFTER = 30, 15
# (kind, regex, folded): folded patterns are written in lowercase and run on the lowercased
# text (much faster than re.IGNORECASE). Most patterns start with the character class of their
# first character and check what precedes it with a look-behind: re then skips ahead in C.
_PATTERNS: list[tuple[str, re.Pattern[str], bool]] = [
    (
        "SECRET",
        re.compile(
            r"sk-(?<![A-Za-z0-9]sk-)[A-Za-z0-9_\-]{20,}|AKIA(?<![A-Za-z0-9]AKIA)[0-9A-Z]{16}(?![0-9A-Za-z])|"
            r"gh[pousr]_(?<![A-Za-z0-9]gh[pousr]_)[A-Za-z0-9]{30,}|xox[abprs]-(?<![A-Za-z0-9]xox[abprs]-)[A-Za-z0-9\-]{10,}|"
            r"eyJ(?<![A-Za-z0-9]eyJ)[\w\-]{8,}\.[\w\-]{8,}\.[\w\-]{8,}|-----BEGIN [A-Z ]*PRIVATE KEY-----"
        ),
        False,
    ),
    (
        "SECRET",
        re.compile(
            r"(?:api[_ \-]?key|api[_ \-]?secret|secret[_ \-]?key|access[_ \-]?token|auth[_ \-]?token|password|passwd)"
            r"\s*[:=]\s*(?P<v>[^\s\"',;]{8,})"
        ),
        True,
    ),
    (
        "TXID",
        re.compile(
            r"[0-9a-fA-F](?<![0-9A-Za-z][0-9a-fA-F])(?:(?<=0)x[0-9a-fA-F]{64}|[0-9a-fA-F]{63})(?![0-9A-Za-z])"
        ),
        False,
    ),
    (
        "TXID",
        re.compile(
            r"(?:txid|tx ?hash|transaction hash|hash)\s*[:：#]?\s*(?P<v>(?:0x)?[0-9a-f]{10,})\b"
        ),
        True,
    ),
    (
        "WALLET",
        re.compile(
            r"[013bT](?<![0-9A-Za-z][013bT])(?:(?<=0)x[0-9a-fA-F]{40}|(?<=b)c1[02-9ac-hj-np-z]{11,71}|"
            rf"(?<=[13])[{_B58}]{{25,34}}|(?<=T)[{_B58}]{{33}})(?![0-9A-Za-z])"
        ),
        False,
    ),
    (
        "IBAN",
        re.compile(
            r"[A-Z](?<![0-9A-Za-z][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![0-9A-Za-z])"
        ),
        False,
    ),
    ("CARD", re.compile(r"\d(?<![\d.,]\d)(?:[ \-]?\d){12,18}(?![\d.,]\d)"), False),
    (
        "CN_ID",
        re.compile(
            r"[1-9](?<![0-9A-Za-z][1-9])\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
            r"\d{3}[\dXx](?![0-9A-Za-z])"
        ),
        False,
    ),
    ("SSN", re.compile(r"\d(?<![\d\-]\d)\d\d-\d\d-\d{4}(?![\d\-])"), False),
    ("MY_NUMBER", re.compile(r"\d(?<![\d\-]\d)\d{3}[ \-]?\d{4}[ \-]?\d{4}(?![\d\-])"), False),
    ("ORDER", re.compile(r"\b(?:ORD|WD|DEP|TRD|TKT|CASE)[\-_]?\d[\dA-Z\-]{4,}\b"), False),
    ("PHONE", re.compile(r"\+(?<![\w+]\+)[1-9]\d{0,2}(?:[ .\-]?\(?\d{1,5}\)?){2,5}(?!\d)"), False),
    ("PHONE", re.compile(r"00(?<![\w+]00)[1-9]\d{0,2}(?:[ .\-]?\(?\d{1,5}\)?){2,5}(?!\d)"), False),
    ("PHONE", re.compile(r"0(?<![\d\-]0)\d{1,4}-\d{1,4}-\d{3,4}(?![\d\-])"), False),
    ("PHONE", re.compile(r"0(?<!\d0)[5789]0\d{8}(?!\d)"), False),
    ("PHONE", re.compile(r"1(?<![\d\-]1)[3-9]\d(?:[ \-]?\d{4}){2}(?![\d\-])"), False),
    ("PHONE", re.compile(r"\((?<![\d\-]\()\d{3}\)\s?\d{3}[.\-]\d{4}(?![\d\-])"), False),
    ("PHONE", re.compile(r"\d(?<![\d\-]\d)\d{2}[.\-]\d{3}[.\-]\d{4}(?![\d\-])"), False),
    ("PHONE", re.compile(r"0(?<![\d\-]0)\d{2,4} \d{3,4} ?\d{3,4}(?![\d\-])"), False),
    ("IP", re.compile(r"\d(?<![\d.]\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d.])"), False),
]


# Patterns found from an anchor character, then checked around it (faster than scanning).
_MASK_MARKS = frozenset("*•●×＊")
_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_EMAIL_DOMAIN = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}(?![A-Za-z0-9])"
)
_TOKEN_WITH_DIGIT = re.compile(r"\d[A-Za-z0-9_\-]*")
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_ORDER_KEY = re.compile(
    r"(?:\b(?:order|withdrawal|deposit|trade|transaction|ticket|case|reference|ref)[ \-]?(?:id|no\.?|number|#)"
    r"|(?:注文|订单|訂單|提现|提現|出金|入金|充值|工单|工單|受付|案件|问题单)\s*(?:id|番号|号码|号|號|編号|编号|編號|no\.?))"
    r"\s*[:：#は是为]?\s*$"
)
_DIGIT_RUN = re.compile(r"\d[\d \-]{7,16}\d")
_PHONE_KEY = re.compile(
    r"(?:\b(?:phone|tel|mobile|cell|whatsapp)(?:\s+(?:number|no\.?))?|電話(?:番号)?|携帯|手机(?:号码?)?|电话(?:号码)?)"
    r"[^\d\n]{0,12}\+?$"
)


def _anchored(norm: str, low: str) -> list[tuple[str, int, int]]:
    """E-mail addresses (from each @), order ids and phone numbers led by a keyword (from digits)."""
    out: list[tuple[str, int, int]] = []
    at = norm.find("@")
    while at >= 0:
        start = at
        while start > 0 and norm[start - 1] in _EMAIL_LOCAL:
            start -= 1
        while start < at and not norm[start].isalnum():
            start += 1
        domain = _EMAIL_DOMAIN.match(norm, at + 1)
        masked = start > 0 and norm[start - 1] in _MASK_MARKS  # "k***n@gmail.com": already masked
        if start < at and domain is not None and not masked:
            out.append(("EMAIL", start, domain.end()))
        at = norm.find("@", at + 1)
    for m in _TOKEN_WITH_DIGIT.finditer(norm):
        start = m.start()
        while start > 0 and norm[start - 1] in _TOKEN_CHARS:
            start -= 1
        long_enough = 5 <= m.end() - start <= 41 and norm[start].isalnum()
        if long_enough and _ORDER_KEY.search(low, max(0, start - 30), start):
            out.append(("ORDER", start, m.end()))
    for m in _DIGIT_RUN.finditer(norm):
        if _PHONE_KEY.search(low, max(0, m.start() - 32), m.start()):
            plus = m.start() - 1 if m.start() and norm[m.start() - 1] == "+" else m.start()
            out.append(("PHONE", plus, m.end()))
    return out


def _accept(kind: str, value: str, text: str, start: int) -> str | None:
    """The final kind of a candidate, or None when its checksum or shape says no."""
    digits = re.sub(r"\D", "", value)
    if kind == "CARD":
        return "CARD" if 13 <= len(digits) <= 19 and luhn_ok(digits) else None
    if kind == "IBAN":
        return "IBAN" if iban_ok(value) else None
    if kind == "CN_ID":
        if cn_id_ok(value):
            return "NATIONAL_ID"
        end = start + len(value)
        near = text[max(0, start - _CN_ID_BEFORE) : start] + " " + text[end : end + _CN_ID_AFTER]
        return "NATIONAL_ID" if _CN_ID_CONTEXT.search(near) else None
    if kind == "MY_NUMBER":
        context = text[max(0, start - 30) : start]
        return "NATIONAL_ID" if my_number_ok(digits) or _ID_CONTEXT.search(context) else None
    if kind == "PHONE":
        return "PHONE" if 9 <= len(digits) <= 15 else None
    if kind == "PHONE_CUED":  # a local number right after "phone:" (masking only)
        return "PHONE" if 7 <= len(digits) <= 15 else None
    if kind == "SSN":
        area, group, serial = value.split("-")
        ok = area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"
        return "NATIONAL_ID" if ok else None
    if kind == "IP":
        return "IP" if all(int(part) <= 255 for part in value.split(".")) else None
    if kind == "WALLET" and value[0] in "13T":
        # base58 addresses mix letters and digits; plain words never qualify
        has_digit = any(c.isdigit() for c in value[1:])
        has_alpha = any(c.isalpha() for c in value[1:])
        return "WALLET" if has_digit and has_alpha else None
    return kind


def _base_candidates(norm: str, low: str) -> list[tuple[str, int, int]]:
    candidates: list[tuple[str, int, int]] = _anchored(norm, low)
    for kind, pattern, folded in _PATTERNS:
        for m in pattern.finditer(low if folded else norm):
            group = "v" if "v" in pattern.groupindex and m.group("v") else 0
            candidates.append((kind, *m.span(group)))
    return candidates


def _resolve(text: str, norm: str, candidates: list[tuple[str, int, int]]) -> list[PiiSpan]:
    """Accepted candidates by priority, never overlapping, sorted by offset."""
    found: list[tuple[int, int, int, str]] = []
    for kind, start, end in candidates:
        final = _accept(kind, norm[start:end], norm, start)
        if final is not None and start < end:
            found.append((_PRIORITY[final], start, end, final))
    found.sort(key=lambda t: (t[0], t[1], -(t[2] - t[1])))
    taken: list[tuple[int, int]] = []
    spans: list[PiiSpan] = []
    for _, start, end, kind in found:
        if any(start < e and s < end for s, e in taken):
            continue
        taken.append((start, end))
        spans.append(PiiSpan(kind, start, end, text[start:end]))
    spans.sort(key=lambda s: s.start)
    return spans


def find_pii(text: str) -> list[PiiSpan]:
    """Every piece of personal data in ``text``, sorted by offset, never overlapping."""
    if not text:
        return []
    norm = to_halfwidth(text)
    return _resolve(text, norm, _base_candidates(norm, lowercase(norm)))


def _known_name_spans(
    text: str, names: Iterable[str], customer_name: str | None
) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    for name in sorted(set(names), key=len, reverse=True):
        if len(name) < 2:
            continue
        latin = name[0].isascii() and name[-1].isascii()
        variants = dict.fromkeys([name, name.upper()] if latin else [name])
        for variant in variants:
            body = r"\s+".join(re.escape(w) for w in variant.split())
            rx = rf"(?<![A-Za-z]){body}(?![A-Za-z])" if latin else body
            for m in re.finditer(rx, text):
                kind = "CUSTOMER_NAME" if m.group(0) == customer_name else "NAME"
                out.append((kind, *m.span()))
    return out


def find_sensitive(
    text: str, names: Iterable[str] = (), customer_name: str | None = None
) -> list[PiiSpan]:
    """What masking hides: :func:`find_pii` plus names (found by cue, and every occurrence of
    ``names`` and ``customer_name``), CVVs, seed phrases, obfuscated e-mails and phones, ids."""
    if not text:
        return []
    norm = to_halfwidth(text)
    low = lowercase(norm)
    candidates = [
        c
        for c in _base_candidates(norm, low)
        if not (c[0] == "CARD" and c[1] and norm[c[1] - 1] == "+")  # +86 138...: a phone
    ]
    candidates += find_extra(norm, low)
    known = list(names) + ([customer_name] if customer_name else [])
    candidates += _known_name_spans(text, known, customer_name)
    candidates += [("NAME", s, e) for s, e in find_names(text)]
    return _resolve(text, norm, candidates)


_PLACEHOLDER_RE = re.compile(
    r"\[(?:(" + "|".join(sorted(set(PLACEHOLDERS.values()) - {"CUSTOMER_NAME"})) + r")_(\d+)"
    r"|CUSTOMER_NAME)\]"
)


class Vault:
    """The one masking step in front of a remote call, and the way back.

    ``Vault.for_texts(texts, customer_name)`` learns the names mentioned in any of the texts
    (so "Tanaka" in an agent note is masked when the message said "my name is Ken Tanaka");
    :meth:`mask` replaces personal data with numbered placeholders (one value, one placeholder,
    across every text masked by this vault; placeholders already in the texts are never
    reused); :meth:`restore` puts the values back in what the agent sees; :meth:`remask`
    hides them again in text that goes back to the model (a draft, violation excerpts).
    """

    def __init__(
        self,
        *,
        customer_name: str | None = None,
        names: Iterable[str] = (),
        reserved: Iterable[str] = (),
    ) -> None:
        name = " ".join(customer_name.split()) if isinstance(customer_name, str) else ""
        self.customer_name = name or None
        self.names: set[str] = set()
        self.mapping: dict[str, str] = {}
        self._by_value: dict[tuple[str, str], str] = {}
        self._counters: dict[str, int] = {}
        self._used: set[str] = set(reserved)
        for known in ([name] if name else []) + list(names):
            self.names.update(name_parts(known))

    @classmethod
    def for_texts(cls, texts: Iterable[str], customer_name: str | None = None) -> Vault:
        """A vault that knows the names found in ``texts`` and the placeholders they hold."""
        texts = [t for t in texts if t]
        found = [t[s:e] for t in texts for s, e in find_names(t)]
        used = {m.group(0) for t in texts for m in _PLACEHOLDER_RE.finditer(t)}
        return cls(customer_name=customer_name, names=found, reserved=used)

    def _placeholder(self, kind: str, value: str) -> str:
        label = PLACEHOLDERS[kind]
        key = (label, value)
        placeholder = self._by_value.get(key)
        if placeholder is None:
            if kind == "CUSTOMER_NAME" and CUSTOMER_NAME not in self._used:
                placeholder = CUSTOMER_NAME
            else:
                label = "NAME" if kind == "CUSTOMER_NAME" else label
                while True:
                    self._counters[label] = self._counters.get(label, 0) + 1
                    placeholder = f"[{label}_{self._counters[label]}]"
                    if placeholder not in self._used and placeholder not in self.mapping:
                        break
            self._by_value[key] = placeholder
            self.mapping[placeholder] = value
        return placeholder

    def spans(self, text: str) -> list[PiiSpan]:
        """What :meth:`mask` would replace in ``text``."""
        return find_sensitive(text, self.names, self.customer_name)

    def mask(self, text: str) -> str:
        """``text`` with its personal data replaced by this vault's placeholders.

        Masking runs again on its own output until nothing more is found (at most 4
        passes): a value may only show once its neighbour is a placeholder ("x0@0.ab+44..."),
        and masked text must mask to itself."""
        self._used.update(m.group(0) for m in _PLACEHOLDER_RE.finditer(text))
        for _ in range(4):
            held = [m.span() for m in _PLACEHOLDER_RE.finditer(text)]
            spans = [
                s for s in self.spans(text) if not any(s.start < e and b < s.end for b, e in held)
            ]
            if not spans:
                break
            out: list[str] = []
            pos = 0
            for span in spans:
                out.append(text[pos : span.start])
                out.append(self._placeholder(span.kind, span.value))
                pos = span.end
            out.append(text[pos:])
            text = "".join(out)
        return text

    def restore(self, text: str) -> str:
        """The real values back in place of this vault's placeholders (others stay)."""
        return unmask(text, self.mapping)

    def remask(self, text: str) -> str:
        """Known values replaced by their placeholders, then anything else personal masked."""
        for placeholder, original in sorted(self.mapping.items(), key=lambda kv: -len(kv[1])):
            if original:
                text = text.replace(original, placeholder)
        return self.mask(text)


def mask(text: str) -> Masked:
    """Replace personal data with numbered placeholders; the same value reuses its placeholder."""
    vault = Vault()
    masked = vault.mask(text)
    return Masked(masked, dict(vault.mapping))


def unmask(text: str, mapping: dict[str, str]) -> str:
    """Put the original values back for every placeholder in ``mapping`` (others stay)."""
    if not mapping:
        return text
    return _PLACEHOLDER_RE.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)
