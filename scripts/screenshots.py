"""Make the README's screenshots under ``docs/img/``: the workspace in Japanese, the QA page's
run-versus-run diff and the Insights page.

Usage::

    .venv/bin/python scripts/screenshots.py [--out docs/img] [--data-dir DIR] [--width 1280]

Offline throughout: the offline drafter, a throwaway SQLite database, ``streamlit run app.py``
on a free loopback port, Debian's Chromium through Playwright (apt ``chromium`` and
``fonts-noto-cjk``; ``playwright install`` is never needed). Without ``--data-dir`` the shipped
KB is ingested into a temporary folder first (a few minutes on two cores).

What is on them, all made here:

* ``workspace-ja.png``: the interface in 日本語, a Japanese ticket drafted.
* ``qa-diff.png``: two real eval runs over 8 golden cases per language (``copilot eval``):
  ``offline`` drafts with the offline drafter; ``offline-edited`` re-scores the same drafts
  with the citation markers and the last paragraph removed from the Japanese ones (as if a
  change had broken them), against ``offline`` as the baseline, so the diff has regressions.
* ``insights.png``: the Insights page after a few tickets in three languages were drafted,
  some heavily edited and sent, one about something the KB does not cover.

Each PNG is reduced to a 256-colour palette (kept well under 300 KB).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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


GOLDEN = ROOT / "evals" / "golden" / "golden_v1.jsonl"
PER_LANGUAGE = 8
KANA = re.compile(r"[\u3040-\u30ff]")
CITATION = re.compile(r"\s*\[(?:faq|playbook)/[a-z0-9-]+(?:#[a-z0-9-]+)?\]")
WORKSPACE_MESSAGE = (
    "出金申請をしてからもう3日も経つのに、まだ着金していません！"
    "送金先アドレスは合っているはずです。状況を確認してもらえますか？"
)
#: (message, the reply the agent sent instead, or None for not sent): the Insights page's material
TICKETS = (
    ("I lost my phone with the authenticator app. How do I reset 2FA?", None),
    (
        "My withdrawal has been pending for two days, what is going on?",
        "Hello,\n\nI have escalated your withdrawal to our payments team; they will reply here "
        "with the transaction hash and the status of the transfer once they have checked it.\n\nBest regards,",
    ),
    ("Can I pay for a hotel booking with my card from your app in Lisbon?", None),
    ("Do you have a physical office in Singapore where I can deposit cash?", None),
    (
        "我的提现已经两天了还没到账，怎么回事？",
        "您好，\n\n我们已经把您的工单转交给支付团队，他们核实后会在这里回复您转账的状态。\n\n祝好",
    ),
    ("你们有实体店可以现金买币吗？", None),
    (
        "本人確認の書類が何度も却下されます。どうすればいいですか？",
        "お客様\n\n担当部署で書類を確認し、結果をこちらでご連絡いたします。\n\nよろしくお願いいたします。",
    ),
    ("NFT を御社のマーケットで出品できますか？", None),
)


def eval_runs(reports: Path, data_dir: Path, env: dict[str, str]) -> None:
    """Two real ``copilot eval`` runs in ``reports`` (see the module docstring)."""
    work = reports.parent / "eval-input"
    work.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    subset: list[str] = []
    for line in GOLDEN.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        language = json.loads(line)["language"]
        if counts.get(language, 0) < PER_LANGUAGE:
            counts[language] = counts.get(language, 0) + 1
            subset.append(line)
    golden = work / "golden_subset.jsonl"
    golden.write_text("\n".join(subset) + "\n", encoding="utf-8")

    def run(*args: str) -> None:
        cmd = [sys.executable, "-m", "copilot", "eval", "--golden", str(golden), *args]
        print("$ copilot eval", " ".join(args), file=sys.stderr)
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)

    first = reports / "offline"
    run("--backend", "offline", "--report", str(first), "--concurrency", "2")
    report: dict[str, Any] = json.loads((first / "report.json").read_text(encoding="utf-8"))
    drafts = work / "drafts-edited.jsonl"
    with drafts.open("w", encoding="utf-8") as fh:
        for case in report["cases"]:
            text = str(case.get("draft") or "")
            if case.get("language") == "ja":
                text = CITATION.sub("", text).strip().rsplit("\n\n", 1)[0]
            fh.write(json.dumps({"id": case["id"], "draft": text}, ensure_ascii=False) + "\n")
    run(
        "--drafts",
        str(drafts),
        "--report",
        str(reports / "offline-edited"),
        "--baseline",
        str(first),
    )


def shrink(path: Path) -> None:
    """A 256-colour palette PNG (text stays sharp; a fraction of the size)."""
    from PIL import Image

    with Image.open(path) as img:
        small = img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def capture(url: str, out: Path, width: int) -> list[Path]:
    """Drive the app and save the three screenshots."""
    from playwright.sync_api import expect, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # Insights' material first: tickets in three languages, some edited and sent
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(url)
            expect(page.get_by_label("Customer message")).to_be_visible(timeout=120_000)
            editor = page.get_by_label("Reply draft (editable)")
            for message, sent in TICKETS:
                page.get_by_label("Customer message").fill(message)
                before = page.url
                page.get_by_role("button", name="Draft reply").click()
                # each draft is stored under a new id, which the URL carries
                page.wait_for_url(lambda u, b=before: "draft=" in u and u != b, timeout=120_000)
                expect(editor).not_to_have_value("", timeout=120_000)
                if sent:
                    editor.fill(sent)
                    editor.press("Control+Enter")
                    page.get_by_role("button", name="Copy final reply").click()
                    expect(page.get_by_text("Final reply stored").first).to_be_visible(
                        timeout=60_000
                    )
            page.close()

            # the workspace in Japanese with a Japanese ticket
            page = browser.new_page(viewport={"width": width, "height": 1250})
            page.goto(url + "/?lang=ja")
            message = page.get_by_label("お客様のメッセージ")
            expect(message).to_be_visible(timeout=60_000)
            page.get_by_label("あなたの名前（フィードバックと一緒に保存）").fill("佐藤")
            message.fill(WORKSPACE_MESSAGE)
            page.get_by_role("button", name="返信を下書き").click()
            expect(page.get_by_label("返信の下書き（編集可）")).to_have_value(KANA, timeout=120_000)
            page.wait_for_timeout(1500)
            saved.append(out / "workspace-ja.png")
            page.screenshot(path=str(saved[-1]))
            page.close()

            # the QA page: the newest run against the one before
            page = browser.new_page(viewport={"width": width, "height": 1100})
            page.goto(url)
            page.get_by_text("QA", exact=True).click()
            heading = page.get_by_role("heading", name="Run versus run")
            expect(heading).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Regressed:").first).to_be_visible(timeout=60_000)
            page.wait_for_timeout(2000)  # the charts draw after the page
            heading.evaluate("e => e.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(1000)
            saved.append(out / "qa-diff.png")
            page.screenshot(path=str(saved[-1]))
            page.close()

            # the Insights page
            page = browser.new_page(viewport={"width": width, "height": 1100})
            page.goto(url)
            page.get_by_text("Insights", exact=True).click()
            expect(page.get_by_role("heading", name="Knowledge gaps")).to_be_visible(timeout=60_000)
            page.wait_for_timeout(2500)  # the charts draw after the page
            saved.append(out / "insights.png")
            page.screenshot(path=str(saved[-1]))
            page.close()
        finally:
            browser.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    """Ingest if needed, make the eval runs, serve the app, capture, stop the server."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--data-dir", type=Path, help="data folder with an ingested KB")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} not found: apt-get install -y chromium fonts-noto-cjk")

    with tempfile.TemporaryDirectory(prefix="copilot-shots-") as tmp:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = Path(tmp) / "data"
            print("ingesting the knowledge base into a temporary folder…", file=sys.stderr)
            ingest_kb(data_dir)
        reports = Path(tmp) / "reports"
        env = {
            **os.environ,
            "COPILOT_DATA_DIR": str(data_dir.resolve()),
            "COPILOT_KNOWLEDGE_DIR": str(ROOT / "knowledge"),
            "COPILOT_LLM_BACKEND": "offline",
            "COPILOT_DATABASE_URL": f"sqlite:///{Path(tmp) / 'screenshots.db'}",
            "COPILOT_EVAL_REPORTS_DIR": str(reports),
            "COPILOT_GOLDEN_DIR": str(Path(tmp) / "golden"),
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        }
        eval_runs(reports, data_dir, env)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py",
             "--server.headless", "true", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, proc)
            saved = capture(url, args.out, args.width)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    for path in saved:
        shrink(path)
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
