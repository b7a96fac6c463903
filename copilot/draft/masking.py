"""Personal data masked before any text reaches the model, restored in what the agent sees."""

from __future__ import annotations

from dataclasses import dataclass

from copilot.draft.assembly import HistoryTurn
from copilot.draft.types import DraftRequest
from copilot.text import pii

NAME_PLACEHOLDER = pii.CUSTOMER_NAME


@dataclass
class PiiVault:
    """Masked copies of the request's texts and the vault that restores the draft.

    The message, the agent note and every turn of the thread are masked by one
    :class:`copilot.text.pii.Vault`, so placeholders are numbered once ([EMAIL_1] means the
    same address everywhere) and a name found in any of them (or given as the customer's
    name, shown to the model as ``[CUSTOMER_NAME]``) is masked in all of them. Only the
    vault knows the real values.
    """

    message: str
    agent_note: str
    history: list[HistoryTurn]
    vault: pii.Vault
    name: str | None

    @classmethod
    def build(cls, request: DraftRequest, message: str) -> PiiVault:
        """Mask ``message``, the agent note and the history of ``request``."""
        history = list(request.history or [])
        note = request.agent_note or ""
        name = request.customer_name
        name = name.strip() if isinstance(name, str) and name.strip() else None
        vault = pii.Vault.for_texts([message, note, *(t.text for t in history)], name)
        return cls(
            message=vault.mask(message),
            agent_note=vault.mask(note),
            history=[HistoryTurn(t.role, vault.mask(t.text)) for t in history],
            vault=vault,
            name=name,
        )

    @property
    def mapping(self) -> dict[str, str]:
        """Placeholder -> real value, for every value masked so far."""
        return self.vault.mapping

    @property
    def name_placeholder(self) -> str | None:
        """What the model sees instead of the customer's name (None without a name)."""
        return NAME_PLACEHOLDER if self.name else None

    def restore(self, text: str, shown_name: str | None = None) -> str:
        """The model's text with the real values put back."""
        if self.name:
            text = text.replace(NAME_PLACEHOLDER, shown_name or self.name)
        return self.vault.restore(text)

    def remask(self, text: str) -> str:
        """``text`` (a restored draft, violation excerpts) safe to send back to the model:
        known values replaced by their placeholders, anything else personal masked."""
        return self.vault.remask(text)
