"""The guardrail's learned tier: shipped weights, explanations, teach-by-example, training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copilot.errors import InputError
from copilot.guard.examples import load_examples
from copilot.guard.guardrail import PolicyGuardrail
from copilot.guard.injection_training import injection_data_sha256
from copilot.guard.learned import LearnedTier
from copilot.guard.policy import load_policy, parse_policy
from copilot.guard.training import policy_data_sha256, policy_files
from copilot.heads.model import WeightsError
from copilot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
POLICY = ROOT / "prompts" / "policy.yaml"


def _settings(**env: str) -> Settings:
    return Settings.load(
        env={
            "COPILOT_KNOWLEDGE_DIR": str(ROOT / "knowledge"),
            "COPILOT_PROMPTS_DIR": str(ROOT / "prompts"),
            "COPILOT_POLICY_FILE": str(POLICY),
            "COPILOT_MODELS_DIR": str(MODELS),
            **env,
        }
    )


@pytest.fixture(scope="module")
def guard() -> PolicyGuardrail:
    return PolicyGuardrail.from_settings(_settings())


def test_shipped_weights_match_the_policy_and_its_data(guard: PolicyGuardrail) -> None:
    """The committed weights were trained on the committed examples and corpus (else the
    guardrail would refuse them as stale), on use-m3, with a threshold per rule and language."""
    tier = guard.learned
    assert tier is not None
    manifest = tier.heads.manifest
    policy = load_policy(POLICY)
    assert policy.learned is not None
    assert manifest["data"]["sha256"] == policy_data_sha256(policy)
    assert manifest["embedder"] == "use-m3" and tier.embedder.name == "use-m3"
    assert tuple(manifest["labels"]) == policy.learned.heads
    for rule in policy.learned.heads:
        assert set(manifest["thresholds"][rule]) == {"en", "ja", "zh"}
        assert all(0.5 <= t < 1.0 for t in manifest["thresholds"][rule].values())
    assert set(manifest["dev"]) >= {"overall", "by_language", "by_rule"}


def test_the_example_sentences_are_taught(guard: PolicyGuardrail) -> None:
    """The sentences of the teach-by-example file end up where their labels say: every
    compliant one passes, and nearly every violating one is caught (a sentence whose rule
    depends on context, like an obeyed injection without the customer's message, may not)."""
    caught, violating, learned = 0, 0, []
    for line in (
        (ROOT / "prompts" / "guard_examples.jsonl").read_text(encoding="utf-8").splitlines()
    ):
        ex = json.loads(line)
        v = guard.check(ex["text"], language=ex["language"])
        fired = {x.rule for x in v.violations if x.blocking}
        if ex["label"] == "violates":
            violating += 1
            caught += ex["rule"] in fired
            learned += [(ex["text"], x) for x in v.violations if x.tier == "learned"]
        else:
            assert not fired, (ex, [x.to_dict() for x in v.violations])
    assert caught >= 0.9 * violating, (caught, violating)
    assert len(learned) >= 5
    for text, x in learned:  # a learned violation points at its sentence and explains itself
        assert x.span is not None and text[x.span[0] : x.span[1]] == x.excerpt
        assert x.probability is not None and x.close_to and "learned tier" in x.message
        assert x.to_dict()["tier"] == "learned" and x.to_dict()["probability"] is not None


def test_rules_and_learned_findings_are_one_union(guard: PolicyGuardrail) -> None:
    """A sentence the rules already point at is not reported twice."""
    draft = "Please send me your password and the 6-digit code from your authenticator app."
    v = guard.check(draft, language="en")
    creds = [x for x in v.violations if x.rule == "credential_request"]
    assert creds and {x.tier for x in creds} == {"rules"}


def test_learned_tier_can_be_switched_off() -> None:
    off = PolicyGuardrail.from_settings(_settings(COPILOT_GUARDRAIL_LEARNED="false"))
    assert off.learned is None
    draft = "This is covered on the very first page of the help center, which most users find."
    assert all(x.tier == "rules" for x in off.check(draft, language="en").violations)


def test_stale_changed_or_missing_weights_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    shutil.copytree(MODELS, folder)
    with pytest.raises(WeightsError, match="stale"):
        LearnedTier.load(folder, "guard", data_sha256="0" * 64)
    blob = bytearray((folder / "guard.npz").read_bytes())
    blob[1000] ^= 0x01
    (folder / "guard.npz").write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match="does not match its manifest"):
        LearnedTier.load(folder, "guard")
    with pytest.raises(WeightsError, match="guardrail train"):
        LearnedTier.load(tmp_path / "nowhere", "guard")


