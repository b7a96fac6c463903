"""Simplified and Traditional Chinese: detect Traditional text, convert either way (OpenCC,
offline tables inside the wheel).

Customers in Taiwan and Hong Kong write Traditional characters and their own words
(提領, 帳戶, 入金). Retrieval and the learned heads read Traditional text converted to
mainland Simplified (``tw2sp``: characters and phrases); replies go back with ``s2twp``.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

_lock = threading.Lock()

# Characters whose Traditional and Simplified forms differ and that are common in support
# messages; a text is Traditional when these outnumber their Simplified counterparts.
_TRADITIONAL = frozenset(
    "這個們來為麼會說時還進過對點現發開關問題應該帳戶號碼實際錢幣轉賬換請認證處理費續協議內確誤訊線"
    "機構資產輸銀給務讓買賣單當後與從質詢頁體戶總權隊議導應據屬嗎裡麼聽幫幾晝"
)
_SIMPLIFIED = frozenset(
    "这个们来为么会说时还进过对点现发开关问题应该账户号码实际钱币转账换请认证处理费续协议内确误讯线"
    "机构资产输银给务让买卖单当后与从质询页体户总权队议导应据属吗里么听帮几昼"
)


@cache
def _converter(config: str) -> Any:
    import opencc

    return opencc.OpenCC(config)


def traditional_share(text: str) -> float:
    """Share of the distinguishing characters in ``text`` that are Traditional (0 when none)."""
    trad = sum(1 for ch in text if ch in _TRADITIONAL and ch not in _SIMPLIFIED)
    simp = sum(1 for ch in text if ch in _SIMPLIFIED and ch not in _TRADITIONAL)
    return trad / (trad + simp) if trad + simp else 0.0


def is_traditional(text: str) -> bool:
    """True when ``text`` is written in Traditional characters."""
    return traditional_share(text) > 0.5


def to_simplified(text: str) -> str:
    """Traditional (Taiwan/Hong Kong) text in mainland Simplified characters and words."""
    with _lock:
        return str(_converter("tw2sp").convert(text))


# words s2twp gets wrong in our replies, by segmenting across them or by a Taiwan word of
# another meaning: 注销 (closing an account) is not 登出 ("log out"), 回复本消息 is not 回複本
# ("a duplicate"), 限价单只会 is not 單隻 (a measure word), a code (an anti-phishing or an
# error code) is no 程式碼 (program code). Each is kept out of the conversion (a private-use placeholder)
# and written in its Traditional form.
_KEEP = {
    "注销": "註銷",
    "回复": "回覆",
    "只会": "只會",
    "只能": "只能",
    "代码": "代碼",
    "禁用": "禁用",  # the menu's word ("Disable account"), not Taiwan's 停用
    "天后": "天後",  # "14 days later", not 天后 the goddess
    # mainland Traditional forms s2twp leaves, or a Taiwan word of another register: the
    # blind reviews of stop 27 read 賬戶, 平臺 and 稽核 (an audit) as odd in a support reply
    "账户": "帳戶",
    "账号": "帳號",
    "审核": "審核",
    "平台": "平台",
}
_PLACEHOLDERS = {word: chr(0xE000 + i) for i, word in enumerate(_KEEP)}


def to_traditional(text: str) -> str:
    """Simplified text in Traditional characters with Taiwan words (``_KEEP`` as written)."""
    for word, mark in _PLACEHOLDERS.items():
        text = text.replace(word, mark)
    with _lock:
        out = str(_converter("s2twp").convert(text))
    for word, mark in _PLACEHOLDERS.items():
        out = out.replace(mark, _KEEP[word])
    return out


def simplified_same_length(text: str) -> str:
    """``text`` in Simplified characters, character for character (offsets unchanged); the text
    itself when a conversion would change its length."""
    with _lock:
        out = str(_converter("t2s").convert(text))
    return out if len(out) == len(text) else text
