"""The shipped KB is complete and valid; the validator reports every problem with file and line."""

from __future__ import annotations

from pathlib import Path

from copilot.cli.main import main
from copilot.kb.articles import load_kb, validate_kb
from copilot.kb.chunking import chunk_article

KB = Path(__file__).parent.parent / "knowledge"
IDS = {
    "playbook/liquidation", "playbook/angry-customer", "playbook/escalation",
    "playbook/fee-dispute", "playbook/technical-fault", "faq/login-locked",
    "faq/password-reset", "faq/2fa-reset", "faq/kyc", "faq/deposit", "faq/withdrawal",
    "faq/order-execution", "faq/security", "faq/fees", "faq/privacy", "faq/risk-tools",
    "faq/bonus", "faq/trading-bots", "faq/options-payout", "faq/market-info-disclaimer",
}  # fmt: skip

GOOD = """---
id: faq/example
type: faq
language: en
title: "Example: an article"
tags: [example]
updated: 2026-11-20
version: 1
---
# Example
## Key facts {#key-facts}
- One fact.
## What to tell the customer {#customer-reply}
Be kind.
### Template {#reply-template}
{name}
Here is the answer.
"""


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_kb_has_every_article_in_three_languages() -> None:
    articles = load_kb(KB)
    pairs = {(a.id, a.language) for a in articles}
    assert {i for i, _ in pairs} >= IDS
    for article_id in IDS:
        for lang in ("en", "ja", "zh"):
            assert (article_id, lang) in pairs, (article_id, lang)


def test_shipped_faqs_have_facts_and_templates() -> None:
    for a in load_kb(KB):
        if a.type == "faq":
            assert len(a.bullets("key-facts")) >= 3, a.path
            template = a.section("reply-template")
            assert template is not None and "{name}" in template.text, a.path
        else:
            for level in ("level-1", "level-2", "level-3"):
                sec = a.section(level)
                assert sec is not None and sec.text.strip(), (a.path, level)


def test_good_article_parses(tmp_path: Path) -> None:
    write(tmp_path, "faq/example.en.md", GOOD)
    articles, problems = validate_kb(tmp_path)
    assert problems == []
    (a,) = articles
    assert a.id == "faq/example" and a.bullets("key-facts") == ["One fact."]
    chunks = chunk_article(a)
    assert chunks and all(c.text.startswith("Example: an article") for c in chunks)
    assert {c.metadata["section"] for c in chunks} >= {"key-facts", "customer-reply"}
    assert all(c.metadata["tokens"] > 0 for c in chunks)


def test_every_problem_is_reported_with_path_and_line(tmp_path: Path) -> None:
    write(tmp_path, "faq/missing.en.md", GOOD.replace("version: 1\n", ""))
    write(
        tmp_path,
        "faq/lang.en.md",
        GOOD.replace("language: en", "language: fr").replace("faq/example", "faq/lang"),
    )
    write(
        tmp_path,
        "faq/date.en.md",
        GOOD.replace("2026-11-20", "someday").replace("faq/example", "faq/date"),
    )
    write(
        tmp_path,
        "faq/unknown.en.md",
        GOOD.replace("version: 1", "version: 1\nauthor: me").replace("faq/example", "faq/unknown"),
    )
    write(
        tmp_path, "faq/empty.en.md", GOOD.split("# Example")[0].replace("faq/example", "faq/empty")
    )
    write(
        tmp_path,
        "faq/yaml.en.md",
        GOOD.replace('title: "Example: an article"', "title: Example: broken"),
    )
    write(tmp_path, "faq/dup-a.en.md", GOOD.replace("faq/example", "faq/dup"))
    write(tmp_path, "faq/dup-b.en.md", GOOD.replace("faq/example", "faq/dup"))
    write(
        tmp_path,
        "faq/anchor.en.md",
        GOOD.replace(" {#key-facts}", "").replace("faq/example", "faq/anchor"),
    )
    write(tmp_path, "faq/nofront.en.md", "# Just a heading\n")
    _, problems = validate_kb(tmp_path)
    text = "\n".join(str(p) for p in problems)
    assert "missing.en.md: line 1: missing field 'version'" in text
    assert "lang.en.md: line 4: field 'language': 'fr' is not one of en, ja, zh" in text
    assert "date.en.md: line 7: field 'updated': 'someday' is not a date" in text
    assert "unknown.en.md: line 9: field 'author': unknown field" in text
    assert "empty.en.md: line 10: empty body" in text
    assert "yaml.en.md: line 5: front matter is not valid YAML" in text
    assert "dup-b.en.md: line 2: duplicate id+language faq/dup (en)" in text
    assert "anchor.en.md" in text and "{#key-facts}" in text
    assert "nofront.en.md: line 1: missing front matter" in text
    assert len(problems) == 9


def test_unknown_template_placeholder(tmp_path: Path) -> None:
    write(
        tmp_path, "faq/ph.en.md", GOOD.replace("Here is the answer.", "Your balance is {balance}.")
    )
    _, problems = validate_kb(tmp_path)
    assert len(problems) == 1 and "unknown placeholder {balance}" in problems[0].message


def test_validate_kb_cli_exit_codes(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["validate-kb", "--kb", str(KB)]) == 0
    assert "20 articles" in capsys.readouterr().out
    write(tmp_path, "faq/example.en.md", GOOD.replace("type: faq", "type: blog"))
    assert main(["validate-kb", "--kb", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "example.en.md: line 3: field 'type': 'blog' is not one of faq, playbook" in err
