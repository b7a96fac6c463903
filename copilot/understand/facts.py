"""Facts the customer already gave: ids, network, asset, amount, elapsed time, device, app
version and error text, read from the message and the customer's earlier turns.

These are formats (a withdrawal id ``W2411300421``, a 64-hex TxID, ``TRC20``, ``500 USDT``,
「3万円」, ``2 days``, 「一週間」, 三个小时, ``iPhone 15 Pro``, ``v5.3.1``, an error in quotes),
so the extractor is a set of regular expressions compiled once, in English, Japanese and
Chinese (Simplified and Traditional). Each value is the text exactly as the customer wrote
it (a substring of the message or of one earlier customer turn), so a draft can quote it.

The message wins over the thread: a key found in the message is taken from it; a key it
lacks is taken from the newest customer turn that has it. Agent turns are not read (the
agent may have quoted an example). The labelled messages (``facts`` in
``evals/understanding``) measure it: :func:`fact_scores`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from copilot.text.normalize import to_halfwidth

FACT_KEYS = (
    "withdrawal_id",
    "txid",
    "order_id",
    "network",
    "asset",
    "amount",
    "elapsed",
    "device",
    "app_version",
    "error_message",
)


class _Turn(Protocol):
    @property
    def role(self) -> str: ...

    @property
    def text(self) -> str: ...


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.VERBOSE)


ASSETS = [
    "USDT",
    "USDC",
    "BTC",
    "ETH",
    "SOL",
    "XRP",
    "DOGE",
    "TRX",
    "BNB",
    "ADA",
    "DOT",
    "LTC",
    "MATIC",
    "AVAX",
    "LINK",
    "SHIB",
    "PEPE",
    "TON",
    "ARB",
    "OP",
    "DAI",
    "BCH",
    "ETC",
    "XLM",
    "ATOM",
    "NEAR",
    "APT",
    "SUI",
    "FIL",
    "UNI",
]
_ASSET = "|".join(ASSETS)
_CJK_NUM = "〇零一二两兩三四五六七八九十百千万萬半"
_NUM = rf"(?:\d[\d,]*(?:\.\d+)?|\.\d+|[{_CJK_NUM}]+)"

# a labelled id: "withdrawal ID: X", 出金ID X, 提币单号 X
_WD_LABEL = r"(?:withdrawal|withdraw|payout|出金|提币|提幣|提现|提現|提领|提領|出庫)"
_ID_TAIL = r"\s*(?:id|ID|番号|单号|單號|编号|編號|号|號|no\.?|number|\#)?\s*(?:is|は|为|為|是)?\s*[:：#]?\s*"
WITHDRAWAL_ID = _rx(
    rf"""(?<![A-Za-z0-9])(W[-_]?\d{{6,}})(?![A-Za-z0-9])
       | {_WD_LABEL}{_ID_TAIL}([A-Z]{{0,3}}[-_]?\d[\d-]{{5,}}\d)(?![A-Za-z0-9])"""
)
_ORDER_LABEL = r"(?:order|trade|注文|オーダー|订单|訂單|委托|委託|单号|單號)"
ORDER_ID = _rx(
    rf"""(?<![A-Za-z0-9])((?:OP|O|F|S)-?\d{{7,}}(?:-\d+)?)(?![A-Za-z0-9])
       | {_ORDER_LABEL}{_ID_TAIL}((?:[A-Z]{{1,3}}-?)?\d[\d-]{{5,}}\d)(?![A-Za-z0-9])"""
)
TXID = _rx(
    r"""(?<![A-Za-z0-9])(0x[0-9a-f]{64})(?![0-9a-f])
       | (?<![A-Za-z0-9])([0-9a-f]{64})(?![0-9a-f])
       | (?<![A-Za-z0-9])([1-9A-HJ-NP-Za-km-z]{80,90})(?![A-Za-z0-9])
       | (?:txid|tx\s*hash|transaction\s*(?:id|hash)|hash|交易哈希|哈希|ハッシュ|トランザクションID)
         \s*(?:は|是|為|为)?\s*[:：=]?\s*([0-9A-Za-z]{20,}|0x[0-9a-f]{8,})(?![0-9A-Za-z])"""
)
NETWORK = _rx(
    r"""(?<![A-Za-z0-9])(
        (?:TRC|ERC|BEP|BRC)[-\s]?20 | BSC | BNB\s+Smart\s+Chain | Arbitrum(?:\s+One)? | Optimism
      | Polygon | Avalanche(?:\s+C-Chain)? | Solana | Lightning(?:\s+Network)? | TRON | Ethereum(?:\s+mainnet)?
      | Base(?=\s*(?:network|chain|ネットワーク|网络|網路|链|鏈))
      | Bitcoin(?=\s*(?:network|chain|mainnet|ネットワーク|网络|網路|主网|主網))
      | SOL(?=\s*(?:network|chain|ネットワーク|网络|網路|链|鏈))
    )(?![A-Za-z0-9])
    | (ライトニング(?:ネットワーク)? | 闪电网络 | 閃電網路 | 波场 | 波場 | 以太坊(?:主网|主網)? | ソラナ | イーサリアム(?:メインネット)?)"""
)
_CURRENCY = (
    rf"(?:{_ASSET}|EOS|U(?![A-Za-z])|dollars?|usd|eur|euros?|gbp|pounds?|aud|cad|chf|hkd|sgd|twd|krw|"
    r"rmb|jpy|yen|円|元|块|塊|美元|美金|日元|日円|ドル|新币|新幣|人民币|台币|台幣|港币|港幣)"
)
AMOUNT = _rx(
    rf"""(?<![A-Za-z0-9.])(?:[$€£¥￥]\s?\d[\d,]*(?:\.\d+)?(?:\s?[kK万萬])?)
       | (?<![A-Za-z0-9.,])(?:約|约|大概)?{_NUM}\s?(?:[kKM](?![A-Za-z])|million\s|万|萬|千|百)?\s?(?:多|余|餘)?\s?(?:[个個顆颗隻只枚]\s?)?{_CURRENCY}(?![A-Za-z])
       | (?<![A-Za-z0-9.,])\d[\d,.]*\s?[万萬](?![円元块塊])(?![A-Za-z0-9])
       | (?<![A-Za-z])(?:{_ASSET})\s?\d[\d,]*(?:\.\d+)?(?![\d.]*(?:[A-Za-z%倍分秒xX]|\s?(?:min|分|倍)))"""
)
# tickers in capitals (LINK, OP, TON are words too); the common ones in any case ("usdt")
ASSET = re.compile(
    rf"(?<![A-Za-z])({_ASSET}|(?i:usdt|usdc|btc|eth|xrp|doge|trx|bnb))(?![A-Za-z]|[-_]?\d)"
    r"|(比特币|比特幣|ビットコイン|以太坊|イーサリアム|泰达币|泰達幣)"
)
_EN_NUM = r"(?:\d+(?:\.\d+)?|a|an|one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty|thirty|forty|fifty|a\s+couple\s+of|a\s+few|several)"
ELAPSED = _rx(
    rf"""(?<![A-Za-z0-9.])(?:over\s+|more\s+than\s+|almost\s+|nearly\s+|about\s+)?{_EN_NUM}\+?\s?
            (?:minutes?|mins?|hours?|hrs?|h(?=\s|$|[.,!?])|(?:business\s+|working\s+)?days?|weeks?|wks?|months?)(?![A-Za-z])(?:\s+ago|\s+now)?
       | (?<![0-9.])(?:丸|もう|約|およそ|已经|已經|快|足足|整整)?第?{_NUM}\s?(?:[个個]多|[个個](?=[礼禮]拜|星期|工作)|多|余|餘)?\s?
            (?:分(?:钟|鐘|間)?(?![A-Za-z\d])|時間|小时|小時|個小時|个小时|個鐘|个钟|個鐘頭|営業日|[个個]?工作[日天]|日間?|天|週間|周(?!末|年)|週(?!末|年)|星期|禮拜|礼拜|ヶ月|か月|カ月|个月|個月)
            (?:以上|くらい|ぐらい|ほど|前|も|了|多)?
       | 半日"""
)
DEVICE = _rx(
    r"""(?<![A-Za-z])(
        iPhone\s?(?:SE(?:\s?[（(]第?\d世代[)）])?|\d{1,2}(?:\s?(?:Pro\s?Max|Pro|Plus|mini|Max))?)
      | iPad(?:\s?(?:Pro|Air|mini))?
      | (?:Samsung\s+)?Galaxy\s?[A-Z]?\d{1,3}[A-Za-z0-9]*(?:\s?(?:Ultra|Plus|\+))? | Samsung\s+[A-Z]\d{1,3}[A-Za-z0-9]*
      | Pixel\s?\d[A-Za-z0-9]*(?:\s?(?:Pro|a))? | Xperia\s?\d*[A-Za-z0-9]*(?:\s[IVX]+)?
      | (?:Xiaomi|Redmi|OnePlus|OPPO|vivo|Huawei|Honor)\s?(?:[A-Za-z]+\s?)?(?:X?\d{1,3}[A-Za-z0-9]*)(?:\s?Pro)?
      | AQUOS\s?[A-Za-z0-9]+ | らくらくホン
      | MacBook(?:\s?(?:Pro|Air))? | Mac(?![A-Za-z])
    )
    | ((?:小米|华为|華為|红米|紅米|荣耀|榮耀|三星)\s?(?:Mate\s?|P|Pura\s?|Note\s?|Galaxy\s?)?\d{1,3}[A-Za-z0-9]*(?:\s?Pro)?)"""
)
APP_VERSION = _rx(
    r"""(?:version|ver\.?|バージョン|版本|app|アプリ)\s?[:：]?\s?v?(\d+\.\d+(?:\.\d+)?)(?!\.?\d)
      | (?<![A-Za-z0-9.])(v\d+\.\d+(?:\.\d+)?)(?!\.?\d)
      | (?<![A-Za-z0-9.])(\d{1,2}\.\d{1,2}\.\d{1,3})(?!\.?\d)"""
)
_QUOTED = r"""["“”](?P<a>[^"“”\n]{2,80})["“”] | 「(?P<b>[^」\n]{2,80})」 | 『(?P<c>[^』\n]{2,80})』
    | (?<![A-Za-z])'(?P<d>[^'\n]{3,80})'(?![A-Za-z])"""
