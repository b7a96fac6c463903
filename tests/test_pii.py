"""PII detection and reversible masking (used before any remote LLM call)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copilot.text.normalize import fold_case
from copilot.text.pii import Masked, cn_id_ok, find_pii, luhn_ok, mask, unmask

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
        ("IBAN NO93 8601 1117 947 (Norway)", "IBAN", "NO93 8601 1117 947"),  # 15: the shortest
        ("身份证 110105199003074512", "NATIONAL_ID", "110105199003074512"),
        ("個人番号 3719 2846 5021", "NATIONAL_ID", "3719 2846 5021"),
        # a check digit of 0 from a remainder of 1 (no ID word: the check digit decides)
        ("number 9139 0996 0300 here", "NATIONAL_ID", "9139 0996 0300"),
        # a wrong check digit, but "My Number" 23 characters before (the window is 30)
        ("My Number on the card: 3719 2846 5027", "NATIONAL_ID", "3719 2846 5027"),
        ("call +46 8 123 456 today", "PHONE", "+46 8 123 456"),  # 9 digits: the shortest
        ("ip 10.0.0.255 logged", "IP", "10.0.0.255"),  # 255 is a valid part
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


def test_values_written_together_are_all_masked() -> None:
    """The phone number only shows as one once the address before it is a placeholder:
    masking runs again on its own output."""
    masked = mask("reach me at ken@mail.test+447700900123 please")
    assert masked.text == "reach me at [EMAIL_1][PHONE_1] please"
    assert masked.mapping == {"[EMAIL_1]": "ken@mail.test", "[PHONE_1]": "+447700900123"}


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


# ---- card numbers: every length a card can have (13-19 digits), and none other ----------------
def _luhn_complete(body: str) -> str:
    """``body`` plus the check digit that makes it pass Luhn (computed independently here)."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # these digits are doubled once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


CARDS = {
    13: "4222222222222",  # old 13-digit Visa (a published test number)
    14: "30569309025904",  # Diners Club
    15: "378282246310005",  # American Express
    16: "4111111111111111",  # Visa
    17: _luhn_complete("4000000000000000"),
    18: _luhn_complete("62120000000000000"),  # UnionPay 18
    19: _luhn_complete("621700000000000000"),  # UnionPay 19
}


def test_card_examples_are_valid_and_of_their_length() -> None:
    for length, number in CARDS.items():
        assert len(number) == length and luhn_ok(number), (length, number)
    assert _luhn_complete("411111111111111") == "4111111111111111"


def _groups(number: str, sizes: tuple[int, ...], sep: str) -> str:
    out, pos = [], 0
    for size in sizes:
        out.append(number[pos : pos + size])
        pos += size
    return sep.join(out + ([number[pos:]] if pos < len(number) else []))


@pytest.mark.parametrize("length", sorted(CARDS))
@pytest.mark.parametrize("form", ["plain", "spaced", "dashed"])
def test_cards_of_every_length_are_found_masked_and_blocked(length: int, form: str) -> None:
    from copilot.guard.guardrail import PolicyGuardrail
    from copilot.guard.policy import load_policy
    from copilot.settings import get_settings

    number = CARDS[length]
    if form != "plain":
        sizes = (4, 6) if length == 15 else (4, 4, 4)  # Amex is printed 4-6-5
        number = _groups(number, sizes, " " if form == "spaced" else "-")
    text = f"We can see {number} in the request."
    spans = find_pii(text)
    assert [(s.kind, s.value) for s in spans] == [("CARD", number)]
    masked = mask(text)
    assert masked.text == "We can see [CARD_1] in the request."
    assert masked.mapping == {"[CARD_1]": number}
    guard = PolicyGuardrail(load_policy(get_settings().policy_file), knowledge_dir=None)
    verdict = guard.check(text, language="en")
    leaks = [v for v in verdict.violations if v.rule == "pii_leak"]
    assert verdict.verdict == "reject" and [v.excerpt for v in leaks] == [number]


