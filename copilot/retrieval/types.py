"""What retrieval returns (hits and results) and the Retriever interface the drafting pipeline depends on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from copilot.kb.articles import Article


@dataclass(frozen=True)
class Hit:
    """One article found for a query (its best chunk, in the preferred language when possible).

    ``features`` holds the evidence behind ``score``: ``cos``, ``cov`` and the fused ``rrf``.
    """

    article_id: str
    language: str
    title: str
    score: float
    snippet: str
    text: str
    section: str
    heading_path: str
    type: str
    features: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The public JSON form used by ``copilot search``."""
        return {
            "id": self.article_id,
            "language": self.language,
            "score": round(self.score, 4),
            "title": self.title,
            "snippet": self.snippet,
        }


@dataclass(frozen=True)
class SearchResult:
    """Hits (best first), whether to abstain, the query language and the KB version searched."""

    query: str
    hits: list[Hit]
    abstain: bool
    language: str
    kb_version: str
    mode: str = "hybrid"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "query": self.query,
            "language": self.language,
            "mode": self.mode,
            "abstain": self.abstain,
            "kb_version": self.kb_version,
            "results": [h.to_dict() for h in self.hits],
        }


class Retriever(Protocol):
    """What the drafting pipeline needs from retrieval (:class:`~copilot.retrieval.hybrid.HybridRetriever`)."""

    def search(self, query: str, *, k: int = 5, language: str | None = None) -> SearchResult:
        """The ``k`` best articles for ``query``, preferring ``language``."""
        ...

    def article(self, article_id: str, language: str) -> Article | None:
        """The whole article ``article_id`` in ``language`` (else English), or None."""
        ...
