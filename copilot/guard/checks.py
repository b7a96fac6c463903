"""Structured guardrail checks and the per-draft text context they share.

A check is a function ``(Context) -> list[(start, end, detail)]`` registered in
:data:`CHECKS` under the name a policy rule uses (``detection.check``). Offsets
always index into the draft: the context matches on a copy whose characters are
mapped one-to-one (full-width ASCII, curly quotes), so lengths never change.
Numbers are read by :mod:`copilot.guard.figures`, links found by :mod:`copilot.guard.links`.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from copilot.guard.figures import Figure, Key, figure_keys, figure_set, figures
from copilot.guard.links import domain_allowed, find_links
from copilot.text.chinese import is_traditional, simplified_same_length
from copilot.text.normalize import lowercase, normalize
from copilot.text.pii import find_pii
from copilot.understand.signals import find_injection, personas

Hit = tuple[int, int, str]

_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|[。！？\n;；]")
_CLAUSE_END = re.compile(  # run on the lowercased text
    r"[.!?](?=\s|$)|[。！？\n;；,，、:：]|\b(?:but|however|although|though|whereas|yet)\b|但是?|不过|可是|然而"
)
_QUOTED = re.compile(r'"[^"\n]{1,200}"|「[^」\n]{1,200}」|『[^』\n]{1,200}』')


@dataclass
class Cues:
    """Compiled negation and conditional cues of one language (from the policy file)."""

    before: re.Pattern[str] | None = None
    after: re.Pattern[str] | None = None
    conditional: re.Pattern[str] | None = None


_CITATION_MARK = re.compile(r"\[(?:faq|playbook)/[a-z0-9-]+\]")


@dataclass
class Context:
    """One draft under check, with lazily computed boundaries and source figures."""

    draft: str
    language: str
    cues: Cues
    customer_message: str | None = None
    allowed_domains: tuple[str, ...] = ("example.com",)
    source_texts: list[str] | None = None
    cited: bool = True  # False: the draft named no sources (figures then only warn)
    anchor_finder: re.Pattern[str] | None = None
    anchor_parts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    text: str = field(init=False)

    def __post_init__(self) -> None:
        # citation marks ([faq/password-reset]) are blanked, same length: "let us know
        # [faq/password-reset]" asks for no password
        self.text = _CITATION_MARK.sub(lambda m: " " * len(m.group()), normalize(self.draft))
        if self.language == "zh" and is_traditional(self.text):
            # the policy's Chinese patterns are written in Simplified characters: match
            # Traditional drafts on a character-for-character Simplified copy (same offsets)
            self.text = simplified_same_length(self.text)

    # ---- boundaries ---------------------------------------------------------------------
    @cached_property
    def _sentence_ends(self) -> list[int]:
        return [m.end() for m in _SENTENCE_END.finditer(self.text)]

    @cached_property
    def _clause_ends(self) -> list[int]:
        return [m.end() for m in _CLAUSE_END.finditer(self.lower)]

    @staticmethod
    def _around(ends: list[int], start: int, end: int, length: int) -> tuple[int, int]:
        i = bisect.bisect_right(ends, start)
        lo = ends[i - 1] if i else 0
        j = bisect.bisect_left(ends, end)
        hi = ends[j] if j < len(ends) else length
        return lo, max(hi, end)

    def sentence(self, start: int, end: int) -> tuple[int, int]:
        """Offsets of the sentence around ``[start, end)``."""
        return self._around(self._sentence_ends, start, end, len(self.text))

    def clause(self, start: int, end: int) -> tuple[int, int]:
        """Offsets of the clause (split at commas and 'but' as well) around ``[start, end)``."""
        return self._around(self._clause_ends, start, end, len(self.text))

    @cached_property
    def lower(self) -> str:
        """The normalised text lowercased (same length)."""
        return lowercase(self.text)

    @cached_property
    def anchor_windows(self) -> dict[str, set[tuple[int, int]]]:
        """For each pattern anchor found in the lowercased text, the sentences that hold it."""
        found: dict[str, set[tuple[int, int]]] = {}
        if self.anchor_finder is None:
            return found
        for m in self.anchor_finder.finditer(self.lower):
            literal = m.group(0)
            window = self.sentence(m.start(), m.end())
            for anchor in self.anchor_parts.get(literal, (literal,)):
                found.setdefault(anchor, set()).add(window)
        return found

    @cached_property
    def _quoted(self) -> list[tuple[int, int]]:
        return [m.span() for m in _QUOTED.finditer(self.text)]

    # ---- context tests ------------------------------------------------------------------
    def quoted(self, start: int, end: int) -> bool:
        """True when ``[start, end)`` lies inside quotation marks (a mention, not a use)."""
        return any(qs < start and end < qe for qs, qe in self._quoted)

    def negated(self, start: int, end: int, mode: str = "before") -> bool:
        """A negation cue in the clause before the hit (``clause``: or inside it), or right after it."""
        if mode == "none":
            return False
        lo, _ = self.clause(start, end)
        if self.cues.before is not None:
            window = self.text[max(lo, start - 80) : end if mode == "clause" else start]
            if self.cues.before.search(window):
                return True
        if self.cues.after is not None:
            _, sent_hi = self.sentence(start, end)
            if self.cues.after.match(self.text, end, min(sent_hi, end + 30)):
                return True
        return False

    def conditional(self, start: int, end: int) -> bool:
        """A conditional cue ("if", "once", 場合, 如果) earlier in the same sentence."""
        if self.cues.conditional is None:
            return False
        lo, _ = self.sentence(start, end)
        return self.cues.conditional.search(self.text, lo, start) is not None

    # ---- lazily computed facts about the customer message ------------------------------
    @cached_property
    def injection(self) -> list[Hit]:
        """Injection cues in the customer message (offsets into the message)."""
        return find_injection(self.customer_message) if self.customer_message else []

    @cached_property
    def figures(self) -> list[Figure]:
        """Number+unit figures in the draft (see :func:`copilot.guard.figures.figures`)."""
        return figures(self.text)

    @cached_property
    def figure_claims(self) -> list[tuple[int, int, str, bool]]:
        """Figures missing from the cited sources, each marked as inside a promise or not."""
        return _classify_figures(self)

    @cached_property
    def source_figures(self) -> set[Key] | None:
        """Figures stated in the cited sources, or None when no source text is known."""
        if self.source_texts is None:
            return None
        found: set[Key] = set()
        for text in self.source_texts:
            found |= figure_set(text)
        return found

    @cached_property
    def customer_amounts(self) -> frozenset[Key]:
        """Amounts of money the customer's message states ("I sent 500 USDT", 5万USDT): a draft
        that repeats them makes no claim of its own. None are taken from a message that tries a
        prompt injection."""
        if not self.customer_message or self.injection:
            return frozenset()
        return figure_set(self.customer_message, ("money",))


# ---- figures inside and outside promises ------------------------------------------------
_FREQUENCY = re.compile(r"\b(?:every|each|per)\s+$|[毎每]\s*$", re.IGNORECASE)
_FREQUENCY_AFTER = re.compile(r"\s*(?:あたり|当たり|につき|ごと)")  # 1日あたり = per day
_PROMISE = {
    "en": re.compile(
        r"\b(?:will|shall|going\s+to|guarantee\w*|promise\w*|definitely|certainly|surely|assure\w*|"
        r"takes?|arrives?|within|credited|refunded|compensat\w*)\b|'ll\b",
        re.IGNORECASE,
    ),
    "ja": re.compile(
        r"いたします|致します|させていただ|されます|します|なります|戻ります|完了|反映|着金|承認|解除|返金|補償|振込|以内|までに|中に|必ず|確実|ほどで|で戻"
    ),
    "zh": re.compile(
        r"会|将|就能|就会|保证|一定|确保|承诺|内|之前|到账|完成|退还|赔偿|发放|通过|提升|左右"
    ),
}
_PAST = {
    "en": re.compile(
        r"\b(?:ago|waited|waiting|already|past|last|since|took|been\s+pending)\b", re.IGNORECASE
    ),
    "ja": re.compile(r"経って|経過|お待たせ|前に|待って|かかってしまい|前から"),
    "zh": re.compile(r"已经|等了|之前已|以前|过去|久等"),
}


def _classify_figures(ctx: Context) -> list[tuple[int, int, str, bool]]:
    """Figures of the draft missing from the sources: (start, end, detail, inside a promise)."""
    supported = ctx.source_figures
    if supported is None:
        return []
    supported = supported | ctx.customer_amounts
    lang = ctx.language if ctx.language in _PROMISE else "en"
    out: list[tuple[int, int, str, bool]] = []
    for start, end, unit, value, raw in ctx.figures:
        if not supported.isdisjoint(figure_keys(unit, value, raw)) or ctx.quoted(start, end):
            continue
        if (
            any(s == start for s, _, _, _ in out)
            or _FREQUENCY.search(ctx.text, max(0, start - 8), start)
            or _FREQUENCY_AFTER.match(ctx.text, end)
        ):
            continue
        lo, hi = ctx.clause(start, end)
        if (
            _PAST[lang].search(ctx.text, lo, hi)
            or ctx.negated(start, end)
            or ctx.conditional(start, end)
        ):
            continue
        promise = _PROMISE[lang].search(ctx.text, lo, hi) is not None
        if unit == "percent" and not promise:
            continue
        shown = f"{value:g}" if value is not None else "an unspecific number of"
        out.append((start, end, f"'{raw}' ({shown} {unit}) is not in the cited sources", promise))
    return out


def backed_figures(ctx: Context) -> list[tuple[int, int]]:
    """Figures of the draft that the cited sources state (evidence that a time or amount is
    supported, for the learned tier)."""
    supported = ctx.source_figures
    if supported is None or not ctx.cited:
        return []
    supported = supported | ctx.customer_amounts
    return [
        (start, end)
        for start, end, unit, value, raw in ctx.figures
        if not supported.isdisjoint(figure_keys(unit, value, raw))
    ]


def unbacked_figures(ctx: Context) -> list[Hit]:
    """Times, durations and amounts promised in the draft that the cited sources do not state.

    Only when the draft cites sources: a figure cannot be called unsupported when there is
    no source to support it (it is then a warning, see :func:`unverified_figures`)."""
    if not ctx.cited:
        return []
    return [(s, e, detail) for s, e, detail, promise in ctx.figure_claims if promise]


def unverified_figures(ctx: Context) -> list[Hit]:
    """Figures the cited sources do not state, outside a promise (or any, when the draft cites
    no source): a warning for the agent to check, never a reject."""
    return [
        (s, e, detail)
        for s, e, detail, promise in ctx.figure_claims
        if not promise or not ctx.cited
    ]


# ---- links -------------------------------------------------------------------------------
_WARNING = re.compile(
    r"\b(?:fake|phishing|scam\w*|not\s+(?:ours|our|official|from\s+us)|not\s+one\s+of\s+our|isn't\s+ours|impersonat\w*|never)\b|"
    r"偽|詐欺|フィッシング|公式では|当社のサイトではございません|钓鱼|仿冒|假冒|诈骗|不是我们|并非|唔系我哋|唔好(?:点|撳|㩒|入)",
    re.IGNORECASE,
)


def unsafe_links(ctx: Context) -> list[Hit]:
    """Links outside the allowed domains (bare domain names inside a warning are mentions)."""
    hits: list[Hit] = []
    for start, end, host, bare in find_links(ctx.text):
        if domain_allowed(host, ctx.allowed_domains):
            continue
        if bare:
            lo, hi = ctx.sentence(start, end)
            # the warning is in the rest of the sentence, not in the name ("scamadviser.com")
            around = ctx.text[lo:start] + " " + ctx.text[end:hi]
            if _WARNING.search(around) or ctx.negated(start, end) or ctx.quoted(start, end):
                continue
        hits.append(
            (start, end, f"{host} is not an official domain ({', '.join(ctx.allowed_domains)})")
        )
    return hits


# ---- personal data -------------------------------------------------------------------------
_LONG_NUMBER = re.compile(r"\d(?<![\d\-]\d)(?:[ \-]?\d){6,22}(?![\d\-])")
_ACCOUNT_KEY = re.compile(
    r"(?:card|account|iban|カード|口座|普通|当座|卡|账户|賬戶|帳戶|账号|帳號|银行)[^\n。.!?！？]{0,14}$"
)
_DATE = re.compile(
    r"\d(?<!\d\d)\d{0,3}\s*[./\-年]\s*\d{1,2}\s*[./\-月]\s*\d{1,4}日?"
    r"|\d(?<!\d\d)\d?\s+[a-z]{3,9}\s+\d{4}|(?<![a-z])[a-z]{3,9}\s+\d{1,2},\s*\d{4}"
)
_DOB_KEY = re.compile(
    r"(?:date\s+of\s+birth|\bdob\b|born\s+on|birthday|生年月日|誕生日|出生日期|生日)[^\n。]{0,8}$"
)
_DOB_HINT = re.compile(r"birth|\bdob\b|born|生年月日|誕生日|出生日期|生日")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
_ADDRESS_CJK = re.compile(
    r"(?:東京都|北海道|(?:京都|大阪)府|[\u4e00-\u9fff]{2,3}県)[^\s、。，（）()]{1,10}?[市区町村郡][^\s、。，（）()]{0,14}?\d+(?:[-−ー－]\d+|丁目|番地?|号){1,3}"
    r"|[\u4e00-\u9fff]{2,4}[省市][\u4e00-\u9fff]{0,8}?[区县市][\u4e00-\u9fff]{1,10}?(?:路|街|道|巷|大道)\d+号"
)
_ADDRESS_EN = re.compile(
    r"\d(?<![\w]\d)\d{0,4}\s+(?:[A-Z][a-z]+\s){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl)\b\.?"
)
_LEAK_KINDS = {"CARD", "NATIONAL_ID", "IBAN", "PHONE", "SECRET", "EMAIL"}


def personal_data(ctx: Context) -> list[Hit]:
    """Full card/ID/account/phone numbers, e-mail addresses, dates of birth and postal addresses."""
    hits: list[Hit] = []
    for span in find_pii(ctx.text):
        if span.kind not in _LEAK_KINDS:
            continue
        if span.kind == "EMAIL" and domain_allowed(
            span.value.rsplit("@", 1)[1].lower(), ctx.allowed_domains
        ):
            continue
        hits.append((span.start, span.end, f"full {span.kind.lower().replace('_', ' ')}"))
    low = ctx.lower
    for m in _LONG_NUMBER.finditer(low):
        if _ACCOUNT_KEY.search(low, max(0, m.start() - 40), m.start()):
            hits.append((m.start(), m.end(), "full card or account number"))
    if _DOB_HINT.search(low):
        for m in _DATE.finditer(low):
            if _DOB_KEY.search(low, max(0, m.start() - 40), m.start()):
                hits.append((m.start(), m.end(), "date of birth"))
    hits += [(m.start(), m.end(), "postal address") for m in _ADDRESS_EN.finditer(ctx.text)]
    if _CJK.search(ctx.text):
        hits += [(m.start(), m.end(), "postal address") for m in _ADDRESS_CJK.finditer(ctx.text)]
    return hits


# ---- compliance with an injection in the customer message --------------------------------
_CM_QUOTED = re.compile(r'"([^"\n]{6,300})"|「([^」\n]{6,300})」|『([^』\n]{6,300})』')
_PAYLOAD = re.compile(
    r"\b(?:tell(?:ing)?\s+(?:the\s+)?(?:user|customer|client|them)s?(?:\s+that)?|say(?:ing)?\s+that|write|reply\s+with|add)\s+([^.!?\n)\]]{8,200})"
    r"|(?:伝えること|と書くこと|告诉(?:用户|客户)|回复)([^。！？\n]{4,100})",
    re.IGNORECASE,
)
_SQUASH = re.compile(r"[\s\W_]+")


def _ngrams(text: str, cjk: bool) -> set[str]:
    if cjk:
        s = _SQUASH.sub("", text.lower())
        return {s[i : i + 6] for i in range(len(s) - 5)}
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i : i + 4]) for i in range(len(words) - 3)}


def injection_followed(ctx: Context) -> list[Hit]:
    """The draft repeats an injected script, takes on a requested persona, echoes an injected link."""
    if not ctx.customer_message or not ctx.injection:
        return []
    cm = normalize(ctx.customer_message)
    hits: list[Hit] = []
    cjk = ctx.language in ("ja", "zh")
    payloads = [g for m in _CM_QUOTED.finditer(cm) for g in m.groups() if g]
    payloads += [g for m in _PAYLOAD.finditer(cm) for g in m.groups() if g]
    for payload in payloads:
        grams = _ngrams(payload, cjk)
        if not grams:
            continue
        for m in re.finditer(r"[^.!?。！？\n]+", ctx.text):
            if len(grams & _ngrams(m.group(0), cjk)) >= 1 and not ctx.negated(
                m.start(), m.end(), "clause"
            ):
                hits.append((m.start(), m.end(), "repeats text the customer message asked for"))
    for name in personas(cm):
        for m in re.finditer(
            rf"(?:\bas\s+|\bI\s+am\s+|\bI'm\s+|作为|以){re.escape(name)}\b|{re.escape(name)}として",
            ctx.text,
            re.IGNORECASE,
        ):
            hits.append((m.start(), m.end(), f"takes on the persona '{name}'"))
    cm_hosts = {host for _, _, host, _ in find_links(cm)}
    for start, end, host, _ in find_links(ctx.text):
        if host in cm_hosts and not domain_allowed(host, ctx.allowed_domains):
            hits.append((start, end, "sends the link the customer message injected"))
    asks_data = re.search(
        r"phone|e-?mail|address|number|電話|メール|住所|手机|邮箱|地址|电话", cm, re.IGNORECASE
    )
    if asks_data:
        for span in find_pii(ctx.text):
            if span.kind in ("PHONE", "EMAIL") and not domain_allowed(
                span.value.rsplit("@", 1)[-1].lower(), ctx.allowed_domains
            ):
                hits.append(
                    (span.start, span.end, "discloses personal data the injection asked for")
                )
    return hits


CheckFn = Callable[[Context], list[Hit]]
CHECKS: dict[str, CheckFn] = {
    "personal_data": personal_data,
    "unsafe_links": unsafe_links,
    "unbacked_figures": unbacked_figures,
    "unverified_figures": unverified_figures,
    "injection_followed": injection_followed,
}
