"""Learned message understanding: decisions, weights refused when stale or changed,
reproducible training (same weights hash twice), the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from copilot.cli.main import main
from copilot.heads.model import WeightsError
from copilot.heads.train import Hyper
from copilot.understand.messages import TRAIN_DIR, LabelledMessage, ThreadTurn, load_split
from copilot.understand.model import (
    EMOTION_HEADS,
    LABELS,
    MATTER_FIRST,
    NO_CONTEXT,
    MessageModel,
    context_text,
    decide,
)
from copilot.understand.training import _flag_threshold, label_matrix, score, train

ROOT = Path(__file__).resolve().parent.parent
SMALL = Hyper(folds=3, max_features=4000)


def _subset(folder: Path) -> Path:
    """A small copy of the training data in which every label has a few positives."""
    messages = load_split(ROOT / TRAIN_DIR)
    y = label_matrix(messages)
    keep: set[int] = set()
    for j in range(len(LABELS)):
        keep.update(np.flatnonzero(y[:, j])[:6].tolist())
    keep.update(range(0, len(messages), 40))
    source = {m.id: m for m in messages}
    folder.mkdir()
    lines: list[str] = []
    for path in sorted((ROOT / TRAIN_DIR).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and json.loads(line)["id"] in {messages[i].id for i in keep}:
                lines.append(line)
    (folder / "small.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert all(json.loads(x)["id"] in source for x in lines)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("understand")
    data = _subset(base / "data")
    models = base / "models"
    train(models, data, hyper=SMALL)
    return models, data


def test_training_is_reproducible(trained: tuple[Path, Path], tmp_path: Path) -> None:
    models, data = trained
    again = tmp_path / "again"
    train(again, data, hyper=SMALL)
    first = json.loads((models / "understand.json").read_text())
    second = json.loads((again / "understand.json").read_text())
    assert first["weights_sha256"] == second["weights_sha256"]
    assert (models / "understand.npz").read_bytes() == (again / "understand.npz").read_bytes()
    assert first["labels"] == list(LABELS) and first["views"] == ["message", "context"]


def test_probabilities_are_calibrated_and_decisions_sane(trained: tuple[Path, Path]) -> None:
    from copilot.heads.model import data_sha256
    from copilot.understand.messages import training_files

    models, data = trained
    model = MessageModel.load(models, data_sha256=data_sha256(training_files(data)))
    u = model.understand("my withdrawal of 500 USDT is stuck for 3 days", "en")
    assert 0.0 < u.confidence <= 1.0 and u.primary in LABELS
    assert all(0.0 <= p <= 1.0 for p in u.probabilities.values())
    assert set(u.to_dict()) == {"topics", "flags", "emotion", "inherited"}
    # the thread is read: the same short follow-up with and without it differs
    bare = model.probabilities([("any update???", NO_CONTEXT)])
    thread = [ThreadTurn("customer", "my BTC withdrawal has been pending for two days")]
    with_thread = model.probabilities([("any update???", context_text(thread))])
    assert not np.allclose(bare, with_thread)


def test_changed_stale_or_foreign_weights_are_refused(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    models, _ = trained
    copy = tmp_path / "m"
    shutil.copytree(models, copy)
    with pytest.raises(WeightsError, match="stale"):
        MessageModel.load(copy, data_sha256="0" * 64)
    meta = json.loads((copy / "understand.json").read_text())
    meta["views"] = ["message"]
    (copy / "understand.json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="other labels or views"):
        MessageModel.load(copy)
    blob = bytearray((copy / "understand.npz").read_bytes())
    blob[100] ^= 1
    (copy / "understand.npz").write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match="does not match its manifest"):
        MessageModel.load(copy)
    with pytest.raises(WeightsError, match="understand train"):
        MessageModel.load(tmp_path / "nothing")


def test_decisions_from_probabilities(trained: tuple[Path, Path]) -> None:
    model = MessageModel.load(trained[0])
    heads = model.heads
    vec = np.zeros(len(LABELS), np.float32)
    vec[LABELS.index("faq/withdrawal")] = 0.9
    vec[LABELS.index("faq/fees")] = 0.7
    vec[LABELS.index("faq/deposit")] = 0.2
    vec[LABELS.index("emotion>=1")] = 0.9
    vec[LABELS.index("emotion>=3")] = 0.9  # not counted: level 2 was not reached
    u = decide(heads, vec, "en")
    assert [t for t, _ in u.topics] == ["faq/withdrawal", "faq/fees"]
    assert u.emotion == 1 and u.flags == ()
    vec[LABELS.index("accusation")] = 0.99
    u = decide(heads, vec, "en")
    assert u.has("accusation") and u.emotion == 2
    vague = np.zeros(len(LABELS), np.float32)
    vague[LABELS.index("greeting_or_vague")] = 0.8
    vague[LABELS.index("faq/fees")] = 0.7
    u = decide(heads, vague, "ja")
    assert [t for t, _ in u.topics] == ["greeting_or_vague"] and u.emotion == 0
    assert EMOTION_HEADS[0] in u.probabilities


def test_the_matter_goes_before_an_upset_customers_playbook(trained: tuple[Path, Path]) -> None:
    heads = MessageModel.load(trained[0]).heads
    vec = np.zeros(len(LABELS), np.float32)
    vec[LABELS.index("playbook/escalation")] = 0.8
    vec[LABELS.index("playbook/angry-customer")] = 0.6  # another upset playbook: skipped
    vec[LABELS.index("faq/withdrawal")] = 0.35  # the matter, at P >= MATTER_FIRST
    u = decide(heads, vec, "en")
    assert [t for t, _ in u.topics] == [
        "faq/withdrawal",
        "playbook/escalation",
        "playbook/angry-customer",
    ]
    # the drafting's routes read the model's ranking
    ranked = u.by_probability()
    assert [t for t, _ in ranked.topics] == ["playbook/escalation", "playbook/angry-customer"]
    assert ranked.by_probability() is ranked and ranked.ranked is None
    vec[LABELS.index("faq/withdrawal")] = MATTER_FIRST - 0.01  # not sure enough: no change
    assert decide(heads, vec, "en").primary == "playbook/escalation"
    vec[LABELS.index("faq/withdrawal")] = 0.0
    vec[LABELS.index("greeting_or_vague")] = 0.5  # not a matter
    u = decide(heads, vec, "en")
    assert u.primary == "playbook/escalation" and u.by_probability() is u
    calm = np.zeros(len(LABELS), np.float32)
    calm[LABELS.index("faq/fees")] = 0.8
    calm[LABELS.index("faq/withdrawal")] = 0.4
    assert decide(heads, calm, "en").ranked is None  # only an upset playbook yields


def test_a_vague_follow_up_inherits_the_threads_topic(
    trained: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = MessageModel.load(trained[0])
    vague = np.zeros(len(LABELS), np.float32)
    vague[LABELS.index("greeting_or_vague")] = 0.9
    vague[LABELS.index("emotion>=1")] = 0.9
    asked = np.zeros(len(LABELS), np.float32)
    asked[LABELS.index("faq/withdrawal")] = 0.8
    seen: list[list[tuple[str, str]]] = []

    def fake(rows: list[tuple[str, str]]) -> np.ndarray:
        seen.append(rows)
        return np.stack([vague if rows[0][0] == "Any update???" else asked])

    monkeypatch.setattr(model, "probabilities", fake)
    thread = [
        ThreadTurn("customer", "my BTC withdrawal is pending since Monday"),
        ThreadTurn("agent", "we are checking"),
    ]
    u = model.understand("Any update???", "en", thread)
    assert u.inherited and u.primary == "faq/withdrawal" and u.emotion == 1
    assert seen[1][0][0] == "my BTC withdrawal is pending since Monday"
    alone = model.understand("Any update???", "en")
    assert not alone.inherited and alone.primary == "greeting_or_vague"
    assert alone.to_dict()["inherited"] is False


def test_a_vague_follow_up_looks_past_a_turn_with_no_topic(
    trained: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Customer: "KYC pending for 2 days" / agent: "checking" / customer: "OK, I'll wait" /
    customer: "so what happened?": the topic is the KYC turn's, not the "I'll wait" one's."""
    model = MessageModel.load(trained[0])
    vague = np.zeros(len(LABELS), np.float32)
    vague[LABELS.index("greeting_or_vague")] = 0.9
    asked = np.zeros(len(LABELS), np.float32)
    asked[LABELS.index("faq/kyc")] = 0.8
    seen: list[str] = []

    def fake(rows: list[tuple[str, str]]) -> np.ndarray:
        seen.append(rows[0][0])
        return np.stack([asked if "KYC" in rows[0][0] else vague])

    monkeypatch.setattr(model, "probabilities", fake)
    thread = [
        ThreadTurn("customer", "my KYC has been pending for 2 days"),
        ThreadTurn("agent", "we are checking"),
        ThreadTurn("customer", "OK, I'll wait"),
    ]
    u = model.understand("so what happened?", "en", thread)
    assert u.inherited and u.primary == "faq/kyc"
    assert seen == ["so what happened?", "OK, I'll wait", "my KYC has been pending for 2 days"]
    # nothing with a topic in the thread: the follow-up stays vague
    thread[0] = ThreadTurn("customer", "hello")
    assert model.understand("so what happened?", "en", thread).primary == "greeting_or_vague"


