"""``copilot validate-kb``: check every knowledge-base article."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Check every KB article; list each problem as PATH: line N: what is wrong (exit 2 if any)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the verb."""
    parser.add_argument("--kb", type=Path, help="knowledge folder (default: COPILOT_KNOWLEDGE_DIR)")


def run(args: argparse.Namespace) -> int:
    """Validate and report."""
    from copilot.kb.articles import validate_kb
    from copilot.settings import get_settings

    kb = args.kb or get_settings().knowledge_dir
    articles, problems = validate_kb(kb)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {kb}", file=sys.stderr)
        return 2
    langs = sorted({a.language for a in articles})
    ids = {a.id for a in articles}
    print(f"ok: {len(articles)} files, {len(ids)} articles, languages {', '.join(langs)}")
    return 0
