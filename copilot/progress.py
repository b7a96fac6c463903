"""Progress bars for long runs (tqdm on stderr; silent for short runs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(
    total: int, desc: str, *, min_total: int = 200, unit: str = "item"
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; shows a bar (with the rate in ``unit``/s) only when
    ``total >= min_total``."""
    if total < min_total:
        yield lambda n: None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False) as bar:
        yield bar.update
