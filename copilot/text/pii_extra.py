"""Personal data the masker finds beyond :func:`copilot.text.pii.find_pii`.

These finders run only before a remote call (the guardrail's leak rule keeps using
``find_pii``): card security codes (3-4 digits near a CVV cue), seed phrases (runs of 12 or
more BIP-39 English words, ``data/bip39_english.txt``), e-mail addresses written to dodge
filters ("bob at gmail dot com", "bob(at)gmail[.]com", "bob @ gmail . com"), phone numbers
with spaces, dashes, long-vowel marks or a country code (+81, +86), withdrawal and order ids
(``W2409110023``), user ids and transaction ids led by their keyword. Each returns
``(kind, start, end)`` candidates on the half-width text (same offsets as the original).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_DATA = Path(__file__).resolve().parent / "data"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


@cache
def bip39_words() -> frozenset[str]:
    """The 2048 English BIP-39 words (bundled; read once)."""
    text = (_DATA / "bip39_english.txt").read_text(encoding="utf-8")
    return frozenset(w.strip() for w in text.splitlines() if w.strip())


# ---- card security codes -------------------------------------------------------------------
_CVV = re.compile(
    r"(?:(?<![a-z])(?:cvv2?|cvc2?|cvn|csc|cid|security code|card verification(?: value| code)?|"
    r"3-digit code|three-digit code)(?![a-z])|セキュリティ[ー]?コード|セキュリティ番号|安全码|安全碼|"
    r"卡背(?:面)?(?:的)?(?:三位|3位)?(?:数字|號碼|号码)?|背面の(?:3|三)桁)"
    r"[^\d\n]{0,16}?(?P<v>\d{3,4})(?![\d,.]\d|\d)"
)

# ---- seed phrases ----------------------------------------------------------------------------
_WORD = re.compile(r"[a-z]+")
_SEED_GAP = re.compile(r"[\s,;:|/\-\u3001\uff0c]*(?:\(?\d{1,2}[.):]?\s*)?[\s,;:|/\-]*")
SEED_MIN_WORDS = 12


def seed_phrases(low: str) -> list[tuple[str, int, int]]:
    """Runs of 12 or more BIP-39 words (separated by spaces, commas or numbering)."""
    words = bip39_words()
    out: list[tuple[str, int, int]] = []
    run: list[tuple[int, int]] = []

    def close() -> None:
        if len(run) >= SEED_MIN_WORDS:
            out.append(("SEED", run[0][0], run[-1][1]))
        run.clear()

    for m in _WORD.finditer(low):
        start, end = m.span()
        letter_around = (start and low[start - 1].isalpha()) or (
            end < len(low) and low[end].isalpha()
        )
        if m.group(0) not in words or letter_around:
            close()
            continue
        if run and not _SEED_GAP.fullmatch(low, run[-1][1], start):
            close()
        run.append((start, end))
    close()
    return out


# ---- e-mail addresses written to dodge filters -----------------------------------------------
_OPEN, _CLOSE = r"[\(\[\{<（［【｛]", r"[\)\]\}>）］】｝]"
_AT_BRACKET = rf"\s*{_OPEN}\s*(?:at|@|アット|あっと|艾特)\s*{_CLOSE}\s*"
_AT_WORD = r"\s+(?:at|アット|あっと)\s+|\s*(?:アット|あっと|艾特)\s*"
_AT_SPACED = r"\s+@\s*|\s*@\s+"
_DOT_OBF = rf"\s*{_OPEN}\s*(?:dot|\.|ドット|点)\s*{_CLOSE}\s*|\s+dot\s+|\s*(?:ドット|点)\s*"
_DOT = rf"(?:{_DOT_OBF}|\s?\.\s?)"
_LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
_LOOSE_EMAIL = re.compile(
    rf"(?<![a-z0-9._%+\-@])(?P<local>[a-z0-9][a-z0-9._%+\-]{{0,63}})"
    rf"(?P<at>{_AT_BRACKET}|{_AT_WORD}|{_AT_SPACED})"
    rf"(?P<domain>{_LABEL}(?:{_DOT}{_LABEL}){{0,3}}){_DOT}(?P<tld>[a-z]{{2,6}})(?![a-z0-9])"
)
_TLDS = _words(
    """com net org jp cn io co uk de fr it es nl ru info biz me us ca au nz edu gov hk tw sg kr
    in br mx ch se no dk fi pl be at ie pt tr th vn my ph id ae sa za app dev xyz ai ne or
    ac ad mobi pro online site tech email mail cc tv eu asia"""
)
_MAIL_PROVIDERS = _words(
    """gmail googlemail yahoo ymail outlook hotmail live msn icloud me mac aol proton
    protonmail pm gmx mail yandex qq 163 126 sina sohu foxmail aliyun 139 docomo ezweb au
    softbank i-softbank ybb nifty biglobe ocn so-net naver daum hanmail zoho fastmail
    tutanota"""
)


def loose_emails(low: str) -> list[tuple[str, int, int]]:
    """E-mail addresses with "at" / "dot" spelled out, bracketed or spaced."""
    out: list[tuple[str, int, int]] = []
    for m in _LOOSE_EMAIL.finditer(low):
        if m.group("tld") not in _TLDS:
            continue
        at, rest = m.group("at"), low[m.start("domain") : m.end()]
        plain_at = re.fullmatch(r"\s+at\s+", at) is not None
        dot_obfuscated = re.search(_DOT_OBF, rest) is not None
        first = re.split(r"[^a-z0-9\-]", m.group("domain"), maxsplit=1)[0]
        handle_like = re.search(r"[\d._]", m.group("local")) is not None
        if plain_at and not (dot_obfuscated or first in _MAIL_PROVIDERS or handle_like):
            continue  # "logged in at binance.com" is not an address
        if "@" in at and not re.search(r"\s", at) and not dot_obfuscated:
            continue  # a plain address: find_pii's finder owns it
        out.append(("EMAIL", m.start(), m.end()))
    return out


# ---- phone numbers with spaces, dashes or a country code --------------------------------------
_DASHES = str.maketrans({c: "-" for c in "\u30fc\u2212\u2013\u2014\u2010\u2011\u2015\uff70"})
_LOOSE_PHONE = re.compile(
    r"(?<![0-9A-Za-z_+])(?:\+\s?|\(\s?)?\d(?:[\d()]|[ \-./]{1,3}(?=[\d(])){6,40}\d(?![0-9A-Za-z_])"
)
_DATE_LIKE = re.compile(r"(?:19|20)\d\d\s?[\-./]\s?\d{1,2}\s?[\-./]\s?\d{1,2}(?!\d)")
_PHONE_CUE = re.compile(
    r"(?:\b(?:phone|tel|telephone|mobile|cell|fax|whatsapp|line|wechat|sms|call me|reach me)"
    r"(?:\s+(?:number|no\.?|#))?|電話(?:番号)?|携帯(?:番号)?|連絡先|手机(?:号码?)?|电话(?:号码)?|"
    r"联系方式|聯絡電話|手機)[^\d\n]{0,16}$"
)


def loose_phones(norm: str, low: str) -> list[tuple[str, int, int]]:
    """Phone numbers however they are spaced or dashed (full-width forms already folded)."""
    text = norm.translate(_DASHES)
    out: list[tuple[str, int, int]] = []
    for m in _LOOSE_PHONE.finditer(text):
        value = m.group(0)
        digits = re.sub(r"\D", "", value)
        start = m.start()
        cue = _PHONE_CUE.search(low, max(0, start - 40), start) is not None
        if _DATE_LIKE.search(value) or (re.search(r"\d[.,]\d{1,2}$", value) and not cue):
            continue
        if value.startswith("+"):
            ok = 8 <= len(digits) <= 15
        elif cue:  # "Phone: 451 5986": a local number after its keyword
            ok = 7 <= len(digits) <= 15
        else:
            lead = digits[:2]
            ok = (lead[0] == "0" and 10 <= len(digits) <= 12 and lead != "00") or (
                re.fullmatch(r"1[3-9]", lead) is not None and len(digits) == 11
            )
            ok = ok and re.search(r"[ \-./()]", value) is not None  # bare runs: find_pii's
        if ok:
            out.append(("PHONE_CUED" if cue else "PHONE", start, m.end()))
    return out


# ---- exchange ids ------------------------------------------------------------------------------
_CURRENCY = _words(
    """usd jpy cny rmb eur gbp hkd twd krw sgd aud cad chf inr usdt usdc btc eth bnb xrp sol
    trx doge ada dot ltc"""
)
_PREFIXED_ID = re.compile(r"(?<![A-Za-z0-9_\-])([A-Z]{1,4})[\-_]?(\d{7,20})(?![A-Za-z0-9_])")
_TX_KEY = (
    r"tx ?id|txn ?id|txhash|tx ?hash|transaction ?(?:id|hash)|hash|トランザクションid|"
    r"トランザクションハッシュ|取引id|交易id|交易哈希|哈希值?"
)
_ORDER_ID_KEY = (
    r"uid|user ?id|account ?id|member ?id|customer ?id|client ?id|transaction ?(?:no\.?|number)|"
    r"withdrawal ?(?:id|no\.?|number)|deposit ?(?:id|no\.?|number)|order ?(?:id|no\.?|number)|"
    r"request ?(?:id|no\.?)|application ?(?:id|no\.?)|ユーザーid|ユーザid|会員番号|会員id|申請番号|"
    r"申請id|受付番号|取引番号|出金id|入金id|用户id|用户编号|账户id|账号id|交易编号|提现id|提币id|"
    r"订单号|申请编号|工单号"
)
_KEY_TAIL = r"\s*[:：#=]?\s*(?:is\s+|は|是|为)?\s*$"
_ID_KEY = re.compile(rf"(?:(?<![a-z])(?P<tx>{_TX_KEY})|(?<![a-z])(?:{_ORDER_ID_KEY})){_KEY_TAIL}")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{4,}")


def exchange_ids(norm: str, low: str) -> list[tuple[str, int, int]]:
    """Withdrawal / order ids such as W2409110023, and any id token led by an id keyword."""
    out: list[tuple[str, int, int]] = []
    for m in _PREFIXED_ID.finditer(norm):
        if m.group(1).lower() not in _CURRENCY:
            out.append(("ORDER", m.start(), m.end()))
    for m in _TOKEN.finditer(norm):
        token = m.group(0)
        if not any(c.isdigit() for c in token) or len(token) > 100:
            continue
        key = _ID_KEY.search(low, max(0, m.start() - 40), m.start())
        if key is not None:
            hexish = re.fullmatch(r"(?:0x)?[0-9a-fA-F]{16,}", token) is not None
            hexish = hexish and re.search(r"[a-fA-Fx]", token) is not None
            tx = key.group("tx") is not None or hexish or len(token) >= 40
            out.append(("TXID" if tx else "ORDER", m.start(), m.end()))
    return out


def find_extra(norm: str, low: str) -> list[tuple[str, int, int]]:
    """Every candidate of this module: (kind, start, end) on the half-width text."""
    out = [("CVV", *m.span("v")) for m in _CVV.finditer(low)]
    out += seed_phrases(low)
    out += loose_emails(low)
    out += loose_phones(norm, low)
    out += exchange_ids(norm, low)
    return out
