"""Language detection for en/ja/zh: kana means Japanese, Han without kana means Chinese."""

from __future__ import annotations

import re

LANGUAGES = ("en", "ja", "zh")

_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")

# Kanji written only in Japanese (shinjitai and kokuji whose Simplified and Traditional
# Chinese forms differ), and characters written only in Simplified Chinese. They decide
# the language of a Han-only text such as "出金手続き済" (no kana) or "账户被冻结".
_JA_ONLY = frozenset(
    "払込済証続気変図読単発転関円様戻売両検験処歳労働拠乗剰浄権険駅録覧択銭帰"
    "辺鉄従経絵継縦悩悪斎涙歩毎黒齢総応営栄桜沢満蔵"
)
_ZH_ONLY = frozenset(
    "这们么为时说还过现钱请账设认证验币转换应该吗呢让给对银码户发单关气变图读"
    "济样卖买两检处岁劳乘剩权险驿录览择归边铁从经绘继纵恼恶涨额冻结"
    "问题吧啊呀间网线务态审绑钥输错锁续费货资产"
)

# Traditional Chinese and Cantonese characters that Japanese writes differently or never
# (會/会, 說/説, 轉/転, 嘅, 喺): a Traditional Han-only text such as 「用TRC20入金要幾個確認才會入帳」
# is Chinese although 入金 is also a Japanese word.
_HANT_ONLY = frozenset(
    "們這麼說錢證驗轉經應嗎呢會讓對發單關氣變圖讀濟樣賣兩檢處歲勞乘剩權險錄覽擇歸邊鐵從"
    "繪繼縱惱惡漲綁鑰產號戶體續嘅喺咗唔冇啲咁嚟睇佢哋嘢乜咩嗰"
)

# Kanji-only words that are Japanese rather than Chinese in a support chat (出金 = withdrawal).
_JA_WORDS = ("手数料", "出金", "入金", "口座", "残高", "振込", "解約", "約定", "問合", "機種変")


def detect_language(text: str, default: str = "en") -> str:
    """``ja`` if the text has kana, ``zh`` if it has Han characters but no kana, else ``default``.

    A few kana in a mostly Chinese text (e.g. a quoted brand) do not make it Japanese:
    kana must be at least 10% of the Han+kana characters. A Han-only text is Japanese
    when it has more Japanese-only kanji forms (払, 済, 続) and words (手数料, 出金) than
    Simplified- or Traditional-only characters (这, 账, 續, 會, 嘅).
    """
    kana = len(_KANA.findall(text))
    han_chars = _HAN.findall(text)
    han = len(han_chars)
    if kana and kana * 10 >= kana + han:
        return "ja"
    if han:
        if not kana:
            ja_only = sum(1 for c in han_chars if c in _JA_ONLY)
            ja_only += sum(text.count(w) for w in _JA_WORDS)
            zh_only = sum(
                1 for c in han_chars if (c in _ZH_ONLY or c in _HANT_ONLY) and c not in _JA_ONLY
            )
            if ja_only > zh_only:
                return "ja"
        return "zh"
    return default
