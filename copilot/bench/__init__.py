"""Benchmarks behind ``copilot bench``: figures for the closing notes, ratios in the same run."""
