"""Routing from learned message understanding: safety overrides that beat retrieval, and
the confident primary topic.

* ``account_compromised`` (P >= 0.5, or ``faq/security`` the primary topic) ->
  ``faq/security`` (freeze the account first) and escalation;
* ``asks_for_prediction_or_advice`` -> ``faq/market-info-disclaimer``;
* ``greeting_or_vague`` as the primary topic -> one short, friendly question;
* ``accusation`` or ``refund_or_compensation_demand`` -> a playbook at level 2 or more
  (the topical playbook of the primary topic, else ``playbook/angry-customer``), never a
  level-1 template;
* otherwise, when the primary topic's probability reaches ``CONFIDENT``, its article is
  answered from (an FAQ's reply template or a topical playbook) instead of retrieval's
  first FAQ.
"""

from __future__ import annotations

from dataclasses import dataclass

from copilot.understand.messages import VAGUE
from copilot.understand.model import Understanding

CONFIDENT = 0.7  # P(primary topic) from which the learned topic picks the article
SECURITY = "faq/security"
# the compromised-account override needs P >= SURE, or faq/security as the primary topic: the
# flag's threshold favours recall (shown to the agent), the override must not turn a lost
# authenticator phone into a hacked account
SURE = 0.5
DISCLAIMER = "faq/market-info-disclaimer"


@dataclass(frozen=True)
class Route:
    """What understanding decided before retrieval's ranking is read."""

    override: str | None = None  # account_compromised | advice | vague | accusation
    article: str | None = None  # the article to answer from
    min_level: int = 0  # the lowest template level allowed
    escalate: bool = False


def route_for(u: Understanding) -> Route:
    """The route for one reading (see the module docstring)."""
    compromised = dict(u.flags).get("account_compromised")
    if compromised is not None and (compromised >= SURE or u.primary == SECURITY):
        return Route("account_compromised", SECURITY, 1, escalate=True)
    if u.has("asks_for_prediction_or_advice"):
        return Route("advice", DISCLAIMER)
    if u.primary == VAGUE and not u.flags:
        return Route("vague")
    if u.has("accusation") or u.has("refund_or_compensation_demand"):
        return Route("accusation", u.primary if "/" in u.primary else None, 2)
    if "/" in u.primary and u.confidence >= CONFIDENT:
        return Route(None, u.primary)
    return Route()
