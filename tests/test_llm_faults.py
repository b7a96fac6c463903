"""Limits end to end, against a fault-injecting OpenAI-compatible server on loopback.

Every fault (hang, 429 with Retry-After, 500, a body cut short, malformed JSON, empty
choices, a 30 MB body, a trickling body, a closed connection) ends in a clear
:class:`BackendError` that says what happened, for ``complete`` and ``stream`` and through the
drafting pipeline for a draft and a tone rewrite; a failing guardrail judge leaves the
deterministic verdict and says why, a failing eval judge is a clear error. One deadline holds per draft across
retries and re-drafts. Elapsed times are checked only as generous upper bounds that the
old per-call deadline broke (a guarantee, not a speed measurement).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from copilot.errors import BackendError
from copilot.llm.base import Message
from copilot.llm.deadline import current, deadline
from copilot.llm.openai_compat import OpenAIBackend
from copilot.settings import Settings
from tests import llm_server as servers
from tests.llm_server import FaultServer

fault_server = servers.fault_server

MSGS = [Message("system", "You are terse."), Message("user", "Say hello.")]
VIOLATING = "Hi there, please send me your seed phrase and your 2FA code [faq/withdrawal]."


def backend_for(url: str, **env: str) -> tuple[OpenAIBackend, list[float]]:
    values = {
        "COPILOT_LLM_BASE_URL": url,
        "COPILOT_LLM_MODEL": "fault-model",
        "COPILOT_LLM_TIMEOUT_S": "0.5",
        "COPILOT_LLM_DEADLINE_S": "2",
        "COPILOT_LLM_MAX_RETRIES": "2",
        **env,
    }
    backend = OpenAIBackend.from_settings(Settings.load(env=values))
    sleeps: list[float] = []
    backend.sleep = sleeps.append  # backoff is recorded, not slept
    return backend, sleeps


def call(backend: OpenAIBackend, mode: str) -> str:
    if mode == "complete":
        return backend.complete(MSGS).text
    return "".join(backend.stream(MSGS))


# (fault, expected message, requests the server sees with 2 retries)
FAULT_CASES = [
    ("429", r"answered 429: slow down \(gave up after 3 attempts\)", 3),
    ("500", r"answered 500: boom \(gave up after 3 attempts\)", 3),
    ("malformed", r"sent a reply that is not valid JSON", 1),
    ("empty", r"sent a response without a message \(no choices\)", 1),
    ("oversized", r"sent more than 1,000,000 bytes; the reply was cut there and discarded", 1),
    ("close", r"closed the connection without replying .*gave up after 3 attempts", 3),
]


@pytest.mark.parametrize("mode", ["complete", "stream"])
@pytest.mark.parametrize(("fault", "message", "requests"), FAULT_CASES)
def test_each_fault_is_a_clear_error(
    fault_server: FaultServer, mode: str, fault: str, message: str, requests: int
) -> None:
    fault_server.queue(*[fault] * 5)
    backend, sleeps = backend_for(fault_server.url)
    with pytest.raises(BackendError, match=message) as err:
        call(backend, mode)
    assert len(fault_server.seen) == requests
    assert len(sleeps) == requests - 1
    assert "Traceback" not in str(err.value)
    if fault == "oversized":
        assert fault_server.sent_bytes < fault_server.oversized_bytes  # the client hung up
    if fault == "429":
        assert sleeps == [1.0, 1.0]  # Retry-After: 1 beats the 0.5 s first backoff


@pytest.mark.parametrize("mode", ["complete", "stream"])
def test_a_reply_cut_short_is_named_and_retried(fault_server: FaultServer, mode: str) -> None:
    fault_server.queue("cut", "ok")
    backend, _ = backend_for(fault_server.url)
    if mode == "complete":  # nothing was handed on yet: retried, and the retry succeeds
        assert call(backend, mode) == fault_server.answer
        assert len(fault_server.seen) == 2
        fault_server.queue("cut", "cut", "cut")
        with pytest.raises(BackendError, match=r"closed the connection mid-reply \(after \d+"):
            call(backend, mode)
    else:  # pieces were already yielded: the stream fails where it broke
        with pytest.raises(BackendError, match=r"closed the connection mid-reply .*no \[DONE\]"):
            call(backend, mode)


def test_a_hung_server_is_given_up_at_the_timeout_and_then_the_deadline(
    fault_server: FaultServer,
) -> None:
    fault_server.queue(*["hang"] * 6)
    backend, sleeps = backend_for(
        fault_server.url, COPILOT_LLM_DEADLINE_S="1.3", COPILOT_LLM_MAX_RETRIES="5"
    )
    started = time.monotonic()
    with pytest.raises(
        BackendError,
        match=r"did not answer within 0\.5s \(COPILOT_LLM_TIMEOUT_S\) \(no time left to retry "
        r"within the 1\.3s deadline \(COPILOT_LLM_DEADLINE_S\); 2 attempt\(s\)\)",
    ):
        backend.complete(MSGS)
    elapsed = time.monotonic() - started
    assert len(fault_server.seen) == 2 and sleeps == [0.5]  # the next backoff (1 s) won't fit
    assert elapsed < 1.3 + 1.0, elapsed
    # a deadline shorter than the timeout cuts the wait itself, and says so
    backend, _ = backend_for(fault_server.url, COPILOT_LLM_DEADLINE_S="0.3")
    with pytest.raises(
        BackendError,
        match=r"did not answer within the 0\.3s deadline \(COPILOT_LLM_DEADLINE_S\) after 1",
    ):
        backend.complete(MSGS)
    # no retries: the configured timeout is named, not a remainder
    backend, _ = backend_for(fault_server.url, COPILOT_LLM_MAX_RETRIES="0")
    with pytest.raises(
        BackendError, match=r"did not answer within 0\.5s \(COPILOT_LLM_TIMEOUT_S\)$"
    ):
        backend.complete(MSGS)


def test_a_trickling_body_cannot_stretch_the_request_timeout(fault_server: FaultServer) -> None:
    fault_server.queue("trickle")
    backend, _ = backend_for(fault_server.url, COPILOT_LLM_MAX_RETRIES="0")
    started = time.monotonic()
    with pytest.raises(
        BackendError,
        match=r"started replying but did not finish within 0\.5s \(\d+ bytes had arrived",
    ):
        backend.complete(MSGS)
    assert time.monotonic() - started < 0.5 + 1.0
    fault_server.queue("trickle")
    backend, _ = backend_for(fault_server.url, COPILOT_LLM_DEADLINE_S="1")
    with pytest.raises(BackendError, match=r"still sending when the 1s deadline"):
        "".join(backend.stream(MSGS))


def test_the_size_limit_is_a_setting(fault_server: FaultServer) -> None:
    fault_server.answer = "x" * 3000
    backend, _ = backend_for(fault_server.url, COPILOT_LLM_MAX_RESPONSE_BYTES="2048")
    with pytest.raises(BackendError, match=r"more than 2,048 bytes"):
        backend.complete(MSGS)
    backend, _ = backend_for(fault_server.url, COPILOT_LLM_MAX_RESPONSE_BYTES="8192")
    assert backend.complete(MSGS).text == "x" * 3000


def test_a_server_that_ignores_stream_is_read_as_one_piece(fault_server: FaultServer) -> None:
    backend, _ = backend_for(fault_server.url)
    backend.client = _NonStreamingClient(backend.client)
    assert "".join(backend.stream(MSGS)) == fault_server.answer


class _NonStreamingClient:
    """Sends ``stream: false`` whatever is asked, like servers that do not stream."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.chat = self
        self.completions = self
        self.with_streaming_response = self

    def create(self, **kwargs: Any) -> Any:
        kwargs.pop("stream", None)
        return self.inner.chat.completions.with_streaming_response.create(**kwargs)


