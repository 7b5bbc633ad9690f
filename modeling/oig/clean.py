"""Clean one OIG text segment: markup, URLs and control characters out; NFC; single spaces.

Pure core (no Django). Safe for Thai and emoji: only markup-shaped ASCII and controls are removed.
"""

from __future__ import annotations

import html
import re
import unicodedata

__all__ = ["clean_text"]

_ROLE_TAG_RE = re.compile(r"<\s*(human|bot)\s*>\s*:", re.IGNORECASE)
_ROLE_TAG_LOOSE_RE = re.compile(r"<\s*/?\s*(?:human|bot)\s*>\s*:?", re.IGNORECASE)
_HTML_BLOCK_RE = re.compile(
    r"<!--.*?-->|<(script|style|ref)\b[^>]*>.*?</\1\s*>|<ref\b[^>]*/>", re.IGNORECASE | re.DOTALL
)
# Only things shaped like real tags: "a < b > c" or "x<3" survive.
_HTML_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")
_WIKI_LINK_RE = re.compile(r"\[\[(?:[^\[\]|]*\|)?([^\[\]|]*)\]\]")
_WIKI_TEMPLATE_RE = re.compile(r"\{\{[^{}]*\}\}")
_WIKI_EXTLINK_RE = re.compile(r"\[(?:https?://|www\.)[^\s\]]+(?:\s+([^\]]*))?\]", re.IGNORECASE)
_WIKI_HEADING_RE = re.compile(r"={2,}\s*([^=\n]+?)\s*={2,}")
_WIKI_EMPHASIS_RE = re.compile(r"'{2,}")
# The URL keeps trailing punctuation out of the match so "see http://x.org." keeps its period.
_URL_RE = re.compile(r"(?:\bhttps?://|\bwww\.)[^\s<>\"'\]\[]*[^\s<>\"'\]\[.,;:!?)]", re.IGNORECASE)
_AFTER_REMOVAL_RE = re.compile(r"\(\s*\)|\[\s*\]|\s+(?=[,.;:!?])")
# C0/C1 controls and the BOM; never format characters such as ZWJ (emoji) or Thai marks.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff]")


def _junk_flags(s: str) -> tuple[bool, bool, bool, bool, bool, bool]:
    """Which rules may apply: entities, tags, wiki, URLs, non-printables, double spaces.

    Ordered so that most text is cleared by single-character tests (memchr-fast); note that
    `isprintable` is False for every whitespace character except the plain space.
    """
    return (
        "&" in s,
        "<" in s,
        "[" in s or "{" in s or ("=" in s and "==" in s) or ("'" in s and "''" in s),
        "://" in s or "www." in s or "WWW." in s,
        not s.isprintable(),
        "  " in s,
    )


def clean_text(text: str) -> str:
    """Strip URLs, HTML/wiki markup and control characters; NFC; collapse whitespace to one space.

    Safe for scripts without spaces and with combining marks (Thai) and for emoji: it only
    removes markup-shaped ASCII and controls, and normalises with NFC (never NFKC, which would
    rewrite Thai SARA AM and full-width forms). Each rule is gated by a cheap substring test
    because most real lines contain no junk at all.
    """
    s = text.strip()  # OIG segments start or end with the space or newline around a tag
    entities, tags, wiki, urls, unprintable, spaced = _junk_flags(s)
    changed = removed = False
    if entities:
        s = html.unescape(s)
        if "&" in s:  # doubly escaped (&amp;lt;) is common in scraped text
            s = html.unescape(s)
        _, tags, wiki, urls, _, _ = _junk_flags(s)  # unescaping can reveal "<" or "[["
        changed = True
    if tags:
        s = _HTML_BLOCK_RE.sub(" ", s)
        s = _ROLE_TAG_LOOSE_RE.sub(" ", s)
        s, n = _HTML_TAG_RE.subn(" ", s)
        removed = removed or n > 0  # "<b>Fuji</b>, a" leaves "Fuji , a" to tidy
        changed = True
    if wiki:
        s, n = _WIKI_EXTLINK_RE.subn(lambda m: m.group(1) or "", s)
        removed = removed or n > 0
        s = _WIKI_LINK_RE.sub(r"\1", s)
        for _ in range(3):  # nested templates, innermost first
            s, n = _WIKI_TEMPLATE_RE.subn("", s)
            removed = removed or n > 0
            if not n:
                break
        s = _WIKI_HEADING_RE.sub(r"\1", s)
        s = _WIKI_EMPHASIS_RE.sub("", s)
        changed = True
    if urls:
        s, n = _URL_RE.subn("", s)
        removed = removed or n > 0
        changed = True
    if changed:
        unprintable = not s.isprintable()
    if unprintable:
        s = _CONTROL_RE.sub("", s)
    if not s.isascii():
        s = unicodedata.normalize("NFC", s)
    # One space everywhere: the template puts a Background or a turn on exactly one line.
    # split/join allocates a string per word, hence the checks first.
    if changed or unprintable or spaced:
        s = " ".join(s.split())
    if removed:
        # Repeat: removing "()" can leave a space before punctuation ("1930 ()." -> "1930 .").
        while True:
            tidied = " ".join(_AFTER_REMOVAL_RE.sub("", s).split())
            if tidied == s:
                break
            s = tidied
    return s
