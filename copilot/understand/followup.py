"""A follow-up on an open case: the thread shows support already answered (an agent turn)
and the customer's latest message chases it ("any news??", まだですか, 已經第四個工作天了)
or sends the id the agent asked for.

The reply to such a message is about the case's progress (still within the published
time, or past it and handed over), never the first answer again ("to submit, go to ...").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from copilot.understand.facts import extract_facts
from copilot.understand.model import TurnLike

# a chase: asks for news or progress, says it is still not done, or how long it has been
_CHASE = re.compile(
    r"""(?ix)
    \b(?:any\s+(?:news|update|updates|progress|word)|still\s+(?:nothing|waiting|not|no|pending
        |processing|under\s+review|in\s+review|stuck)|what(?:'?s|\s+is)\s+(?:happening|going\s+on
        |the\s+status)|how\s+(?:much\s+)?longer|status\s+update|update\s*\?|follow(?:ing)?[-\s]up
        |(?:it'?s|it\s+has)\s+been\s+\w+\s+(?:days|hours|weeks|business\s+days)
        |you\s+(?:said|told\s+me|promised))\b
    | まだ | どうなり | どうなって | 進捗 | その後 | いつまで | 経ち | 経っ | 過ぎ | 日目
    | って言(?:うてた|ってた|った|われ) | とおっしゃ
    | [还還](?:没|沒|在|要|是) | 怎么样了 | 怎麼樣了 | 怎样了 | 怎樣了 | [进進](?:度|展) | 已[经經].{0,8}(?:[天日周週]|[礼禮]拜|星期)
    | 到底 | [说說]好 | 不是[说說] | [结結]果呢 | 都.{0,6}(?:[天日周週]|[礼禮]拜|星期)了
    | 有[冇没沒]?[消]息 | 咩情[况況] | 點樣 | 搞掂
    """
)


# the ids support asks for to trace a case
_CASE_IDS = ("txid", "withdrawal_id", "order_id")


def chases_open_case(message: str, thread: Sequence[TurnLike]) -> bool:
    """True when ``thread`` has an agent turn and ``message`` chases the case it opened, or
    sends the id the agent's last turn asked for ("Here it is: 0x7c1e...")."""
    turns = [t for t in thread if t.text.strip()]
    if not any(t.role == "agent" for t in turns):
        return False
    if _CHASE.search(message):
        return True
    if turns[-1].role != "agent":
        return False
    given = extract_facts(message)
    return any(k in given for k in _CASE_IDS)


def open_case_text(message: str, thread: Sequence[TurnLike]) -> str | None:
    """The thread's text (oldest first) when ``message`` chases an open case, else None."""
    if not chases_open_case(message, thread):
        return None
    return "\n".join(t.text.strip() for t in thread if t.text.strip())
