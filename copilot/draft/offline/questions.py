"""Question sections a customer's own words name: the KB answers a question beside its
article's reply template (``## ... {#q-...}``), and some messages say which one so plainly
that neither retrieval's best chunk nor the model's topic should decide it.

* :func:`rule_question` names the article too, whatever the model read (routing uses it
  before the model's topic): a withdrawal that left and that the customer wants back
  (``faq/withdrawal#q-wrong-address``: the platform cannot reverse it), a third lockout in 24
  hours (``faq/login-locked#q-locked-again``: the identity check, no automatic unlock);
* :func:`asked_question` names a question inside the article the routing chose: those two,
  a deposit on the wrong network or without its memo/tag (``faq/deposit#q-wrong-network``:
  the recovery request), a bank or card deposit (``faq/deposit#q-bank-card``, not the crypto
  checklist), a minimum
  amount (``faq/withdrawal#q-fees-minimums``), the whitelist's wait (``#q-hold``).

A named question is answered alone (``OfflineDrafter._faq_blocks``): the template's steps
would contradict it ("wait 30 minutes") or answer another question.
"""

from __future__ import annotations

import re

WITHDRAWAL = "faq/withdrawal"
DEPOSIT = "faq/deposit"
LOGIN_LOCKED = "faq/login-locked"
LOCKED_AGAIN = "q-locked-again"  # faq/login-locked's "locked 3 times: ID check" question
# a third lockout in 24 hours ("third time today", 3回ロック, 锁了三次): no automatic unlock
_LOCKED_AGAIN = re.compile(
    r"""(?i)(?=.*(?:\block|ロック|[锁鎖]))
        .*(?:\b(?:third|3rd|fourth|4th)\s+(?:time|lock-?out)\b
            | \block(?:ed)?(?:\s+out)?(?:\s+\w+){0,3}\s+(?:3|three|4|four)\s+times\b
            | \b(?:3|three|4|four)\s+lock-?outs\b
            | [34三四](?:回|度)目?(?:の|も)?ロック | ロック(?:が|され)?[^。]{0,6}[34三四](?:回|度)目?
            | ロック[^。？?]{0,40}(?:今|これで|もう)[34三四](?:回|度)目
            | [锁鎖][了咗住]?[三四34]次 | 第[三四34]次 | [三四34]次(?:被)?[锁鎖])""",
    re.VERBOSE | re.DOTALL,
)


WRONG_ADDRESS = "q-wrong-address"  # faq/withdrawal's "can you reverse it?" question
FEES_MINIMUMS = "q-fees-minimums"  # faq/withdrawal's fees and minimum amounts
HOLD = "q-hold"  # faq/withdrawal's "why is it on hold?" (the whitelist's 24 hours)
BANK_CARD = "q-bank-card"  # faq/deposit's bank transfers and card purchases
# asks to reverse a withdrawal that has left (a wrong address, network or tag; "Completed"):
# a request (reverse, pull back, 取り消せ, 撤回) and a sign it was sent, not one still processing
_REVERSE = re.compile(
    r"""(?i)(?=.*(?:\b(?:reverse|revert|undo|recall|cancel|pull\s+(?:it|them|this|that)?\s*back
                  |get\s+(?:it|them|my\s+\w+)\s+back|bring\s+(?:it|them)\s+back)\b
              | 取り消|取消し|キャンセル|戻せ|戻して|取り戻|組み?戻|撤回|撤[销銷]|追回|拿回|收回|退回来|退回來))
        (?=.*(?:\bwrong\b|\bforg[eo]t\b|\bmistake|\bmistyped\b|\bcompleted\b|\bdestination\s+tag\b
              |\bmemo\b|\btag\b|\bsent\b|\bwithdrew\b|間違|誤って|誤った|完了|タグ|メモ|送って|送金し
              |[错錯]|完成|[标標][签籤]|已[经經]?提|提到|[转轉]到|打到))
        (?!.*(?:\bprocessing\b|\bpending\b|処理中|審査中|[处處]理中|[审審]核中))""",
    re.VERBOSE | re.DOTALL,
)


_WITHDRAWN = re.compile(
    r"(?i)\bwithdr[ae]w|\bwithdrawal|\bwithdrawn|出金|送金|引き出|提[币幣现現]|提到|[转轉]出"
)
_DEPOSITED = re.compile(r"(?i)\bdeposit|入金|充[值币幣]")


