"""Person names in en / ja / zh text, found by the words around them.

A name is recognised only where its context says it is one: a salutation ("Dear Mr. Tanaka",
"Hi Ken,"), a title (Mr., Ms., Dr.), a self-introduction ("my name is Ken Tanaka",
「山田と申します」, 「我叫李明」), a signature ("Regards,\\nKen"), or an honorific
(山田様, 田中さん, 李先生, 王女士, 李明您好). ``find_names(text)`` returns the spans;
``name_parts(name)`` splits a known name (e.g. the customer's) into the pieces that may stand
alone (a surname). Ordinary text (amounts, dates, menu paths, "Tier 2") has none of these cues.
"""

from __future__ import annotations

import re


# ---- English -----------------------------------------------------------------------------
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Latin letters with their accented forms (Latin-1 and Latin Extended-A: Pálffy, Červinková)
_UP = "A-Z\u00c0-\u00d6\u00d8-\u00de\u0100-\u017f"
_LOW = "a-z\u00df-\u00f6\u00f8-\u00ff\u0100-\u017f"
_TOKEN = rf"[{_UP}][{_LOW}]+(?:['\-][{_UP}]?[{_LOW}]+)*|[A-Z]{{2,}}(?![a-z])"
_INITIAL = r"[A-Z]\.?"
# one to three name words, with middle initials between them (Janka M. Szász)
_FULL = rf"(?:{_TOKEN})(?:[ ]+(?:{_INITIAL}[ ]+)?(?:{_TOKEN})){{0,2}}"
_LOWER_FULL = rf"[{_LOW}]{{2,}}(?:[ ][{_LOW}]{{2,}}){{0,2}}"  # after a strong cue only
_TITLE = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Mme|Mlle|Herr|Frau)\.?"
_B = rf"(?<![{_LOW}{_UP}])"
# Words that follow a greeting or "I am", or head a line, but are not names.
_NOT_NAMES = _words(
    """there team all everyone everybody support sir madam customer customers friend friends
    guys folks again admin administrator thanks thank good morning afternoon evening dear hello
    hi hey i im my we you the this that your our agent agents staff bot copilot regards best
    sincerely cheers kind warm yes no ok okay sorry urgent help please user users client
    clients member members service desk department exchange account wallet crypto bitcoin
    mister miss madame valued new writing contacting reaching here just still not very so
    really also now from with about trying unable having getting asking waiting wondering
    happy glad excited afraid angry upset confused concerned worried frustrated disappointed
    american japanese chinese english british canadian australian korean german french
    indian verified unverified premium vip tier level withdrawal withdrawals deposit deposits
    problem problems issue issues question questions request refund verification kyc login
    password card order trade trading transfer transaction payment balance fee fees limit
    limits security update status complaint re fw fwd subject important asap and or in on
    at of for to is was be been being a an it its his her their unknown none null n/a
    mr mrs ms mx dr prof mme mlle herr frau"""
)
_EN_PATTERNS = [
    # salutation: Dear Mr. Tanaka / Hi Ken, / Hello Ken Tanaka!
    re.compile(
        rf"{_B}(?:Dear|DEAR|Hi|Hello|Hey|Greetings|Good (?:morning|afternoon|evening)),?"
        rf"[ ]+(?:{_TITLE}[ ]+)?(?P<n>{_FULL})(?=[ ]*(?:[,!:;.\n]|$))"
    ),
    # a title anywhere: Mr. Tanaka, Ms Lee, ms. Quinzia
    re.compile(rf"{_B}(?:[Mm]r|[Mm]rs|[Mm]s|MR|MRS|MS|Mx|Dr|Prof)\.?[ ]+(?P<n>{_FULL})"),
    # self-introduction and labels: my name is / her maiden name is / Name: / I'm Ken
    re.compile(
        rf"(?:{_B}(?:[Nn]ame is|[Nn]ame's|[Nn]ame ?:|[Aa]ccount (?:holder|name) ?:?|[Cc]all me|"
        rf"[Ss]igned,?|[Tt]his is|I am|I'm|[Ii]t's)[ ]+)(?P<n>{_FULL})"
    ),
    # after the strongest cues a name may be written in lower case: "my name is lena andersson"
    re.compile(
        rf"{_B}(?i:my (?:full |real )?name is|my name's|full name ?:)[ ]+(?P<n>{_LOWER_FULL})"
    ),
    # signature: "Regards,\nKen Tanaka" or "Thanks, Ken" at the end of a line
    re.compile(
        r"(?im:^[ \t]*(?:best regards|kind regards|warm regards|regards|best|thanks|thank you|"
        r"many thanks|sincerely|yours sincerely|yours truly|cheers|br)[ \t]*[,.!]?[ \t]*\n?[ \t]*)"
        rf"(?P<n>{_FULL})[ \t]*[.!]?[ \t]*(?=\n|$)"
    ),
    re.compile(rf"(?m:^[ \t]*(?:--|—|―|-)[ \t]*)(?P<n>{_FULL})[ \t]*(?=\n|$)"),
]
# a line of two or three name words alone, first or last in a text of several lines
# (a letterhead or a signature without a sign-off)
_NAME_LINE = re.compile(
    rf"[ \t]*(?P<n>(?:{_TOKEN})(?:[ ]+(?:{_INITIAL}[ ]+)?(?:{_TOKEN})){{1,2}})[ \t]*"
)


