"""The house rules of the package, read from the code itself (imports as written, lazy ones too).

* Wings sit on layers; a module imports only from its own wing or from lower layers.
* No import loops between modules.
* Streamlit is imported only under ``copilot/ui``.
* The README's architecture map lists every module, and its CLI table every verb with the
  verb's own ``--help`` summary, so neither can drift from the code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "copilot"

# Bottom to top. A wing is a sub-package, or a top-level module of its own.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("secrets",),
    ("errors",),
    ("settings", "files", "jsonl", "progress", "runtime", "text"),
    ("tokens",),
    ("embed", "llm"),
    ("kb", "heads"),
    ("retrieval", "understand"),
    ("guard",),
    ("draft",),
    ("evaluation", "store"),
    ("ui", "cli", "bench"),
    ("__main__", "__init__"),
)
# Same-layer imports allowed between different wings (the CLI runs the benchmarks).
SIDEWAYS = {("cli", "bench")}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _wing(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(wing: str) -> int:
    for i, wings in enumerate(LAYERS):
        if wing in wings:
            return i
    raise AssertionError(f"wing {wing!r} is on no layer: add it to LAYERS in {__file__}")


def _resolve(name: str) -> str | None:
    """The package module that ``import name`` / ``from name import x`` loads (or None)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> dict[str, int]:
    """Modules of the package that ``module`` imports (anywhere in it), with a line each."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [f"{node.module}.{a.name}" for a in node.names]
        for target in targets:
            if target.split(".")[0] != "copilot":
                continue
            resolved = _resolve(target)
            if resolved and resolved != module and resolved != "copilot":
                found.setdefault(resolved, node.lineno)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def test_every_wing_is_on_a_layer() -> None:
    for module in MODULES:
        _layer(_wing(module))


def test_no_upward_or_sideways_imports() -> None:
    bad = []
    for module, deps in GRAPH.items():
        wing = _wing(module)
        for dep, line in deps.items():
            dep_wing = _wing(dep)
            if dep_wing == wing or (wing, dep_wing) in SIDEWAYS:
                continue
            if _layer(dep_wing) >= _layer(wing):
                bad.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {wing} -> {dep_wing}")
    assert not bad, "imports that go up or sideways between wings:\n" + "\n".join(bad)


def test_no_import_loops() -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []
    loops: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in GRAPH[node]:
            if state.get(dep) == 1:
                loops.append(" -> ".join([*stack[stack.index(dep) :], dep]))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for module in GRAPH:
        if module not in state:
            visit(module)
    assert not loops, "import loops:\n" + "\n".join(loops)


def test_streamlit_only_under_ui() -> None:
    outside = []
    for path in [*PACKAGE.rglob("*.py"), ROOT / "app.py"]:
        if path.is_relative_to(PACKAGE / "ui"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n.split(".")[0] == "streamlit" for n in names):
                outside.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not outside, f"streamlit imported outside copilot/ui: {outside}"


def test_the_checker_sees_a_planted_upward_import(tmp_path: Path) -> None:
    """The layer check is not vacuous: a text module importing the drafting wing is caught."""
    planted = "copilot.text.language"
    saved = GRAPH[planted]
    GRAPH[planted] = {**saved, "copilot.draft.pipeline": 1}
    try:
        with pytest.raises(AssertionError, match="text -> draft"):
            test_no_upward_or_sideways_imports()
    finally:
        GRAPH[planted] = saved


# ---- the README cannot drift from the code -----------------------------------------------------
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _architecture_block() -> str:
    section = README.split("## Architecture", 1)[1]
    return section.split("```", 2)[1]


def _listed_modules(block: str) -> set[str]:
    """Module paths (relative to copilot/) named in the indented tree under ``copilot/``."""
    listed: set[str] = set()
    folders: list[tuple[int, str]] = []  # (indent, name) of the open folders
    inside = False
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        first = line.split()[0]
        if indent == 0:
            inside = first == "copilot/"
            folders = []
            continue
        if not inside:
            continue
        folders = [(i, n) for i, n in folders if i < indent]
        prefix = "".join(f"{n}/" for _, n in folders)
        if first.endswith("/"):
            folders.append((indent, first.rstrip("/")))
            continue
        # "a.py, b.py, c.py" or "name.py   description"
        names = [first] if not first.endswith(",") else re.findall(r"(\w+\.py)", line)
        listed.update(prefix + n for n in names if n.endswith(".py"))
    return listed


def test_readme_architecture_lists_every_module() -> None:
    listed = _listed_modules(_architecture_block())
    actual = {
        p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"
    }
    missing = sorted(actual - listed)
    stale = sorted(listed - actual)
    assert not missing, f"modules missing from the README's architecture map: {missing}"
    assert not stale, f"the README's architecture map lists modules that do not exist: {stale}"


def test_readme_cli_table_lists_every_verb_with_its_help() -> None:
    from copilot.cli.main import VERBS

    table = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z-]+)[^`]*` \| (.*) \|$", table, flags=re.M)
    described: dict[str, list[str]] = {}
    for verb, text in rows:
        described.setdefault(verb, []).append(text)
    assert set(described) == set(VERBS), (sorted(described), sorted(VERBS))
    import importlib

    for verb, module in VERBS.items():
        summary = importlib.import_module(f"copilot.cli.{module}").HELP
        assert summary in described[verb], f"{verb}: README does not carry its --help: {summary}"
