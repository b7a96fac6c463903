"""Versioned config files: one reader for prompts, policy, rubric, phrases, judge prompt and suites.

Every file the product is configured by (``prompts/*.md``, ``prompts/*.yaml``, eval suites
in TOML) is read here: bytes, UTF-8, the format by suffix (YAML keeping line numbers,
TOML, or Markdown with YAML front matter), the ``version:`` field, and the sha256 that is
logged with every draft and eval run. Problems raise :class:`ConfigError` naming the file
and line; each loader turns it into its own error type and validates its own schema.
Also here: the one sha256 helper, and ``{{name}}`` placeholder filling.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from copilot.errors import CopilotError, Problem


class ConfigError(CopilotError):
    """A versioned config file is missing, unreadable or malformed (``problem`` says where)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.path}: line {problem.line}: {problem.message}")
        self.problem = problem


@dataclass(frozen=True)
class VersionedFile:
    """A parsed config file: its mapping (front matter for Markdown), body and content hash."""

    path: Path
    data: dict[str, Any]
    sha256: str
    body: str = ""
    body_line: int = 1

    @property
    def version(self) -> int:
        """The ``version:`` field (checked when read)."""
        return int(self.data["version"])


def sha256_bytes(raw: bytes) -> str:
    """Hex sha256 of ``raw``."""
    return hashlib.sha256(raw).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return sha256_bytes(path.read_bytes())


def folder_hash(*paths: Path, pattern: str = "*") -> str:
    """A short hash over the files (relative name and content) under ``paths``."""
    digest = hashlib.sha256()
    for base in paths:
        if base.is_file():
            files, root = [base], base.parent
        else:
            files = sorted(p for p in base.rglob(pattern) if p.is_file()) if base.is_dir() else []
            root = base
        for p in files:
            digest.update(f"{p.relative_to(root).as_posix()}:{sha256_file(p)}\n".encode())
    return digest.hexdigest()[:16]


_VAR_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def placeholders(template: str) -> set[str]:
    """The ``{{name}}`` placeholders used in ``template``."""
    return {m.group(1) for m in _VAR_RE.finditer(template)}


def fill(template: str, values: dict[str, Any]) -> str:
    """``{{name}}`` replaced by ``values[name]`` in one pass (values are never re-expanded);
    a placeholder without a value stays as it is."""
    return _VAR_RE.sub(
        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template
    )


def read_versioned(
    path: Path, what: str, *, hint: str = "", require_version: bool = True
) -> VersionedFile:
    """Read ``path`` (``.md`` front matter, ``.toml`` or YAML); check ``version:`` (>= 1).

    ``what`` names the file in messages ("prompt file"), ``hint`` says which setting points
    at it. YAML mappings and lists remember their lines (:func:`line_of`).
    """
    raw, text = read_text(path, what, hint=hint)
    body, body_line = "", 1
    if path.suffix == ".md":
        lines = text.splitlines()
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if not lines or lines[0].strip() != "---" or end is None:
            raise ConfigError(
                Problem(str(path), 1, "missing front matter (a '---' block with version: ...)")
            )
        data = parse_yaml("\n".join(lines[1:end]), path, "front matter is not valid YAML")
        body, body_line = "\n".join(lines[end + 1 :]), end + 2
    elif path.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(Problem(str(path), 1, f"not valid TOML: {exc}")) from None
    else:
        data = parse_yaml(text, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(Problem(str(path), 1, f"{what} must be a mapping of fields"))
    if require_version:
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ConfigError(
                Problem(
                    str(path),
                    line_of(data, "version"),
                    f"'version:' must be a whole number >= 1, got {version!r}",
                )
            )
    return VersionedFile(path, data, sha256_bytes(raw), body, body_line)


def read_text(
    path: Path, what: str, *, hint: str = "", missing: str = "not found"
) -> tuple[bytes, str]:
    """The bytes and UTF-8 text of ``path``; :class:`ConfigError` when missing or unreadable."""
    where = f" ({hint})" if hint else ""
    try:
        raw = path.read_bytes()
        return raw, raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(Problem(str(path), 1, f"{what} {missing}{where}")) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(Problem(str(path), 1, f"cannot read {what}: {reason}")) from None


def parse_yaml(text: str, path: Path, what: str = "not valid YAML") -> Any:
    """YAML whose mappings and lists keep their lines; :class:`ConfigError` at the bad line."""
    try:
        return yaml.load(text, Loader=LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(Problem(str(path), line, f"{what}: {str(exc).splitlines()[0]}")) from None


# ---- YAML that keeps line numbers ------------------------------------------------------------
class _LineDict(dict[Any, Any]):
    line: int = 1
    key_lines: dict[Any, int]


class _LineList(list[Any]):
    line: int = 1
    item_lines: list[int]


class LineLoader(yaml.SafeLoader):
    """A safe YAML loader whose mappings and lists remember their line numbers."""


def _construct_mapping(loader: LineLoader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    out = _LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: LineLoader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def line_of(obj: Any, key: Any = None) -> int:
    """The line of ``key`` in a loaded mapping, else the line where ``obj`` starts (1 if unknown)."""
    lines = getattr(obj, "key_lines", {})
    return int(lines[key]) if key in lines else int(getattr(obj, "line", 1))


def items_with_lines(value: Any) -> list[tuple[Any, int]]:
    """(item, line) for each item of a loaded list."""
    lines = getattr(value, "item_lines", [line_of(value)] * len(value))
    return list(zip(value, lines, strict=True))
