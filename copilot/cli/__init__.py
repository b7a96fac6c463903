"""The command line, ``python -m copilot <verb>``: one module per verb parses, calls the library, prints."""

from copilot.cli.main import main

__all__ = ["main"]
