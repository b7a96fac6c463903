"""One module per CLI verb (see copilot.cli)."""
