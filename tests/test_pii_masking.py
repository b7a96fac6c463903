"""What masking hides before a remote call (find_sensitive, Vault): names in en/ja/zh, CVVs,
seed phrases, obfuscated e-mails and phones, exchange ids; what it leaves alone; and its
properties over any text (Hypothesis)."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copilot.draft.masking import PiiVault
from copilot.draft.types import DraftRequest, Turn
from copilot.text import pii_extra
from copilot.text.names import find_names, name_parts
from copilot.text.pii import CUSTOMER_NAME, Vault, find_pii, find_sensitive, mask, unmask

SEED = "legal winner thank year wave sausage worth useful legal winner thank yellow"


def kinds(text: str) -> list[tuple[str, str]]:
    return [(s.kind, s.value) for s in find_sensitive(text)]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Dear Mr. Tanaka, thank you for waiting.", "Tanaka"),
        ("Hi Ken,\nmy withdrawal is stuck", "Ken"),
        ("Hello, my name is Ken Tanaka and I need help", "Ken Tanaka"),
        ("my name is lena andersson.", "lena andersson"),
        ("Her maiden name is Clark", "Clark"),
        ("I'd like to join accounts with ms. Quinzia", "Quinzia"),
        ("Mr. Pálffy is 19", "Pálffy"),
        ("Please help.\n\nRegards,\nJohn Smith", "John Smith"),
        ("Please help, it is urgent.\nThanks, Alice", "Alice"),
        ("Janka M. Szász\n\nNetwork and cloud engineer", "Janka M. Szász"),
        ("出金が遅れています。\n山田と申します。", "山田"),
        ("山田太郎様\n\nお問い合わせありがとうございます。", "山田太郎"),
        ("田中さんから電話がありました。", "田中"),
        ("私は佐藤です。", "佐藤"),
        ("氏名：鈴木一郎\n出金したい", "鈴木一郎"),
        ("我叫李明，我的提现还没到账", "李明"),
        ("王女士您好，", "王"),
        ("李明您好，您的提现已处理。", "李明"),
        ("尊敬的张伟先生：", "张伟"),
        ("谢谢\n赵先生", "赵"),
    ],
)
def test_names_found_by_their_cue(text: str, name: str) -> None:
    assert [text[s:e] for s, e in find_names(text)] == [name]
    assert ("NAME", name) in kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "Hi there, I have a question about Tier 2 limits.",
        "Dear Support Team,\nmy deposit is missing",
        "Dear Data Protection Team,\n\nplease delete my data",
        "I am unable to log in since 2024-09-11 10:30 JST.",
        "Go to Assets > Withdraw > History, then tap Details.",
        "I'm Japanese and I live in Tokyo.",
        "お客様各位、皆さん、担当者様",
        "同様に、仕様の変更についてご本人様確認が必要です。",
        "管理者様\n\nいつもお世話になっております。",
        "我是管理员让我来问的",
        "能否先下载本人全部个人资料留档？",
        "各位先生，您好",
        "問題です。確認してください。",
    ],
)
def test_ordinary_text_has_no_names(text: str) -> None:
    assert find_names(text) == []


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("my CVV is 829", "CVV", "829"),
        ("CVC: 4567, expiry 09/27", "CVV", "4567"),
        ("security code 123", "CVV", "123"),
        ("セキュリティコード 123 です", "CVV", "123"),
        ("安全码：321", "CVV", "321"),
        ("bob at gmail dot com", "EMAIL", "bob at gmail dot com"),
        ("bob(at)gmail[.]com", "EMAIL", "bob(at)gmail[.]com"),
        ("mail kwatanabe (at) fastmail [dot] jp now", "EMAIL", "kwatanabe (at) fastmail [dot] jp"),
        ("ken88 at yahoo.co.jp", "EMAIL", "ken88 at yahoo.co.jp"),
        ("bob @ gmail . com", "EMAIL", "bob @ gmail . com"),
        ("ｂｏｂ（ａｔ）ｇｍａｉｌ．ｃｏｍ", "EMAIL", "ｂｏｂ（ａｔ）ｇｍａｉｌ．ｃｏｍ"),
        ("call 0 9 0 1 2 3 4 5 6 7 8", "PHONE", "0 9 0 1 2 3 4 5 6 7 8"),
        ("call +81 90-4821-7731", "PHONE", "+81 90-4821-7731"),
        ("电话 +86 138-1234-5678", "PHONE", "+86 138-1234-5678"),
        ("０９０ー１２３４ー５６７８に電話", "PHONE", "０９０ー１２３４ー５６７８"),
        ("Phone: 451 5986", "PHONE", "451 5986"),
        ("withdrawal W2409110023 pending", "ORDER", "W2409110023"),
        ("UID: 88123456", "ORDER", "88123456"),
        ("TxID: 3a1f9c0d2b7e4f6a8c9d", "TXID", "3a1f9c0d2b7e4f6a8c9d"),
        (
            "交易哈希 5hG7kQ2vNwXy8RzT3mPaLc9DfUe4BsJ6WnYq",
            "TXID",
            "5hG7kQ2vNwXy8RzT3mPaLc9DfUe4BsJ6WnYq",
        ),
    ],
)
def test_masking_only_kinds(text: str, kind: str, value: str) -> None:
    assert kinds(text) == [(kind, value)]


def test_seed_phrases_of_12_to_24_words_in_any_layout() -> None:
    words = SEED.split()
    for n in (12, 15, 18, 21, 24):
        phrase = " ".join((words * 2)[:n])
        assert kinds(f"here it is: {phrase}") == [("SEED", phrase)]
    numbered = " ".join(f"{i}. {w}" for i, w in enumerate(words, 1))
    assert [k for k, _ in kinds(f"my words:\n{numbered}")] == ["SEED"]
    assert [k for k, _ in kinds(", ".join(w.upper() for w in words))] == ["SEED"]
    # eleven words are not a seed phrase; ordinary English never runs twelve list words
    assert kinds(" ".join(words[:11])) == []
    assert kinds("I tried to withdraw my funds but the app shows an error about the network") == []


def test_the_bip39_list_is_the_published_one() -> None:
    path = pii_extra._DATA / "bip39_english.txt"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == (
        "2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda"
    )
    assert len(pii_extra.bip39_words()) == 2048


@pytest.mark.parametrize(
    "text",
    [
        "I sent 1,000,000 USDT on 2024-09-11 at 10:30, fee 0.0002 BTC.",
        "Tier 2 limit is 50,000 USDT per day; 1-3 business days.",
        "Open 09:00-18:00 JST, Mon-Fri. Ticket updated 2026/11/20 14:05.",
        "Settings > Security > 2FA, then Assets > Withdraw.",
        "logged in at binance.com and at 10:30 again",
        "JPY1000000 deposit and 0.5 BTC",
        "出金は1〜3営業日、手数料は0.0005 BTCです。",
        "提现手续费为 1 USDT，预计 30 分钟到账。",
        "build 20240911, app 3.2.1",
    ],
)
def test_ordinary_text_is_not_masked(text: str) -> None:
    assert find_sensitive(text) == []
    assert mask(text).text == text


def test_find_pii_is_unchanged_by_the_masking_kinds() -> None:
    """The guardrail and the input flags read find_pii: names, CVVs and seeds are not in it."""
    text = f"Dear Mr. Tanaka, CVV 829, bob at gmail dot com, seed {SEED}"
    assert find_pii(text) == []
    assert {s.kind for s in find_sensitive(text)} == {"NAME", "CVV", "EMAIL", "SEED"}


def test_vault_masks_a_name_everywhere_once_it_is_known() -> None:
    texts = ["Hello, my name is Ken Tanaka.", "Tanaka-san called twice.", "KEN TANAKA wrote"]
    vault = Vault.for_texts(texts, customer_name="Ken Tanaka")
    masked = [vault.mask(t) for t in texts]
    assert masked[0] == f"Hello, my name is {CUSTOMER_NAME}."
    assert masked[1].startswith("[NAME_") and "Tanaka" not in masked[1]
    assert "KEN" not in masked[2] and "TANAKA" not in masked[2]
    assert [vault.restore(m) for m in masked] == texts
    assert name_parts("Ken Tanaka") == ["Ken Tanaka", "Ken", "Tanaka"]
    assert name_parts("山田太郎") == ["山田太郎", "山田"]


def test_vault_never_reuses_a_placeholder_the_texts_already_hold() -> None:
    texts = ["I literally typed [EMAIL_1] and [CUSTOMER_NAME]", "mail me at a@b.co"]
    vault = Vault.for_texts(texts, customer_name="Ann Lee")
    masked = [vault.mask(t) for t in texts]
    assert masked[0] == texts[0]
    assert masked[1] == "mail me at [EMAIL_2]"
    assert vault.mask("Ann Lee") == "[NAME_1]"
    assert [vault.restore(m) for m in masked] == texts


def test_vault_remask_hides_known_values_and_anything_new() -> None:
    vault = Vault.for_texts(["card 4111 1111 1111 1111"])
    vault.mask("card 4111 1111 1111 1111")
    out = vault.remask("We saw 4111 1111 1111 1111; write to bob at gmail dot com")
    assert out == "We saw [CARD_1]; write to [EMAIL_1]"


def test_pii_vault_masks_message_note_and_thread_with_one_numbering() -> None:
    request = DraftRequest(
        "My name is Kenji Watanabe, mail kenji@mail.test, CVV 829",
        customer_name="Kenji Watanabe",
        agent_note="Watanabe-san confirmed kenji@mail.test",
        history=[Turn("customer", "Regards,\nKenji")],
    )
    vault = PiiVault.build(request, request.customer_message)
    assert vault.message == "My name is [CUSTOMER_NAME], mail [EMAIL_1], CVV [CVV_1]"
    assert "Watanabe" not in vault.agent_note and "[EMAIL_1]" in vault.agent_note
    assert "Kenji" not in vault.history[0].text
    assert vault.restore("Hi [CUSTOMER_NAME], [EMAIL_1]", "Kenji") == "Hi Kenji, kenji@mail.test"
    assert vault.remask("Hi Kenji Watanabe, CVV 829") == "Hi [CUSTOMER_NAME], CVV [CVV_1]"


# ---- properties over any text -----------------------------------------------------------------
FRAGMENTS = [
    "Dear Mr. Tanaka,",
    "my name is Ken Tanaka.",
    "山田と申します。",
    "我叫李明，",
    "王女士您好",
    "ken@gmail.com",
    "bob at gmail dot com",
    "bob(at)gmail[.]com",
    "+81 90-4821-7731",
    "０９０ー１２３４ー５６７８",
    "4539 1488 0343 6467",
    "CVV 829",
    "DE44 5001 0517 5407 3249 31",
    "個人番号 3719 2846 5029",
    "身份证 110105198805122013",
    SEED,
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "TxID 0x" + "ab" * 32,
    "W2409110023",
    "1,000 USDT on 2024-09-11 10:30",
    "Assets > Withdraw",
    "Tier 2",
    "\n",
    " ",
    "、",
]
mixed = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=12), max_size=10).map("".join)
no_placeholders = (st.text() | mixed).filter(lambda t: "[" not in t)


@settings(max_examples=250, deadline=None)
@given(text=st.text() | mixed)
def test_spans_are_valid_offsets(text: str) -> None:
    spans = find_sensitive(text)
    for a, b in itertools.pairwise(spans):
        assert a.end <= b.start
    for span in spans:
        assert 0 <= span.start < span.end <= len(text)
        assert text[span.start : span.end] == span.value


@settings(max_examples=250, deadline=None)
@given(text=no_placeholders)
def test_mask_then_unmask_is_the_identity(text: str) -> None:
    masked = mask(text)
    assert unmask(masked.text, masked.mapping) == text


@settings(max_examples=250, deadline=None)
@given(text=st.text() | mixed)
def test_masking_is_idempotent(text: str) -> None:
    once = mask(text).text
    assert mask(once).text == once


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(no_placeholders, min_size=1, max_size=3),
    name=st.sampled_from([None, "Ken Tanaka", "山田太郎", "李明", "x"]),
)
def test_vault_round_trips_every_text(texts: list[str], name: str | None) -> None:
    vault = Vault.for_texts(texts, customer_name=name)
    masked = [vault.mask(t) for t in texts]
    assert [vault.restore(m) for m in masked] == texts
    assert [vault.mask(m) for m in masked] == masked
