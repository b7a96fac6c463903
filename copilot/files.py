"""YAML loading that keeps line numbers, so validation errors can say ``FILE: line N``."""

from __future__ import annotations

from typing import Any

import yaml


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