def _edge_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of the first and the last non-empty line of a text of several lines."""
    lines = [(m.start(), m.end()) for m in re.finditer(r"[^\n]*\S[^\n]*", text)]
    if len(lines) < 2:
        return []
    return [lines[0], lines[-1]]


# ---- Japanese ------------------------------------------------------------------------------
_JA_CHARS = r"\u4e00-\u9fff\u3005\u30a1-\u30fa\u30fc"
_JA_NAME = rf"[{_JA_CHARS}]{{1,6}}(?:[ \u3000][{_JA_CHARS}]{{1,5}})?"
_HONORIFIC = re.compile(
    rf"(?P<n>[{_JA_CHARS}]{{1,5}}(?:[ \u3000][{_JA_CHARS}]{{1,4}})?)(?:様|さま|さん|殿|先生|氏)(?![々子式相態名])"
)
# words that end in an honorific-looking character, or are roles rather than names
_JA_NOT_NAMES = _words(
    """お客 客 皆 皆さ 担当 担当者 ご担当 ご担当者 各位 神 王 奥 仏 旦那 仕 同 模 多 異 貴 一 有 左 今 殿 利用者 会員 顧客 ユーザー ユーザ カスタマー
    サポート お疲れ ご苦労 お世話 お得意 得意 代表 社長 部長 課長 店長 医者 弁護士 先 学校 大学 運営 御社 貴社 当社 弊社 管理者 管理人 本人 ご本人 責任者
    関係者"""
)
_JA_WORD_ENDS = ("仕", "同", "模", "多", "異", "一", "有", "左", "貴", "皆", "客", "王", "神", "奥")
_JA_SELF = re.compile(
    rf"(?P<n>{_JA_NAME})(?:と申します|と申しま|といいます|と言います|と申す者)"
    rf"|(?:私は|わたしは|わたくしは|私の名前は|名前は|氏名は|こちらは)[ \u3000]?(?P<m>{_JA_NAME})です"
)
_JA_LABEL = re.compile(
    rf"(?:氏名|名前|お名前|名義|口座名義)[ \u3000]*[:：][ \u3000]*(?P<n>{_JA_NAME})"
)
_JA_SIGNATURE = re.compile(rf"(?m:^[ \u3000]*(?P<n>[{_JA_CHARS}]{{2,6}})より[ \u3000]*$)")

# ---- Chinese -------------------------------------------------------------------------------
# Common surnames (simplified and traditional): a Chinese name starts with one of them.
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
    "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔"
    "向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌"
    "毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦"
    "麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩"
    "佘池查麻苑迟邝陳黃趙吳劉張楊許鄭謝韓馮鄧蕭葉蘇呂盧鍾譚陸範賈韋鄒閆龍賀顧龔錢嚴湯齊喬龐聶魯嶽蘭關"
    "紀畢單裴塗駱藍遊鮑饒閔"
)
_COMPOUND_SURNAMES = (
    "欧阳",
    "司马",
    "上官",
    "诸葛",
    "东方",
    "慕容",
    "令狐",
    "皇甫",
    "尉迟",
    "公孙",
)
_HAN = r"\u4e00-\u9fff"
# characters that end a name (particles, verbs and nouns that follow a name in a sentence)
_ZH_STOP = frozenset("的了是在和与跟我你他她您想要有用账帐户号说请问已经也都就还还被把给让从到对")
_ZH_HONORIFICS = ("先生", "女士", "小姐", "老师", "老師", "经理", "經理", "您好", "你好")
_ZH_AFTER = re.compile(rf"(?P<n>[{_HAN}]{{1,4}}?)(?:先生|女士|小姐|老师|经理|經理|您好|你好)")
_ZH_BEFORE = re.compile(
    rf"(?:我叫|我是|本人是|我的名字是|我的名字叫|名字是|名字叫|姓名是?[:：]?|账户名[:：]?|户名[:：]?|"
    rf"尊敬的|署名[:：]?|——|－－)[ \u3000]?(?P<n>[{_HAN}]{{2,4}})"
)


# roles and common nouns that start with a surname character (管理员: 管 is a surname)
_ZH_NOT_NAMES = (
    "管理员",
    "管理員",
    "用户",
    "客户",
    "会员",
    "新用户",
    "老用户",
    "全部",
    "本人",
    "学生",
    "老师",
    "经理",
    "代表",
    "工作人员",
    "客服",
)


def _zh_name(run: str, *, before: bool, single_ok: bool) -> tuple[int, int] | None:
    """The (start, end) of a Chinese name inside ``run`` (a run of Han characters)."""
    if before:  # the name starts the run: surname + at most 2 given characters
        start = 0
        if run.startswith(_ZH_NOT_NAMES):
            return None
        if not (run[:2] in _COMPOUND_SURNAMES or run[0] in _SURNAMES):
            return None
        sur = 2 if run[:2] in _COMPOUND_SURNAMES else 1
        end = sur
        while (
            end < len(run)
            and end < sur + 2
            and run[end] not in _ZH_STOP
            and not run.startswith(_ZH_HONORIFICS, end)
        ):
            end += 1
        return (start, end) if end - start >= 2 else None
    # the name ends the run (before an honorific): the longest suffix starting with a surname
    for size in (3, 2, 1):
        if size > len(run) or (size == 1 and not single_ok):
            continue
        piece = run[-size:]
        if any(c in _ZH_STOP for c in piece) or piece.startswith(_ZH_NOT_NAMES):
            continue
        if piece[:2] in _COMPOUND_SURNAMES or piece[0] in _SURNAMES:
            return len(run) - size, len(run)
    return None


def _clean_latin(value: str) -> tuple[int, int] | None:
    """Trim leading and trailing words that are not names; None when nothing is left."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", value)]
    while words and value[words[0][0] : words[0][1]].lower().strip("'-") in _NOT_NAMES:
        words.pop(0)
    if not words or value[words[-1][0] : words[-1][1]].lower().strip("'-.") in _NOT_NAMES:
        return None  # "Dear Data Protection Team": a group, not a person
        return None
    return words[0][0], words[-1][1]


