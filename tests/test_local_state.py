"""Local state stays local: the workspace listens on loopback however it is started, and
every cache is under COPILOT_DATA_DIR (or its documented setting), never in the home folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.llm_server import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_the_streamlit_config_binds_to_loopback() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["address"] == "127.0.0.1"
    assert config["browser"]["gatherUsageStats"] is False


def _listening(port: int) -> set[str]:
    """Local addresses of listening TCP sockets on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_a_plain_streamlit_run_listens_on_loopback_only(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "COPILOT_DATA_DIR": str(tmp_path / "data"),
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        end = time.monotonic() + 90
        while time.monotonic() < end and not _listening(port):
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            time.sleep(0.2)
        addresses = _listening(port)
        assert addresses == {"0100007F"}, addresses  # 127.0.0.1, not 0.0.0.0 or ::
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_tiktoken_is_unpacked_in_the_data_folder_not_home(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "TIKTOKEN_CACHE_DIR" and not key.startswith("COPILOT_")
    }
    env.update({"HOME": str(home), "COPILOT_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)})
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from copilot.tokens import count_tokens; print(count_tokens('hi'))",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    assert [p.name for p in (data / "cache" / "tiktoken").iterdir()]
    assert not home.exists() or not any(home.rglob("*"))