def test_deadline_scopes_nest_and_the_earlier_end_wins() -> None:
    now = [100.0]
    clock = lambda: now[0]  # noqa: E731
    assert current() is None
    with deadline(10, clock) as outer:
        with deadline(60, clock) as inner:
            assert inner is outer and current() is outer
        with deadline(2, clock) as tight:
            now[0] += 1.5
            assert current() is tight and tight.remaining() == pytest.approx(0.5)
        assert current() is outer
    assert current() is None


# ---- through the pipeline: a draft and a tone rewrite ----------------------------------------
@pytest.fixture(scope="module")
def fault_url() -> Iterator[tuple[FaultServer, str]]:
    server = FaultServer().start()
    yield server, server.url
    server.stop()


@pytest.fixture(scope="module")
def pipeline(kb_store: Path, fault_url: tuple[FaultServer, str]) -> Any:
    """One copilot on the openai backend against the module's fault server."""
    from copilot.draft.factory import build_copilot
    from tests.conftest import KB_DIR, ROOT

    settings = Settings.load(
        env={
            "COPILOT_DATA_DIR": str(kb_store),
            "COPILOT_KNOWLEDGE_DIR": str(KB_DIR),
            "COPILOT_PROMPTS_DIR": str(ROOT / "prompts"),
            "COPILOT_POLICY_FILE": str(ROOT / "prompts" / "policy.yaml"),
            "COPILOT_LLM_BASE_URL": fault_url[1],
            "COPILOT_LLM_MODEL": "fault-model",
            "COPILOT_LLM_TIMEOUT_S": "1",
            "COPILOT_LLM_DEADLINE_S": "1.5",
            "COPILOT_LLM_MAX_RETRIES": "1",
        }
    )
    copilot = build_copilot(settings, "openai")
    copilot.backend.sleep = lambda seconds: None  # type: ignore[attr-defined]
    return copilot


