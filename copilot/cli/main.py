"""``python -m copilot <verb>``: a thin dispatcher over ``copilot.cli.<verb>`` modules.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``, and imports heavy libraries inside ``run`` so ``--help``
stays fast. Expected failures raise :class:`CopilotError`: printed without a
traceback, exit code from the error. Whatever is printed (errors, an unexpected
traceback, log records) goes through :func:`copilot.secrets.redact` first.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence

from copilot import __version__
from copilot.errors import CopilotError
from copilot.secrets import install_log_redaction, redact

# verb -> module under copilot.cli
VERBS: dict[str, str] = {
    "validate-kb": "validate_kb",
    "ingest": "ingest",
    "search": "search",
    "calibrate": "calibrate",
    "check": "check",
    "guardrail": "guardrail",
    "understand": "understand",
    "draft": "draft",
    "eval": "eval",
    "bench": "bench",
    "engine": "engine",
    "db": "db",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per verb."""
    parser = argparse.ArgumentParser(
        prog="copilot",
        description="Support Copilot: grounded, guard-railed reply drafts for support agents.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="<verb>")
    for verb, module_name in VERBS.items():
        module = importlib.import_module(f"copilot.cli.{module_name}")
        p = sub.add_parser(verb, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    install_log_redaction()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "verb", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except CopilotError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: the traceback helps, a password in it must not show
        trace = "".join(traceback.format_exception(exc))
        print(redact(trace).rstrip(), file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
