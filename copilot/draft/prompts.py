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
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from copilot.errors import CopilotError

PROMPT_NAMES = ("system", "draft", "redraft", "rewrite")
_VAR_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
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
        return _VAR_RE.sub(lambda m: str(values[m.group(1)]), self.body)

    def snippet(self, key: str) -> str:
        """A named text snippet from the front matter's ``snippets:`` mapping."""
        try:
            return self.snippets[key]
        except KeyError:
            raise PromptError(f"{self.path}: no snippet '{key}' under snippets:") from None


def load_prompt(path: Path) -> Prompt:
    """Read and validate one prompt file."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise PromptError(f"{path}: prompt file not found (see COPILOT_PROMPTS_DIR)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptError(f"{path}: cannot read prompt file: {exc}") from None
    lines = text.splitlines()
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if not lines or lines[0].strip() != "---" or end is None:
        raise PromptError(f"{path}: missing front matter (a '---' block with version: ...)")
    try:
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        raise PromptError(f"{path}: front matter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise PromptError(f"{path}: front matter must be a mapping")
    unknown_fields = sorted(set(meta) - _FIELDS)
    if unknown_fields:
        raise PromptError(f"{path}: unknown front-matter field '{unknown_fields[0]}'")
    version = meta.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise PromptError(f"{path}: 'version:' must be a whole number >= 1, got {version!r}")
    variables = meta.get("variables") or []
    if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
        raise PromptError(f"{path}: 'variables:' must be a list of names")
    snippets = meta.get("snippets") or {}
    if not isinstance(snippets, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in snippets.items()
    ):
        raise PromptError(f"{path}: 'snippets:' must map names to text")
    body = "\n".join(lines[end + 1 :]).strip() + "\n"
    used = {m.group(1) for m in _VAR_RE.finditer(body)}
    for name in variables:
        if name not in used:
            raise PromptError(f"{path}: variable '{name}' is declared but not used in the text")
    for name in sorted(used):
        if name not in variables:
            raise PromptError(f"{path}: variable '{name}' is used but not declared in variables:")
    return Prompt(
        name=str(meta.get("name") or path.stem),
        version=version,
        variables=tuple(variables),
        body=body,
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        snippets={k: v.strip() for k, v in snippets.items()},
    )


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


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (used for data files such as the offline phrases)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