# an error cue right before the quote ("it says '...'", 报错“...”) or right after (「...」と出て)
_ERROR_BEFORE = _rx(
    r"""(?:error|err|says?|said|saying|sed|shows?|showing|popup|pop-up|warning|failed|rejected
         |throws?|returns?|writes|reads|with|because)\W{0,3}(?:an?\s+error\W{0,3})?$
      | (?:エラー|报错|報錯|提示|显示|顯示|弹出|彈出|错误|錯誤|出现|出現)\W{0,3}$"""
)
_ERROR_AFTER = _rx(
    r"^\s?(?:と|って)(?:出て|出ま|出る|表示|エラー)|^\s?(?:error|エラー|的错误|的錯誤|报错|報錯)"
)
QUOTED = _rx(_QUOTED)
ERROR_CODE = _rx(
    r"""(?<![A-Za-z])((?:error|err|エラー|错误|錯誤)\s?(?:code\s?)?[:：]?\s?[A-Z]{0,3}-?\d{2,5}(?:\s?[:：]\s?[^\n。.!?！？,，'"“”」』]{2,60})?)"""
)


@dataclass(frozen=True)
class Facts:
    """The facts found, key -> the text as the customer wrote it."""

    values: Mapping[str, str] = field(default_factory=dict)

    def __contains__(self, key: object) -> bool:
        return key in self.values

    def __bool__(self) -> bool:
        return bool(self.values)

    def get(self, key: str) -> str | None:
        """The value of ``key``, or None."""
        return self.values.get(key)

    def keys(self) -> list[str]:
        """The keys found, in :data:`FACT_KEYS` order."""
        return [k for k in FACT_KEYS if k in self.values]

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form, in :data:`FACT_KEYS` order."""
        return {k: self.values[k] for k in self.keys()}


def _first(rx: re.Pattern[str], text: str, norm: str) -> str | None:
    m = rx.search(norm)
    if m is None:
        return None
    groups = [i for i in range(1, (rx.groups or 0) + 1) if m.group(i)]
    start, end = m.span(groups[0]) if groups else m.span()
    return text[start:end].strip(" \t,，、。.")


def _error(text: str, norm: str) -> str | None:
    m = ERROR_CODE.search(norm)
    if m:
        return text[m.start(1) : m.end(1)].strip(" \t,，、。.")
    for q in QUOTED.finditer(norm):
        name = next(g for g in "abcd" if q.group(g) is not None)
        before = norm[max(0, q.start() - 30) : q.start()]
        after = norm[q.end() : q.end() + 12]
        if _ERROR_BEFORE.search(before) or _ERROR_AFTER.search(after):
            inner = text[q.start(name) : q.end(name)].strip()
            if not re.fullmatch(
                r"(?i)processing|pending|completed|success|stopped|tie|maintenance", inner
            ):
                return inner
    return None


# a duration that is not the customer's wait: "within 24 hours", "a 5 min option", 每5分钟
_NOT_WAIT_BEFORE = _rx(
    r"(?:within|in|every|next|last|per|the|of|a|under|before|up\s+to|each)\s+$|(?:每|毎|最长|最長|最大)\s?$"
)
_NOT_WAIT_AFTER = _rx(
    r"""^\s?(?:[-\s]?(?:option|expiry|candle|chart|long|short|bot|window|limit|hold|lock|cooldown|up|down|timer)
       |以内|以后|以後|之内|之內|内に|後に|后|ごと|毎|期权|期權|オプション|足|K线|K線|的期|看涨|看跌|上昇|下落
       |って(?:言|聞|お聞|書)|と(?:言|聞|書)|(?:[-\s]?(?:you|they)\s+(?:said|told|promised)))"""
)


_WAIT_BEFORE = _rx(
    r"(?:been|for|already|waiting|waited|over|than|since|もう|すでに|既に|已经|已經|等了|等咗|过去|過去|快|足足|整整)\W{0,2}$"
)
_WAIT_AFTER = _rx(
    r"^\s?(?:ago|now|later|了|経|たっ|過ぎ|すぎ|になり|前|以上|も|没|沒|还|還|仲|都|なのに)"
)


def _elapsed(text: str, norm: str) -> str | None:
    """The customer's wait: the first duration with a waiting cue ("it's been 3 days", 等了两天,
    もう1週間), else the first that is not a rule or a product ("within 24 hours", a 5 min
    option)."""
    kept = []
    for m in ELAPSED.finditer(norm):
        if _NOT_WAIT_BEFORE.search(norm[max(0, m.start() - 12) : m.start()]):
            continue
        if _NOT_WAIT_AFTER.search(norm[m.end() : m.end() + 12]):
            continue
        waiting = _WAIT_BEFORE.search(
            norm[max(0, m.start() - 12) : m.start()]
        ) or _WAIT_AFTER.search(norm[m.end() : m.end() + 6])
        kept.append((not waiting, m.start(), m.end()))
    if not kept:
        return None
    _, start, end = min(kept)
    value = text[start:end].strip(" \t,，、。.")
    return _WAIT_WORDS.sub("", value).strip() or value


# words around a duration that are not part of it: 已经三天了 -> 三天, もう1週間も -> 1週間
_WAIT_WORDS = re.compile(r"^(?:已经|已經|快|足足|整整|もう|約|およそ)|(?:了|も)$")


def _amount(text: str, norm: str) -> str | None:
    for m in AMOUNT.finditer(norm):
        value = text[m.start() : m.end()].strip(" \t,，、。.")
        if re.search(r"\d|[一二两兩三四五六七八九十百千万萬]", value):
            return value
    return None


def _from_text(text: str) -> dict[str, str]:
    norm = to_halfwidth(text)
    assert len(norm) == len(text)
    found: dict[str, str | None] = {
        "withdrawal_id": _first(WITHDRAWAL_ID, text, norm),
        "txid": _first(TXID, text, norm),
        "order_id": _first(ORDER_ID, text, norm),
        "network": _first(NETWORK, text, norm),
        "asset": _first(ASSET, text, norm),
        "amount": _amount(text, norm),
        "elapsed": _elapsed(text, norm),
        "device": _first(DEVICE, text, norm),
        "app_version": _first(APP_VERSION, text, norm),
        "error_message": _error(text, norm),
    }
    if found["order_id"] and found["order_id"] == found["withdrawal_id"]:
        found["order_id"] = None
    return {k: v for k, v in found.items() if v}


def extract_facts(message: str, thread: Sequence[_Turn] = ()) -> Facts:
    """The facts in ``message`` plus those only the customer's earlier turns give."""
    values = _from_text(message or "")
    for turn in reversed(list(thread)):
        if turn.role != "customer" or not turn.text:
            continue
        for k, v in _from_text(turn.text).items():
            values.setdefault(k, v)
    return Facts({k: values[k] for k in FACT_KEYS if k in values})


def _same(found: str, labelled: str) -> bool:
    a, b = (re.sub(r"\s+", "", to_halfwidth(x)).lower() for x in (found, labelled))
    return bool(a and b) and (a in b or b in a)


def fact_scores(items: Iterable[Any]) -> dict[str, dict[str, float]]:
    """Per key: labelled, found, right (the value overlaps the label), precision and recall,
    over labelled messages (``message``, ``thread``, ``facts``)."""
    counts = {k: {"labelled": 0, "found": 0, "right": 0} for k in FACT_KEYS}
    for item in items:
        got = extract_facts(item.message, item.thread).values
        gold: Mapping[str, str] = item.facts
        for k in FACT_KEYS:
            counts[k]["labelled"] += k in gold
            counts[k]["found"] += k in got
            counts[k]["right"] += k in gold and k in got and _same(got[k], gold[k])
    out: dict[str, dict[str, float]] = {}
    for k, c in counts.items():
        out[k] = {
            **{n: float(v) for n, v in c.items()},
            "precision": round(c["right"] / c["found"], 3) if c["found"] else 1.0,
            "recall": round(c["right"] / c["labelled"], 3) if c["labelled"] else 1.0,
        }
    return out
