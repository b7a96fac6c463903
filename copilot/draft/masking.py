"""Personal data masked before any text reaches the model, restored in what the agent sees."""

from __future__ import annotations

from dataclasses import dataclass

from copilot.draft.assembly import HistoryTurn
from copilot.draft.types import DraftRequest
from copilot.text import pii

NAME_PLACEHOLDER = "[CUSTOMER_NAME]"


_SEP = "\n\u241e\u241e\u241e\n"  # joins the texts masked together (never matched as PII)


@dataclass
class PiiVault:
    """Masked copies of the request's texts and the mapping to restore the draft.

    All texts are masked in one call so placeholders are numbered once
    ([EMAIL_1] means the same address everywhere). The customer's name is
    replaced by ``[CUSTOMER_NAME]`` too; only the vault knows the real values.
    """

    message: str
    agent_note: str
    history: list[HistoryTurn]
    mapping: dict[str, str]
    name: str | None

    @classmethod
    def build(cls, request: DraftRequest, message: str) -> PiiVault:
        """Mask ``message``, the agent note and the history of ``request``."""
        history = list(request.history or [])
        note = request.agent_note or ""
        texts = [message, note, *(t.text for t in history)]
        masked = pii.mask(_SEP.join(texts))
        parts = masked.text.split(_SEP)
        if len(parts) != len(texts):  # a mask that ate the separator: mask one by one
            parts, mapping = [], {}
            for text in texts:
                one = pii.mask(text)
                parts.append(one.text)
                mapping.update(one.mapping)
        else:
            mapping = dict(masked.mapping)
        name = request.customer_name
        return cls(
            message=parts[0],
            agent_note=parts[1],
            history=[HistoryTurn(t.role, p) for t, p in zip(history, parts[2:], strict=True)],
            mapping=mapping,
            name=name.strip() if isinstance(name, str) and name.strip() else None,
        )

    @property
    def name_placeholder(self) -> str | None:
        """What the model sees instead of the customer's name (None without a name)."""
        return NAME_PLACEHOLDER if self.name else None

    def restore(self, text: str, shown_name: str | None = None) -> str:
        """The model's text with the real values put back."""
        if self.name:
            text = text.replace(NAME_PLACEHOLDER, shown_name or self.name)
        return pii.unmask(text, self.mapping) if self.mapping else text

    def remask(self, text: str) -> str:
        """Real values in ``text`` (e.g. a violation excerpt) replaced by their placeholders."""
        pairs = sorted(self.mapping.items(), key=lambda kv: -len(kv[1]))
        for placeholder, original in pairs:
            if original:
                text = text.replace(original, placeholder)
        if self.name:
            text = text.replace(self.name, NAME_PLACEHOLDER)
        return text
