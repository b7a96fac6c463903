"""Secrets never printed: the one redaction helper, and every place that prints through it."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copilot.errors import BackendError, CopilotError, SettingsError
from copilot.secrets import MASK, RedactingFilter, redact, redact_url
from copilot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        # URL credentials (user:password@)
        ("https://bob:hunter2@llm.example/v1", "hunter2", "https://bob:***@llm.example/v1"),
        ("http://:onlypass@10.0.0.1:8080/v1", "onlypass", "http://:***@10.0.0.1:8080/v1"),
        ("see 'https://u:p%40ss@h/v1' here", "p%40ss", "https://u:***@h/v1"),
        ("https://u:p@ss@h/v1", "ss@h", "https://u:***@h/v1"),  # '@' inside the password
        # DSNs
        (
            "postgresql://agent:s3cret@db.internal:5432/copilot",
            "s3cret",
            "postgresql://agent:***@db.internal:5432/copilot",
        ),
        ("postgres://copilot:pa:ss@db/x?sslmode=require", "pa:ss", "postgres://copilot:***@db/x"),
        ("host=db user=agent password=s3cret dbname=c", "s3cret", "password=***"),
        # query keys
        ("https://x.openai.azure.com/v1?api-key=abc123", "abc123", "?api-key=***"),
        ("https://h/v1?api_key=abc123&x=1", "abc123", "?api_key=***&x=1"),
        ("https://h/v1?key=AIzaSyXYZ&alt=json", "AIzaSyXYZ", "?key=***&alt=json"),
        ("https://blob/c?sv=2020&sig=Zm9vYmFy%3D&se=1", "Zm9vYmFy", "&sig=***&se=1"),
        ("https://h/cb?access_token=ya29.a0&state=s", "ya29.a0", "access_token=***&state=s"),
        ("GET /v1?token=tok_live_1&page=2", "tok_live_1", "token=***&page=2"),
        ("client_secret=shh-123 grant", "shh-123", "client_secret=***"),
        # bearer tokens and provider keys
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc", "eyJhbGciOi", "Bearer ***"),
        ("OPENAI_API_KEY=sk-proj-abcdefghij0123456789", "abcdefghij", "OPENAI_API_KEY=***"),
        ("key sk-abcdefghijklmnop0123 leaked", "abcdefghijklmnop", "key sk-*** leaked"),
    ],
)
def test_redact_hides_the_secret_and_keeps_the_shape(text: str, secret: str, kept: str) -> None:
    out = redact(text)
    assert secret not in out
    assert kept in out
    assert redact(out) == out  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:8080/v1",
        "postgresql://postgres@127.0.0.1:5432/postgres",
        "sqlite:////var/lib/copilot/copilot.db",
        "write to ken.tanaka@mail.test about monkey=3 and turkey=4",
        "COPILOT_LLM_TIMEOUT_S: 'soon' is not a number",
        "the token budget of 3000 was exceeded",
        "field 'language': 'fr' is not en, ja or zh",
    ],
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


def test_redact_url_parses_passwords_the_pattern_cannot_see() -> None:
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("postgresql://u:p@h:5/db") == "postgresql://u:***@h:5/db"
    assert redact_url("http://[::1:80/v1?api-key=k") == "http://[::1:80/v1?api-key=***"


@given(
    user=st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
    password=st.from_regex(r"[A-Za-z0-9!$%^*()_+=~.-]{6,20}", fullmatch=True),
    host=st.from_regex(r"[a-z]{1,10}(\.[a-z]{2,5}){0,2}", fullmatch=True),
)
def test_no_generated_dsn_password_survives(user: str, password: str, host: str) -> None:
    for scheme in ("postgresql", "https", "redis"):
        url = f"{scheme}://{user}:{password}@{host}:5432/db"
        for out in (redact(url), redact_url(url), redact(f"error: cannot connect to {url}!")):
            assert f":{password}@" not in out
            assert f"{user}:{MASK}@{host}" in out


def test_copilot_errors_are_redacted_wherever_they_are_shown() -> None:
    err = CopilotError("cannot connect to database postgresql://a:s3cret@db/x: refused")
    assert "s3cret" not in str(err) and "a:***@db" in str(err)
    assert "k3y" not in str(BackendError("the LLM endpoint https://h/v1?api-key=k3y failed"))


@pytest.mark.parametrize(
    ("env", "secret"),
    [
        ({"COPILOT_DATABASE_URL": "mysql://root:s3cret@db/copilot"}, "s3cret"),
        ({"COPILOT_LLM_BASE_URL": "ftp://bob:hunter2@llm.example/v1"}, "hunter2"),
        ({"COPILOT_LLM_BASE_URL": "llm.example/v1?api-key=abc123"}, "abc123"),
    ],
)
def test_settings_errors_never_show_the_password(env: dict[str, str], secret: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.load(env=env)
    assert secret not in str(err.value)
    assert MASK in str(err.value)


def test_settings_repr_hides_url_credentials_and_the_key() -> None:
    s = Settings.load(
        env={
            "COPILOT_DATABASE_URL": "postgresql://agent:s3cret@db/copilot",
            "COPILOT_LLM_BASE_URL": "https://u:hunter2@llm.example/v1?api-key=abc123",
            "OPENAI_API_KEY": "sk-verysecretkey0123456789",
        }
    )
    text = repr(s)
    for secret in ("s3cret", "hunter2", "abc123", "verysecretkey"):
        assert secret not in text
    assert "postgresql://agent:***@db/copilot" in text


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("copilot.test.secrets")
    log.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="copilot.test.secrets"):
            log.info("HTTP Request: POST %s", "https://u:pw12345@h/v1?api-key=abc123")
            try:
                raise RuntimeError("dsn postgresql://a:s3cret@db/x")
            except RuntimeError:
                log.exception("failed")
    finally:
        log.filters.clear()
    text = caplog.text
    assert "pw12345" not in text and "abc123" not in text and "s3cret" not in text
    assert "https://u:***@h/v1?api-key=***" in text


def test_cli_never_prints_a_password_in_errors_logs_or_tracebacks(tmp_path: Path) -> None:
    """The real CLI in a child process: a bad database URL, and an unexpected error."""
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "COPILOT_DATA_DIR": str(tmp_path),
        "COPILOT_DATABASE_URL": "mysql://root:s3cret@db/copilot",
    }
    done = subprocess.run(
        [sys.executable, "-m", "copilot", "db", "current"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "s3cret" not in done.stderr + done.stdout
    assert "root:***@db" in done.stderr
    code = (
        "import logging, sys\n"
        "from copilot.cli.main import main\n"
        "import copilot.cli.validate_kb as v\n"
        "def boom(args):\n"
        "    logging.getLogger('httpx').warning('POST https://u:pw12345@h/v1?key=abc123')\n"
        "    raise RuntimeError('connect postgresql://a:s3cret@db/x failed')\n"
        "v.run = boom\n"
        "logging.basicConfig()\n"
        "sys.exit(main(['validate-kb']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "RuntimeError" in done.stderr and "Traceback" in done.stderr
    for secret in ("pw12345", "abc123", "s3cret"):
        assert secret not in done.stderr
