"""PII detection and reversible masking (used before any remote LLM call)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copilot.pii import Masked, find_pii, fold_case, luhn_ok, mask, unmask

TX = "0x" + "ab" * 32
ETH = "0x" + "1f" * 20


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Write to ken.t@gmail.com please", "EMAIL", "ken.t@gmail.com"),
        ("邮箱是wangli_1988@qq.com。", "EMAIL", "wangli_1988@qq.com"),
        ("card 4539 1488 0343 6467 was used", "CARD", "4539 1488 0343 6467"),
        ("call +44 7700 900123 now", "PHONE", "+44 7700 900123"),
        ("電話は090-1234-5678です", "PHONE", "090-1234-5678"),
        ("手机13812345678", "PHONE", "13812345678"),
        ("mobile: 07700 900461", "PHONE", "07700 900461"),
        (f"send to {ETH} please", "WALLET", ETH),
        (
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq is mine",
            "WALLET",
            "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
        ),
        ("TRON TJRabPrwbZy45sbavfcjinPJC18kjpRTv8", "WALLET", "TJRabPrwbZy45sbavfcjinPJC18kjpRTv8"),
        (f"TxID {TX}", "TXID", TX),
        ("TxID: 8f2c41d07be3aa", "TXID", "8f2c41d07be3aa"),
        ("order ID: ORD-2024-88812 failed", "ORDER", "ORD-2024-88812"),
        ("withdrawal ID 88123456", "ORDER", "88123456"),
        ("注文番号 A12345678 の件", "ORDER", "A12345678"),
        ("IBAN DE44 5001 0517 5407 3249 31", "IBAN", "DE44 5001 0517 5407 3249 31"),
        ("身份证 110105199003074512", "NATIONAL_ID", "110105199003074512"),
        ("個人番号 3719 2846 5021", "NATIONAL_ID", "3719 2846 5021"),
        ("SSN 460-89-9847", "NATIONAL_ID", "460-89-9847"),
        ("key sk-abcdefghijklmnopqrstuvwxyz12", "SECRET", "sk-abcdefghijklmnopqrstuvwxyz12"),
        ("ip 192.168.10.1 logged", "IP", "192.168.10.1"),
        ("ｋｅｎ＠ｇｍａｉｌ．ｃｏｍ", "EMAIL", "ｋｅｎ＠ｇｍａｉｌ．ｃｏｍ"),
    ],
)
def test_find_pii_kinds_and_spans(text: str, kind: str, value: str) -> None:
    spans = find_pii(text)
    assert [(s.kind, s.value) for s in spans] == [(kind, value)]
    assert text[spans[0].start : spans[0].end] == value


@pytest.mark.parametrize(
    "text",
    [
        "your card ending in 4821",
        "masked k***@example.com only",
        "limit 1,000,000 USDT, fee 0.0002 BTC, 1-3 business days, 2026-11-20",
        "4539 1488 0343 6468",  # fails Luhn
        "SSN 666-12-3456",
        "ip 999.1.1.1",
        "order history under Orders > Order History",
        "",
    ],
)
def test_find_pii_hard_negatives(text: str) -> None:
    assert find_pii(text) == []


def test_luhn() -> None:
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")


def test_mask_and_unmask_round_trip_with_stable_placeholders() -> None:
    text = f"Mail ken@gmail.com or +44 7700 900123; card 4111 1111 1111 1111; {ETH}; TxID {TX}; order ID 88123456; ken@gmail.com again"
    masked = mask(text)
    assert isinstance(masked, Masked)
    for placeholder in (
        "[EMAIL_1]",
        "[PHONE_1]",
        "[CARD_1]",
        "[WALLET_1]",
        "[TXID_1]",
        "[ORDER_1]",
    ):
        assert placeholder in masked.text
    assert "ken@gmail.com" not in masked.text and "4111" not in masked.text
    assert masked.text.count("[EMAIL_1]") == 2 and "[EMAIL_2]" not in masked.text
    assert masked.mapping["[EMAIL_1]"] == "ken@gmail.com"
    assert unmask(masked.text, masked.mapping) == text
    assert find_pii(masked.text) == []


def test_mask_numbers_placeholders_per_kind_and_avoids_existing_ones() -> None:
    masked = mask("a@b.co and c@d.co, already [EMAIL_1] in text")
    assert masked.mapping == {"[EMAIL_2]": "a@b.co", "[EMAIL_3]": "c@d.co"}
    assert unmask(masked.text, masked.mapping) == "a@b.co and c@d.co, already [EMAIL_1] in text"


def test_unmask_leaves_unknown_placeholders_and_text_without_pii() -> None:
    assert unmask("Hi [EMAIL_9] and [CARD_1]", {"[CARD_1]": "4111"}) == "Hi [EMAIL_9] and 4111"
    assert mask("no personal data here").mapping == {}
    assert mask("no personal data here").text == "no personal data here"


def test_draft_uses_placeholders_that_unmask_restores() -> None:
    masked = mask("My e-mail is ken@gmail.com and my order ID is ORD-123456.")
    draft = "Thanks, I'll send the update to [EMAIL_1] about [ORDER_1]."
    assert (
        unmask(draft, masked.mapping)
        == "Thanks, I'll send the update to ken@gmail.com about ORD-123456."
    )


def test_fold_case_keeps_escapes_and_group_syntax() -> None:
    assert (
        fold_case(r"\bFoo\S(?P<Name>BAR)(?i:X)\N{LATIN SMALL LETTER A}")
        == r"\bfoo\S(?P<Name>bar)(?i:x)\N{LATIN SMALL LETTER A}"
    )


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_mask_never_raises_and_round_trips(text: str) -> None:
    masked = mask(text)
    assert unmask(masked.text, masked.mapping) == text
    for span in find_pii(text):
        assert 0 <= span.start < span.end <= len(text)
        assert text[span.start : span.end] == span.value
