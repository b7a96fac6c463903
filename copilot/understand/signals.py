"""Input-side analysis of a customer message: prompt injection, personal data, escalation, emotion.

All detectors are regular expressions compiled once at import; offsets index into
the message as given (full-width characters are mapped 1:1 before matching).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from copilot.text.language import detect_language
from copilot.text.normalize import to_halfwidth
from copilot.text.pii import find_pii

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
      | 忽略[^。，]{0,12}?(?:指令|指示|规则|规定|设定|提示词|限制)
      | 无视[^。，]{0,8}?(?:指令|指示|规则|规定)"""),
    ),
    (
        "prompt extraction",
        _rx(r"""
        \bsystem\s*prompt\b | \b(?:print|show|reveal|repeat|output|paste|display|dump|tell\s+me)\b[^.!?\n]{0,30}?
            \b(?:your|the)\s+(?:instructions|prompt|internal\s+notes?|hidden\s+\w+|rules)\b
      | \b(?:paste|print|show|reveal|send|give|list|disclose|output|dump|share|tell\s+me)\b[^.!?\n]{0,60}?\binternal\s+notes?\b
      | \binternal\s+notes?\b[^.!\n]{0,40}?\b(?:paste|print|output|dump|unedited|in\s+full)\b
      | システムプロンプト | (?:社内メモ|内部(?:メモ|情報|指示))[^。？?]{0,30}?(?:見せ|教え|開示|表示|出力|貼|送|全文|添付)
      | (?:社内メモ|内部メモ|内部備忘)[^？?]{0,50}?(?:AI|承認|確約|すること|確認不要|許可)
      | (?:内部备注|內部備註)[^？?]{0,50}?(?:AI|批准|跳过|须|必须|直接|承诺|无需)
      | (?:内部备注|內部備註|内部指令|提示词)[^。？?]{0,20}?(?:发我|发给我|输出|告诉我|展示|原样)
      | (?:输出|展示|发给我|告诉我)[^。？?]{0,20}?(?:内部备注|內部備註|内部指令)
      | 系统提示词 | (?:输出|打印|透露|泄露|重复|展示|显示|发给我|告诉我)[^。，？]{0,8}(?:系统提示|提示词|内部备注|内部指令)
      | 原封不动"""),
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
      | \b(?:note|instructions?|message|command)s?\s+(?:to|for)\s+(?:the\s+)?(?:ai|assistant|bot|model|llm)\b
      | [\[(（【［<]\s*(?:ai|assistant|bot|system|model)\b[^\]\)）】］>\n]{0,20}[:：]
      | (?:AI|アシスタント|ボット)への(?:指示|命令|メモ) | 给(?:AI|助手|机器人|客服)的(?:备注|指令|指示|提示)"""),
    ),
    (
        "role switch",
        _rx(r"""
        \byou\s+are\s+(?:now\s+)?(?:DAN|an?\s+(?:unrestricted|unfiltered|jailbroken|evil)\b) | \byou\s+are\s+now\s+(?-i:[A-Z][a-z]*[A-Z])
      | \bfrom\s+now\s+on,?\s+you\s+(?:are|will|must)\b | \bact\s+as\s+(?:an?\s+)?(?:DAN|unrestricted|\w+\s+with\s+no\s+rules)
      | \bpretend\s+(?:to\s+be|you\s+are)\b | \bjailbreak
      | \b(?:enable|enter|activate|switch\s+(?:in)?to|you\s+are\s+(?:now\s+)?in)\s+developer\s+mode\b | \bdeveloper\s+mode\s+(?:is\s+)?(?:now\s+)?(?:enabled|activated|active|on)\b | (?-i:\bDAN\b)
      | \bno\s+(?:rules|restrictions|filters|limits)\b
      | 開発者モード(?:に(?:切り替|入|移行)|を(?:有効|オン|起動)|で(?:回答|答え)|が有効|」の|として) | あなたは(?:今から|これから)?[^。]{0,20}(?:です|になりました)[^。]{0,5}として | として(?:答え|回答|振る舞)
      | 制限のない | (?:进入|开启|启用|切换到|激活)开发者模式 | 开发者模式(?:已|下) | 你现在是 | 从现在起你是 | 扮演
      | (?<![可所])以(?![后後前上下内外及])[^。，]{1,10}的身份(?!证|證) | 没有任何限制"""),
    ),
    (
        "scripted reply",
        _rx(r"""
        \b(?:reply|respond|answer)\s+(?:with|using)\s+(?:exactly|only|just)\b | \brepeat\s+after\s+me\b
      | \bsay\s+exactly\b | \bwrite\s+["“][^"”]{3,}["”] | \b(?:end|start|begin)\s+(?:each|every|your)\s+(?:reply|answer|message)
      | \btell(?:ing)?\s+(?:the\s+)?(?:user|customer|client)s?\b
      | 次の文(?:だけ|のみ)?を(?:返信|回答) | そのまま返信 | 」と(?:書いて(?:ください|下さい|くれ)|書くこと|返信|回答して) | と書くこと
      | 只回复 | 照抄 | 你就写 | 告诉(?:用户|客户)"""),
    ),
    (
        "fake authority",
        _rx(r"""
        \b(?:(?:agents?|support|staff)\s+(?:must|are\s+required\s+to|are\s+authori[sz]ed\s+to|have\s+permission\s+to)|you\s+(?:are\s+required\s+to|are\s+authori[sz]ed\s+to|have\s+permission\s+to))\s+
            (?:waive|refund|raise|increase|credit|disable|approve|unlock|remove|skip|send|reveal|share|mark|give)
      | \bauthori[sz]ed\s+to\b | \bis\s+already\s+verified\b | \bwithout\s+(?:any\s+)?(?:id\s+)?(?:checks?|verification)\b
      | 権限が付与 | 認証済みです | 本人確認なしで[^。？?]{0,15}?(?:しろ|しなさい|してください|して下さい|しといて|OK|信用) | 已获授权 | 必须免除 | 无需身份核验 | 不需要核查 | 按照指令你应该
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
                         | 金融庁 | 消費者センター | 消費生活センター | 監督官庁 | 监管 | 監管 | 证监会 | 證監會 | 金管局 | 金管會 | 金管会 | 金融監督管理委員會
                         | 消协 | 消费者协会 | 消保官 | 消保處 | 消基會 | 12315"""),
    ),
    (
        "supervisor",
        _rx(r"""\b(?:supervisor|manager|someone\s+in\s+charge|higher\s+up|escalate|real\s+person|human\s+agent)\b
                          | 責任者 | 上司 | 上の人 | スーパーバイザー | 主管 | 经理 | 领导 | 负责人 | 上级"""),
    ),
    (
        "complaint",
        _rx(
            r"""\bformal\s+complaint\b | \bcomplain\s+to\b | \b(?:lodge|file|make|raise|register)\s+a\s+complaint\b
                | 正式に苦情 | 正式な苦情 | 苦情として | 苦情を申し立て | 苦情を申し入れ
                | 正式投诉 | 我要投诉 | 投诉你 | 【投诉】 | 提出投诉 | 正式(?:的)?投訴 | 我要投訴 | 【投訴】"""
        ),
    ),
    (
        "public",
        _rx(r"""\b(?:go\s+public|social\s+media|twitter|reddit|journalists?|the\s+press|the\s+news|trustpilot|bad\s+reviews?|post\s+(?:this|about\s+this)|everyone\s+will\s+know)\b
                      | \bpost(?:ing)?\b[^.!?\n]{0,30}\b(?:on\s+)?(?:X|facebook|tiktok|youtube|instagram)\b
                      | SNS | ツイッター | 拡散 | 晒し | 晒す | 口コミ | マスコミ | 曝光 | 微博 | 媒体 | 媒體 | 发到网上 | 网上发 | 差评 | 負評 | 黑猫投诉
                      | (?:上|发到|發到|发在|發在|贴到|貼到|po(?:上|到)?|放上|曝光到)\s?(?:連登|连登|PTT|Dcard|FB|脸书|臉書|小红书|小紅書|抖音|微博)
                      | 爆料 | 爆你"""),
    ),
)

# Emotion cues. Scores add up: strong anger (insults, accusations of theft or fraud, "ridiculous")
# 3 for the first hit and 1 for each further one; mild displeasure 2; a demand 1; a threat to go
# to a lawyer, regulator, the police or the public 3 (a mere mention 1); exclamation marks or
# repeated punctuation 1-2 ("?!", "!!" and three or more marks 2; one or two "!", "??" 1);
# words in capitals 1-2, a shouted run of three or more words 3; distress 1; a repeated
# contact 1. Levels: 0 nothing, 1 score 1-2, 2 score 3-6, 3 score 7 or more.
_ANGER = _rx(r"""\b(?:scam(?:s|mers?|my)?(?!\s+(?:e-?mails?|links?|sites?|websites?|texts?|calls?|messages?|alerts?))|fraud(?:s|ulent|sters?)?(?!\s+(?:alerts?|e-?mails?|links?|texts?|calls?|messages?|team|department))|stole|steal(?:ing)?|stolen\s+(?:my|from)|thie(?:f|ves)|rip-?off|ridiculous|unacceptable|useless
                 |worst(?!\s+case)|pathetic|incompetent|disgusting|outrageous|absurd|furious|angry|pissed|wtf|damn|hell|bullshit|shit\w*|crap|fuck\w*|rigged
                 |liars?|lying|lied|garbage|trash|sick\s+of|fed\s+up|nonsense|idiots?|clowns?|robbed|robbing|joke|crooks?|a\s+disgrace
                 |shame\s+on\s+you|(?:you|you\s+guys|they|y'all)\s+(?:\w+\s+){0,4}?(?:on\s+purpose|deliberately|intentionally)|manipulat\w+|are\s+you\s+kidding|how\s+dare|(?:what|who)\s+the\s+hell)\b
               | 詐欺(?!(?:の)?(?:メール|サイト|電話|SMS|リンク|メッセージ|に注意)) | 泥棒 | ふざけ | 最悪 | 使えない | いい加減に | 許せない | 腹が立 | ありえない | あり得ない | 返せ | 盗ま | 盗ん | 騙 | 舐め | なめて | バカ | 馬鹿 | クソ | ひどすぎ | ひどい
               | 意図的 | わざと(?:です|でしょう|だろ|やって) | 狩った | 狩り(?:に|を|です) | どうしてくれる | いつまで待たせ | 何なんですか | 何なの | なんなの | 信じられない | 話にならない | 冗談じゃ | 呆れ | 頭にく | ぼったくり | 不誠実 | 最低(?:だ|です|な(?:会社|取引所|対応|サービス))
               | 骗子 | 骗钱 | 骗人 | 诈骗(?!短信|电话|链接|网站|信息|邮件) | 垃圾(?!邮件|短信) | 太过分 | 气死 | 黑心 | 无耻 | 离谱 | 搞什么 | 什么破 | 破平台 | 没用 | 恶心 | 他妈 | 妈的 | 混蛋 | 抢钱 | 割韭菜
               | 坑(?:人|钱|爹|我|了|死) | 太坑 | 被坑 | (?:是不是|就是|你们|平台)故意 | 故意(?:爆|坑|插针|扣|拖|刁难|的吧) | 忽悠 | 耍我 | 欺负 | 流氓 | 强盗 | 土匪 | 踢皮球 | 凭什么 | 岂有此理 | 不要脸 | 太黑 | 吃相""")
_DISPLEASURE = _rx(r"""\b(?:frustrat\w+|annoy\w+|disappoint\w+|unhappy|not\s+happy|upset|terrible|awful|horrible|poor\s+service|(?:this|it)\s+is\s+(?:unfair|wrong)
                 |unfair|because\s+of\s+your\s+(?:app|system|platform|site|website|exchange|bug|glitch|outage)|your\s+fault|(?:you|your\s+\w+)\s+(?:owe|caused)\s+me)\b
               | がっかり | 残念 | 不満 | 困ります | 納得(?:でき|いか|いき)ません | 納得できない | 御社のせい | そちらのせい | 御社の責任 | 不親切 | 遅すぎ | 高すぎ
               | 失望 | 不满 | 郁闷 | 烦死 | 很烦 | 太慢 | 太贵 | 不公平 | 责任在你们 | 你们的责任 | 你们的问题 | 怪你们 | 到底""")
_DEMAND = _rx(r"""\b(?:I\s+(?:want|demand|need)\s+(?:my\s+\w+|it|them|a\s+(?:full\s+)?refund|this)\s+(?:back|refunded|fixed|resolved|now|immediately|today)|I\s+demand\b
                 |give\s+(?:me\s+)?(?:back\s+)?my\s+(?:money|funds|coins|crypto)|(?:refund|unlock|return|fix|release|unfreeze)\s+(?:me|it|this|them|my\s+\w+|the\s+\w+(?:\s+\w+)?)\s+(?:now|immediately|right\s+now|asap|today)
                 |(?:right\s+)?now\s*[!.]|immediately\s*[!.]|\basap\b|or\s+else\b|(?:let\s+me\s+)?(?:talk|speak)\s+to\s+(?:a|your)\s+(?:manager|supervisor))
               | 今すぐ | 直ちに | 至急 | 返せ | 返して(?:ください|下さい|よ)?[!！] | 説明しろ | 責任を取 | 責任者を出 | 上の人を出 | 弁償し | 補償しろ | (?:して|させて)(?:ください|下さい)[!！]
               | 必须 | 给我(?:一个)?(?:说法|交代|解释) | 还(?:给)?我(?:的)?钱 | 把钱还(?:给)?我 | 赶紧 | 立刻 | 马上(?:给我|处理|解决|退|还|赔) | 要求主管 | 让你们的?(?:主管|领导|经理|负责人) | 你们得赔 | 赔我""")
_THREAT = _rx(r"""\bI(?:'m|\s+am|'ll|\s+will|\s+shall)\s+(?:be\s+)?(?:going\s+to\s+|gonna\s+)?(?:report(?:ing)?\s+(?:you|this\s+to|it\s+to|the\s+(?:exchange|platform|company))|sue|suing|tak(?:e|ing)\s+(?:this|you|legal)|contact(?:ing)?\s+(?:my|a|the)\s+(?:lawyer|attorney|police|regulator)
                 |call(?:ing)?\s+(?:my|a|the)\s+(?:lawyer|attorney|police)|talk(?:ing)?\s+to\s+my\s+lawyer|post(?:ing)?\s+(?:this|about\s+(?:this|you)|it\s+(?:on|online|everywhere))|go(?:ing)?\s+public|fil(?:e|ing)\s+a\s+(?:formal\s+)?(?:complaint|report|lawsuit|chargeback)
                 |leav(?:e|ing)\s+(?:a\s+)?(?:bad|terrible|1-star|one-star)\s+review|expos(?:e|ing)\s+you)\b | \bsee\s+you\s+in\s+court\b | \b(?:reporting|suing)\s+you\b
               | 通報(?:します|する|しました|してやる) | 訴え(?:ます|る|てやる) | 訴訟を起こ | 提訴し | 告訴し | 拡散(?:します|する|してやる) | 晒(?:します|す) | (?:弁護士|警察|金融庁|消費者センター)に(?:相談|連絡|通報|訴え)(?:します|する)
               | (?:我就|我要|我会|我将|就去)(?:去)?(?:向[^，。！？]{0,8})?(?:网上)?(?:曝光|起诉|投诉|报警|告) | (?:起诉|投诉|曝光|告)你们 | 我要报警 | 找律师""")
_DISTRESS = _rx(r"""\b(?:feel\s+sick|can'?t\s+sleep|desperate|devastated|heartbroken|ruined|lost\s+everything|panic\w*|scared|worried|terrified|freaking\s+out)\b
                  | 眠れ | 辛い | つらい | 不安 | 絶望 | 困って | 怖い | 生活費 | 难受 | 绝望 | 睡不着 | 崩溃 | 心态崩 | 着急 | 急着用钱 | 担心 | 害怕 | 全爆 | 救命""")
_REPEAT = _rx(r"""\b(?:second|third|fourth|fifth|sixth|\d+(?:st|nd|rd|th))\s+(?:time|message|email|e-mail|ticket|request|chat|attempt)\b | \basked\s+(?:\w+\s+)?(?:times|already|again)\b
                | \bagain\s+and\s+again\b | \b(?:still\s+)?no\s+(?:one|body)\s+(?:has\s+)?(?:replied|answered|helped)\b
                | 何度も | 何度(?:問い合わせ|連絡|聞い) | 何回も | (?:3|三|4|四|5|五)回(?:目|も) | 同じ回答 | 第(?:二|三|四|五|\d)(?:遍|次) | 好几(?:遍|次) | 问了(?:三|几|好几|\d) | 一直没(?:解决|人|回)""")
_CAPS = re.compile(r"\b[A-Z]{3,}\b")
_ACRONYMS = frozenset(
    re.findall(
        r"\S+",
        "USDT USDC BTC ETH SOL XRP KYC API TXID SMS URL UTC VIP DCA ERC TRC BEP PEPE "
        "DOGE FAQ CVV PIN IBAN OTP APP ATM USD JPY CNY ETF NFT AML DAN ERR GDPR TXN BNB "
        "SEC FCA CFTC FINRA KYB TRX ADA DOT LTC EUR GBP HKD SGD AUD CEO CTO IOS PDF SSN",
    )
)
_SHOUT = re.compile(r"\b[A-Z][A-Z'’]*(?:[ \t]+[A-Z][A-Z'’]*){2,}\b")  # "WHERE IS MY MONEY"
_BANG = re.compile(r"[!！]")
_BURST = re.compile(r"[!！?？]{3,}|[?？][!！]|[!！][?？]|[!！]{2}")
_DOUBLE_Q = re.compile(r"[?？]{2}")


def _anger_score(norm: str) -> int:
    """Strong anger 3 (+1 per further cue, at most 4, +1 with displeasure); else displeasure 2."""
    strong = len(_ANGER.findall(norm))
    if strong:
        return min(4, 2 + strong) + (1 if _DISPLEASURE.search(norm) and strong == 1 else 0)
    return 2 if _DISPLEASURE.search(norm) else 0


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
    """0 calm, 1 slightly unhappy, 2 angry, 3 very agitated (wording, demands, threats,
    punctuation, capitals); see the weights above ``_ANGER``."""
    norm = to_halfwidth(text or "")
    score = _anger_score(norm)
    score += 1 if _DEMAND.search(norm) else 0
    if _THREAT.search(norm):
        score += 3
    elif any(rx.search(norm) for detail, rx in ESCALATION_CUES if detail != "supervisor"):
        score += 1
    bangs = len(_BANG.findall(norm))
    if bangs >= 3 or _BURST.search(norm):
        score += 2
    elif bangs or _DOUBLE_Q.search(norm):
        score += 1
    caps = [w for w in _CAPS.findall(norm) if w not in _ACRONYMS]
    shouted = any(
        any(len(w) >= 3 and w not in _ACRONYMS for w in m.group(0).split())
        for m in _SHOUT.finditer(norm)
    )
    score += 3 if shouted else 2 if len(caps) >= 3 else 1 if caps else 0
    score += 1 if _DISTRESS.search(norm) else 0
    score += 1 if _REPEAT.search(norm) else 0
    if score == 0:
        return 0
    return 1 if score <= 2 else 2 if score <= 6 else 3


#: Cues of a customer taking the matter further (a formal complaint, a lawyer, a regulator):
#: the escalation reply registers the complaint and says a regulator is their right.
FURTHER = frozenset({"complaint", "legal", "regulator"})


def escalation_kinds(text: str) -> set[str]:
    """The kinds of escalation cue in ``text`` (``legal``, ``regulator``, ``supervisor``,
    ``complaint``, ``public``)."""
    norm = to_halfwidth(text or "")
    return {detail for detail, rx in ESCALATION_CUES if rx.search(norm)}


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
        cue = (
            _ANGER.search(norm)
            or _THREAT.search(norm)
            or _DISPLEASURE.search(norm)
            or _BURST.search(norm)
            or _DEMAND.search(norm)
            or _DISTRESS.search(norm)
        )
        names = {1: "slightly unhappy", 2: "angry", 3: "very agitated"}
        flags.append(Flag("emotion", cue.span() if cue else None, names[level], level))
    return flags
