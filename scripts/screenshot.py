"""Make ``docs/screenshot.png`` for the README: the workspace after drafting a Japanese reply.

Usage::

    .venv/bin/python scripts/screenshot.py [--out docs/screenshot.png] [--data-dir DIR]

Serves ``app.py`` with ``streamlit run`` on a free loopback port (offline
backend, throwaway SQLite database), opens it in Debian's Chromium through
Playwright (apt ``chromium`` and ``fonts-noto-cjk``; ``playwright install`` is
never needed), pastes a Japanese customer message, drafts and saves a
screenshot. Without ``--data-dir`` the shipped KB
is ingested into a temporary folder first (about a minute on two cores).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MESSAGE = (
    "出金申請をしてからもう3日も経つのに、まだ着金していません！"
    "送金先アドレスは合っているはずです。いい加減にしてください。状況を確認してもらえますか？"
)


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ingest_kb(data_dir: Path) -> None:
    """Ingest the shipped KB into ``data_dir`` (same as ``python -m copilot ingest``)."""
    sys.path.insert(0, str(ROOT))
    from copilot.kb.articles import load_kb
    from copilot.kb.ingest import docs_from_articles
    from copilot.retrieval.index import ingest_into
    from copilot.runtime import configure
    from copilot.settings import Settings

    configure()
    settings = Settings.load(
        env={"COPILOT_DATA_DIR": str(data_dir), "COPILOT_KNOWLEDGE_DIR": str(ROOT / "knowledge")}
    )
    ingest_into(settings, settings.collection, docs_from_articles(load_kb(settings.knowledge_dir)))


def wait_healthy(url: str, proc: subprocess.Popen[bytes], within_s: float = 90) -> None:
    """Block until Streamlit answers its health check; exit if it dies or never answers."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"streamlit did not answer on {url} within {within_s:.0f} s")


def capture(url: str, out: Path, width: int, height: int) -> None:
    """Draft a reply to :data:`MESSAGE` in the browser and save the page to ``out``."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url)
            page.get_by_label("Customer message").fill(MESSAGE)
            page.get_by_label("Customer name (optional)").fill("山田")
            page.get_by_role("button", name="Draft reply").click()
            editor = page.get_by_label("Reply draft (editable)")
            expect(editor).to_have_value(re.compile(r"[\u3040-\u30ff]"), timeout=120_000)
            expect(page.get_by_text("Provenance")).to_be_visible()
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    """Serve the app, capture it, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--data-dir", type=Path, help="data folder with an ingested KB")
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=1150)
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} not found: apt-get install -y chromium fonts-noto-cjk")

    with tempfile.TemporaryDirectory(prefix="copilot-shot-") as tmp:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = Path(tmp) / "data"
            print("ingesting the knowledge base into a temporary folder…", file=sys.stderr)
            ingest_kb(data_dir)
        port = free_port()
        env = {
            **os.environ,
            "COPILOT_DATA_DIR": str(data_dir.resolve()),
            "COPILOT_KNOWLEDGE_DIR": str(ROOT / "knowledge"),
            "COPILOT_LLM_BACKEND": "offline",
            "COPILOT_DATABASE_URL": f"sqlite:///{Path(tmp) / 'screenshot.db'}",
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py",
             "--server.headless", "true", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, proc)
            capture(url, args.out, args.width, args.height)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
