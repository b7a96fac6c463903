"""Exceptions that carry a user-facing message and a process exit code."""

from __future__ import annotations

from dataclasses import dataclass

from copilot.secrets import redact


class CopilotError(Exception):
    """An expected failure: the CLI prints the message (no traceback) and exits with ``exit_code``.

    The message is passed through :func:`copilot.secrets.redact`: passwords in URLs, secret
    query values and tokens never reach a terminal, a log or a page through an error.
    """

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(redact(message))
        if exit_code is not None:
            self.exit_code = exit_code


class SettingsError(CopilotError):
    """A configuration value is missing or not allowed."""


@dataclass(frozen=True)
class Problem:
    """One problem in an input file, located by path and line (1-based)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}: line {self.line}: {self.message}"


class InputError(CopilotError):
    """One or more problems in an input file; ``problems`` lists them all."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class BackendError(CopilotError):
    """The LLM backend failed (endpoint down, timeout, bad response)."""

    exit_code = 1
