"""A set of small trained heads and its weights file: plain arrays plus a JSON manifest.

Each head is a binary label (a guardrail rule, a topic, an emotion step...). Its
probability stacks two logistic regressions, one over the sentence embedding and one
over character n-grams, with a few extra features named by the set (for example whether
a rule's pattern fired on the same sentence)::

    p = sigmoid(w . [logit_emb, logit_ngrams, (logit_mlp,) extra_1, ...] + b)

where ``logit_mlp`` is the optional small network over the embeddings (format 2; a set
without one has zero-sized network arrays).

``<name>.npz`` holds the arrays (written byte-for-byte reproducibly, read with
``allow_pickle=False``); ``<name>.json`` is the manifest: format version, labels, the
embedder the heads were trained on (another embedder is refused), the sha256 of the
training data and of the weights file (a changed file is refused), thresholds per label
and language, and the metrics reached on the dev split. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from copilot.errors import CopilotError
from copilot.heads.features import NgramVocab, sparse_scores

FORMAT = 2
NGRAM_CACHE = 4096  # folded texts whose n-gram logits a head set keeps
READABLE_FORMATS = (1, 2)  # format 1: no network arrays
MLP_ARRAYS = ("w_mlp1", "b_mlp1", "w_mlp2", "b_mlp2")
ARRAYS = (
    "grams",
    "idf",
    "w_emb",
    "b_emb",
    "w_ngr",
    "b_ngr",
    "w_stack",
    "b_stack",
    "ex_text",
    "ex_label",
    "ex_emb",
)


class WeightsError(CopilotError):
    """A weights file is missing, changed, stale or made for another embedder."""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))
    return out


@dataclass
class HeadSet:
    """Heads sharing one embedder and one n-gram vocabulary."""

    name: str
    labels: tuple[str, ...]
    extras: tuple[str, ...]
    embedder: str
    embedder_model: str
    vocab: NgramVocab
    w_emb: np.ndarray  # (labels, dim)
    b_emb: np.ndarray  # (labels,)
    w_ngr: np.ndarray  # (labels, vocab)
    b_ngr: np.ndarray
    w_stack: np.ndarray  # (labels, 2 + extras)
    b_stack: np.ndarray
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)
    # labelled examples to explain a decision ("close to: ..."): text, label index, embedding
    ex_text: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.str_))
    ex_label: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    ex_emb: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float16))
    # the optional network over the embeddings: (dim, hidden), (hidden,), (labels, hidden),
    # (labels,); zero-sized when the set has none
    w_mlp1: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    b_mlp1: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    w_mlp2: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    b_mlp2: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    # n-gram logits of recent folded texts (a template sentence, a repeated message):
    # computing a text's TF-IDF row and its scores is most of a check's own work
    _ngr_recent: OrderedDict[str, np.ndarray] = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False
    )
    _ngr_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def ngram_logits(self, folded: Sequence[str]) -> np.ndarray:
        """The n-gram heads' logits ``(rows, labels)``, from a bounded cache of recent texts."""
        out = np.empty((len(folded), len(self.labels)), np.float32)
        missing: dict[str, list[int]] = {}
        with self._ngr_lock:
            for r, text in enumerate(folded):
                known = self._ngr_recent.get(text)
                if known is None:
                    missing.setdefault(text, []).append(r)
                else:
                    self._ngr_recent.move_to_end(text)
                    out[r] = known
        if missing:
            texts = list(missing)
            fresh = sparse_scores(self.vocab.rows(texts), self.w_ngr, self.b_ngr)
            with self._ngr_lock:
                for text, z in zip(texts, fresh, strict=True):
                    out[missing[text]] = z
                    self._ngr_recent[text] = z
                while len(self._ngr_recent) > NGRAM_CACHE:
                    self._ngr_recent.popitem(last=False)
        return out

    @property
    def has_mlp(self) -> bool:
        """Whether the set stacks a network's score (see the module docstring)."""
        return bool(self.w_mlp1.size)

    def nearest(self, embedding: np.ndarray, label: str) -> tuple[str, float] | None:
        """The labelled example of ``label`` closest to ``embedding`` and its cosine."""
        if not len(self.ex_text):
            return None
        mine = np.flatnonzero(self.ex_label == self.index(label))
        if not len(mine):
            return None
        sims = self.ex_emb[mine].astype(np.float32) @ embedding.astype(np.float32)
        best = int(np.argmax(sims))
        return str(self.ex_text[mine[best]]), float(sims[best])

    def index(self, label: str) -> int:
        """Position of ``label``."""
        return self.labels.index(label)

    def probabilities(
        self,
        embeddings: np.ndarray,
        folded: Sequence[str],
        extras: np.ndarray | None = None,
    ) -> np.ndarray:
        """P(label) for each row: shape ``(rows, labels)``; ``extras`` is ``(rows, labels,
        len(self.extras))`` (zeros when None)."""
        n = len(folded)
        if n == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        z_emb = embeddings.astype(np.float32) @ self.w_emb.T + self.b_emb
        z_ngr = self.ngram_logits(folded)
        bases = [z_emb, z_ngr]
        if self.has_mlp:
            bases.append(mlp_logits(embeddings, self.w_mlp1, self.b_mlp1, self.w_mlp2, self.b_mlp2))
        stack = np.stack(bases, axis=2)  # (rows, labels, 2 or 3)
        if self.extras:
            more = (
                extras
                if extras is not None
                else np.zeros((n, len(self.labels), len(self.extras)), np.float32)
            )
            stack = np.concatenate([stack, more.astype(np.float32)], axis=2)
        z = np.einsum("nlk,lk->nl", stack, self.w_stack) + self.b_stack
        return _sigmoid(z).astype(np.float32)

    def threshold(self, label: str, language: str) -> float:
        """The decision threshold of ``label`` in ``language`` (calibrated on the dev split)."""
        by_lang = self.thresholds.get(label, {})
        return float(by_lang.get(language, by_lang.get("*", 0.5)))

    # ---- the weights file -----------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that go into the ``.npz`` file."""
        return {
            "grams": np.asarray(self.vocab.grams, dtype=np.str_),
            "idf": self.vocab.idf.astype(np.float32),
            "w_emb": self.w_emb.astype(np.float32),
            "b_emb": self.b_emb.astype(np.float32),
            "w_ngr": self.w_ngr.astype(np.float32),
            "b_ngr": self.b_ngr.astype(np.float32),
            "w_stack": self.w_stack.astype(np.float32),
            "b_stack": self.b_stack.astype(np.float32),
            "ex_text": np.asarray(self.ex_text, dtype=np.str_),
            "ex_label": self.ex_label.astype(np.int16),
            "ex_emb": self.ex_emb.astype(np.float16),
            # the network's first layer is most of its size: half precision, like ex_emb
            "w_mlp1": self.w_mlp1.astype(np.float16),
            "b_mlp1": self.b_mlp1.astype(np.float32),
            "w_mlp2": self.w_mlp2.astype(np.float32),
            "b_mlp2": self.b_mlp2.astype(np.float32),
        }

    def save(self, folder: Path, manifest: Mapping[str, Any]) -> tuple[Path, Path]:
        """Write ``<name>.npz`` and ``<name>.json`` (atomically); returns their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        blob = npz_bytes(self.arrays())
        body = {
            **manifest,
            "format": FORMAT,
            "name": self.name,
            "labels": list(self.labels),
            "extras": list(self.extras),
            "embedder": self.embedder,
            "embedder_model": self.embedder_model,
            "ngrams": {
                "n_min": self.vocab.n_min,
                "n_max": self.vocab.n_max,
                "size": len(self.vocab),
            },
            "thresholds": self.thresholds,
            "weights_sha256": hashlib.sha256(blob).hexdigest(),
        }
        npz, meta = folder / f"{self.name}.npz", folder / f"{self.name}.json"
        _atomic_write(npz, blob)
        _atomic_write(meta, (json.dumps(body, indent=1, ensure_ascii=False) + "\n").encode())
        self.manifest = body
        return npz, meta

    @classmethod
    def load(cls, folder: Path, name: str, *, embedder: str | None = None) -> HeadSet:
        """Read and verify ``<name>.npz`` against ``<name>.json``; ``embedder`` must match."""
        npz, meta = folder / f"{name}.npz", folder / f"{name}.json"
        try:
            manifest = json.loads(meta.read_text(encoding="utf-8"))
            blob = npz.read_bytes()
        except FileNotFoundError as exc:
            raise WeightsError(
                f"{exc.filename}: trained heads not found; build them with "
                f"`python -m copilot {_train_verb(name)} train` (COPILOT_MODELS_DIR)"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WeightsError(f"{meta}: cannot read the manifest: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") not in READABLE_FORMATS:
            raise WeightsError(
                f"{meta}: weights format {manifest.get('format') if isinstance(manifest, dict) else '?'}"
                f" is not {FORMAT}: retrain with `python -m copilot {_train_verb(name)} train`"
            )
        digest = hashlib.sha256(blob).hexdigest()
        if digest != manifest.get("weights_sha256"):
            raise WeightsError(
                f"{npz}: sha256 {digest[:12]}... does not match its manifest "
                f"({str(manifest.get('weights_sha256'))[:12]}...): the file was changed or is "
                f"stale; retrain with `python -m copilot {_train_verb(name)} train`"
            )
        if embedder is not None and manifest.get("embedder") != embedder:
            raise WeightsError(
                f"{meta}: these heads were trained on the {manifest.get('embedder')} embedder, "
                f"not {embedder}; retrain them or use {manifest.get('embedder')}"
            )
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as data:
                arrays = {k: data[k] for k in ARRAYS}
                if manifest["format"] >= 2:
                    arrays.update({k: data[k] for k in MLP_ARRAYS})
        except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
            raise WeightsError(f"{npz}: not a valid weights file: {exc}") from None
        labels = tuple(str(x) for x in manifest["labels"])
        extras = tuple(str(x) for x in manifest.get("extras", []))
        ngrams = manifest["ngrams"]
        vocab = NgramVocab(
            tuple(str(g) for g in arrays["grams"]),
            arrays["idf"],
            int(ngrams["n_min"]),
            int(ngrams["n_max"]),
        )
        # float32 in memory: the file keeps w_mlp1 in half precision, converted once here
        mlp = {k: arrays[k].astype(np.float32) for k in MLP_ARRAYS if k in arrays}
        bases = 3 if mlp and mlp["w_mlp1"].size else 2
        shapes_ok = (
            arrays["w_emb"].shape[0] == len(labels)
            and arrays["w_ngr"].shape == (len(labels), len(vocab))
            and arrays["w_stack"].shape == (len(labels), bases + len(extras))
            and (
                bases == 2
                or (
                    mlp["w_mlp1"].shape == (arrays["w_emb"].shape[1], mlp["b_mlp1"].shape[0])
                    and mlp["w_mlp2"].shape == (len(labels), mlp["b_mlp1"].shape[0])
                    and mlp["b_mlp2"].shape == (len(labels),)
                )
            )
        )
        if not shapes_ok:
            raise WeightsError(f"{npz}: array shapes do not match the manifest's labels")
        return cls(
            name=str(manifest["name"]),
            labels=labels,
            extras=extras,
            embedder=str(manifest["embedder"]),
            embedder_model=str(manifest["embedder_model"]),
            vocab=vocab,
            w_emb=arrays["w_emb"],
            b_emb=arrays["b_emb"],
            w_ngr=arrays["w_ngr"],
            b_ngr=arrays["b_ngr"],
            w_stack=arrays["w_stack"],
            b_stack=arrays["b_stack"],
            thresholds={
                str(k): {str(lang): float(t) for lang, t in v.items()}
                for k, v in manifest.get("thresholds", {}).items()
            },
            manifest=manifest,
            ex_text=arrays["ex_text"],
            ex_label=arrays["ex_label"],
            ex_emb=arrays["ex_emb"],
            **mlp,
        )


def mlp_logits(
    x: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray
) -> np.ndarray:
    """The network's logits ``(rows, labels)``: ``relu(x w1 + b1) w2^T + b2`` (float32
    arrays pass through without a copy)."""
    hidden = np.maximum(x.astype(np.float32) @ w1.astype(np.float32, copy=False) + b1, 0.0)
    out: np.ndarray = hidden @ w2.astype(np.float32, copy=False).T + b2
    return out


def _train_verb(name: str) -> str:
    return "guardrail" if name.startswith("guard") else "understand"


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An ``.npz`` archive of ``arrays`` whose bytes depend only on the arrays (fixed entry
    order and timestamps), so a retrain with the same data gives the same sha256."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buffer.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def data_sha256(paths: Sequence[Path]) -> str:
    """One sha256 over the training files' contents, in the given order (wherever they live)."""
    digest = hashlib.sha256()
    for p in paths:
        digest.update(hashlib.sha256(p.read_bytes()).hexdigest().encode() + b"\n")
    return digest.hexdigest()
