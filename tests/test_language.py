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