def wants_withdrawal_back(message: str) -> bool:
    """The customer asks to reverse a withdrawal that has left (not a deposit to recover):
    the answer is ``q-wrong-address`` (the platform cannot reverse it; ask the receiver),
    whatever the model read ("can you pull it back?" is no compromise)."""
    return bool(
        _REVERSE.search(message) and _WITHDRAWN.search(message) and not _DEPOSITED.search(message)
    )


def rule_question(message: str) -> tuple[str, str] | None:
    """(article, question section) the message's own words name whatever the model read:
    a sent withdrawal the customer wants back, a third lockout in 24 hours."""
    if wants_withdrawal_back(message):
        return WITHDRAWAL, WRONG_ADDRESS
    if _LOCKED_AGAIN.search(message):
        return LOGIN_LOCKED, LOCKED_AGAIN
    return None


# a deposit by bank transfer or card, with no sign of a crypto transfer (its questions are
# the crypto checklist's); a minimum amount asked; the address whitelist's wait
_FIAT_DEPOSIT = re.compile(
    r"(?i)\bbank\b|\bwire\b|\bSEPA\b|\bcard\b|銀行|振込|振り込|カード|银行|[电電][汇匯]|信用卡|[刷用]卡"
)
_CRYPTO_SENT = re.compile(
    r"(?i)\btx(?:id|\s*hash)?\b|\bhash\b|\bconfirmations?\b|\bnetwork\b|\bmemo\b|\btag\b"
    r"|\b(?:TRC|ERC|BEP)-?20\b|承認|ネットワーク|メモ|タグ|确认数|確認數|网络|網路|网路"
)
_MINIMUM = re.compile(r"(?i)\bminimum\b|\bmin(?:\.|\s)+withdraw|最低|最小|最少|起提")
_STUCK = re.compile(
    r"(?i)\bprocessing\b|\bpending\b|\bstuck\b|\bnot\s+(?:yet\s+)?(?:arrived|received)|処理中|届か|着金し|"
    r"[处處]理中|[没沒](?:有)?到[账賬帳]|未到[账賬帳]"
)
_WHITELIST = re.compile(
    r"(?i)\bwhite-?list|\bnew\s+(?:withdrawal\s+)?address|ホワイトリスト|新しい(?:出金先?)?アドレス"
    r"|白名[单單]|新(?:的)?(?:提[币幣])?地址"
)
# a deposit sent on the wrong network or without its memo/tag: the recovery request
_WRONG_NETWORK = re.compile(
    r"(?i)\bwrong\s+(?:network|chain)\b|\b(?:forgot|forgotten|without|missing|no)\b[^.?!]{0,30}\b(?:tag|memo)\b"
    r"|(?<![A-Za-z])(BEP|TRC|ERC)-?20(?!\d)[\s\S]{0,80}(?<![A-Za-z])(?!\1)(?:BEP|TRC|ERC)-?20(?!\d)"
    r"|(?:タグ|メモ)[^。]{0,8}(?:忘れ|なし|無し)|ネットワークを間違"
    r"|[选選][错錯]|[错錯](?:误|誤)?的?[网網][络絡路]|忘[记記了](?:填|写|寫|輸入|输入)?(?:memo|tag|[标標][签籤])|漏填"
)
WRONG_NETWORK = "q-wrong-network"  # faq/deposit's "wrong network or no memo/tag: lost?"


def asked_question(article: str, message: str) -> str | None:
    """The question section of ``article`` the message's own facts decide (a third lockout
    -> ``q-locked-again``; a sent withdrawal the customer wants back -> ``q-wrong-address``;
    a deposit on the wrong network or without its tag -> ``q-wrong-network``; a bank or card
    deposit -> ``q-bank-card``; a minimum amount -> ``q-fees-minimums``; the
    whitelist's wait -> ``q-hold``), or None."""
    if article == LOGIN_LOCKED and _LOCKED_AGAIN.search(message):
        return LOCKED_AGAIN
    if article == WITHDRAWAL and _REVERSE.search(message):
        return WRONG_ADDRESS
    if article == DEPOSIT and _WRONG_NETWORK.search(message):
        return WRONG_NETWORK
    if article == DEPOSIT and _FIAT_DEPOSIT.search(message) and not _CRYPTO_SENT.search(message):
        return BANK_CARD
    if article == WITHDRAWAL and not _STUCK.search(message):
        if _MINIMUM.search(message):
            return FEES_MINIMUMS
        if _WHITELIST.search(message):
            return HOLD
    return None
