"""One real-browser test: ``streamlit run app.py`` on loopback, driven by Debian's Chromium.

Needs ``/usr/bin/chromium`` (apt ``chromium``) and, for readable CJK in the
screenshot, ``fonts-noto-cjk``. Playwright's own browser download is never used.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
JA_MESSAGE = "出金申請をしてから2日経ちますが、まだ着金していません。状況を確認してもらえますか？"
KANA = re.compile(r"[\u3040-\u30ff]")
CITATION = re.compile(r"\[(faq|playbook)/[a-z0-9-]+\]")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install -y chromium)"
    ),
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"streamlit did not answer on {url} within {within_s:.0f} s:\n{log.read_text()}")


@pytest.fixture
def app_url(use_kb_store: Path, tmp_path: Path) -> Iterator[str]:
    """The app served by a real ``streamlit run`` over the session's ingested KB."""
    port = _free_port()
    env = {
        **os.environ,
        "COPILOT_LLM_BACKEND": "offline",
        "COPILOT_DATABASE_URL": f"sqlite:///{tmp_path / 'browser.db'}",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    log = tmp_path / "streamlit.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py",
             "--server.headless", "true", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log, within_s=60)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_japanese_message_gets_a_cited_japanese_draft(app_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shot = tmp_path / "workspace.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            page.goto(app_url)
            message = page.get_by_label("Customer message")
            expect(message).to_be_visible(timeout=60_000)
            message.fill(JA_MESSAGE)
            page.get_by_role("button", name="Draft reply").click()

            editor = page.get_by_label("Reply draft (editable)")
            expect(editor).to_have_value(KANA, timeout=120_000)
            draft = editor.input_value()
            assert CITATION.search(draft), draft
            cited = CITATION.search(draft)
            assert cited is not None
            # The cited article is listed under Sources, and the verdict badge is shown.
            expect(page.get_by_text(cited.group(0)).last).to_be_visible()
            # the offline drafter's reply to this message is within the policy
            expect(page.get_by_text("Guardrail: pass").first).to_be_visible()
            assert not page.get_by_text("Blocked by guardrail").count()
            expect(page.get_by_text("Language: Japanese")).to_be_visible()
            assert not page.get_by_text("Traceback").count()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(shot) as img:
        width, height = img.size
        gray = img.convert("L")
        low, high = gray.getextrema()
        shades = len(gray.getcolors(256) or [])
    # the whole page at the viewport's width, with rendered text on it (not a blank page)
    assert width == 1440 and height >= 1100, (width, height)
    assert high - low > 150 and shades > 20, (low, high, shades)
