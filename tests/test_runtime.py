"""The offline tokenizer file is unpacked once into the data folder, safely from many threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from copilot.runtime import _CL100K_CACHE_NAME, configure


def test_threads_unpacking_the_tokenizer_file_at_once_all_succeed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An eval's worker threads count tokens at once on a cold data folder: each may unpack
    the bundled file, and none may fail because another renamed a shared temporary file."""
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    unpack = configure.__wrapped__  # the work behind the per-process cache
    for attempt in range(4):
        monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
        folder = tmp_path / f"cache-{attempt}"
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def first_use(
            folder: Path = folder,
            barrier: threading.Barrier = barrier,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                barrier.wait()
                unpack(folder)
            except BaseException as exc:  # pragma: no cover - only on failure
                errors.append(exc)

        threads = [threading.Thread(target=first_use) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        files = sorted(p.name for p in folder.iterdir())
        assert files == [_CL100K_CACHE_NAME]  # no temporary file left behind
        assert (folder / _CL100K_CACHE_NAME).stat().st_size > 1_000_000
