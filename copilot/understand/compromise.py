"""Rules that see an account at risk in a customer message, beside the learned
``account_compromised`` flag (a model can miss one; a phishing victim must never get plain
password-reset steps).

:func:`compromise_kind` says ``"phishing"`` when the customer gave a password, a code, a seed
phrase or a key to a message, site or person (or typed it into one) or moved funds to a
"safe" address on their word, ``"access"`` for an
unknown login, a change or a withdrawal the customer did not make, and None otherwise. A
question about a suspicious e-mail that the customer did not act on is not a compromise.

:func:`compromise_situation` names the particular situation of such a message, which needs
its own first steps: ``"wallet"`` (a self-custody wallet drained: the platform cannot freeze
or reverse it), ``"api"`` (an API key leaked or misused: delete it first), ``"remote"`` (a
remote-access "support" session: AnyDesk, TeamViewer), ``"sim"`` (a SIM swap: the phone
number taken over), ``"sent"`` (funds moved to a scammer's "safe" address), else None.

:func:`funds_gone` says whether funds already left the account (an unauthorised withdrawal).

:func:`acted_on_nothing` says whether the customer states they did not act on a suspicious
message (did not click, open, enter or reply): a question about it, not a compromise.
"""

from __future__ import annotations

import re

from copilot.text.normalize import to_halfwidth


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.VERBOSE)


