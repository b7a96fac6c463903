"""The agent's signature under a sent reply: one per reply language, from the agent's settings.

:func:`signed` adds it once: right under a bare closing line ("Best regards,",
「引き続きよろしくお願いいたします。」), else after a blank line; a text that already ends with the
signature is left as it is.
"""

from __future__ import annotations

import re

#: A closing line that reads as a bare sign-off without a pattern: short and ending in a comma.
_BARE = re.compile(r"^.{1,40}[,，、]$")


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def signed(text: str, signature: str, sign_off: re.Pattern[str] | None = None) -> str:
    """``text`` ending with ``signature`` (unchanged when the signature is blank or already
    there). ``sign_off`` recognises the reply language's closing lines."""
    sig = signature.strip()
    if not sig or not text.strip():
        return text
    body = text.rstrip()
    if _squash(body).endswith(_squash(sig)):
        return text
    last = body.rsplit("\n", 1)[-1].strip()
    bare = bool(_BARE.match(last)) or bool(sign_off is not None and sign_off.search(last))
    return body + ("\n" if bare else "\n\n") + sig