def _ja_ok(value: str) -> bool:
    core = value.replace(" ", "").replace("\u3000", "")
    if core in _JA_NOT_NAMES or (
        len(core) < 2 and not re.fullmatch(r"[\u30a1-\u30fa\u30fc]+", core)
    ):
        return False
    return not (len(core) <= 2 and core.endswith(_JA_WORD_ENDS))


def find_names(text: str) -> list[tuple[int, int]]:
    """Spans of person names in ``text``, sorted and never overlapping."""
    if not text:
        return []
    found: list[tuple[int, int]] = []
    for pattern in _EN_PATTERNS:
        for m in pattern.finditer(text):
            span = _clean_latin(m.group("n"))
            if span is not None:
                found.append((m.start("n") + span[0], m.start("n") + span[1]))
    for start, end in _edge_lines(text):
        line = _NAME_LINE.fullmatch(text, start, end)
        if line is not None and not any(
            w.lower() in _NOT_NAMES for w in re.findall(r"[^\s.]+", line.group("n"))
        ):
            found.append(line.span("n"))
    if re.search(r"[\u3040-\u30ff様殿]", text):  # kana or 様: the Japanese cues
        for pattern in (_HONORIFIC, _JA_SELF, _JA_LABEL, _JA_SIGNATURE):
            for m in pattern.finditer(text):
                group = "n" if m.group("n") else "m"
                if _ja_ok(m.group(group)):
                    found.append(m.span(group))
    if re.search(rf"[{_HAN}]", text):  # Han: the Chinese cues
        for m in _ZH_AFTER.finditer(text):
            single = not m.group(0).endswith(("您好", "你好"))
            cut = _zh_name(m.group("n"), before=False, single_ok=single)
            if cut is not None:
                found.append((m.start("n") + cut[0], m.start("n") + cut[1]))
        for m in _ZH_BEFORE.finditer(text):
            cut = _zh_name(m.group("n"), before=True, single_ok=False)
            if cut is not None:
                found.append((m.start("n") + cut[0], m.start("n") + cut[1]))
    found.sort(key=lambda s: (s[0], -s[1]))
    out: list[tuple[int, int]] = []
    for start, end in found:
        if out and start < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def name_parts(name: str) -> list[str]:
    """The pieces of a known name that may appear alone: the whole name, then each word
    (Latin words of 2+ letters that are not ordinary words; CJK words of 2+ characters),
    and for a Japanese name written without a space its likely surname (first two kanji)."""
    name = " ".join(name.split())
    if not name:
        return []
    parts = [name]
    words = name.replace("\u3000", " ").split(" ")
    if len(words) > 1:
        for word in words:
            word = word.strip(".,")
            if (
                re.fullmatch(rf"[{_UP}{_LOW}][{_UP}{_LOW}'\-]+", word)
                and word.lower() not in _NOT_NAMES
            ) or re.fullmatch(rf"[{_JA_CHARS}]{{2,}}", word):
                parts.append(word)
    elif re.fullmatch(rf"[{_HAN}\u3005]{{3,4}}", name) and name[:2] not in _JA_NOT_NAMES:
        parts.append(name[:2])
    return list(dict.fromkeys(p for p in parts if len(p) >= 2))