_SECRET_EN = r"(?:password|passcode|pass\s?word|pw|2fa|otp|one[- ]time|codes?|authenticator\s+codes?|seed|recovery\s+phrase|\d{1,2}[- ]word|private\s+key|api\s+key|secret|login\s+details|credentials)"
_SECRET_CJK = r"(?:パスワード|認証コード|確認コード|コード|2FA|二段階|シードフレーズ|秘密鍵|ワンタイム|SMS|APIキー|密码|密碼|验证码|驗證碼|助记词|助記詞|私钥|私鑰|谷歌验证|Google\s?驗證|短信码|API|code|2FA)"
# the customer gave a secret away: "I typed my password and 2FA code into the site", 「認証コードを教えてしまった」
GAVE_SECRET = _rx(
    rf"""\b(?:typed|entered|gave|shared|sent|told|put\s+in|put\s+(?:it|them)\s+in|input|read|pasted|submitted|provided)\b
            [^.!?\n]{{0,60}}?\b{_SECRET_EN}
       | \b{_SECRET_EN}\b[^.!?\n]{{0,80}}?\bi\s+(?:typed|entered|gave|shared|sent|told|put|provided|read)\b
       | \b(?:got\s+phished|phishing\s+(?:site|page|link)|fake\s+(?:site|page|app|website)|logged\s+in\s+(?:on|to|at|through|via)\s+(?:the|that|a|this|their)\s+(?:fake\s+)?(?:page|site|link|website|app))
       | \b(?:connected|signed|approved)\b[^.!?\n]{{0,40}}\b(?:wallet|transaction|signature)
       | {_SECRET_CJK}[^。\n！？]{{0,30}}?
            (?:入力し(?:て|た|ちゃ|ちゃっ|まし)|入れ(?:て|た|ちゃ|まし)|教え(?:て|た|ちゃ)し?|伝え(?:て|た|ちゃ)|送っ(?:て|た|ちゃ)|渡し(?:て|た)|返信し(?:て|た)|上げちゃ
              |输入了|輸入了|输了|填了|给了|給了|发给|發給|发了|發了|告诉了|告訴了|念给|念給|读给|讀咗|俾咗|俾佢|畀佢|提供给|提供給|填进|填入|输进|入咗|打咗|放在)
       | (?:入れ|入力し|教え|伝え|送っ|渡し)(?:て|ちゃ)(?:しまい|しまっ|い|った)?[^。\n]{{0,3}}$
       | (?:输入了|輸入了|填了|填过|填過|给了|給了|告诉了|告訴了|发给了|發給了|入力し(?:た|て))[^。\n！？]{{0,10}}?{_SECRET_CJK}
       | (?:把|將|将|叫我俾佢)[^。\n]{{0,12}}?{_SECRET_CJK}[^。\n]{{0,8}}?(?:给|給|发|發|告诉|告訴|输入|輸入|填|放|念|俾)
       | 偽(?:サイト|物のサイト|アプリ|物)|偽物|画面(?:を)?見せ|AnyDesk|署名(?:した|して)|假(?:网址|網址|网站|網站|APP|app)"""
)
# someone else got in: an unknown login, a change or a withdrawal the customer did not make
UNKNOWN_ACCESS = _rx(
    r"""\b(?:hacked|compromised|hijacked|account\s+(?:was\s+)?taken\s+over|someone\s+(?:logged|got)\s+in(?:to)?|someone\s+used\s+my|(?:still|is)\s+in\s+my\s+account)\b
      | \b(?:i\s+)?(?:did(?:n'?t|\s+not)|never)\s+(?:log(?:ged)?\s+in\b|(?:make|made|authori[sz]e|request(?:ed)?|approve|place|placed|create|created|set\s+up|asked\s+for)\b[^.!?\n]{0,25}?\b(?:withdrawal|login|trade|order|api|transfer|bot|address|this|these|that|either|it)\b)
      | \b(?:wasn'?t|was\s+not|it\s+was\s+not|it'?s\s+not|that\s+(?:was|is)\s+not)\s+me\b | \bhave\s+never\s+seen\b | \bnever\s+said\s+yes\b
      | \b(?:unknown|unrecogni[sz]ed|strange|suspicious)\s+(?:login|log-?in|device|withdrawal|api\s+key|address)s?\b
      | \bmy\s+(?:balance|funds|usdt|btc|eth|coins?|savings|money|account)\b[^.!?\n]{0,30}\b(?:gone|drained|emptied|stolen)\b | \b(?:they|he|she|someone)\s+(?:already\s+)?took\b
      | \b(?:login|log-?in|sign-?in)\b[^\n]{0,100}?\b(?:i'?ve\s+never\s+been|i\s+have\s+never\s+been|never\s+been\s+to|i\s+was\s+asleep)\b
      | 乗っ取|不正(?:ログイン|アクセス|出金|利用)|身に覚えのない|知らない(?:うちに|端末|アドレス|ログイン|取引|APIキー)|勝手に(?:出金|送金|ログイン|取引|売|買|注文|[^。\n]{0,12}出金)|盗まれ|自分じゃない|出金していません|ログインしていません|新しい端末からのログイン[^。\n]{0,40}(?:行ったこと|自分じゃない|心当たり)|凍結した(?!い)|許可していません
      | 被盗|被盜|盗号|盜號|被黑|被人(?:登|提|转|轉|盗|盜|改|用)|俾人|不是我(?:本人|操作|加|下|申请|申請|弄)|非本人操作|被(?:提走|转走|轉走|改了|换了|換了|提領)|莫名其妙(?:少了|没了|沒了|被(?:提|转|轉|盗|盜|登|改|用|扣|划|劃))
      | (?:没有|沒有|并没有|並沒有|根本沒有|根本没有|冇)(?:登入|登录|登錄|下过|下過|操作|提過|提过|改過|改过|去過|申请|申請)|完全沒操作|完全没操作|不认识的交易|不認識的交易"""
)
_PHISHING_SOURCE = _rx(
    r"""\b(?:link|site|website|page|form|telegram|whatsapp|discord|dm|sms|text|e-?mail|call(?:ed)?|phone|someone|guy|person|agent|support|extension|airdrop|ads?|group|bot|app|github|url)\b
      | リンク|サイト|ページ|メール|SMS|DM|LINE|電話|サポート|名乗る|広告|偽|エアドロ|GitHub|アプリ
      | 链接|鏈接|連結|网站|網站|网页|網頁|网址|網址|邮件|郵件|短信|短訊|簡訊|客服|电话|電話|自称|自稱|冒充|假|群|微信|LINE|Telegram|GitHub|APP|app|廣告|广告|空投"""
)
_SAFE_ADDRESS = _rx(
    r"""\bsafe\s+(?:address|account|wallet)\b|安全な(?:アドレス|口座|ウォレット)|安全(?:账户|帳戶|地址|钱包|錢包)"""
)
# pasted messages in quotes are the sender's words, not the customer's ("... 如非本人操作 ...")
_QUOTED = re.compile(r"“[^”]*”|「[^」]*」|\"[^\"\n]*\"|『[^』]*』")


