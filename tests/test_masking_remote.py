"""Nothing personal leaves unmasked: every remote call path against a recording
OpenAI-compatible server on loopback (tests/llm_server.py's ``Scripted``, which keeps every
request body).

The server plays the model: it writes its replies with the placeholders it was sent, so the
agent's draft must show the real values again. Paths: the first draft, the re-draft after a
guardrail reject, the tone rewrite, the guardrail's LLM judge and the eval harness's judge.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from copilot.draft.types import DraftRequest, Turn
from copilot.llm.openai_compat import OpenAIBackend
from copilot.settings import Settings, get_settings
from tests import llm_server as servers
from tests.llm_server import Scripted

scripted = servers.scripted
ROOT = Path(__file__).resolve().parent.parent

NAME = "Kenji Watanabe"
WIFE = "Yuki Watanabe"
EMAIL = "kenji.watanabe88@gmail.com"
OBF_EMAIL = "kwatanabe (at) fastmail [dot] jp"
PHONE = "+81 90-4821-7731"
CARD = "4539 1488 0343 6467"
CVV = "829"
IBAN = "DE44 5001 0517 5407 3249 31"
MY_NUMBER = "3719 2846 5029"
CN_ID = "110105198805122013"
SEED = "legal winner thank year wave sausage worth useful legal winner thank yellow"
WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"
TXID = "0x" + "9f3c1a7be2d4" * 5 + "a1b2"
WITHDRAWAL = "W2409110023"

MESSAGE = (
    f"Hello, my name is {NAME}. My withdrawal {WITHDRAWAL} to {WALLET} never arrived "
    f"(TxID {TXID}). Reach me at {EMAIL} or {OBF_EMAIL}, phone {PHONE}. "
    f"I paid with card {CARD}, CVV {CVV}; refunds can go to IBAN {IBAN}. "
    f"My Number {MY_NUMBER}, Chinese resident ID {CN_ID}. "
    f"In case you need it, my seed phrase is {SEED}."
)
NOTE = (
    f"Spoke with his wife Mrs. {WIFE} on the phone; card {CARD} confirmed. Watanabe-san is upset."
)
HISTORY = [Turn("customer", f"Any news?\n\nRegards,\n{NAME}")]

RAW = [
    NAME,
    "Kenji",
    "Watanabe",
    "Yuki",
    EMAIL,
    OBF_EMAIL,
    "fastmail",
    PHONE,
    "4821-7731",
    CARD,
    CARD.replace(" ", ""),
    f"CVV {CVV}",
    IBAN,
    IBAN.replace(" ", ""),
    MY_NUMBER,
    CN_ID,
    SEED,
    "sausage",
    WALLET,
    WALLET.lower(),
    TXID,
    TXID[2:20],
    WITHDRAWAL,
]


def _placeholder(text: str, label: str) -> str:
    found = re.findall(rf"\[{label}_\d+\]", text)
    assert found, f"no [{label}_n] placeholder in the request"
    return found[0]


class Model:
    """What the recording server answers: a draft model, the guardrail judge and the eval
    judge, each writing with the placeholders of the request it was sent."""

    def __init__(self) -> None:
        self.judge_answer: Any = {"violations": []}
        self.calls: list[str] = []

    def __call__(self, request: dict[str, Any]) -> str:
        messages = request["messages"]
        system = messages[0]["content"]
        text = "\n".join(m["content"] for m in messages[1:])
        if "compliance reviewer" in system:
            self.calls.append("guard_judge")
            answer = self.judge_answer
            return json.dumps(answer(text) if callable(answer) else answer)
        if "quality reviewer" in system:
            self.calls.append("eval_judge")
            scores = {"empathy": 4, "accuracy": 4, "completeness": 4, "policy": 5}
            return json.dumps(scores | {"rationale": "fine"})
        order, wallet, txid = (_placeholder(text, k) for k in ("ORDER", "WALLET", "TXID"))
        if "tone wanted" in text:
            self.calls.append("rewrite")
            return (
                "Hi [CUSTOMER_NAME],\n\n"
                f"Withdrawal {order} to {wallet} (TxID {txid}) is on its way; "
                "see Assets > Withdraw > History [faq/withdrawal]."
            )
        if any(m["role"] == "assistant" for m in messages):
            self.calls.append("redraft")
            return (
                "Hi [CUSTOMER_NAME],\n\n"
                f"We are checking withdrawal {order} to {wallet} (TxID {txid}). You can follow "
                "it under Assets > Withdraw > History [faq/withdrawal]."
            )
        self.calls.append("draft")
        return (
            "Hi [CUSTOMER_NAME],\n\n"
            f"To verify withdrawal {order} to {wallet}, please reply with your seed phrase "
            "and your 2FA code [faq/withdrawal]."
        )


def _assert_nothing_raw(stub: Scripted) -> None:
    received = stub.received()
    assert stub.bodies, "the server saw no request"
    leaked = [raw for raw in RAW if raw in received]
    assert leaked == [], f"sent raw: {leaked}"
    for raw in (EMAIL, CARD, WALLET, TXID):  # and not JSON-escaped either
        assert raw.encode() not in b"".join(stub.bodies)


@pytest.fixture
def model(scripted: Scripted) -> Model:
    m = Model()
    scripted.respond = m
    return m


def _copilot(
    scripted: Scripted, monkeypatch: pytest.MonkeyPatch, kb_store: Path, judge: bool
) -> Any:
    from copilot.draft.factory import build_copilot

    monkeypatch.setenv("COPILOT_DATA_DIR", str(kb_store))
    monkeypatch.setenv("COPILOT_LLM_BASE_URL", scripted.url)
    monkeypatch.setenv("COPILOT_LLM_MODEL", "recorder")
    monkeypatch.setenv("COPILOT_GUARDRAIL_LLM_JUDGE", "true" if judge else "false")
    get_settings.cache_clear()
    return build_copilot(get_settings(), "openai")


def test_draft_and_redraft_send_nothing_raw_and_show_the_real_values(
    scripted: Scripted, model: Model, kb_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cp = _copilot(scripted, monkeypatch, kb_store, judge=False)
    res = cp.draft(
        DraftRequest(MESSAGE, customer_name=NAME, agent_note=NOTE, history=HISTORY, language="en")
    )
    assert model.calls == ["draft", "redraft"]  # the first draft asked for a seed phrase
    assert res.attempts == 2 and "credential_request" not in [v.rule for v in res.violations]
    _assert_nothing_raw(scripted)
    first = scripted.seen[0]["messages"]
    sent = "\n".join(m["content"] for m in first)
    for placeholder in ("[CUSTOMER_NAME]", "[EMAIL_1]", "[CARD_1]", "[CVV_1]", "[SEED_1]"):
        assert placeholder in sent
    # the re-draft request carries the rejected draft and the violations, both masked
    redraft = scripted.seen[1]["messages"]
    assert redraft[-2]["role"] == "assistant" and "[WALLET_" in redraft[-2]["content"]
    assert "seed phrase" in redraft[-1]["content"]
    # the agent sees the real values where the model wrote placeholders
    assert res.draft.startswith("Hi Kenji Watanabe,")
    for value in (WITHDRAWAL, WALLET, TXID):
        assert value in res.draft
    assert "[" + "WALLET_" not in res.draft and "[CUSTOMER_NAME]" not in res.draft


def test_the_guardrail_judge_sees_masked_texts_while_drafting(
    scripted: Scripted, model: Model, kb_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cp = _copilot(scripted, monkeypatch, kb_store, judge=True)
    res = cp.draft(DraftRequest(MESSAGE, customer_name=NAME, agent_note=NOTE, language="en"))
    assert model.calls == ["draft", "guard_judge", "redraft", "guard_judge"]
    _assert_nothing_raw(scripted)
    judged = [b for b in scripted.seen if "compliance reviewer" in b["messages"][0]["content"]]
    # the judge was shown the restored draft, masked again, and the masked customer message
    assert all("[WALLET_1]" in b["messages"][1]["content"] for b in judged)
    assert all("[SEED_1]" in b["messages"][1]["content"] for b in judged)
    assert WALLET in res.draft


def test_judge_excerpts_come_back_with_the_real_values(
    scripted: Scripted, model: Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    from copilot.guard.guardrail import PolicyGuardrail

    def flag_the_wallet(text: str) -> dict[str, Any]:
        draft = text.split("<draft>", 1)[1]
        wallet = _placeholder(draft, "WALLET")
        return {"violations": [{"rule": "pii_leak", "excerpt": wallet, "reason": f"{wallet}"}]}

    model.judge_answer = flag_the_wallet
    settings = Settings.load(
        env={
            "COPILOT_LLM_BASE_URL": scripted.url,
            "COPILOT_LLM_MODEL": "recorder",
            "COPILOT_PROMPTS_DIR": str(ROOT / "prompts"),
            "COPILOT_POLICY_FILE": str(ROOT / "prompts" / "policy.yaml"),
            "COPILOT_KNOWLEDGE_DIR": str(ROOT / "knowledge"),
            # the learned tier reads this sentence as a pii_leak itself, and a judge's
            # violation on a span another tier already found is not repeated: this test is
            # about what comes back from the judge, so only the rules run beside it
            "COPILOT_GUARDRAIL_LEARNED": "false",
        }
    )
    guard = PolicyGuardrail.from_settings(settings, judge=OpenAIBackend.from_settings(settings))
    draft = f"Hi Kenji Watanabe,\n\nWithdrawal {WITHDRAWAL} to {WALLET} is on its way."
    verdict = guard.check(draft, customer_message=MESSAGE, language="en")
    _assert_nothing_raw(scripted)
    assert verdict.judge == "ok"
    judged = [v for v in verdict.violations if v.message.startswith("LLM judge")]
    assert [v.excerpt for v in judged] == [WALLET]
    assert judged[0].span == (draft.index(WALLET), draft.index(WALLET) + len(WALLET))
    assert WALLET in judged[0].message


def test_rewrite_sends_nothing_raw_and_restores_the_values(
    scripted: Scripted, model: Model, kb_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cp = _copilot(scripted, monkeypatch, kb_store, judge=True)
    draft = (
        f"Hi {NAME},\n\nWe are checking withdrawal {WITHDRAWAL} to {WALLET} (TxID {TXID}); "
        f"we will write to {EMAIL} or call {PHONE}. Mrs. {WIFE} asked us to hurry "
        "[faq/withdrawal]."
    )
    res = cp.rewrite(draft, "concise", language="en")
    assert model.calls[0] == "rewrite" and "guard_judge" in model.calls
    _assert_nothing_raw(scripted)
    assert res.draft.startswith("Hi [NAME_") is False
    for value in (WITHDRAWAL, WALLET, TXID):
        assert value in res.draft


def test_the_eval_judge_sees_masked_texts(scripted: Scripted, model: Model) -> None:
    from copilot.evaluation.judge import Judge, load_rubric

    settings = Settings.load(
        env={"COPILOT_LLM_BASE_URL": scripted.url, "COPILOT_LLM_MODEL": "recorder"}
    )
    judge = Judge(
        OpenAIBackend.from_settings(settings),
        load_rubric(ROOT / "prompts" / "judge_rubric.yaml"),
        runs=2,
    )
    out = judge.judge(
        language="en",
        customer_message=MESSAGE,
        golden_reply=f"Hi {NAME}, withdrawal {WITHDRAWAL} to {WALLET} is being checked.",
        draft=f"Dear Mr. Watanabe, we will e-mail {EMAIL} about {WITHDRAWAL}.",
    )
    assert model.calls == ["eval_judge", "eval_judge"] and out["ok_runs"] == 2
    _assert_nothing_raw(scripted)
    sent = scripted.seen[0]["messages"][1]["content"]
    # one vault for the three texts: the same value has the same placeholder in each
    assert sent.count("[ORDER_1]") == 3 and sent.count("[EMAIL_1]") == 2


@pytest.mark.parametrize(
    ("language", "name", "message", "raw"),
    [
        (
            "ja",
            "山田太郎",
            f"山田太郎と申します。出金 {WITHDRAWAL}（{WALLET}、TxID {TXID}）が届きません。"
            "連絡先は ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｊｐ、電話は０９０ー４８２１ー７７３１です。"
            "妻の山田花子さんも心配しています。",
            ["山田", "花子", "ｙａｍａｄａ", "０９０ー４８２１ー７７３１"],
        ),
        (
            "zh",
            "李明",
            f"你好，我叫李明。提现 {WITHDRAWAL} 到 {WALLET} 还没到账，交易哈希 {TXID}。"
            f"手机 +86 138 1234 5678，身份证 {CN_ID}，邮箱 liming (at) qq [dot] com。"
            "我太太王女士也很着急。",
            ["李明", "王女士", "138 1234 5678", CN_ID, "liming"],
        ),
    ],
)
def test_japanese_and_chinese_messages_send_nothing_raw(
    scripted: Scripted,
    model: Model,
    kb_store: Path,
    monkeypatch: pytest.MonkeyPatch,
    language: str,
    name: str,
    message: str,
    raw: list[str],
) -> None:
    cp = _copilot(scripted, monkeypatch, kb_store, judge=True)
    res = cp.draft(DraftRequest(message, customer_name=name, language=language))
    received = scripted.received()
    assert scripted.bodies and [r for r in [*raw, WALLET, TXID, WITHDRAWAL] if r in received] == []
    assert name in res.draft and WALLET in res.draft
