"""Input-side analysis of a customer message: prompt injection, personal data, escalation, emotion.

All detectors are regular expressions compiled once at import; offsets index into
the message as given (full-width characters are mapped 1:1 before matching).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from copilot.language import detect_language
from copilot.pii import find_pii, to_halfwidth

FLAG_KINDS = ("prompt_injection", "pii", "escalation", "emotion")


@dataclass(frozen=True)
class Flag:
    """One input-side signal; ``span`` indexes into the analysed message (None for whole-text flags)."""

    kind: str
    span: tuple[int, int] | None
    detail: str
    level: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": self.kind,
            "span": list(self.span) if self.span is not None else None,
            "detail": self.detail,
            "level": self.level,
        }


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.VERBOSE)


# (detail, regex) - the detail says which kind of injection the cue belongs to.
INJECTION_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "instruction override",
        _rx(r"""
        \b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,25}?
            \b(?:instructions?|rules?|prompts?|guidelines?|polic(?:y|ies)|directions?|restrictions?)\b
      | (?:これまで|以前|前|上記|今まで|全て|すべて)?の?(?:指示|命令|ルール|規定|規約|設定|制約)[^。]{0,6}?(?:は|を)?(?:すべて|全て)?無視
      | 忽略[^。，]{0,12}?(?:指令|指示|规则|规定|设定|提示|限制)
      | 无视[^。，]{0,8}?(?:指令|指示|规则|规定)"""),
    ),
    (
        "prompt extraction",
        _rx(r"""
        \bsystem\s*prompt\b | \b(?:print|show|reveal|repeat|output|paste|display|dump|tell\s+me)\b[^.!?\n]{0,30}?
            \b(?:your|the)\s+(?:instructions|prompt|internal\s+notes?|hidden\s+\w+|rules)\b
      | \binternal\s+notes?\b
      | システムプロンプト | 社内メモ | 内部(?:メモ|情報|指示)
      | 系统提示 | 内部备注 | 内部指令 | 原封不动"""),
    ),
    (
        "fake system message",
        _rx(r"""
        (?:^|[\[(【［（\n]|\s)(?:system|admin|developer)(?:\s+(?:override|notice|message|note))?\s*[:：\]】]
      | \bsystem\s+override\b
      | 【\s*(?:システム|系统|system)[^】]{0,8}】 | (?:^|[\[（(【［])\s*(?:システム|系统)\s*[:：]"""),
    ),
    (
        "hidden instruction",
        _rx(r"""
        <!--\s*(?:assistant|system|ai|bot|model)
      | \b(?:note|instructions?|message|command)s?\s+(?:to|for)\s+(?:the\s+)?(?:ai|assistant|bot|model|llm|agent)\b
      | [\[(（【［<]\s*(?:ai|assistant|bot|system|model)\b[^\]\)）】］>\n]{0,20}[:：]
      | (?:AI|アシスタント|ボット)への(?:指示|命令|メモ) | 给(?:AI|助手|机器人|客服)的(?:备注|指令|指示|提示)"""),
    ),
    (
        "role switch",
        _rx(r"""
        \byou\s+are\s+(?:now\s+)?(?:DAN|an?\s+(?:unrestricted|unfiltered|jailbroken|evil)\b) | \byou\s+are\s+now\s+(?-i:[A-Z][a-z]*[A-Z])
      | \bfrom\s+now\s+on,?\s+you\s+(?:are|will|must)\b | \bact\s+as\s+(?:an?\s+)?(?:DAN|unrestricted|\w+\s+with\s+no\s+rules)
      | \bpretend\s+(?:to\s+be|you\s+are)\b | \bdeveloper\s+mode\b | \bjailbreak | (?-i:\bDAN\b)
      | \bno\s+(?:rules|restrictions|filters|limits)\b
      | 開発者モード | あなたは(?:今から|これから)?[^。]{0,20}(?:です|になりました)[^。]{0,5}として | として(?:答え|回答|振る舞)
      | 制限のない | 开发者模式 | 你现在是 | 从现在起你是 | 扮演 | 以[^。，]{1,10}的身份 | 没有任何限制"""),
    ),
    (
        "scripted reply",
        _rx(r"""
        \b(?:reply|respond|answer)\s+(?:with|using)\s+(?:exactly|only|just)\b | \brepeat\s+after\s+me\b
      | \bsay\s+exactly\b | \bwrite\s+["“][^"”]{3,}["”] | \b(?:end|start|begin)\s+(?:each|every|your)\s+(?:reply|answer|message)
      | \btell(?:ing)?\s+(?:the\s+)?(?:user|customer|client)s?\b
      | 次の文(?:だけ|のみ)?を(?:返信|回答) | そのまま返信 | 」と(?:書いて|書くこと|返信|回答して) | と書くこと
      | 只回复 | 照抄 | 你就写 | 告诉(?:用户|客户)"""),
    ),
    (
        "fake authority",
        _rx(r"""
        \b(?:agents?|support|staff|you)\s+(?:must|are\s+required\s+to|are\s+authori[sz]ed\s+to|have\s+permission\s+to)\s+
            (?:waive|refund|raise|increase|credit|disable|approve|unlock|remove|skip|send|reveal|share|mark|give)
      | \bauthori[sz]ed\s+to\b | \bis\s+already\s+verified\b | \bwithout\s+(?:any\s+)?(?:id\s+)?(?:checks?|verification)\b
      | 権限が付与 | 本人確認なしで | 認証済みです | と書いてあります | 已获授权 | 必须免除 | 无需身份核验 | 不需要核查 | 按照指令你应该
      | 指示では"""),
    ),
)
# Persona names a role-switch asks for ("you are DAN", 「DAN」, as DAN).
PERSONA_RE = re.compile(
    r"""\b(?i:you\s+are\s+(?:now\s+)?)([A-Z][A-Za-z0-9]{1,15})\b | \b(?i:as)\s+([A-Z]{2,12})\b
      | 「([A-Za-z0-9]{2,15})」 | 是(?:没有任何限制的)?([A-Za-z0-9]{2,15})""",
    re.VERBOSE,
)

ESCALATION_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "legal",
        _rx(r"""\b(?:lawyers?|attorneys?|solicitors?|legal\s+action|lawsuit|sue|suing|court|small\s+claims|police)\b
                     | 弁護士 | 訴え | 訴訟 | 裁判 | 法的(?:措置|手段) | 警察 | 律师 | 起诉 | 告你们 | 法院 | 法律(?:途径|手段) | 报警"""),
    ),
    (
        "regulator",
        _rx(r"""\b(?:regulators?|FCA|SEC|CFTC|FINRA|ombudsman|financial\s+authority|consumer\s+protection)\b
                         | 金融庁 | 消費者センター | 消費生活センター | 監督官庁 | 监管 | 证监会 | 金管局 | 消协 | 消费者协会 | 12315"""),
    ),
    (
        "supervisor",
        _rx(r"""\b(?:supervisor|manager|someone\s+in\s+charge|higher\s+up|escalate|real\s+person|human\s+agent)\b
                          | 責任者 | 上司 | 上の人 | スーパーバイザー | 主管 | 经理 | 领导 | 负责人 | 上级"""),
    ),
    (
        "complaint",
        _rx(
            r"""\bformal\s+complaint\b | \bcomplain\s+to\b | 正式に苦情 | 苦情を申し立て | 正式投诉 | 我要投诉 | 投诉你"""
        ),
    ),
    (
        "public",
        _rx(r"""\b(?:go\s+public|social\s+media|twitter|reddit|journalists?|the\s+press|the\s+news|trustpilot|bad\s+reviews?|post\s+(?:this|about\s+this)|everyone\s+will\s+know)\b
                      | SNS | ツイッター | 拡散 | 晒し | 口コミ | マスコミ | 曝光 | 微博 | 媒体 | 发到网上 | 网上发 | 差评 | 黑猫投诉"""),
    ),
)

_ANGER = _rx(r"""\b(?:scam(?:mers?)?|fraud|stole|steal(?:ing)?|thie(?:f|ves)|rip-?off|ridiculous|unacceptable|useless|worst|pathetic
                 |incompetent|disgusting|furious|angry|pissed|wtf|damn|hell|bullshit|shit|fuck\w*|rigged|liars?|lying|garbage|trash
                 |sick\s+of|fed\s+up|nonsense|idiots?|robbed|joke|crooks?|a\s+disgrace)\b
               | 詐欺 | 泥棒 | ふざけ | 最悪 | 使えない | いい加減 | 許せない | 腹が立 | ありえない | あり得ない | 返せ | 盗ま | 盗ん | 騙 | 舐め | バカ | 馬鹿 | クソ | ひどすぎ
               | 骗子 | 骗钱 | 诈骗 | 垃圾 | 太过分 | 气死 | 黑心 | 无耻 | 离谱 | 搞什么 | 什么破 | 没用 | 恶心 | 他妈 | 混蛋 | 抢钱 | 割韭菜 | 坑人""")
_DISTRESS = _rx(r"""\b(?:feel\s+sick|can'?t\s+sleep|desperate|devastated|heartbroken|ruined|lost\s+everything|panic\w*|scared|worried|terrified)\b
                  | 眠れ | 辛い | つらい | 不安 | 絶望 | 困って | 怖い | 难受 | 绝望 | 睡不着 | 崩溃 | 着急 | 担心 | 害怕 | 全爆""")
_REPEAT = _rx(r"""\b(?:third|fourth|fifth|\d+(?:st|nd|rd|th))\s+time\b | \basked\s+(?:\w+\s+)?(?:times|already|again)\b | \bagain\s+and\s+again\b
                | 何度も | (?:3|三)回(?:目|も) | 第(?:三|四|五|\d)(?:遍|次) | 好几(?:遍|次) | 问了(?:三|几|好几|\d)""")
_CAPS = re.compile(r"\b[A-Z]{3,}\b")
_ACRONYMS = frozenset(
    re.findall(
        r"\S+",
        "USDT USDC BTC ETH SOL XRP KYC API TXID SMS URL UTC VIP DCA ERC TRC BEP PEPE "
        "DOGE FAQ CVV PIN IBAN OTP APP ATM USD JPY CNY ETF NFT AML DAN ERR",
    )
)
_BANG = re.compile(r"[!！]")
_BURST = re.compile(r"[!！?？]{3,}|[?？][!！]|[!！][?？]")


def find_injection(text: str) -> list[tuple[int, int, str]]:
    """Prompt-injection cues in ``text`` as (start, end, detail), sorted, overlaps merged."""
    norm = to_halfwidth(text)
    hits = [
        (m.start(), m.end(), detail)
        for detail, rx in INJECTION_CUES
        for m in rx.finditer(norm)
        if m.end() > m.start()
    ]
    hits.sort()
    merged: list[tuple[int, int, str]] = []
    for start, end, detail in hits:
        if merged and start < merged[-1][1]:
            s, e, d = merged[-1]
            merged[-1] = (s, max(e, end), d)
        else:
            merged.append((start, end, detail))
    return merged


def personas(text: str) -> set[str]:
    """Names a role-switch attempt asks the assistant to take on (e.g. ``DAN``)."""
    out = set()
    for m in PERSONA_RE.finditer(to_halfwidth(text)):
        name = next((g for g in m.groups() if g), "")
        if name and name.upper() not in {"THE", "AN", "A", "NOW", "AI"}:
            out.add(name)
    return out


def emotion_level(text: str, language: str | None = None) -> int:
    """0 calm, 1 slightly unhappy, 2 angry, 3 very agitated (from wording, punctuation, capitals)."""
    norm = to_halfwidth(text or "")
    anger = len(_ANGER.findall(norm))
    score = min(3, anger + 1) if anger else 0
    bangs = len(_BANG.findall(norm))
    score += 2 if bangs >= 3 or _BURST.search(norm) else 1 if bangs else 0
    caps = [w for w in _CAPS.findall(norm) if w not in _ACRONYMS]
    score += 2 if len(caps) >= 3 else 1 if caps else 0
    score += 1 if _DISTRESS.search(norm) else 0
    score += 1 if _REPEAT.search(norm) else 0
    score += (
        1 if any(rx.search(norm) for detail, rx in ESCALATION_CUES if detail != "supervisor") else 0
    )
    if score == 0:
        return 0
    return 1 if score <= 2 else 2 if score <= 4 else 3


def analyze_message(text: str, language: str | None = None) -> list[Flag]:
    """Flags for a customer message: injection attempts, personal data, escalation cues, emotion."""
    if not text:
        return []
    language = language or detect_language(text)
    norm = to_halfwidth(text)
    flags = [Flag("prompt_injection", (s, e), detail) for s, e, detail in find_injection(text)]
    flags += [Flag("pii", (p.start, p.end), p.kind) for p in find_pii(text)]
    for detail, rx in ESCALATION_CUES:
        flags += [Flag("escalation", m.span(), detail) for m in rx.finditer(norm)]
    level = emotion_level(text, language)
    if level:
        cue = _ANGER.search(norm) or _BURST.search(norm) or _DISTRESS.search(norm)
        names = {1: "slightly unhappy", 2: "angry", 3: "very agitated"}
        flags.append(Flag("emotion", cue.span() if cue else None, names[level], level))
    return flags