@pytest.fixture
def server(fault_url: tuple[FaultServer, str]) -> FaultServer:
    stub = fault_url[0]
    stub.faults.clear()
    stub.seen.clear()
    stub.times.clear()
    stub.sent_bytes = 0
    stub.answer = "Hi there, withdrawals take about 30 minutes [faq/withdrawal]."
    return stub


def run(pipeline: Any, what: str) -> Any:
    from copilot.draft.types import DraftRequest

    if what == "draft":
        return pipeline.draft(DraftRequest("How long does a withdrawal take?"))
    return pipeline.rewrite(
        "Hi there,\n\nWithdrawals usually take 30 minutes [faq/withdrawal].", "concise"
    )


@pytest.mark.parametrize("what", ["draft", "rewrite"])
@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("hang", r"did not answer within .*1\.5s deadline for this draft"),
        ("429", r"answered 429: slow down"),
        ("500", r"answered 500: boom \(gave up after 2 attempts\)"),
        ("cut", r"closed the connection mid-reply"),
        ("malformed", r"not valid JSON"),
        ("empty", r"without a message \(no choices\)"),
        ("oversized", r"sent more than 1,000,000 bytes"),
        ("close", r"closed the connection without replying"),
    ],
)
def test_draft_and_rewrite_end_every_fault_in_a_clear_error(
    pipeline: Any, server: FaultServer, what: str, fault: str, message: str
) -> None:
    server.queue(*[fault] * 4)
    started = time.monotonic()
    with pytest.raises(BackendError, match=message):
        run(pipeline, what)
    assert time.monotonic() - started < 1.5 + 1.5


@pytest.mark.parametrize("what", ["draft", "rewrite"])
def test_one_deadline_holds_across_re_drafts(pipeline: Any, server: FaultServer, what: str) -> None:
    """Each answer takes 0.6 s and is rejected (a seed-phrase request): the third attempt
    meets the 1.5 s deadline of the whole draft (a deadline per call allowed 3 x 0.6 s)."""
    server.answer = VIOLATING
    server.slow_s = 0.6
    server.queue("slow", "slow", "slow")
    started = time.monotonic()
    with pytest.raises(
        BackendError,
        match=r"within the 1\.5s deadline for this draft \(COPILOT_LLM_DEADLINE_S\) after 3 "
        r"request\(s\) for this draft",
    ):
        run(pipeline, what)
    elapsed = time.monotonic() - started
    assert len(server.seen) == 3  # the draft, a re-draft, and the one the deadline cut
    assert elapsed < 1.5 + 1.0, elapsed


