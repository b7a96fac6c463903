"""Support Copilot: knowledge-grounded reply drafts for crypto-exchange support agents."""

__version__ = "0.1.0"