def test_the_example_file_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "examples.jsonl"
    bad.write_text(
        '{"rule": "profit_promise", "language": "en", "label": "violates", "text": "ok"}\n'
        '{"rule": "nope", "language": "fr", "label": "maybe", "text": ""}\n'
        "not json\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as err:
        load_examples(bad, ("profit_promise",))
    assert f"{bad}: line 3" in str(err.value)
    good = tmp_path / "good.jsonl"
    good.write_text(bad.read_text(encoding="utf-8").splitlines()[1] + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_examples(good, ("profit_promise",))
    text = str(err.value)
    for field in ("rule", "language", "label", "text"):
        assert f"field '{field}'" in text
    assert f"{good}: line 1" in text


def test_the_policy_learned_section_is_validated() -> None:
    base = POLICY.read_text(encoding="utf-8")
    broken = base.replace("heads: [profit_promise,", "heads: [no_such_rule, profit_promise,", 1)
    with pytest.raises(InputError, match=r"learned\.heads.*no_such_rule"):
        parse_policy(
            broken,
            POLICY,
            (
                "personal_data",
                "unsafe_links",
                "unbacked_figures",
                "unverified_figures",
                "injection_followed",
            ),
        )
    files = policy_files(load_policy(POLICY))
    assert files[0].name == "guard_examples.jsonl" and len(files) >= 3


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=300))
def test_any_unicode_string_gets_a_verdict(guard: PolicyGuardrail, text: str) -> None:
    v = guard.check(text)
    assert v.verdict in ("pass", "reject") and v.verdict == (
        "reject" if any(x.blocking for x in v.violations) else "pass"
    )
    for x in v.violations:
        if x.span is not None:
            assert 0 <= x.span[0] <= x.span[1] <= len(text)


def _tiny_policy(tmp_path: Path) -> Path:
    """A copy of the policy whose corpus is a small slice of the training data."""
    folder = tmp_path / "prompts"
    folder.mkdir()
    rows: list[dict[str, Any]] = []
    for name in ("ga.jsonl", "gd.jsonl", "gg.jsonl"):
        lines = (ROOT / "evals" / "guardrails" / "train_v1" / name).read_text(encoding="utf-8")
        rows += [json.loads(x) for x in lines.splitlines()[:80]]
    (folder / "corpus.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8"
    )
    shutil.copy(ROOT / "prompts" / "guard_examples.jsonl", folder / "guard_examples.jsonl")
    messages: list[str] = []
    for name in ("ma.jsonl", "mc.jsonl", "me.jsonl"):
        lines = (ROOT / "evals" / "understanding" / "train_v1" / name).read_text(encoding="utf-8")
        messages += lines.splitlines()[:60]
    (folder / "messages.jsonl").write_text("\n".join(messages) + "\n", encoding="utf-8")
    text = (
        POLICY.read_text(encoding="utf-8")
        .replace(
            "corpus: [../evals/guardrails/labelled_v1.jsonl, ../evals/guardrails/train_v1/*.jsonl]",
            "corpus: [corpus.jsonl]",
        )
        .replace(
            "injection_corpus: [../evals/injection/train_v1/*.jsonl, "
            "../evals/understanding/train_v1/*.jsonl]",
            "injection_corpus: [messages.jsonl]",
        )
    )
    assert "injection_corpus: [messages.jsonl]" in text
    (folder / "policy.yaml").write_text(text, encoding="utf-8")
    return folder / "policy.yaml"


@pytest.mark.timeout(1200)
def test_training_is_reproducible_and_eval_prints_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from copilot.cli.main import main
    from copilot.settings import get_settings

    policy = _tiny_policy(tmp_path)
    models = tmp_path / "models"
    kb = tmp_path / "knowledge" / "faq"
    kb.mkdir(parents=True)
    for name in ("withdrawal.en.md", "withdrawal.ja.md", "withdrawal.zh.md"):
        shutil.copy(ROOT / "knowledge" / "faq" / name, kb / name)
    monkeypatch.setenv("COPILOT_POLICY_FILE", str(policy))
    monkeypatch.setenv("COPILOT_MODELS_DIR", str(models))
    monkeypatch.setenv("COPILOT_KNOWLEDGE_DIR", str(kb.parent))
    get_settings.cache_clear()
    try:
        hashes = []
        for _ in range(2):
            assert main(["guardrail", "train", "--json"]) == 0
            out = json.loads(capsys.readouterr().out)
            manifest = out["drafts"]
            hashes.append((manifest["weights_sha256"], out["injection"]["weights_sha256"]))
            assert manifest["data"]["sha256"] == policy_data_sha256(load_policy(policy))
            assert out["injection"]["data"]["sha256"] == injection_data_sha256(load_policy(policy))
        assert hashes[0] == hashes[1]
        assert main(["guardrail", "eval"]) == 0
        table = capsys.readouterr().out
        assert "overall" in table and "profit_promise" in table and "language ja" in table
        assert main(["guardrail", "eval", "--only", "injection"]) == 0
        table = capsys.readouterr().out
        assert "learned: recall" in table and "\nja " in table
        guard = PolicyGuardrail.from_settings(get_settings())
        assert guard.learned is not None and guard.injection is not None
        with (policy.parent / "guard_examples.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(
                '{"rule": "profit_promise", "language": "en", "label": "violates", '
                '"text": "This bot pays for your holidays every month."}\n'
            )
        with pytest.raises(WeightsError, match="stale"):
            PolicyGuardrail.from_settings(get_settings())
    finally:
        get_settings.cache_clear()


