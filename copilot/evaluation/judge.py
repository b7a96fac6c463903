"""Optional LLM judge for evals: a versioned rubric, strict JSON answers, k runs with spread.

The rubric lives in ``prompts/judge_rubric.yaml`` (validated on load: unknown keys
and unfilled or undeclared ``{{placeholders}}`` are errors). Each run asks the
backend for one JSON object with a whole-number score per criterion; anything
else (prose, a code fence, a missing or out-of-range score, an extra key) is
rejected and the judge is asked again with the reason, up to ``max_retries``
times. The judge runs ``runs`` times per draft; the mean, standard deviation,
minimum and maximum of each criterion are reported. Personal data in the texts is masked
before the backend sees them.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError
from copilot.files import ConfigError, fill, placeholders, read_versioned
from copilot.llm.base import Backend, Message
from copilot.text.pii import Vault

LANGUAGE_NAMES = {"en": "English", "ja": "Japanese", "zh": "Simplified Chinese"}
_KEYS = {
    "name",
    "version",
    "description",
    "temperature",
    "max_tokens",
    "scale",
    "criteria",
    "language_notes",
    "system",
    "user",
    "retry",
}
_TEMPLATE_VARS = {
    "system": set(),
    "user": {
        "language_name",
        "language_note",
        "scale_min",
        "scale_max",
        "criteria",
        "customer_message",
        "golden_reply",
        "draft",
        "json_shape",
    },
    "retry": {"error"},
}


class RubricError(CopilotError):
    """The rubric file is missing or malformed."""


class JudgeFormatError(ValueError):
    """The judge's answer is not the JSON object the rubric asks for."""


@dataclass(frozen=True)
class Rubric:
    """A validated judge rubric."""

    path: Path
    version: int
    sha256: str
    criteria: Mapping[str, str]
    language_notes: Mapping[str, str]
    scale: tuple[int, int]
    temperature: float
    max_tokens: int
    templates: Mapping[str, str]

    @property
    def label(self) -> str:
        """``judge_rubric@<version>``."""
        return f"judge_rubric@{self.version}"

    def render(self, name: str, **values: Any) -> str:
        """Fill template ``name`` in one pass (values are never re-expanded)."""
        return fill(self.templates[name], values)


