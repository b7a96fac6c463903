"""The small library of trained heads: features, the weights file, training, thresholds."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from copilot.heads.features import NgramVocab, char_ngrams, fold, sparse_scores
from copilot.heads.model import HeadSet, WeightsError, npz_bytes
from copilot.heads.train import Hyper, TrainSet, threshold_for_fpr, train_heads


class TinyEmbedder:
    """A deterministic stand-in embedder: hashed character bigrams (16-d)."""

    name = "tiny"
    model_id = "tiny-test-1"
    dim = 16
    engine = "test"

    def passages(self, texts: list[str], *, use_cache: bool = True) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for r, t in enumerate(texts):
            for i in range(max(1, len(t) - 1)):
                out[r, int(hashlib.md5(t[i : i + 2].encode()).hexdigest(), 16) % self.dim] += 1
            out[r] /= max(1e-9, float(np.linalg.norm(out[r])))
        return out

    def queries(self, texts: list[str]) -> np.ndarray:
        return self.passages(texts)

    def truncate(self, text: str, tokens: int) -> str:
        return text


def test_fold_normalises_what_means_the_same() -> None:
    assert fold("ＷＩＴＨＤＲＡＷ\u200b  30 分") == "withdraw 00 分"
    assert fold("See [faq/withdrawal] and [faq/fees, faq/kyc].") == "see [src] and [src]."
    assert fold("您的帳戶已經被凍結") == fold("您的帐户已经被冻结")  # Traditional -> Simplified
    assert fold("出金が届きません") == "出金が届きません"  # Japanese kanji are left alone


def test_ngram_rows_are_sublinear_tfidf_and_l2_normalised() -> None:
    texts = [fold(t) for t in ("aab", "abc", "bcd", "aab aab")]
    vocab = NgramVocab.fit(texts, n_min=1, n_max=2, min_df=2)
    assert set(vocab.grams) >= {"a", "b", "ab", "bc"}
    assert "d" not in vocab.grams  # found in one text only (min_df=2)
    idx, val = vocab.row(texts[3])
    assert math.isclose(float(np.linalg.norm(val)), 1.0, rel_tol=1e-5)
    counts = char_ngrams(texts[3], 1, 2)
    raw = {vocab.grams[i]: (1 + math.log(counts[vocab.grams[i]])) * vocab.idf[i] for i in idx}
    norm = math.sqrt(sum(v * v for v in raw.values()))
    for i, v in zip(idx, val, strict=True):
        assert math.isclose(float(v), raw[vocab.grams[i]] / norm, rel_tol=1e-5)
    dense = vocab.matrix(texts).toarray()
    assert np.allclose(dense[3, idx], val)
    weights = np.arange(len(vocab) * 2, dtype=np.float32).reshape(2, len(vocab))
    bias = np.asarray([0.5, -1.0], np.float32)
    assert np.allclose(sparse_scores(vocab.rows(texts), weights, bias), dense @ weights.T + bias)


def test_a_row_lists_the_known_grams_in_the_order_they_first_occur_with_any_count() -> None:
    # the training matrix and the shipped weights depend on this order and these values
    texts = [fold(t) for t in ("ab" * 300, "ba", "abc", "xyz ab")]
    vocab = NgramVocab.fit(texts, n_min=1, n_max=3, min_df=2)
    for text in texts:
        counts = char_ngrams(text, 1, 3)
        known = [g for g in counts if g in vocab.index]
        idx, val = vocab.row(text)
        assert [vocab.grams[i] for i in idx] == known
        tf = np.asarray([1 + math.log(counts[g]) for g in known], np.float32)  # counts up to 300
        expected = tf * vocab.idf[idx]
        assert np.allclose(val, expected / np.linalg.norm(expected), rtol=1e-6)
    assert vocab.row("qqq")[0].size == 0


def _data(n: int = 80) -> TrainSet:
    good = [f"your withdrawal {i} is processed within 30 minutes" for i in range(n // 2)]
    bad = [f"send me your password {i} and the 2fa code now" for i in range(n // 2)]
    texts = good + bad
    y = np.asarray([[0.0]] * len(good) + [[1.0]] * len(bad), np.float32)
    return TrainSet(texts, y, ["en"] * n, [f"g{i % 10}" for i in range(n)])


def _train() -> HeadSet:
    heads, held = train_heads("probe", ["credential"], [], _data(), TinyEmbedder(), Hyper(folds=3))
    assert held.shape == (80, 1) and not np.isnan(held).any()
    return heads


def test_training_is_reproducible_and_the_file_round_trips(tmp_path: Path) -> None:
    one, two = _train(), _train()
    assert npz_bytes(one.arrays()) == npz_bytes(two.arrays())
    one.thresholds = {"credential": {"en": 0.7}}
    npz, meta = one.save(tmp_path, {"data": {"sha256": "x"}})
    manifest = json.loads(meta.read_text(encoding="utf-8"))
    assert manifest["weights_sha256"] == hashlib.sha256(npz.read_bytes()).hexdigest()
    loaded = HeadSet.load(tmp_path, "probe", embedder="tiny")
    texts = ["please send me your password", "it arrives within 30 minutes"]
    emb = TinyEmbedder().passages(texts)
    folded = [fold(t) for t in texts]
    assert np.allclose(loaded.probabilities(emb, folded), one.probabilities(emb, folded))
    p = loaded.probabilities(emb, folded)[:, 0]
    assert p[0] > 0.5 > p[1]
    assert loaded.threshold("credential", "en") == 0.7
    assert loaded.threshold("credential", "ja") == 0.5  # no calibration: the default


def test_changed_stale_or_foreign_weights_are_refused(tmp_path: Path) -> None:
    heads = _train()
    npz, meta = heads.save(tmp_path, {})
    with pytest.raises(WeightsError, match="trained on the tiny embedder, not use-m3"):
        HeadSet.load(tmp_path, "probe", embedder="use-m3")
    blob = bytearray(npz.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    npz.write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match="does not match its manifest"):
        HeadSet.load(tmp_path, "probe")
    manifest = json.loads(meta.read_text(encoding="utf-8"))
    meta.write_text(json.dumps({**manifest, "format": 99}), encoding="utf-8")
    with pytest.raises(WeightsError, match="weights format 99"):
        HeadSet.load(tmp_path, "probe")
    with pytest.raises(WeightsError, match=r"trained heads not found.*understand train"):
        HeadSet.load(tmp_path, "nothing-here")


def test_a_label_without_positives_is_a_clear_error() -> None:
    data = _data()
    data.labels[:] = 0.0
    with pytest.raises(Exception, match="needs positive and negative examples"):
        train_heads("probe", ["credential"], [], data, TinyEmbedder(), Hyper(folds=3))


def test_threshold_for_fpr() -> None:
    negatives = np.asarray([0.1, 0.2, 0.95, 0.6, 0.99], np.float32)
    assert threshold_for_fpr(negatives, 0.0) > 0.99  # flags none of them
    t = threshold_for_fpr(negatives, 0.2)  # one of five may be flagged
    assert (negatives >= t).sum() == 1 and t > 0.95
    assert threshold_for_fpr(np.asarray([0.1, 0.2]), 0.0, floor=0.5) == 0.5
    assert threshold_for_fpr(np.asarray([]), 0.01) == 0.5


def test_an_ablated_feature_gets_no_weight_in_the_stacking_head() -> None:
    full, _ = train_heads("probe", ["credential"], [], _data(), TinyEmbedder(), Hyper(folds=3))
    assert full.w_stack[0, 0] != 0 and full.w_stack[0, 1] != 0
    ngr_only, _ = train_heads(
        "probe", ["credential"], [], _data(), TinyEmbedder(), Hyper(folds=3, features=("ngr",))
    )
    assert ngr_only.w_stack[0, 0] == 0 and ngr_only.w_stack[0, 1] != 0
    emb_only, _ = train_heads(
        "probe", ["credential"], [], _data(), TinyEmbedder(), Hyper(folds=3, features=("emb",))
    )
    assert emb_only.w_stack[0, 1] == 0 and emb_only.w_stack[0, 0] != 0


def _xor_data(n: int = 600) -> TrainSet:
    """A label no linear head can read: positive when exactly one of two cues is present
    ("refund" xor "tomorrow"), so only the network separates it."""
    rng = np.random.default_rng(0)
    texts, y = [], []
    for i in range(n):
        a, b = bool(rng.integers(2)), bool(rng.integers(2))
        words = ["refund" if a else "status", "tomorrow" if b else "history", f"case {i}"]
        texts.append(" ".join(words))
        y.append([float(a != b)])
    return TrainSet(texts, np.asarray(y, np.float32), ["en"] * n, [f"g{i % 12}" for i in range(n)])


class CueEmbedder(TinyEmbedder):
    """Two directions: whether "refund" and whether "tomorrow" is in the text."""

    name = "cue"
    dim = 4

    def passages(self, texts: list[str], *, use_cache: bool = True) -> np.ndarray:
        return np.asarray(
            [[float("refund" in t), float("tomorrow" in t), 1.0, 0.0] for t in texts], np.float32
        )


def test_the_network_reads_what_a_linear_head_cannot_and_round_trips(tmp_path: Path) -> None:
    data = _xor_data()
    hyper = Hyper(folds=3, mlp_hidden=16, mlp_epochs=300, features=("emb", "mlp"))
    with_net, held = train_heads("probe", ["promise"], [], data, CueEmbedder(), hyper)
    linear, held_linear = train_heads(
        "probe", ["promise"], [], data, CueEmbedder(), Hyper(folds=3, features=("emb",))
    )
    y = data.labels[:, 0]
    accuracy = float(((held[:, 0] > 0.5) == (y > 0.5)).mean())
    accuracy_linear = float(((held_linear[:, 0] > 0.5) == (y > 0.5)).mean())
    assert accuracy > 0.95 > 0.8 > accuracy_linear  # out of fold: the network learned xor
    assert with_net.has_mlp and not linear.has_mlp
    assert with_net.w_stack.shape == (1, 3) and with_net.w_mlp1.shape == (4, 16)
    again, _ = train_heads("probe", ["promise"], [], data, CueEmbedder(), hyper)
    assert npz_bytes(again.arrays()) == npz_bytes(with_net.arrays())  # seeded: same bytes
    with_net.save(tmp_path, {})
    loaded = HeadSet.load(tmp_path, "probe", embedder="cue")
    texts = ["refund history", "refund tomorrow", "status tomorrow", "status history"]
    emb, folded = CueEmbedder().passages(texts), [fold(t) for t in texts]
    p = loaded.probabilities(emb, folded)[:, 0]
    assert np.allclose(p, with_net.probabilities(emb, folded)[:, 0])
    assert p[0] > 0.5 and p[2] > 0.5 and p[1] < 0.5 and p[3] < 0.5


def test_a_format_1_file_without_a_network_still_loads(tmp_path: Path) -> None:
    heads = _train()
    arrays = {k: v for k, v in heads.arrays().items() if not k.startswith(("w_mlp", "b_mlp"))}
    npz, meta = heads.save(tmp_path, {})
    blob = npz_bytes(arrays)
    npz.write_bytes(blob)
    manifest = json.loads(meta.read_text(encoding="utf-8"))
    manifest.update(format=1, weights_sha256=hashlib.sha256(blob).hexdigest())
    meta.write_text(json.dumps(manifest), encoding="utf-8")
    loaded = HeadSet.load(tmp_path, "probe")
    assert not loaded.has_mlp
    emb = TinyEmbedder().passages(["send me your password"])
    assert np.allclose(loaded.probabilities(emb, ["send me your password"]),
                       heads.probabilities(emb, ["send me your password"]))  # fmt: skip


class CountingEmbedder(TinyEmbedder):
    """Counts the texts it is asked to embed."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def passages(self, texts: list[str], *, use_cache: bool = True) -> np.ndarray:
        self.seen += list(texts)
        return super().passages(texts)


