"""Query language detection: kana means Japanese, Han only means Chinese, default English."""

from __future__ import annotations

import pytest

from copilot.text.language import detect_language


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my withdrawal is stuck", "en"),
        ("2FA lost", "en"),
        ("", "en"),
        ("出金が反映されない", "ja"),  # kana
        ("USDTをwithdrawしたい", "ja"),  # mixed with English
        ("パスワード", "ja"),  # katakana only
        ("提现还没到账", "zh"),  # Han only
        ("USDT提现手续费多少", "zh"),
        ("帳戶被凍結了嗎", "zh"),  # Traditional Chinese is still zh
        ("出金手続済", "ja"),  # Han only, but Japanese-only kanji forms (続, 済)
        ("我の账户被锁了，请帮我看看是什么问题", "zh"),  # one stylised kana in Chinese text
    ],
)
def test_detect_language(text: str, expected: str) -> None:
    assert detect_language(text) == expected


def test_default_is_configurable() -> None:
    assert detect_language("1234 !!", default="ja") == "ja"
    assert detect_language("1234 !!") == "en"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("出金 手数料", "ja"),
        ("入金反映", "ja"),
        ("入金確認", "ja"),
        ("出金手续费多少", "zh"),
        ("提现手续费", "zh"),
        # Traditional Chinese and Cantonese that use 入金 (v10 review: both answered in ja)
        ("請問用TRC20入金USDT要幾個確認才會入帳？", "zh"),
        ("我喺香港用銀行轉帳入金，已經兩個工作天都未到，正常要幾耐？", "zh"),
    ],
)
def test_kanji_only_japanese_words(text: str, expected: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize(
    ("simplified", "traditional", "wrong"),
    [
        ("注销账户后数据保存5年", "註銷帳戶", "登出"),  # closing an account, not "log out"
        ("请回复本消息", "請回覆本訊息", "回複"),  # not 複本, "a duplicate"
        ("限价单只会以指定价格成交", "限價單只會", "隻"),  # not the measure word
        ("邮件中是否显示该代码", "該代碼", "程式碼"),  # not program code
        ("错误代码 E1023", "錯誤代碼", "程式碼"),
        ("账户 > 安全 > “禁用账户”", "“禁用帳戶”", "停用"),  # the menu's own word
        ("代金券14天后过期", "14天後", "天后"),
        ("您的账户正在审核中", "您的帳戶正在審核中", "稽核"),  # not an audit; not 賬戶
        ("请在平台上查看账号设置", "平台上檢視帳號", "平臺"),
    ],
)
def test_replies_in_traditional_keep_the_words_s2twp_gets_wrong(
    simplified: str, traditional: str, wrong: str
) -> None:
    from copilot.text.chinese import to_traditional

    out = to_traditional(simplified)
    assert traditional in out and wrong not in out
    assert to_traditional("一只币") == "一隻幣"  # the measure word itself is still converted


def test_cantonese_without_the_common_traditional_characters_is_traditional() -> None:
    """「聽日下晝」「幫我」: written Cantonese is Traditional even when none of the usual
    distinguishing characters (這, 個, 們) appear, so the reply is converted for it."""
    from copilot.text.chinese import is_traditional

    assert is_traditional("咁即係要聽日下晝先可以出金？可唔可以通融下幫我提早放？")
    assert not is_traditional("明天下午才能提币吗？能不能帮我提前放？")