def test_a_draft_within_its_deadline_is_unaffected(pipeline: Any, server: FaultServer) -> None:
    server.queue("429", "ok")
    result = run(pipeline, "draft")
    assert result.backend == "openai" and "faq/withdrawal" in [s["id"] for s in result.sources]
    assert len(server.seen) == 2


def test_backend_errors_never_show_credentials_of_the_base_url(fault_server: FaultServer) -> None:
    port = fault_server.url.split(":")[2].split("/")[0]
    secret_url = f"http://bot:hunter2@127.0.0.1:{port}/v1?api-key=k3y-0123456789"
    fault_server.queue("500", "malformed")
    backend, _ = backend_for(secret_url, COPILOT_LLM_MAX_RETRIES="0")
    for _ in range(2):
        with pytest.raises(BackendError) as err:
            backend.complete(MSGS)
        text = str(err.value)
        assert "hunter2" not in text and "k3y-0123456789" not in text
        assert f"http://bot:***@127.0.0.1:{port}/v1?api-key=***" in text
    assert repr(backend.where) and "hunter2" not in backend.where


# ---- the two judges ---------------------------------------------------------------------------
JUDGE_FAULTS = [
    ("hang", r"did not answer within"),
    ("429", r"answered 429: slow down"),
    ("500", r"answered 500: boom"),
    ("cut", r"closed the connection mid-reply"),
    ("malformed", r"not valid JSON"),
    ("empty", r"without a message \(no choices\)"),
    ("oversized", r"sent more than 1,000,000 bytes"),
    ("close", r"closed the connection without replying"),
]


@pytest.mark.parametrize(("fault", "message"), JUDGE_FAULTS)
def test_a_failing_guardrail_judge_leaves_the_deterministic_verdict_and_says_why(
    fault_server: FaultServer, fault: str, message: str
) -> None:
    from copilot.guard.guardrail import PolicyGuardrail
    from copilot.guard.judge import load_judge_prompt
    from copilot.guard.policy import load_policy
    from tests.conftest import ROOT

    backend, _ = backend_for(fault_server.url, COPILOT_LLM_MAX_RETRIES="0")
    guard = PolicyGuardrail(
        load_policy(ROOT / "prompts" / "policy.yaml"),
        judge=backend,
        judge_prompt=load_judge_prompt(ROOT / "prompts" / "guardrail_judge.yaml"),
    )
    fault_server.queue(*[fault] * 3)
    verdict = guard.check(VIOLATING, language="en", sources=["faq/withdrawal"])
    assert verdict.verdict == "reject"
    assert "credential_request" in {v.rule for v in verdict.violations}
    assert verdict.judge is not None and verdict.judge.startswith("error: ")
    assert re.search(message, verdict.judge), verdict.judge
    assert len(fault_server.seen) >= 1  # the judge was asked


@pytest.mark.parametrize(("fault", "message"), JUDGE_FAULTS)
def test_a_failing_eval_judge_is_a_clear_error(
    fault_server: FaultServer, fault: str, message: str
) -> None:
    from copilot.evaluation.judge import Judge, load_rubric
    from tests.conftest import ROOT

    backend, _ = backend_for(fault_server.url, COPILOT_LLM_MAX_RETRIES="0")
    judge = Judge(backend, load_rubric(ROOT / "prompts" / "judge_rubric.yaml"), runs=1)
    fault_server.queue(*[fault] * 3)
    with pytest.raises(BackendError, match=message):
        judge.judge(
            language="en",
            customer_message="Where is my withdrawal?",
            golden_reply="Withdrawals take about 30 minutes [faq/withdrawal].",
            draft="It takes about 30 minutes [faq/withdrawal].",
        )