# the customer moved funds as told ("I sent 3,000 USDT to the safe address", 转了5000 USDT过去)
_MOVED_FUNDS = _rx(
    r"""\b(?:sent|moved|transferred|withdrew)\b
      | 送って(?:しまい|しまっ)|送金して(?:しまい|しまっ)|送りました|移しました|移して(?:しまい|しまっ)
      | 转了|轉了|转过去|轉過去|转到了|轉到了|提了|打了"""
)


def compromise_kind(text: str) -> str | None:
    """``"phishing"``, ``"access"`` or None for a customer message (see the module docstring)."""
    norm = _QUOTED.sub(" ", to_halfwidth(text or ""))
    if GAVE_SECRET.search(norm) and _PHISHING_SOURCE.search(norm):
        return "phishing"
    if (
        _SAFE_ADDRESS.search(norm)
        and _MOVED_FUNDS.search(norm)
        and _PHISHING_SOURCE.search(norm)
        and not _NOT_SENT.search(norm)
    ):
        return "phishing"  # funds moved to a "safe" address on someone's word (not "not yet")
    if UNKNOWN_ACCESS.search(_ASKED_IF_HACKED.sub(" ", norm)):
        return "access"
    return None


# "Is my account hacked?": a question, not a report that someone got in (the rest of the
# message may still report one)
_ASKED_IF_HACKED = _rx(
    r"""\b(?:is|was|has)\s+(?:my\s+account|it)\s+(?:been\s+)?(?:hacked|compromised)\s*\?
      | \b(?:am|was|have)\s+i\s+(?:been\s+)?(?:hacked|compromised)\s*\?
      | (?:是不是|是否|是)?被(?:盗|盜|黑)(?:了)?(?:吗|嗎|嘛|么|麼)[？?]?
      | 乗っ取られ(?:た|てる|ている|ました)(?:の|ん)?(?:でしょうか|ですか|か)[？?]?"""
)


# the situation of a compromised account (checked in this order: the first that matches)
SITUATIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "wallet",
        _rx(
            r"""\b(?:seed\s+phrase|recovery\s+phrase|(?:12|24|twelve)[- ]words?|self[- ]custody|trust\s?wallet
                |meta\s?mask|phantom|ledger|my\s+(?:own\s+|cold\s+|hardware\s+)?wallet\s+(?:was|got|is|has\s+been)\s+(?:drained|emptied|hacked))\b
              | シードフレーズ|リカバリーフレーズ|秘密鍵|(?:自分|個人|外部)の?ウォレット|メタマスク|MetaMask
              | 助记词|助記詞|私钥|私鑰|(?:冷|个人|個人|自己的|去中心化)(?:钱包|錢包)|小狐狸|TP钱包|imToken"""
        ),
    ),
    ("sent", _SAFE_ADDRESS),
    (
        "api",
        _rx(
            r"""\bapi\b[^.!?\n]{0,40}\b(?:key|secret)s?\b|\bapi[- ]?keys?\b
              | API\s?(?:キー|鍵|key|密钥|密鑰|金鑰)"""
        ),
    ),
    (
        "remote",
        _rx(
            r"""(?<![A-Za-z])(?:any\s?desk|team\s?viewer|rustdesk|remote[- ](?:access|desktop|control)|screen[- ]shar(?:e|ing))(?![A-Za-z])
              | 遠隔操作|リモート(?:操作|アクセス|接続)|画面共有|远程(?:控制|协助|桌面|操作)|遠端|遠程|屏幕共享|螢幕分享"""
        ),
    ),
    (
        "sim",
        _rx(
            r"""\bsim[- ]?(?:swap|swapp?ed|card)?\b|\bport(?:ed)?[- ]out\b|\bno\s+(?:signal|service)\b
              | (?-i:SIM)|携帯(?:電話)?の?番号が(?:乗っ取|使え)|圏外|补卡|補卡|手机号被|手機號被|(?:手机|手機)(?:没有|沒有|没|沒)(?:信号|訊號)"""
        ),
    ),
)


