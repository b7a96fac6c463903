"""The ``openai`` backend against real HTTP servers on loopback, never a patched SDK.

* a scripted OpenAI-compatible stub: retries on 429/5xx with backoff, Retry-After,
  the deadline, clear errors for 4xx;
* a socket that accepts and never answers (timeout) and a closed port (server down);
* ``llm_server`` tests: llama.cpp's real server with SmolLM2-135M: invoke, stream,
  the whole pipeline, and proof that masked personal data never reaches the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from copilot.bench.draft import CappedBackend
from copilot.errors import BackendError, SettingsError
from copilot.llm.base import Message
from copilot.llm.openai_compat import OpenAIBackend, is_openai_model
from copilot.llm.registry import build_backend
from copilot.settings import Settings
from tests import llm_server as servers
from tests.llm_server import LlamaFixture, Scripted, SilentServer, free_port

# fixtures from tests/llm_server.py (non-root conftest files may not use pytest_plugins)
llama_server = servers.llama_server
scripted = servers.scripted
silent_server = servers.silent_server

MSGS = [Message("system", "You are terse."), Message("user", "Say hello.")]
EMAIL, CARD = "ken.tanaka@mail.test", "4111 1111 1111 1111"
WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"


def backend_for(url: str, **kw: Any) -> tuple[OpenAIBackend, list[float]]:
    env = {
        "COPILOT_LLM_BASE_URL": url,
        "COPILOT_LLM_MODEL": "smollm2",
        "COPILOT_LLM_MAX_RETRIES": str(kw.pop("retries", 2)),
        "COPILOT_LLM_TIMEOUT_S": str(kw.pop("timeout", 10)),
        "COPILOT_LLM_DEADLINE_S": str(kw.pop("deadline", 60)),
    }
    backend = OpenAIBackend.from_settings(Settings.load(env=env))
    sleeps: list[float] = []
    backend.sleep = sleeps.append
    return backend, sleeps


# ---- configuration ------------------------------------------------------------------------
def test_missing_base_url_for_a_non_openai_model_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="COPILOT_LLM_BASE_URL is not set"):
        OpenAIBackend.from_settings(Settings.load(env={"COPILOT_LLM_MODEL": "llama3"}))


def test_missing_key_for_openai_is_reported_when_building(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(SettingsError, match="OPENAI_API_KEY is not set"):
        build_backend(Settings.load(env={"COPILOT_LLM_BACKEND": "openai"}))
    built = build_backend(
        Settings.load(
            env={
                "COPILOT_LLM_BACKEND": "openai",
                "COPILOT_LLM_BASE_URL": "http://127.0.0.1:9/v1",
                "COPILOT_LLM_MODEL": "qwen",
            }
        )
    )
    assert built.name == "openai" and built.model == "qwen"


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-4o-mini", True), ("o3-mini", True), ("smollm2", False), ("llama3.1:8b", False)],
)
def test_is_openai_model(model: str, expected: bool) -> None:
    assert is_openai_model(model) is expected


# ---- retries, errors, deadline (scripted stub) ---------------------------------------------
def test_complete_against_the_stub(scripted: Scripted) -> None:
    backend, _ = backend_for(scripted.url)
    c = backend.complete(MSGS, temperature=0.0, max_tokens=9)
    assert c.text == scripted.answer and c.prompt_tokens == 7 and c.completion_tokens == 5
    assert scripted.seen[0]["model"] == "smollm2" and scripted.seen[0]["max_tokens"] == 9
    assert scripted.seen[0]["messages"][1] == {"role": "user", "content": "Say hello."}


def test_429_and_5xx_are_retried_with_backoff(scripted: Scripted) -> None:
    scripted.queue(429, 503, (429, {"Retry-After": "3"}))
    backend, sleeps = backend_for(scripted.url, retries=3)
    c = backend.complete(MSGS)
    assert c.text == scripted.answer and c.meta["attempts"] == "4"
    assert sleeps == [0.5, 1.0, 3.0]  # exponential, then Retry-After wins
    assert len(scripted.seen) == 4


def test_gives_up_after_max_retries(scripted: Scripted) -> None:
    scripted.queue(500, 500, 500, 500)
    backend, sleeps = backend_for(scripted.url, retries=2)
    with pytest.raises(BackendError, match=r"answered 500.*gave up after 3 attempts"):
        backend.complete(MSGS)
    assert len(sleeps) == 2 and len(scripted.seen) == 3


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "answered 400: scripted 400"),
        (401, "refused the API key.*OPENAI_API_KEY"),
        (404, "404 for model 'smollm2'.*COPILOT_LLM_MODEL"),
    ],
)
def test_client_errors_are_not_retried(scripted: Scripted, status: int, message: str) -> None:
    scripted.queue(status)
    backend, sleeps = backend_for(scripted.url)
    with pytest.raises(BackendError, match=message):
        backend.complete(MSGS)
    assert sleeps == [] and len(scripted.seen) == 1


def test_retries_stop_at_the_deadline(scripted: Scripted) -> None:
    scripted.queue(*([503] * 10))
    backend, sleeps = backend_for(scripted.url, retries=9, deadline=0.4)
    with pytest.raises(BackendError, match=r"no time left to retry within the 0\.4s deadline"):
        backend.complete(MSGS)
    assert sleeps == [] and len(scripted.seen) == 1


# ---- timeout and server down -----------------------------------------------------------------
def test_timeout_on_a_server_that_never_answers(silent_server: SilentServer) -> None:
    backend, _ = backend_for(silent_server.url, retries=0, timeout=0.5)
    with pytest.raises(
        BackendError, match=r"did not answer within 0\.5s \(COPILOT_LLM_TIMEOUT_S\)"
    ):
        backend.complete(MSGS)
    with pytest.raises(BackendError, match=r"did not answer within 0\.5s"):
        list(backend.stream(MSGS))


def test_server_down_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend, sleeps = backend_for(url, retries=1)
    with pytest.raises(
        BackendError, match=r"cannot reach the LLM endpoint .*refused.*is the server running\?"
    ):
        backend.complete(MSGS)
    assert sleeps == [0.5]


def test_pipeline_sends_only_masked_data_to_the_endpoint(
    scripted: Scripted, use_kb_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.draft.factory import build_copilot
    from copilot.draft.types import DraftRequest
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_LLM_BASE_URL", scripted.url)
    monkeypatch.setenv("COPILOT_LLM_MODEL", "smollm2")
    get_settings.cache_clear()
    cp = build_copilot(get_settings(), "openai")
    res = cp.draft(
        DraftRequest(
            f"My withdrawal to {WALLET} is stuck. I'm {EMAIL}, card {CARD}.", customer_name="Ken"
        )
    )
    sent = str(scripted.seen)
    for raw in (EMAIL, CARD, WALLET, "Ken"):
        assert raw not in sent
    assert "[EMAIL_1]" in sent and "[CARD_1]" in sent and "[WALLET_1]" in sent
    assert res.backend == "openai" and res.model == "smollm2"
    assert "faq/withdrawal" in [s["id"] for s in res.sources]
    assert res.prompt_version.startswith("system@1+draft@2") and res.tokens["prompt"] > 0


# ---- the real llama.cpp server ------------------------------------------------------------------
@pytest.mark.llm_server
def test_invoke_real_server(llama_server: LlamaFixture) -> None:
    backend, _ = backend_for(llama_server.url, timeout=120)
    c = backend.complete(MSGS, temperature=0.0, max_tokens=16)
    assert c.text.strip() and c.model and c.completion_tokens > 0 and c.prompt_tokens > 0
    assert c.meta["attempts"] == "1"


@pytest.mark.llm_server
def test_stream_real_server(llama_server: LlamaFixture) -> None:
    backend, _ = backend_for(llama_server.url, timeout=120)
    pieces = list(backend.stream(MSGS, temperature=0.0, max_tokens=16))
    assert len(pieces) > 1 and "".join(pieces).strip()


@pytest.mark.llm_server
def test_masked_data_never_reaches_the_real_server(
    llama_server: LlamaFixture, use_kb_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.draft.factory import build_copilot
    from copilot.draft.types import DraftRequest
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_LLM_BASE_URL", llama_server.proxy.url)
    monkeypatch.setenv("COPILOT_LLM_MODEL", llama_server.model)
    monkeypatch.setenv("COPILOT_LLM_TIMEOUT_S", "120")
    get_settings.cache_clear()
    cp = build_copilot(get_settings(), "openai")
    cp.backend = CappedBackend(cp.backend, 24)
    llama_server.proxy.bodies.clear()
    res = cp.draft(
        DraftRequest(
            f"Hi, I'm {EMAIL}. I paid with card {CARD} and withdrew to {WALLET}; it never arrived.",
            customer_name="Ken",
            agent_note=f"verified e-mail {EMAIL}",
        )
    )
    received = llama_server.proxy.received()
    assert llama_server.proxy.bodies, "the proxy saw no request"
    for raw in (EMAIL, CARD, WALLET, "Ken"):
        assert raw not in received
    for placeholder in ("[EMAIL_1]", "[CARD_1]", "[WALLET_1]", "[CUSTOMER_NAME]"):
        assert placeholder in received
    assert len(llama_server.proxy.bodies) == res.attempts >= 1
    assert res.backend == "openai"
    assert_verdict_follows_the_violations(res)
    assert res.latency_ms["backend"] > 0 and "[EMAIL_1]" not in res.draft


@pytest.mark.llm_server
def test_rewrite_against_the_real_server(
    llama_server: LlamaFixture, use_kb_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.draft.factory import build_copilot
    from copilot.settings import get_settings

    monkeypatch.setenv("COPILOT_LLM_BASE_URL", llama_server.url)
    monkeypatch.setenv("COPILOT_LLM_MODEL", llama_server.model)
    monkeypatch.setenv("COPILOT_LLM_TIMEOUT_S", "120")
    get_settings.cache_clear()
    cp = build_copilot(get_settings(), "openai")
    cp.backend = CappedBackend(cp.backend, 24)
    res = cp.rewrite(
        "Hi there,\n\nWithdrawals usually take 30 minutes [faq/withdrawal].", "concise"
    )
    assert res.scenario == "rewrite:concise" and res.prompt_version == "system@1+rewrite@1"
    assert_verdict_follows_the_violations(res)


def assert_verdict_follows_the_violations(res: Any) -> None:
    """What a real model writes varies; what the copilot does with it does not: the draft is
    rejected exactly when a block rule fired, and a rejected draft was retried to the limit."""
    from copilot.draft.pipeline import MAX_ATTEMPTS

    blocking = [v.rule for v in res.violations if v.severity == "block"]
    assert res.verdict == ("reject" if blocking else "pass"), res.violations
    assert res.blocked == bool(blocking)
    assert 1 <= res.attempts <= MAX_ATTEMPTS
    if res.blocked:
        assert res.attempts == MAX_ATTEMPTS
    blocked_flags = [f for f in res.flags if f.kind == "blocked"]
    assert len(blocked_flags) == (1 if res.blocked else 0), res.flags
