"""Secrets out of anything printed: one :func:`redact` for errors, logs, the CLI and the UI.

What it hides (the shape stays, so a message still says which server or file was meant)::

    postgresql://agent:s3cret@db:5432/copilot   -> postgresql://agent:***@db:5432/copilot
    https://user:pw@llm.example/v1              -> https://user:***@llm.example/v1
    https://x.openai.azure.com/v1?api-key=abc   -> https://x.openai.azure.com/v1?api-key=***
    ...&token=abc&sig=def / password=..., secret=...   -> token=*** sig=*** ...
    Authorization: Bearer eyJhbGciOi...         -> Authorization: Bearer ***
    sk-proj-abcdef0123456789...                 -> sk-***

:class:`~copilot.errors.CopilotError` runs its message through :func:`redact`, so every
expected error is clean wherever it is shown; :func:`install_log_redaction` does the same
for log records (``httpx`` logs request URLs, for one). This module imports nothing of the
package: every layer may use it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# scheme://user:password@host  (the password may hold anything but '@', '/' and spaces)
_URL_CREDENTIALS = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://(?P<user>[^\s:/?#@'\"]*)):(?P<pw>[^\s/?#'\"]+)@"
)
# a query or form parameter whose name says it is a secret: api-key=, key=, token=, sig=, ...
_SECRET_PARAM = re.compile(
    r"(?P<name>(?<![A-Za-z0-9_-])(?:[A-Za-z0-9_-]*(?:api[-_]?key|access[-_]?key|secret|token|"
    r"password|passwd|pwd|signature)|key|sig|apikey))"
    r"(?P<eq>=)(?P<value>[^\s&#'\"<>]+)",
    re.IGNORECASE,
)
# libpq's key=value DSNs (password=...) are covered above; "Authorization: Bearer <token>":
_BEARER = re.compile(r"(?P<head>\bBearer\s+)(?P<token>[A-Za-z0-9._~+/=-]{8,})", re.I)
# API keys in the shape providers print them: sk-..., sk-proj-..., xoxb-..., ghp_...
_API_KEY = re.compile(r"\b(?P<prefix>sk-(?:proj-|ant-)?|xox[abp]-|ghp_|gho_)[A-Za-z0-9_-]{8,}")


def redact(text: str) -> str:
    """``text`` with URL passwords, secret query/form values, bearer tokens and API keys masked."""
    if not text:
        return text
    out = _URL_CREDENTIALS.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    out = _SECRET_PARAM.sub(
        lambda m: m.group(0) if m.group("value") == MASK else f"{m.group('name')}={MASK}", out
    )
    out = _BEARER.sub(lambda m: f"{m.group('head')}{MASK}", out)
    return _API_KEY.sub(lambda m: f"{m.group('prefix')}{MASK}", out)


def redact_url(url: str) -> str:
    """``url`` with its password and secret query values masked (for messages and logs).

    Unlike :func:`redact` it also masks a password that a text pattern could miss (one
    holding ``/`` or ``?``), by parsing the URL.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # a malformed port or IPv6 literal: fall back to the text patterns
        return redact(url)
    if password is not None:
        user, _, host = parts.netloc.rpartition("@")
        name = user.split(":", 1)[0]
        url = urlunsplit(parts._replace(netloc=f"{name}:{MASK}@{host}"))
    return redact(url)


class RedactingFilter(logging.Filter):
    """A log filter that formats each record once and redacts the result."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string is logging's own error to report
        return
    clean = redact(message)
    if clean != message or record.args:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)


_installed: list[Callable[..., logging.LogRecord]] = []


def install_log_redaction() -> None:
    """Redact every log record of the process as it is made (idempotent).

    Wraps the log-record factory rather than adding handler filters, so records of every
    logger (``httpx``, ``streamlit``, libraries with their own handlers) are covered.
    """
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    _installed.append(previous)
    logging.setLogRecordFactory(factory)
