"""``copilot engine``: build or inspect the CPU-tuned embedding engine."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "Build (engine build) or show (engine status) the embedding engine compiled for this CPU."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the verb."""
    parser.add_argument("action", choices=("status", "build"), nargs="?", default="status")
    parser.add_argument(
        "--dir", type=Path, help="engine folder (default: <venv>/share/support-copilot/engine)"
    )
    parser.add_argument(
        "--force", action="store_true", help="rebuild even if a usable build exists"
    )
    parser.add_argument("--json", action="store_true", help="print the status as JSON")


def run(args: argparse.Namespace) -> int:
    """Build and/or report; exit 1 when a requested build failed (the bundled engine stays)."""
    from copilot.embed.engine import build, library_for, status
    from copilot.settings import get_settings

    before = status(args.dir)
    found = build(args.dir, force=args.force) if args.action == "build" else before
    choice = get_settings().embed_engine
    in_use = "native" if library_for(choice, args.dir) is not None else "bundled"
    if args.json:
        print(
            json.dumps(
                {
                    "folder": str(found.folder),
                    "usable": found.usable,
                    "reason": found.reason,
                    "setting": choice,
                    "in_use": in_use,
                    "manifest": found.manifest,
                },
                indent=2,
            )
        )
        return 0
    if args.action == "build":
        rebuilt = not (before.usable and not args.force)
        print(
            f"{'built and verified' if rebuilt else 'already built'}: {found.library} "
            f"(cosine vs bundled >= {(found.manifest or {}).get('min_cosine_vs_bundled')})"
        )
    else:
        print(f"native build: {'usable' if found.usable else 'not usable'} ({found.reason})")
        print(f"folder: {found.folder}")
    print(f"COPILOT_EMBED_ENGINE={choice}: embedding with the {in_use} engine")
    return 0
