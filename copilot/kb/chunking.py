"""Split articles into retrievable chunks: FAQs by question/section, playbooks by heading."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from copilot.kb.articles import Article, Section, article_metadata
from copilot.tokens import count_tokens

MAX_CHUNK_TOKENS = 450  # e5-small reads 512 tokens; leave room for the heading header
# 2: an article's first chunk carries the whole article (an older store re-ingests it once)
DOC_FORMAT = 2


@dataclass(frozen=True)
class Chunk:
    """A piece of an article with the metadata stored beside it in Chroma."""

    id: str
    text: str
    metadata: dict[str, Any]


def _sections_for(article: Article) -> list[Section]:
    """FAQ: one block per level-2 section (its subsections folded in); playbook: every heading."""
    if article.type == "playbook":
        return [s for s in article.sections if s.text or s.level == 0]
    blocks: list[Section] = []
    for sec in article.sections:
        if sec.level <= 2 or not blocks or blocks[-1].level > 2:
            blocks.append(sec)
        else:  # fold a level-3+ section into its level-2 parent
            parent = blocks[-1]
            joined = f"{parent.text}\n\n### {sec.heading}\n{sec.text}".strip()
            blocks[-1] = Section(
                parent.level, parent.heading, parent.anchor, parent.path, joined, parent.line
            )
    return blocks


def split_long(text: str, limit: int) -> list[str]:
    """Split on paragraphs (then lines) so each piece stays under ``limit`` tokens."""
    if count_tokens(text) <= limit:
        return [text]
    pieces: list[str] = []
    current = ""
    for para in [p for p in text.replace("\r", "").split("\n") if p.strip()]:
        candidate = f"{current}\n{para}".strip()
        if current and count_tokens(candidate) > limit:
            pieces.append(current)
            current = para
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces


def chunk_article(article: Article, max_tokens: int = MAX_CHUNK_TOKENS) -> list[Chunk]:
    """Chunks for one article; each text starts with the title and heading path."""
    chunks: list[Chunk] = []
    for sec in _sections_for(article):
        if not sec.text.strip():
            continue
        path = [h for h in sec.path if h and h != article.title]
        header = " > ".join([article.title, *path])
        for piece in split_long(sec.text, max_tokens):
            text = f"{header}\n\n{piece}"
            index = len(chunks)
            chunks.append(
                Chunk(
                    id=f"{article.key}:{index}",
                    text=text,
                    metadata={
                        "article_id": article.id,
                        "doc_key": article.key,
                        "language": article.language,
                        "type": article.type,
                        "title": article.title,
                        "tags": "," + ",".join(article.tags) + ",",
                        "heading_path": " > ".join(sec.path) or article.title,
                        "section": sec.anchor or "",
                        "line": sec.line,
                        "tokens": count_tokens(text),
                        "article_hash": article.content_hash,
                        "article_version": article.version,
                        "doc_format": DOC_FORMAT,
                    },
                )
            )
    if chunks:  # the whole article travels with its KB version (see article_from_metadata)
        chunks[0].metadata.update(article_metadata(article))
    return chunks
