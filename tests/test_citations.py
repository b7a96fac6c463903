"""Citation markers: finding them, and repairing a draft against the retrieved sources."""

from __future__ import annotations

import pytest

from copilot.draft.citations import find_citations, resolve_citations, strip_citations

ALLOWED = ["faq/withdrawal", "faq/fees", "playbook/angry"]


def test_find_citations_in_order_of_first_use_lowercased_without_repeats() -> None:
    text = "See [FAQ/Fees] and [faq/withdrawal, playbook/angry]; again [faq/fees] [faq/x; faq/y]."
    assert find_citations(text) == [
        "faq/fees",
        "faq/withdrawal",
        "playbook/angry",
        "faq/x",
        "faq/y",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "[1]",
        "[see below]",
        "[faq]",
        "[/withdrawal]",
        "[faq/]",
        "(faq/withdrawal)",
        "faq/withdrawal",
    ],
)
def test_find_citations_ignores_what_is_not_a_citation(text: str) -> None:
    assert find_citations(text) == []


def test_allowed_citations_are_kept_and_the_text_is_untouched() -> None:
    text = "Hello  there, withdrawals take 30 minutes [faq/withdrawal].\nFees vary [FAQ/Fees] ."
    res = resolve_citations(text, ALLOWED)
    # nothing removed: spacing is left exactly as written (ids are lowercased)
    assert res.text == text.replace("[FAQ/Fees]", "[faq/fees]")
    assert res.cited == ["faq/withdrawal", "faq/fees"] and res.removed == []


def test_unknown_ids_are_removed_and_listed_once() -> None:
    res = resolve_citations(
        "Withdrawals take 30 minutes [faq/made-up]. Fees [faq/fees] apply [faq/made-up].",
        ALLOWED,
    )
    assert res.text == "Withdrawals take 30 minutes. Fees [faq/fees] apply."
    assert res.cited == ["faq/fees"] and res.removed == ["faq/made-up"]


def test_duplicates_are_kept_where_written_and_cited_once() -> None:
    res = resolve_citations("A [faq/fees]. B [faq/fees]. C [faq/fees, faq/fees].", ALLOWED)
    assert res.text == "A [faq/fees]. B [faq/fees]. C [faq/fees] [faq/fees]."
    assert res.cited == ["faq/fees"] and res.removed == []


@pytest.mark.parametrize(
    ("draft", "repaired"),
    [
        ("Check the page [faq/bad].", "Check the page."),
        ("Check the page [faq/bad] , then retry.", "Check the page, then retry."),
        ("Done [faq/bad]!", "Done!"),
        ("Is it stuck [faq/bad]?", "Is it stuck?"),
        ("Steps [faq/bad]: open Assets", "Steps: open Assets"),
        ("Hello [faq/bad] world", "Hello world"),
        ("Line one [faq/bad]\nLine two [faq/bad]\n\nLast", "Line one\nLine two\n\nLast"),
        ("  [faq/bad] Leading and trailing  ", "Leading and trailing"),
    ],
)
def test_spacing_left_by_a_removed_marker_is_tidied(draft: str, repaired: str) -> None:
    assert resolve_citations(draft, ALLOWED).text == repaired


@pytest.mark.parametrize(
    ("draft", "repaired"),
    [
        ("请查看提现记录 [faq/bad]。", "请查看提现记录。"),
        ("提现一般30分钟内到账 [faq/bad]，请耐心等待。", "提现一般30分钟内到账，请耐心等待。"),
        ("出金履歴をご確認ください [faq/bad]。", "出金履歴をご確認ください。"),
        ("ご確認ください [faq/bad]、よろしくお願いします", "ご確認ください、よろしくお願いします"),
        ("是否已到账 [faq/bad]？", "是否已到账？"),
        ("注意 [faq/bad]：请勿泄露验证码", "注意：请勿泄露验证码"),
        (
            "出金は30分以内です [faq/withdrawal] [faq/bad]。",
            "出金は30分以内です [faq/withdrawal]。",
        ),
    ],
)
def test_cjk_punctuation_after_a_removed_marker(draft: str, repaired: str) -> None:
    assert resolve_citations(draft, ALLOWED).text == repaired


def test_grouped_citations_are_split_one_bracket_per_id() -> None:
    res = resolve_citations("See [faq/withdrawal, playbook/angry].", ALLOWED)
    assert res.text == "See [faq/withdrawal] [playbook/angry]."
    assert res.cited == ["faq/withdrawal", "playbook/angry"]
    res = resolve_citations("See [faq/withdrawal;faq/bad , faq/fees].", ALLOWED)
    assert res.text == "See [faq/withdrawal] [faq/fees]."
    assert res.cited == ["faq/withdrawal", "faq/fees"] and res.removed == ["faq/bad"]


def test_a_group_of_unknown_ids_disappears_entirely() -> None:
    res = resolve_citations("See the article [faq/a, faq/b].", ALLOWED)
    assert res.text == "See the article."
    assert res.cited == [] and res.removed == ["faq/a", "faq/b"]


def test_allowed_ids_are_matched_without_regard_to_case() -> None:
    res = resolve_citations("See [faq/withdrawal].", ["FAQ/Withdrawal"])
    assert res.text == "See [faq/withdrawal]." and res.cited == ["faq/withdrawal"]
    assert resolve_citations("See [faq/withdrawal].", []).text == "See."


@pytest.mark.parametrize(
    ("text", "ready"),
    [
        (
            "Withdrawals take about 30 minutes [faq/withdrawal].",
            "Withdrawals take about 30 minutes.",
        ),
        (
            "Hi,\n\nSee the fee table [faq/fees, playbook/fee-dispute] for details.\n\nBest regards,",
            "Hi,\n\nSee the fee table for details.\n\nBest regards,",
        ),
        (
            "出金は通常30分以内に処理されます。[faq/withdrawal]",
            "出金は通常30分以内に処理されます。",
        ),
        ("请在「资产」中查看 [FAQ/Withdrawal]，谢谢。", "请在「资产」中查看，谢谢。"),
        ("No markers here [not a citation].", "No markers here [not a citation]."),
    ],
)
def test_strip_citations_leaves_customer_ready_text(text: str, ready: str) -> None:
    assert strip_citations(text) == ready
    assert find_citations(strip_citations(text)) == []