def compromise_situation(text: str) -> str | None:
    """``"wallet"``, ``"sent"``, ``"api"``, ``"remote"``, ``"sim"`` or None (see the module
    docstring). Quoted words count here (the scammer's “安全账户”): the message is already
    known to be about a compromise."""
    norm = to_halfwidth(text or "")
    for name, pattern in SITUATIONS:
        if pattern.search(norm):
            return name
    return None


# funds already left the account: "0.42 BTC went to an address I have never seen",
# 「SOLが42枚出金されてる」, 「USDT被提走了」
_FUNDS_GONE = _rx(
    r"""\b(?:was|were|got|been|being|have\s+been|has\s+been)\s+(?:withdrawn|stolen|taken|transferred|moved|sent|drained|emptied|cleaned\s+out)\b
      | \b(?:went|sent|withdrawn|transferred|moved)\s+(?:out\s+)?to\s+(?:an?\s+|some\s+)?(?:unknown\s+|strange\s+|random\s+)?(?:address|wallet|account)
      | \bwithdrawals?\s+(?:that\s+)?i\s+(?:did\s+not|didn't|never)\s+(?:make|made|do|did|request|authori[sz]e)
      | \b(?:stole|drained|emptied)\b|\bstolen\b
      | 出金されて|出金され(?:た|まし)|引き出され|盗まれ|送金されて|送金され(?:た|まし)|抜かれ|勝手に出金
      | 被(?:人)?(?:提|盗|盜|转|轉|偷|划|劃)(?:走|光|空)|被提(?:币|幣|现|現|領|领)
      | (?:币|幣|钱|錢|资产|資產|资金|資金|USDT|BTC|ETH|SOL)[^。！？\n]{0,8}被(?:人)?(?:提|盗|盜|转|轉|偷|划|劃)
      | \b(?:btc|eth|usdt|usdc|sol|xrp|doge|trx|funds|money|balance|coins?|crypto|savings)\b[^.!?\n]{0,25}
          (?:\bis|\bare|\bwas|\bwere|'s|'re)\s+(?:all\s+|just\s+|completely\s+)?gone\b
      | (?:余额|餘額|币|幣|钱|錢|资产|資產|USDT|BTC|ETH|SOL|U)[^。！？\n]{0,8}(?:没了|沒了|不见了|不見了|冇咗|唔見咗)
      | (?:身に覚えのない|覚えのない|知らない)(?:出金|送金) | (?:本人|自分|私)は(?:出金|送金)して(?:い)?(?:ない|ません)"""
)


def funds_gone(text: str) -> bool:
    """True when a message about a compromise says funds already left the account (they
    cannot be reversed on chain: the reply says so and asks for a police report)."""
    return bool(_FUNDS_GONE.search(to_halfwidth(text or "")))


