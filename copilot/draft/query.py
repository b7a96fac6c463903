"""What the drafting pipeline searches the knowledge base for."""

from __future__ import annotations

import re

from copilot.draft.masking import PiiVault

_PLACEHOLDER_RE = re.compile(r"\[[A-Z][A-Z_]*_\d+\]|\[CUSTOMER_NAME\]")


def retrieval_query(vault: PiiVault) -> str:
    """The masked message without placeholders (they carry no meaning for search).

    A short follow-up ("any news?") is searched together with the last two customer turns
    (the last may be "OK, I'll wait", with no topic of its own).
    """
    query = " ".join(_PLACEHOLDER_RE.sub(" ", vault.message).split())
    if len(query) < 40:
        earlier = [h.text for h in vault.history if h.role == "customer"][-2:]
        if earlier:
            before = [" ".join(_PLACEHOLDER_RE.sub(" ", t).split()) for t in earlier]
            query = "\n".join([*before, query])
    return query or vault.message