def test_views_embed_only_sentences_and_the_message(guard: PolicyGuardrail) -> None:
    """A draft costs one embedding per distinct sentence plus one for the message: the
    context, draft and interaction views are computed from those vectors."""
    import numpy as np

    from copilot.guard.learned import VIEWS, view_matrix, view_texts

    tier = guard.learned
    assert tier is not None
    draft = "Thanks for waiting. Your withdrawal is processing. Thanks for waiting."
    message = "where is my USDT"
    assert tier.texts_for(draft, message) == [
        "Thanks for waiting.",
        "Your withdrawal is processing.",
        "Thanks for waiting.",
        message,
    ]
    sentences = ["a", "b"]
    assert view_texts(sentences, 0, "m") == (("a",), ("a", "a"), ("m",))
    assert view_texts(sentences, 1, " ") == (("b",), ("a", "b"), ("-",))
    vec = {
        "a": np.array([1.0, 0.0], np.float32),
        "b": np.array([0.0, 1.0], np.float32),
        "m": np.array([0.6, 0.8], np.float32),
    }
    row = view_matrix([view_texts(sentences, 1, "m")], vec)[0]
    assert row.shape == (len(VIEWS) * 2,)
    assert np.allclose(row[:2], [0.0, 1.0])  # the sentence
    assert np.allclose(row[2:4], [2**-0.5, 2**-0.5])  # with the one before: unit-length mean
    assert np.allclose(row[4:6], [0.6, 0.8])  # the message
    assert np.allclose(row[6:8], [0.0, 0.8 * 2**0.5])  # sentence * message * sqrt(dim)
    _spans, probs, vectors = tier.probabilities(draft, {}, {}, False, message)
    assert (
        probs.shape == (3, len(tier.rules)) and vectors.shape[1] == len(VIEWS) * tier.embedder.dim
    )


def test_quoting_the_customers_own_transfer_ids_is_no_leak(guard: PolicyGuardrail) -> None:
    """The learned pii head reads long hex strings as data; the customer's own withdrawal id,
    wallet and TxID quoted back are not personal data (the head still decides on anything
    else: another wallet, an e-mail address)."""
    wallet = "0x52908400098527886E0F7030069857D2E4169EE7"
    txid = "0x" + "9f3c1a7be2d4" * 5 + "a1b2"
    message = (  # a customer who pastes everything (tests/test_masking_remote.py)
        f"Hello, my name is Kenji Watanabe. My withdrawal W2409110023 to {wallet} never "
        f"arrived (TxID {txid}). Reach me at kenji.watanabe88@gmail.com or kwatanabe (at) "
        "fastmail [dot] jp, phone +81 90-4821-7731. I paid with card 4539 1488 0343 6467, "
        "CVV 829; refunds can go to IBAN DE44 5001 0517 5407 3249 31. My Number 3719 2846 "
        "5029, Chinese resident ID 110105198805122013."
    )
    draft = (
        f"Hi Kenji Watanabe,\n\nWe are checking withdrawal W2409110023 to {wallet} (TxID "
        f"{txid}). You can follow it under Assets > Withdraw > History."
    )
    v = guard.check(draft, customer_message=message, language="en")
    assert "pii_leak" not in [x.rule for x in v.violations]
    from copilot.guard.guardrail import _only_echoed_ids

    assert _only_echoed_ids(draft, message)
    other = draft.replace(wallet, "0x1111222233334444555566667777888899990000")
    assert not _only_echoed_ids(other, message)  # someone else's wallet: the head decides
    assert not _only_echoed_ids("The e-mail on file is kenji.watanabe88@gmail.com.", message)
