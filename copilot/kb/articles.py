"""Knowledge-base articles: load, validate and split into sections.

An article is a Markdown file with YAML front matter (see ``docs/kb-format.md``).
Every problem is reported as ``PATH: line N: what is wrong``; validation lists
all problems, not only the first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from copilot.errors import InputError, Problem
from copilot.text.language import LANGUAGES

TYPES = ("faq", "playbook")
FIELDS = ("id", "type", "language", "title", "tags", "updated", "version")
REQUIRED_ANCHORS: dict[str, tuple[str, ...]] = {
    "faq": ("key-facts", "customer-reply", "reply-template"),
    "playbook": ("when", "steps", "do", "dont", "reply-templates", "level-1", "level-2", "level-3"),
}
_ID_RE = re.compile(r"^(faq|playbook)/[a-z0-9][a-z0-9-]*$")
_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_ANCHOR_RE = re.compile(r"\s*\{#([a-z0-9][a-z0-9-]*)\}\s*$")
_PLACEHOLDER_RE = re.compile(r"\{([^{}#][^{}]*)\}")
TEMPLATE_PLACEHOLDERS = ("name", "facts")


@dataclass(frozen=True)
class Section:
    """A heading and the text under it (up to the next heading of any level)."""

    level: int
    heading: str
    anchor: str | None
    path: tuple[str, ...]  # headings from the top, this one last
    text: str
    line: int  # 1-based line of the heading in the file


@dataclass(frozen=True)
class Article:
    """One validated article in one language."""

    id: str
    type: str
    language: str
    title: str
    tags: tuple[str, ...]
    updated: dt.date
    version: int
    body: str
    path: Path
    body_line: int
    content_hash: str
    sections: tuple[Section, ...] = field(default=(), repr=False)

    @property
    def key(self) -> str:
        """Unique key of this article-language pair."""
        return f"{self.id}#{self.language}"

    def section(self, anchor: str) -> Section | None:
        """The section with the given ``{#anchor}``, if any."""
        return next((s for s in self.sections if s.anchor == anchor), None)

    def bullets(self, anchor: str) -> list[str]:
        """The ``-``/``*``/numbered list items of a section, markers removed."""
        sec = self.section(anchor)
        if sec is None:
            return []
        items = []
        for line in sec.text.splitlines():
            m = re.match(r"^\s*(?:[-*+]|\d+[.)])\s+(.*\S)", line)
            if m:
                items.append(m.group(1))
        return items


def split_sections(body: str, first_line: int = 1) -> list[Section]:
    """Split a Markdown body into heading sections, keeping the heading path and anchors."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    current: dict[str, Any] | None = None
    buf: list[str] = []
    in_fence = False

    def flush() -> None:
        if current is not None:
            sections.append(Section(text="\n".join(buf).strip(), **current))

    for offset, line in enumerate(body.splitlines()):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        m = None if in_fence else _HEADING_RE.match(line)
        if m:
            flush()
            buf = []
            level = len(m.group(1))
            raw = m.group(2)
            am = _ANCHOR_RE.search(raw)
            anchor = am.group(1) if am else None
            heading = raw[: am.start()].strip() if am else raw.strip()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, heading))
            current = {
                "level": level,
                "heading": heading,
                "anchor": anchor,
                "path": tuple(h for _, h in stack),
                "line": first_line + offset,
            }
        else:
            if current is None and line.strip():
                current = {
                    "level": 0,
                    "heading": "",
                    "anchor": None,
                    "path": (),
                    "line": first_line,
                }
            buf.append(line)
    flush()
    return sections


def _split_front_matter(text: str) -> tuple[str, str, int] | None:
    """(front matter, body, 1-based line where the body starts) or None."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :]), i + 2
    return None


def _field_lines(front: str) -> dict[str, int]:
    """Line (1-based, counting the opening ``---`` as line 1) of each top-level key."""
    out: dict[str, int] = {}
    for i, line in enumerate(front.splitlines()):
        m = re.match(r"^([A-Za-z_][\w-]*)\s*:", line)
        if m:
            out.setdefault(m.group(1), i + 2)
    return out


def parse_article(path: Path, problems: list[Problem], root: Path | None = None) -> Article | None:
    """Parse and check one file; append problems to ``problems``; None when unusable."""
    shown = str(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(shown, 1, f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
        return None
    except OSError as exc:
        problems.append(Problem(shown, 1, f"cannot read file: {exc.strerror}"))
        return None
    parts = _split_front_matter(text)
    if parts is None:
        problems.append(
            Problem(shown, 1, "missing front matter: the file must start with a '---' block")
        )
        return None
    front, body, body_line = parts
    try:
        meta = yaml.safe_load(front)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + 2) if mark is not None else 2
        problems.append(
            Problem(shown, line, f"front matter is not valid YAML: {exc}".split("\n")[0])
        )
        return None
    if not isinstance(meta, dict):
        problems.append(Problem(shown, 2, "front matter must be a mapping of fields"))
        return None
    lines = _field_lines(front)
    before = len(problems)

    def bad(name: str, message: str) -> None:
        problems.append(Problem(shown, lines.get(name, 1), f"field '{name}': {message}"))

    for name in FIELDS:
        if name not in meta or meta[name] in (None, ""):
            problems.append(Problem(shown, 1, f"missing field '{name}'"))
    for name in sorted(set(meta) - set(FIELDS)):
        bad(str(name), f"unknown field; allowed: {', '.join(FIELDS)}")
    art_id, art_type, lang = meta.get("id"), meta.get("type"), meta.get("language")
    if art_type is not None and art_type not in TYPES:
        bad("type", f"{art_type!r} is not one of {', '.join(TYPES)}")
    if lang is not None and lang not in LANGUAGES:
        bad("language", f"{lang!r} is not one of {', '.join(LANGUAGES)}")
    if art_id is not None:
        if not isinstance(art_id, str) or not _ID_RE.match(art_id):
            bad("id", f"{art_id!r} must look like faq/<slug> or playbook/<slug> (lowercase, -)")
        elif art_type in TYPES and not art_id.startswith(f"{art_type}/"):
            bad("id", f"{art_id!r} does not match type {art_type!r}")
    if isinstance(lang, str) and lang in LANGUAGES and path.name.count(".") >= 2:
        suffix = path.name.split(".")[-2]
        if suffix in LANGUAGES and suffix != lang:
            bad("language", f"{lang!r} does not match the file name's '.{suffix}.md'")
    title = meta.get("title")
    if title is not None and (not isinstance(title, str) or not title.strip()):
        bad("title", "must be non-empty text")
    tags = meta.get("tags")
    if tags is not None and (
        not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags)
    ):
        bad("tags", "must be a list of non-empty strings, e.g. [withdrawal, txid]")
    updated = meta.get("updated")
    if updated is not None and not isinstance(updated, dt.date):
        try:
            updated = dt.date.fromisoformat(str(updated))
        except ValueError:
            bad("updated", f"{updated!r} is not a date (YYYY-MM-DD)")
    version = meta.get("version")
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or version < 1
    ):
        bad("version", f"{version!r} must be a whole number >= 1")
    if not body.strip():
        problems.append(Problem(shown, body_line, "empty body: the article has no text"))
    sections = split_sections(body, body_line)
    if art_type in REQUIRED_ANCHORS and body.strip():
        present = {s.anchor for s in sections}
        for anchor in REQUIRED_ANCHORS[art_type]:
            if anchor not in present:
                problems.append(
                    Problem(shown, body_line, f"missing section with anchor {{#{anchor}}}")
                )
    for sec in sections:
        if sec.anchor in ("reply-template", "level-1", "level-2", "level-3"):
            for m in _PLACEHOLDER_RE.finditer(sec.text):
                if m.group(1) not in TEMPLATE_PLACEHOLDERS:
                    problems.append(
                        Problem(
                            shown,
                            sec.line,
                            f"unknown placeholder {{{m.group(1)}}} in reply template; "
                            f"allowed: {', '.join('{' + p + '}' for p in TEMPLATE_PLACEHOLDERS)}",
                        )
                    )
    if len(problems) > before:
        return None
    assert isinstance(updated, dt.date)
    return Article(
        id=str(art_id),
        type=str(art_type),
        language=str(lang),
        title=str(title).strip(),
        tags=tuple(str(t).strip().lower() for t in tags or ()),
        updated=updated,
        version=int(version),  # type: ignore[arg-type]
        body=body,
        path=path,
        body_line=body_line,
        content_hash=hashlib.sha256(raw).hexdigest(),
        sections=tuple(sections),
    )