# "I haven't clicked anything", 「リンクは開いていません」, 我没点: the customer did not act on it
# ("I did not log in" is not here: it tells of an unknown login)
_UNTOUCHED = _rx(
    r"""\b(?:have\s*n[o']t|haven'?t|did\s*n[o']t|didn'?t|did\s+not|have\s+not|never|not)\s+(?:yet\s+)?
          (?:clicked|click|opened|open|tapped|tap|entered|enter|replied|reply|responded|respond|touched|touch|typed|type|visited|visit|followed|follow|done\s+anything)\b
      | \b(?:ignored|deleted)\s+(?:it|the\s+(?:e-?mail|message|text|sms|link))\b
      | (?:クリック|タップ|入力|返信|アクセス)(?:は)?(?:して(?:い)?ません|してない|しておりません|していない)
      | (?:開い|押し|触っ|踏ん|入れ)て(?:い)?(?:ません|ない)|何もして(?:い)?(?:ません|ない)|開かずに|押さずに|無視して
      | (?:没|沒|没有|沒有|并没有|並沒有|未|还没|還沒|冇)(?:点|點|点击|點擊|点开|點開|打开|打開|输入|輸入|填|回复|回覆|理|碰|撳|㩒)
      | 删(?:了|掉)|刪(?:了|掉)"""
)
# "I have not sent anything yet", まだ送っていません, 我还没转: the funds did not leave
_NOT_SENT = _rx(
    r"""\b(?:have\s*n[o']t|haven'?t|did\s*n[o']t|didn'?t|did\s+not|have\s+not|not)\s+(?:yet\s+)?
          (?:sent|send|moved|move|transferred|transfer)\b
      | (?:送金|送って|移して|移動して)(?:は)?(?:い)?(?:ません|ない) | まだ(?:何も)?(?:送って|移して|送金して)
      | (?:没|沒|没有|沒有|还没|還沒|未|冇)(?:有)?(?:转|轉|汇|匯|打|充|提)(?:币|幣|钱|錢|款|过去|過去|出)?"""
)


def acted_on_nothing(text: str) -> bool:
    """True when the customer says they did not act on a suspicious message."""
    norm = to_halfwidth(text)
    return bool(_UNTOUCHED.search(norm) or _NOT_SENT.search(norm))


# "pretty sure that was me", 「自分なので問題ない」, 应该是我自己: the alerted login was the
# customer's own (never "that wasn't me", 不是我, 自分ではない)
_WAS_ME = _rx(
    r"""\b(?:that|it)\s+was\s+(?:just\s+|only\s+|definitely\s+|probably\s+)?me\b(?!\s+who)
      | \bwas\s+(?:just\s+)?me\s+(?:logging|signing)\s+in\b | \bi\s+(?:just\s+)?logged\s+in\s+(?:myself|from\s+my\s+new)\b
      | 自分(?:です|でした|なので|のログイン|でログイン|が(?:ログイン|ログインした))(?!か) | 本人(?:です|でした|なので)(?!か)
      | 私(?:です|でした)(?:ので|から|。|、|$) | 自分自身の(?:ログイン|操作)
      | (?<![不非])(?:是|係|系)我(?:自己|本人)(?!吗|嗎) | (?<![不非])(?:是|係)我(?:登录|登入|登錄)的 | 我自己(?:登录|登入|登錄)的
      | \b(?:it\s+was|that\s+was|it'?s|that'?s)\s+(?:probably\s+|just\s+)?(?:me\s+on\s+)?my\s+new\s+(?:phone|iphone|ipad|laptop|computer|pc|mac|tablet)\b
      | (?:新しく買った|新しい|買い替えた|自分の)[^。、？]{0,20}(?:で|から)(?:入った|ログインした|ログイン(?:した)?(?:やつ|もの|の))
      | 自分の(?:iPad|iPhone|スマホ|パソコン|PC|端末|タブレット|Mac)(?:です|でした|だと思|かと思|のはず)
      | 我(?:自己)?(?:用|在)?新(?:买|買|换|換)?的?(?:手机|手機|iPad|电脑|電腦|平板)(?:登录|登入|登錄)"""
)


_LOGIN = _rx(
    r"""\b(?:log(?:ged)?[\s-]?in|sign(?:ed)?[\s-]?in|alert|device|new\s+(?:phone|laptop|computer|iphone|browser))\b
      | ログイン | 通知 | 端末 | デバイス | 機種変 | 登录 | 登入 | 登錄 | 提醒 | 设备 | 設備 | 新手机 | 新手機 | 新电脑 | 新電腦"""
)


def login_was_theirs(text: str) -> bool:
    """True when the customer says the login an alert told them of was their own (a login,
    an alert or a device is named)."""
    norm = to_halfwidth(text)
    return bool(_WAS_ME.search(norm) and _LOGIN.search(norm))