def load_rubric(path: Path) -> Rubric:
    """Read and validate the rubric file; every problem names the file and the key."""
    try:
        loaded = read_versioned(
            path, "judge rubric", hint="see COPILOT_PROMPTS_DIR", require_version=False
        )
    except ConfigError as exc:
        raise RubricError(str(exc)) from None
    data = loaded.data
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise RubricError(f"{path}: unknown key '{unknown[0]}'")
    missing = sorted(k for k in _KEYS - {"description", "name"} if k not in data)
    if missing:
        raise RubricError(f"{path}: missing key '{missing[0]}'")
    version = data["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RubricError(f"{path}: 'version' must be a whole number >= 1")
    criteria = data["criteria"]
    if (
        not isinstance(criteria, dict)
        or not criteria
        or not all(
            isinstance(k, str) and re.fullmatch(r"[a-z_]+", k) and isinstance(v, str)
            for k, v in criteria.items()
        )
    ):
        raise RubricError(f"{path}: 'criteria' must map lower-case names to descriptions")
    scale = data["scale"]
    if not (
        isinstance(scale, dict)
        and isinstance(scale.get("min"), int)
        and isinstance(scale.get("max"), int)
        and scale["min"] < scale["max"]
    ):
        raise RubricError(f"{path}: 'scale' must be {{min: 1, max: 5}}")
    notes = data["language_notes"]
    if not isinstance(notes, dict) or set(notes) != set(LANGUAGE_NAMES):
        raise RubricError(f"{path}: 'language_notes' must have exactly en, ja and zh")
    templates: dict[str, str] = {}
    for name, allowed in _TEMPLATE_VARS.items():
        text = data[name]
        if not isinstance(text, str) or not text.strip():
            raise RubricError(f"{path}: '{name}' must be non-empty text")
        used = placeholders(text)
        if used - allowed:
            raise RubricError(
                f"{path}: '{name}' uses unknown placeholder '{sorted(used - allowed)[0]}'"
            )
        if allowed - used:
            raise RubricError(
                f"{path}: '{name}' does not use placeholder '{sorted(allowed - used)[0]}'"
            )
        templates[name] = text.strip()
    try:
        temperature, max_tokens = float(data["temperature"]), int(data["max_tokens"])
    except (TypeError, ValueError):
        raise RubricError(f"{path}: 'temperature' and 'max_tokens' must be numbers") from None
    return Rubric(
        path,
        version,
        loaded.sha256,
        dict(criteria),
        dict(notes),
        (scale["min"], scale["max"]),
        temperature,
        max_tokens,
        templates,
    )


def parse_judgement(text: str, rubric: Rubric) -> dict[str, int]:
    """The scores in ``text``, which must be exactly one JSON object of the rubric's shape."""
    try:
        obj = json.loads(text.strip())
    except json.JSONDecodeError as exc:
        raise JudgeFormatError(f"not a JSON object ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise JudgeFormatError("the answer must be a JSON object")
    extra = sorted(set(obj) - set(rubric.criteria) - {"rationale"})
    if extra:
        raise JudgeFormatError(f"unexpected key '{extra[0]}'")
    lo, hi = rubric.scale
    scores: dict[str, int] = {}
    for name in rubric.criteria:
        value = obj.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise JudgeFormatError(
                f"'{name}' must be a whole number from {lo} to {hi}, got {value!r}"
            )
        if not lo <= value <= hi:
            raise JudgeFormatError(f"'{name}' is {value}, outside {lo}-{hi}")
        scores[name] = value
    if "rationale" in obj and not isinstance(obj["rationale"], str):
        raise JudgeFormatError("'rationale' must be text")
    return scores


class Judge:
    """Scores drafts with an LLM backend using a :class:`Rubric`."""

    def __init__(
        self, backend: Backend, rubric: Rubric, *, runs: int = 3, max_retries: int = 2
    ) -> None:
        if runs < 1:
            raise CopilotError("--judge-runs must be at least 1")
        self.backend = backend
        self.rubric = rubric
        self.runs = runs
        self.max_retries = max_retries

    def messages(
        self, *, language: str, customer_message: str, golden_reply: str, draft: str
    ) -> list[Message]:
        """The system and user messages of one judge call."""
        r = self.rubric
        shape = json.dumps(
            {name: r.scale[1] for name in r.criteria} | {"rationale": "one short sentence"}
        )
        user = r.render(
            "user",
            language_name=LANGUAGE_NAMES.get(language, language),
            language_note=r.language_notes.get(language, ""),
            scale_min=r.scale[0],
            scale_max=r.scale[1],
            criteria="\n".join(f"- {k}: {v}" for k, v in r.criteria.items()),
            customer_message=customer_message,
            golden_reply=golden_reply,
            draft=draft,
            json_shape=shape,
        )
        return [Message("system", r.render("system")), Message("user", user)]

    def _one_run(self, messages: list[Message]) -> tuple[dict[str, int] | None, int, str]:
        convo = list(messages)
        error = ""
        for attempt in range(self.max_retries + 1):
            answer = self.backend.complete(
                convo, temperature=self.rubric.temperature, max_tokens=self.rubric.max_tokens
            ).text
            try:
                return parse_judgement(answer, self.rubric), attempt, ""
            except JudgeFormatError as exc:
                error = str(exc)
                convo += [
                    Message("assistant", answer),
                    Message("user", self.rubric.render("retry", error=error)),
                ]
        return None, self.max_retries, error

    def judge(
        self, *, language: str, customer_message: str, golden_reply: str, draft: str
    ) -> dict[str, Any]:
        """Run the judge ``runs`` times; per criterion the mean, stdev, min, max and the scores.

        The judge is a remote call: the message, golden reply and draft are masked by one
        :class:`~copilot.text.pii.Vault` (same value, same placeholder in all three)."""
        vault = Vault.for_texts([customer_message, golden_reply, draft])
        messages = self.messages(
            language=language,
            customer_message=vault.mask(customer_message),
            golden_reply=vault.mask(golden_reply),
            draft=vault.mask(draft),
        )
        runs: list[dict[str, int]] = []
        retries, errors = 0, []
        for _ in range(self.runs):
            scores, used, error = self._one_run(messages)
            retries += used
            if scores is None:
                errors.append(error)
            else:
                runs.append(scores)
        criteria = {
            name: {
                "mean": round(statistics.fmean(vals), 3),
                "stdev": round(statistics.pstdev(vals), 3),
                "min": min(vals),
                "max": max(vals),
                "scores": vals,
            }
            for name in self.rubric.criteria
            if (vals := [r[name] for r in runs])
        }
        out: dict[str, Any] = {
            "rubric": self.rubric.label,
            "model": self.backend.model,
            "runs": self.runs,
            "ok_runs": len(runs),
            "retries": retries,
            "criteria": criteria,
        }
        if errors:
            out["errors"] = errors
        return out