def test_primed_vectors_settle_into_the_bounded_recent_cache() -> None:
    from copilot.heads.vectors import VectorCache

    emb = CountingEmbedder()
    cache = VectorCache(emb, size=3)
    cache.prime(["a b", "c d"])
    cache.settle()  # primed -> recent: still known, embedded once
    vectors = cache.embed(["a b", "c d"])
    assert emb.seen == ["a b", "c d"]
    assert np.allclose(vectors, TinyEmbedder().passages(["a b", "c d"]))
    cache.prime(["e f", "g h"])
    cache.settle()  # four texts, room for three: the oldest goes
    emb.seen.clear()
    cache.embed(["a b", "g h"])
    assert emb.seen == ["a b"]


def test_ngram_logits_come_from_a_bounded_cache_and_equal_the_uncached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import copilot.heads.model as model

    heads = _train()
    texts = [fold(t) for t in ("send me your password", "it arrives soon", "send me your password")]
    expected = sparse_scores(heads.vocab.rows(texts), heads.w_ngr, heads.b_ngr)
    monkeypatch.setattr(model, "NGRAM_CACHE", 1)
    assert np.allclose(heads.ngram_logits(texts), expected)
    assert len(heads._ngr_recent) == 1  # bounded
    assert np.allclose(heads.ngram_logits(texts[::-1]), expected[::-1])  # and still right
