"""Atomic KB versions: every ingest builds a new collection beside the served one, then
switches a pointer in one step.

For one KB and one embedder (``base``, e.g. ``support-kb`` or ``support-kb--use-m3``)::

    <base>.current          the pointer: a collection without vectors whose metadata names
                            the served version (``current``) and the one before (``previous``)
    <base>.v<UTC stamp>-<hex>   one KB version: filled completely before the pointer names it
                            and never written again
    <base>                  a store from before versions; served until the first versioned
                            ingest, kept as ``previous`` once, then removed

The pointer lives in Chroma itself, so the embedded store and a ``chroma run`` server
shared by several replicas work alike. Changing it is one metadata write: a reader sees the
old version or the new one, never a mix. A killed ingest leaves a version nobody points at;
the next ingest removes it. The previous version stays until the next switch, so a reader
that still holds it keeps working; a reader holding an older one re-reads the pointer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.embed.base import Embedder
from copilot.errors import CopilotError
from copilot.kb.vectorstore import embedder_metadata, get_collection

POINTER_SUFFIX = ".current"
_STAMP = "%Y%m%d%H%M%S"
_VERSION_TAIL = re.compile(r"\.v\d{14}-[0-9a-f]{6}$")
_RESOLVE_ATTEMPTS = 5


@dataclass(frozen=True)
class Pointer:
    """Which version collection is served (and which was served before it)."""

    current: str
    previous: str
    kb_version: str
    switched_at: str


def pointer_name(base: str) -> str:
    """The pointer collection of ``base``."""
    return base + POINTER_SUFFIX


_last_version: list[str] = [""]
_version_lock = threading.Lock()


def new_version_name(base: str, now: dt.datetime | None = None) -> str:
    """A fresh version collection name for ``base`` that sorts by creation time: the second,
    then the microsecond as six hex digits (a random tail here made two versions made in
    the same second sort at random, and pruning then kept the older one). Within a process
    a name is always greater than the one before, even when the clock repeats."""
    when = now or dt.datetime.now(dt.UTC)
    with _version_lock:
        name = f"{base}.v{when.strftime(_STAMP)}-{when.microsecond:06x}"
        last = _last_version[0]
        if last.startswith(base + ".v") and name <= last:
            stamp, _, tail = last.rpartition("-")
            name = f"{stamp}-{(int(tail, 16) + 1) % 0x1000000:06x}"
        _last_version[0] = name
    return name


def is_version_of(base: str, name: str) -> bool:
    """True when ``name`` is a version collection of ``base``."""
    return name.startswith(base + ".v") and bool(_VERSION_TAIL.search(name[len(base) :]))


def _is_missing(exc: BaseException) -> bool:
    return "does not exist" in str(exc).lower() or type(exc).__name__ == "NotFoundError"


def read_pointer(client: Any, base: str) -> Pointer | None:
    """The pointer of ``base``, or None when no versioned ingest has finished yet."""
    try:
        collection = client.get_collection(name=pointer_name(base))
    except Exception as exc:
        if _is_missing(exc):
            return None
        raise
    meta = collection.metadata or {}
    current = str(meta.get("current") or "")
    if not current:
        return None
    return Pointer(
        current,
        str(meta.get("previous") or ""),
        str(meta.get("kb_version") or ""),
        str(meta.get("switched_at") or ""),
    )


def write_pointer(client: Any, base: str, embedder: Embedder, current: str, previous: str) -> None:
    """Serve ``current`` from now on (one metadata write: the switch itself)."""
    collection = client.get_collection(name=current)
    meta = {
        **embedder_metadata(embedder),
        "current": current,
        "previous": previous,
        "kb_version": str((collection.metadata or {}).get("kb_version", "")),
        "switched_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    try:
        pointer = client.get_collection(name=pointer_name(base))
    except Exception as exc:
        if not _is_missing(exc):
            raise
        # first switch: the pointer is created already naming ``current``
        client.create_collection(name=pointer_name(base), metadata=meta, embedding_function=None)
        return
    pointer.modify(metadata=meta)


def served_collection(client: Any, base: str, embedder: Embedder) -> Any:
    """The collection readers should search now: the pointer's, else a pre-version ``base``.

    A version removed between reading the pointer and opening it (two switches in quick
    succession) makes it read the pointer again.
    """
    last: CopilotError | None = None
    for _ in range(_RESOLVE_ATTEMPTS):
        pointer = read_pointer(client, base)
        if pointer is None:  # never switched: a store from before versions, or nothing yet
            return get_collection(client, base, embedder, create=False)
        try:
            return get_collection(client, pointer.current, embedder, create=False)
        except CopilotError as exc:
            if "does not exist" not in str(exc):
                raise
            last = exc
    raise CopilotError(
        f"the KB pointer {pointer_name(base)!r} names a collection that does not exist ({last});"
        " run `python -m copilot ingest` to build a new version"
    )


def version_collections(client: Any, base: str) -> list[str]:
    """Names of every version collection of ``base`` (oldest first)."""
    names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
    return sorted(n for n in names if is_version_of(base, n))


def remove_versions(client: Any, base: str, keep: set[str]) -> list[str]:
    """Delete the version collections of ``base`` not in ``keep`` (and a pre-version ``base``
    collection unless kept); returns what was deleted. A failure leaves it for the next run."""
    names = [c if isinstance(c, str) else c.name for c in client.list_collections()]
    doomed = [n for n in names if (is_version_of(base, n) or n == base) and n not in keep]
    removed: list[str] = []
    for name in sorted(doomed):
        with contextlib.suppress(Exception):
            client.delete_collection(name=name)
            removed.append(name)
    return removed


@contextlib.contextmanager
def ingest_lock(path: Path, base: str) -> Iterator[None]:
    """One ingest of ``base`` at a time on this machine (an OS lock: a killed ingest frees it).

    Several machines sharing one ``chroma run`` server must not ingest at once: run the
    ingest from one place (see the README, "Deploying for a team").
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CopilotError(
                f"another ingest of {base!r} is running (lock {path}); wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
