"""The optional LLM judge of the guardrail: its prompt file and a strictly parsed answer.

The prompt (``prompts/guardrail_judge.yaml``) is validated on load. The judge must answer
``{"violations": [{"rule", "excerpt", "reason"}]}`` and nothing else; a malformed answer is
retried once with the ``retry`` message. Failures are returned as a state, never raised: the
deterministic verdict then stands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from copilot.errors import BackendError, CopilotError, InputError, Problem
from copilot.files import ConfigError, fill, read_versioned
from copilot.llm.base import Backend, Message

JUDGE_FIELDS = ("name", "version", "system", "user", "retry")


def parse_judge_answer(text: str, rule_ids: set[str]) -> list[dict[str, str]]:
    """Strictly parse ``{"violations": [{"rule", "excerpt", "reason"}]}``; ValueError when malformed."""
    try:
        data = json.loads(text.strip())
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from None
    if (
        not isinstance(data, dict)
        or set(data) != {"violations"}
        or not isinstance(data["violations"], list)
    ):
        raise ValueError('expected an object with exactly one key, "violations" (a list)')
    out = []
    for item in data["violations"]:
        if not isinstance(item, dict) or set(item) != {"rule", "excerpt", "reason"}:
            raise ValueError('each violation needs exactly "rule", "excerpt" and "reason"')
        if not all(isinstance(item[k], str) for k in item):
            raise ValueError("violation fields must be strings")
        if item["rule"] not in rule_ids:
            raise ValueError(f"unknown rule {item['rule']!r}")
        out.append({k: str(item[k]) for k in ("rule", "excerpt", "reason")})
    return out


def ask_judge(
    backend: Backend, prompt: dict[str, Any], values: dict[str, str], rule_ids: set[str]
) -> tuple[list[dict[str, str]], str]:
    """(violations, "ok"), or ([], "error: ...") when the backend fails or both answers are
    malformed."""
    messages = [
        Message("system", fill(prompt["system"], values)),
        Message("user", fill(prompt["user"], values)),
    ]
    error = "error: no answer"
    for attempt in range(2):
        try:
            answer = backend.complete(messages, temperature=0.0, max_tokens=600).text
        except BackendError as exc:
            return [], f"error: {exc}"
        try:
            return parse_judge_answer(answer, rule_ids), "ok"
        except ValueError as exc:
            error = f"error: {exc}"
            if attempt == 0:
                messages += [
                    Message("assistant", answer),
                    Message("user", fill(prompt["retry"], values)),
                ]
    return [], error


def load_judge_prompt(path: Path) -> dict[str, Any]:
    """Load and validate the LLM-judge prompt file (``version``, ``system``, ``user``, ``retry``)."""
    try:
        data: Any = read_versioned(path, "judge prompt", require_version=False).data
    except ConfigError as exc:
        if exc.problem.message.startswith(("cannot read", "judge prompt not found")):
            raise CopilotError(str(exc)) from None
        raise InputError([exc.problem]) from None
    problems = []
    if not isinstance(data, dict):
        raise InputError(
            [Problem(str(path), 1, "must be a mapping with version, system, user and retry")]
        )
    for key in JUDGE_FIELDS[1:]:
        if key not in data:
            problems.append(Problem(str(path), 1, f"field '{key}': missing"))
    for key in sorted(set(data) - set(JUDGE_FIELDS), key=str):
        problems.append(
            Problem(
                str(path), 1, f"field '{key}': unknown field; allowed: {', '.join(JUDGE_FIELDS)}"
            )
        )
    version = data.get("version")
    if "version" in data and (
        isinstance(version, bool) or not isinstance(version, int) or version < 1
    ):
        problems.append(
            Problem(str(path), 1, f"field 'version': {version!r} must be a whole number >= 1")
        )
    for key in ("system", "user", "retry"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            problems.append(Problem(str(path), 1, f"field '{key}': must be non-empty text"))
    if problems:
        raise InputError(problems)
    return dict(data)
