"""Links in drafts: URLs and bare domain names, and the allow-list of official domains.

:func:`find_links` finds scheme URLs, ``www.`` links and bare domains (``examp1e.com``),
including look-alike hosts written with Greek or Cyrillic letters; :func:`domain_allowed`
accepts an allowed domain and its subdomains only, so ``status.example.com.evil.net`` fails.
"""

from __future__ import annotations

import re

from copilot.text.normalize import lowercase

_TLDS = (
    "com|net|org|io|me|ly|co|info|biz|app|top|xyz|cn|jp|ru|de|uk|us|site|online|link|club|vip|shop|live|tk|ml|ga|"
    "cf|gq|cc|to|gg|ai|in|hk|tw|kr|sg|fr|nl|eu|pro|finance|exchange|page|dev|tv|ws|su|click|icu|buzz|work|support|help|"
    "wallet|crypto|money|network|cloud|website|space|fun|store|tech|ink|gl|gd|is|id|ph|vn|th|my|br|mx|ca|au|nz|ch|se|"
    "gle|bio|art|lol|sh|li|ms|pl|ng|ke|za|ae|sa|tr|ua|pk|bd|lk|np|kz"
)
_NOT_URL = r"\s<>\"'`\u3000-\u30ff\u3400-\u9fff\uff00-\uffef"
_SCHEME_URL = re.compile(rf"(?:https?|hxxps?|ftp)://[^{_NOT_URL}]+|www\.[^{_NOT_URL}]+")
_TLD_DOT = re.compile(rf"\.(?:{_TLDS})(?![a-z0-9\-])")
_HOST_END = re.compile(rf"\.(?:{_TLDS})$")
_PATH = re.compile(rf"/[^{_NOT_URL}]*")
_LABEL = re.compile(r"[a-z0-9\-.\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff]")


def host_of(url: str) -> str:
    """The lowercase host name of a URL or bare domain."""
    rest = re.sub(r"^[a-z]+://", "", url, flags=re.IGNORECASE)
    host = re.split(r"[/?#:\\]", rest, maxsplit=1)[0]
    return host.rstrip(".").lower()


def domain_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """True when ``host`` is an allowed domain or a subdomain of one."""
    return any(host == d or host.endswith("." + d) for d in allowed)


def find_links(text: str) -> list[tuple[int, int, str, bool]]:
    """(start, end, host, bare) for each URL or bare domain in normalised ``text``.

    Bare domains are found from their ".tld" and extended left and right over host characters
    (Latin, Greek and Cyrillic letters included, so look-alike hosts are caught)."""
    low = lowercase(text)
    spans: list[tuple[int, int]] = []
    for m in _SCHEME_URL.finditer(low):
        if (
            m.group(0).startswith("www.")
            and m.start()
            and re.match(r"[\w@./\-]", low[m.start() - 1])
        ):
            continue
        spans.append(m.span())
    for m in _TLD_DOT.finditer(low):
        if any(a <= m.start() < b for a, b in spans):
            continue
        start = m.start()
        while start > 0 and _LABEL.match(low, start - 1):
            start -= 1
        while start < m.start() and low[start] in ".-":
            start += 1
        if start == m.start() or (start and low[start - 1] in "@/_\\"):
            continue
        end = m.end()
        while end < len(low) and _LABEL.match(low, end):
            end += 1
        host_end = end
        while host_end > m.end() and not _HOST_END.search(low, m.start(), host_end):
            host_end -= 1
        end = host_end
        path = _PATH.match(low, end)
        spans.append((start, path.end() if path else end))
    out = []
    for start, end in sorted(set(spans)):
        while end > start and text[end - 1] in ".,;:!?)]}'\"。、，":
            end -= 1
        raw = text[start:end]
        bare = "://" not in raw and not raw.lower().startswith("www.") and "/" not in raw
        out.append((start, end, host_of(raw), bare))
    return out