def article_metadata(article: Article) -> dict[str, Any]:
    """What a KB version stores about a whole article (on its first chunk) to rebuild it."""
    return {
        "article_body": article.body,
        "article_body_line": article.body_line,
        "article_updated": article.updated.isoformat(),
        "article_path": article.path.as_posix(),
    }


def article_from_metadata(meta: dict[str, Any]) -> Article | None:
    """The article stored with a KB version (first-chunk metadata written by the chunker), or
    None when the chunk carries no article (stores from before it did, external KBs)."""
    try:
        body = meta["article_body"]
        if not isinstance(body, str):
            return None
        body_line = int(meta["article_body_line"])
        tags = tuple(t for t in str(meta.get("tags", "")).split(",") if t)
        return Article(
            id=str(meta["article_id"]),
            type=str(meta["type"]),
            language=str(meta["language"]),
            title=str(meta["title"]),
            tags=tags,
            updated=dt.date.fromisoformat(str(meta["article_updated"])),
            version=int(meta.get("article_version", 1)),
            body=body,
            path=Path(str(meta.get("article_path", ""))),
            body_line=body_line,
            content_hash=str(meta.get("article_hash", "")),
            sections=tuple(split_sections(body, body_line)),
        )
    except (KeyError, TypeError, ValueError):
        return None


