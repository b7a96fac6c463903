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


# ---- the workspace issue's browser tests (drafted, edited, sent, reloaded; Chinese; narrow) ----
ZH_MESSAGE = "我三天前提现到我的钱包，到现在还没到账，请帮我查一下。"
#: a visible button whose label (or any element inside it) is wider than its box: "Re…"
CLIPPED_BUTTONS_JS = """() => {
  const out = [];
  for (const btn of document.querySelectorAll('button')) {
    const box = btn.getBoundingClientRect();
    const label = (btn.innerText || '').trim();
    if (!label || box.width === 0 || box.height === 0) continue;
    const clipped = [btn, ...btn.querySelectorAll('*')].filter(
      e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1);
    if (clipped.length) out.push(label + ' (' + Math.round(box.width) + ' px)');
  }
  return out;
}"""


#: screenshots go here when set (read at import: the suite clears COPILOT_* variables per test)
SCREENSHOT_DIR = os.environ.get("SCREENSHOT_DIR", "")


def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: ``$SCREENSHOT_DIR`` when set, else the test's tmp dir."""
    folder = Path(SCREENSHOT_DIR or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_japanese_ticket_drafted_edited_sent_and_found_in_activity_after_a_reload(
    app_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = screenshot_dir(tmp_path)
    added = "担当の佐藤が確認いたします。"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(app_url)
            message = page.get_by_label("Customer message")
            expect(message).to_be_visible(timeout=60_000)
            page.get_by_label("Your name (stored with feedback)").fill("Sato")
            page.get_by_label("Your name (stored with feedback)").press("Enter")
            message.fill(JA_MESSAGE)
            page.get_by_role("button", name="Draft reply").click()
            editor = page.get_by_label("Reply draft (editable)")
            expect(editor).to_have_value(KANA, timeout=120_000)
            expect(page).to_have_url(re.compile(r"[?&]draft=[0-9a-f]{32}"), timeout=30_000)
            page.screenshot(path=str(shots / "ja-drafted.png"), full_page=True)

            edited = editor.input_value().rstrip() + "\n" + added
            editor.fill(edited)
            editor.press("Control+Enter")  # a text area takes its value on blur or Ctrl+Enter
            page.get_by_role("button", name="Copy final reply").click()
            expect(page.get_by_text("Final reply stored").first).to_be_visible(timeout=60_000)
            expect(page.get_by_text(added).last).to_be_visible()
            page.screenshot(path=str(shots / "ja-sent.png"), full_page=True)

            page.reload()  # nothing lost: the edited draft is back, and Activity has the send
            expect(page.get_by_label("Reply draft (editable)")).to_have_value(
                re.compile(re.escape(added)), timeout=60_000
            )
            page.get_by_role("tab", name="Activity").click()
            sent = page.get_by_test_id("stMetric").filter(has_text="Sent")
            expect(sent.first).to_contain_text("1", timeout=30_000)
            grid = page.get_by_test_id("stDataFrame")
            expect(grid.first).to_be_visible()
            # the data grid draws on a canvas; its accessible table carries the cell texts
            expect(grid.first.locator("table")).to_contain_text("ja", timeout=30_000)
            expect(grid.first.locator("table")).to_contain_text("出金申請", timeout=30_000)
            page.screenshot(path=str(shots / "ja-activity.png"), full_page=True)
            assert not page.get_by_text("Traceback").count()
        finally:
            browser.close()
    for name in ("ja-drafted.png", "ja-sent.png", "ja-activity.png"):
        assert is_png(shots / name), name


def test_the_interface_switched_to_chinese(app_url: str, tmp_path: Path) -> None:
    """The sidebar selector switches every label to Chinese; a Chinese ticket is drafted with
    the Chinese pills; the language is kept in the URL (a reload stays in Chinese)."""
    from playwright.sync_api import expect, sync_playwright

    shot = screenshot_dir(tmp_path) / "workspace-zh.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(app_url)
            expect(page.get_by_label("Customer message")).to_be_visible(timeout=60_000)
            page.get_by_label("Interface language").click()  # streamlit's selectbox
            page.get_by_role("option", name="中文", exact=True).click()
            message = page.get_by_label("客户消息")
            expect(message).to_be_visible(timeout=30_000)
            expect(page.get_by_role("tab", name="回复工作台")).to_be_visible()
            # the rerun in Chinese may still be replacing elements: wait until the English
            # button is gone (on a loaded machine it was counted mid-rerun once)
            expect(page.get_by_role("button", name="Draft reply")).to_have_count(0, timeout=30_000)
            expect(page.get_by_role("button", name="起草回复")).to_be_visible(timeout=30_000)
            message.fill(ZH_MESSAGE)
            page.get_by_role("button", name="起草回复").click()
            editor = page.get_by_label("回复草稿（可编辑）")
            expect(editor).to_have_value(re.compile(r"[\u4e00-\u9fff]"), timeout=120_000)
            expect(page.get_by_text("语言：中文").first).to_be_visible()
            expect(page.get_by_role("button", name="复制最终回复")).to_be_visible()
            expect(page).to_have_url(re.compile(r"[?&]lang=zh"), timeout=30_000)
            expect(page).to_have_url(re.compile(r"[?&]draft=[0-9a-f]{32}"), timeout=30_000)
            page.screenshot(path=str(shot), full_page=True)

            drafted = editor.input_value()
            page.reload()  # nothing lost: same language, same draft
            expect(page.get_by_label("回复草稿（可编辑）")).to_have_value(drafted, timeout=60_000)
            assert not page.get_by_text("Traceback").count()
        finally:
            browser.close()
    assert is_png(shot)


def test_narrow_windows_stack_columns_and_never_clip_a_button_label(
    app_url: str, tmp_path: Path
) -> None:
    """At 900 px (sidebar open) and as a 420 px side panel: every visible button's label fits
    its button, the draft box is visible and inside the window, and nothing scrolls sideways."""
    from playwright.sync_api import expect, sync_playwright

    shots = screenshot_dir(tmp_path)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for width in (900, 420):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(app_url)
                message = page.get_by_label("Customer message")
                expect(message).to_be_visible(timeout=60_000)
                message.fill(JA_MESSAGE)
                page.get_by_role("button", name="Draft reply").click()
                editor = page.get_by_label("Reply draft (editable)")
                expect(editor).to_have_value(KANA, timeout=120_000)
                expect(page.get_by_role("button", name="Copy final reply")).to_be_visible()
                editor.scroll_into_view_if_needed()
                expect(editor).to_be_visible()
                expect(editor).to_be_in_viewport()
                box = editor.bounding_box()
                assert box is not None
                assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (width, box)
                assert box["width"] >= min(300, width * 0.7), (width, box)
                clipped = page.evaluate(CLIPPED_BUTTONS_JS)
                assert clipped == [], (width, clipped)
                sideways = page.evaluate(
                    "() => document.documentElement.scrollWidth - window.innerWidth"
                )
                assert sideways <= 1, (width, sideways)
                shot = shots / f"workspace-{width}px.png"
                page.screenshot(path=str(shot), full_page=True)
                assert is_png(shot)
                page.close()
        finally:
            browser.close()


def test_the_bypass_attempt_is_refused_and_an_override_needs_a_reason(
    app_url: str, tmp_path: Path
) -> None:
    """The issue's bypass, in a real browser: a draft edited to ask for the 2FA code and seed
    phrase and to promise profit is not copied; the pill says blocked; Send anyway without a
    reason stores nothing, with a reason it is stored as an override."""
    from playwright.sync_api import expect, sync_playwright

    shots = screenshot_dir(tmp_path)
    bad = (
        "Please reply with the 6-digit code from your authenticator app and your seed phrase. "
        "We guarantee you 20% profit every month."
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(app_url)
            message = page.get_by_label("Customer message")
            expect(message).to_be_visible(timeout=60_000)
            message.fill("My withdrawal has been pending for two days. What should I do?")
            page.get_by_role("button", name="Draft reply").click()
            editor = page.get_by_label("Reply draft (editable)")
            expect(editor).not_to_have_value("", timeout=120_000)
            expect(page.get_by_text("Guardrail: pass").first).to_be_visible(timeout=30_000)

            editor.fill(editor.input_value().rstrip() + "\n\n" + bad)
            editor.press("Control+Enter")
            page.get_by_role("button", name="Copy final reply").click()
            expect(page.get_by_text("Not copied").first).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Blocked by guardrail").first).to_be_visible()
            assert not page.get_by_text("Final reply stored").count()

            page.get_by_role("button", name="Send anyway").click()
            expect(page.get_by_text("needs a reason").first).to_be_visible(timeout=30_000)
            assert not page.get_by_text("Sent with an override").count()
            page.screenshot(path=str(shots / "bypass-refused.png"), full_page=True)

            reason = page.get_by_label("Override reason (required)")
            reason.fill("test of the override path")
            reason.press("Enter")
            page.get_by_role("button", name="Send anyway").click()
            expect(page.get_by_text("Sent with an override").first).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Blocked by guardrail").first).to_be_visible()
            assert not page.get_by_text("Traceback").count()
        finally:
            browser.close()
    assert is_png(shots / "bypass-refused.png")


def test_the_draft_gets_the_focus_and_the_shortcuts_work_from_the_keyboard(
    app_url: str, tmp_path: Path
) -> None:
    """After drafting, typing goes into the draft (no click); Ctrl+Shift+K rechecks the edit
    and Ctrl+Shift+Enter sends it, both pressed as real keys."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(app_url)
            message = page.get_by_label("Customer message")
            expect(message).to_be_visible(timeout=60_000)
            message.fill(JA_MESSAGE)
            page.get_by_role("button", name="Draft reply").click()
            editor = page.get_by_label("Reply draft (editable)")
            expect(editor).to_have_value(KANA, timeout=120_000)
            expect(editor).to_be_focused(timeout=30_000)

            # a slow machine (CPU throttled 8x), keys pressed right after typing: the
            # shortcut must act on the text as typed, not as it was before the keystrokes
            cdp = page.context.new_cdp_session(page)
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": 8})
            page.keyboard.type("追記:")  # lands in the draft, wherever the caret is
            page.keyboard.press("Control+Shift+KeyK")
            expect(page.get_by_text("Re-check: the edited draft").first).to_be_visible(
                timeout=60_000
            )
            expect(editor).to_be_focused(timeout=30_000)  # the focus comes back to the draft
            page.keyboard.type("再追記")
            page.keyboard.press("Control+Shift+Enter")
            expect(page.get_by_text("Final reply stored").first).to_be_visible(timeout=60_000)
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
            expect(page.get_by_text(re.compile("追記:.*再追記|再追記.*追記:")).last).to_be_visible()
            assert not page.get_by_text("Traceback").count()
        finally:
            browser.close()


def test_a_shortcut_pressed_before_its_button_has_rendered_waits_for_it() -> None:
    """On a slow machine the focus reaches a new draft before the buttons below it render
    (the CI failure of stops 21 and 23: the keys were lost). The shortcut listener, alone on
    a static page: Ctrl+Shift+K pressed in the editor with no button yet leaves the editor
    (so the edit is committed), clicks the button once it appears, and gives the focus back;
    pressed in another text box with no button it does nothing and lets the key through."""
    from playwright.sync_api import sync_playwright

    from copilot.ui import widgets

    shown: list[str] = []
    original = widgets.component_html
    widgets.component_html = lambda body, height: shown.append(body)  # type: ignore[assignment]
    try:
        widgets.editor_keyboard("draft_text", focus=False)
    finally:
        widgets.component_html = original  # type: ignore[assignment]
    page_html = (
        "<div class='st-key-draft_text'><textarea id='draft'></textarea></div>"
        "<input id='other'><div id='slot'></div>" + shown[0] + "<script>"
        "window.seen = []; window.passed = [];"
        "document.getElementById('draft').addEventListener('blur',"
        " () => window.seen.push('blur:' + document.getElementById('draft').value));"
        "window.addEventListener('keydown', e => window.passed.push(e.code));"
        "</script>"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_content(page_html)
            page.focus("#other")
            page.keyboard.press("Control+Shift+KeyK")
            assert "KeyK" in page.evaluate("window.passed")  # not ours to handle
            page.evaluate("window.passed = []")
            page.focus("#draft")
            page.keyboard.type("edit")
            page.keyboard.press("Control+Shift+KeyK")
            page.wait_for_timeout(600)  # the button is not there yet: nothing clicked
            assert page.evaluate("window.seen") == ["blur:edit"]
            assert "KeyK" not in page.evaluate("window.passed")  # taken by the listener
            page.evaluate(
                "() => { const d = document.createElement('div');"
                " d.className = 'st-key-shortcut_recheck';"
                " const b = document.createElement('button');"
                " b.onclick = () => window.seen.push('click:' + (document.activeElement.id || '-'));"
                " d.appendChild(b); document.getElementById('slot').appendChild(d); }"
            )
            page.wait_for_function("window.seen.length === 2", timeout=5_000)
            assert page.evaluate("window.seen") == ["blur:edit", "click:-"]
            page.wait_for_function("document.activeElement.id === 'draft'", timeout=5_000)
        finally:
            browser.close()