def test_amex_is_a_card_in_every_layout() -> None:
    for text in ("Amex 378282246310005", "Amex 3782 822463 10005", "Amex 3782-822463-10005"):
        assert [s.kind for s in find_pii(text)] == ["CARD"], text
    assert mask("card 371449635398431 declined").text == "card [CARD_1] declined"


@pytest.mark.parametrize(
    "number",
    [
        _luhn_complete("41111111111"),  # 12 digits
        _luhn_complete("4111111111111111111"),  # 20 digits
    ],
)
def test_twelve_and_twenty_digit_numbers_are_not_cards(number: str) -> None:
    from copilot.guard.guardrail import PolicyGuardrail
    from copilot.guard.policy import load_policy
    from copilot.settings import get_settings

    assert luhn_ok(number) and len(number) in (12, 20)
    text = f"Reference {number} is noted."
    assert all(s.kind != "CARD" for s in find_pii(text)), find_pii(text)
    assert "[CARD_" not in mask(text).text
    guard = PolicyGuardrail(load_policy(get_settings().policy_file), knowledge_dir=None)
    assert "pii_leak" not in guard.check(text, language="en").rules


# ---- Chinese resident ID numbers: check character, or an ID word nearby ------------------------
VALID_CN_ID = "440306199105213318"  # check character right
VALID_CN_ID_X = "11010519491231002X"  # check character X
BAD_CN_ID = "110105199003074512"  # the shape, but the check character is wrong


def test_cn_id_checksum_examples() -> None:
    assert cn_id_ok(VALID_CN_ID) and cn_id_ok(VALID_CN_ID_X) and cn_id_ok(VALID_CN_ID_X.lower())
    assert not cn_id_ok(BAD_CN_ID)


@pytest.mark.parametrize(
    "text",
    [
        f"号码 {VALID_CN_ID} 已收到",  # no ID word: the checksum alone decides
        f"Reference {VALID_CN_ID_X} noted",
        f"身份证 {VALID_CN_ID}",
        f"参考编号{VALID_CN_ID_X.lower()}。",
    ],
)
def test_cn_id_with_a_valid_check_character_is_always_a_national_id(text: str) -> None:
    spans = find_pii(text)
    assert [s.kind for s in spans] == ["NATIONAL_ID"]
    assert "[ID_1]" in mask(text).text


@pytest.mark.parametrize(
    "text",
    [
        f"身份证 {BAD_CN_ID}",
        f"身分證號碼：{BAD_CN_ID}",
        f"The customer's ID number is {BAD_CN_ID}.",
        f"resident ID card {BAD_CN_ID}",
        f"号码{BAD_CN_ID}是我的身份证号",  # the ID word after the number
    ],
)
def test_cn_id_with_a_wrong_check_character_is_masked_near_an_id_word(text: str) -> None:
    assert [(s.kind, s.value) for s in find_pii(text)] == [("NATIONAL_ID", BAD_CN_ID)]
    assert BAD_CN_ID not in mask(text).text


@pytest.mark.parametrize(
    "text",
    [
        f"参考编号 {BAD_CN_ID} 已记录",
        f"Reference {BAD_CN_ID} noted",
        f"身份证 ............................................ {BAD_CN_ID}",  # word too far
    ],
)
def test_cn_id_with_a_wrong_check_character_and_no_id_word_is_a_plain_number(text: str) -> None:
    assert find_pii(text) == []
    assert mask(text).text == text


def test_guardrail_pii_leak_follows_the_cn_id_decision() -> None:
    from copilot.guard.guardrail import PolicyGuardrail
    from copilot.guard.policy import load_policy
    from copilot.settings import get_settings

    guard = PolicyGuardrail(load_policy(get_settings().policy_file), knowledge_dir=None)

    def leaks(draft: str) -> list[str]:
        return [
            v.excerpt for v in guard.check(draft, language="zh").violations if v.rule == "pii_leak"
        ]

    assert leaks(f"参考编号 {VALID_CN_ID} 已记录。") == [VALID_CN_ID]
    assert leaks(f"您的身份证号 {BAD_CN_ID} 已核对。") == [BAD_CN_ID]
    assert leaks(f"参考编号 {BAD_CN_ID} 已记录。") == []
