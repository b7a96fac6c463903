"""Versioned prompt files: load, validate and render.

A prompt file is Markdown with YAML front matter::

    ---
    name: draft
    version: 1
    variables: [language_name, customer_message]
    ---
    Reply in {{language_name}} ... {{customer_message}}

Placeholders are ``{{name}}``. Loading checks that the placeholders in the body
are exactly the declared ``variables``; rendering checks that exactly those
variables are given. Every problem names the file and the variable. Rendering
is a single pass, so ``{{...}}`` inside a value (customer text) is never
expanded. Each file's sha256 is recorded with every draft.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError
from copilot.files import ConfigError, fill, placeholders, read_versioned

PROMPT_NAMES = ("system", "draft", "redraft", "rewrite")
_FIELDS = {"name", "version", "variables", "description", "snippets"}


class PromptError(CopilotError):
    """A prompt file is missing, malformed, or rendered with the wrong variables."""


@dataclass(frozen=True)
class Prompt:
    """One validated prompt template."""

    name: str
    version: int
    variables: tuple[str, ...]
    body: str
    path: Path
    sha256: str
    snippets: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``name@version``, e.g. ``draft@1``."""
        return f"{self.name}@{self.version}"

    def render(self, **values: Any) -> str:
        """The body with every ``{{variable}}`` replaced; missing or unknown names raise."""
        given = set(values)
        declared = set(self.variables)
        missing = sorted(declared - given)
        if missing:
            raise PromptError(f"{self.path}: missing value for variable '{missing[0]}'")
        unknown = sorted(given - declared)
        if unknown:
            raise PromptError(
                f"{self.path}: unknown variable '{unknown[0]}'; "
                f"declared: {', '.join(self.variables)}"
            )
        return fill(self.body, values)

    def snippet(self, key: str) -> str:
        """A named text snippet from the front matter's ``snippets:`` mapping."""
        try:
            return self.snippets[key]
        except KeyError:
            raise PromptError(f"{self.path}: no snippet '{key}' under snippets:") from None


def load_prompt(path: Path) -> Prompt:
    """Read and validate one prompt file."""
    try:
        loaded = read_versioned(path, "prompt file", hint="see COPILOT_PROMPTS_DIR")
    except ConfigError as exc:
        raise PromptError(_message(exc)) from None
    meta = loaded.data
    unknown_fields = sorted(set(meta) - _FIELDS)
    if unknown_fields:
        raise PromptError(f"{path}: unknown front-matter field '{unknown_fields[0]}'")
    variables = meta.get("variables") or []
    if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
        raise PromptError(f"{path}: 'variables:' must be a list of names")
    snippets = meta.get("snippets") or {}
    if not isinstance(snippets, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in snippets.items()
    ):
        raise PromptError(f"{path}: 'snippets:' must map names to text")
    body = loaded.body.strip() + "\n"
    used = placeholders(body)
    for name in variables:
        if name not in used:
            raise PromptError(f"{path}: variable '{name}' is declared but not used in the text")
    for name in sorted(used):
        if name not in variables:
            raise PromptError(f"{path}: variable '{name}' is used but not declared in variables:")
    return Prompt(
        name=str(meta.get("name") or path.stem),
        version=loaded.version,
        variables=tuple(variables),
        body=body,
        path=path,
        sha256=loaded.sha256,
        snippets={k: v.strip() for k, v in snippets.items()},
    )


def _message(exc: ConfigError) -> str:
    """``PATH: problem`` (line 1 is left out: it only says the file as a whole is wrong)."""
    p = exc.problem
    return f"{p.path}: {p.message}" if p.line <= 1 else f"{p.path}: line {p.line}: {p.message}"


@dataclass(frozen=True)
class PromptSet:
    """The prompts the drafting pipeline uses, loaded from one folder."""

    prompts: Mapping[str, Prompt]

    @classmethod
    def load(cls, folder: Path, names: Iterable[str] = PROMPT_NAMES) -> PromptSet:
        """Load and validate ``names`` from ``folder`` (``<name>.md``)."""
        if not folder.is_dir():
            raise PromptError(f"{folder}: prompts folder does not exist (see COPILOT_PROMPTS_DIR)")
        return cls({name: load_prompt(folder / f"{name}.md") for name in names})

    def __getitem__(self, name: str) -> Prompt:
        try:
            return self.prompts[name]
        except KeyError:
            raise PromptError(f"no prompt named {name!r}") from None

    def version(self, names: Iterable[str]) -> str:
        """e.g. ``system@1+draft@1``: the versions of the prompts a result used."""
        return "+".join(self[n].label for n in names)

    def sha256(self, names: Iterable[str]) -> str:
        """One sha256 over the content hashes of ``names`` (in the given order)."""
        digest = hashlib.sha256()
        for n in names:
            digest.update(f"{n}:{self[n].sha256}\n".encode())
        return digest.hexdigest()