def test_context_text_reads_the_last_turns_and_the_note() -> None:
    turns = [ThreadTurn("customer", f"turn {i}") for i in range(5)]
    assert context_text(turns, " note ") == "turn 2\nturn 3\nturn 4\nnote"
    assert context_text((), "  ") == NO_CONTEXT


def test_flag_threshold_is_the_best_f_beta_in_range() -> None:
    scores = np.asarray([0.9, 0.8, 0.3, 0.1, 0.05, 0.6], np.float32)
    y = np.asarray([1, 1, 1, 0, 0, 1], np.float32)
    assert _flag_threshold(scores, y, 1.0) == float(np.float32(0.3))
    # recall weighted heavily: the lower threshold that also catches a weak positive wins
    y_weak = np.asarray([1, 1, 1, 1, 0, 1], np.float32)
    assert _flag_threshold(scores, y_weak, 4.0) == float(np.float32(0.1))
    assert _flag_threshold(scores, np.zeros(6, np.float32), 1.0) == 0.5


def test_score_counts_per_language() -> None:
    m = [
        LabelledMessage(
            "a", "en", "x", topics=("faq/fees", "faq/kyc"), emotion=2, flags=("accusation",)
        ),
        LabelledMessage("b", "ja", "y", topics=("faq/kyc",), emotion=0),
    ]
    r = score(
        m,
        ["faq/fees", "faq/fees"],
        [3, 2],
        [["faq/fees", "faq/kyc"], ["faq/fees"]],
        [["accusation"], []],
    )
    assert r["overall"]["top_topic_acc"] == 0.5
    assert r["by_language"]["en"]["second_topic_recall"] == 1.0
    assert r["by_language"]["ja"]["emotion_within_1"] == 0.0
    assert r["overall"]["accusation_or_demand_ge2"] == 1.0
    assert r["overall"]["flags"]["accusation"] == {"n": 1, "recall": 1.0, "precision": 1.0}
    assert r["by_language"]["zh"] == {"n": 0}


def test_cli_eval_on_a_file(
    trained: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    models, data = trained
    monkeypatch.setenv("COPILOT_MODELS_DIR", str(models))
    from copilot.settings import get_settings

    get_settings.cache_clear()
    assert (
        main(["understand", "eval", "--folder", str(data), "--data", str(data / "small.jsonl")])
        == 0
    )
    out = capsys.readouterr().out
    assert "top topic" in out and "account_compromised" in out
    assert main(["understand", "eval", "--folder", str(ROOT / TRAIN_DIR), "--json"]) == 2
    assert "stale" in capsys.readouterr().err