def article_paths(kb_dir: Path) -> list[Path]:
    """Every ``*.md`` file below ``kb_dir`` except README files, sorted."""
    return sorted(p for p in kb_dir.rglob("*.md") if p.is_file() and p.name.lower() != "readme.md")


def validate_kb(kb_dir: Path) -> tuple[list[Article], list[Problem]]:
    """Load every article below ``kb_dir``; return the good ones and every problem found."""
    problems: list[Problem] = []
    if not kb_dir.is_dir():
        return [], [Problem(str(kb_dir), 1, "knowledge folder does not exist")]
    articles: list[Article] = []
    seen: dict[str, Article] = {}
    paths = article_paths(kb_dir)
    if not paths:
        problems.append(Problem(str(kb_dir), 1, "no articles (*.md) found"))
    for path in paths:
        art = parse_article(path, problems)
        if art is None:
            continue
        if art.key in seen:
            problems.append(
                Problem(
                    str(path),
                    2,
                    f"duplicate id+language {art.id} ({art.language}): also in {seen[art.key].path}",
                )
            )
            continue
        seen[art.key] = art
        articles.append(art)
    return articles, problems


def load_kb(kb_dir: Path) -> list[Article]:
    """All articles, or :class:`InputError` listing every problem."""
    articles, problems = validate_kb(kb_dir)
    if problems:
        raise InputError(problems)
    return articles


def kb_version(hashes: Iterable[tuple[str, str]]) -> str:
    """A short hash of the whole KB from (article key, content hash) pairs."""
    digest = hashlib.sha256()
    for key, h in sorted(hashes):
        digest.update(f"{key}\t{h}\n".encode())
    return digest.hexdigest()[:16]
