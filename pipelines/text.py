"""Text rules shared by the stages: cleaning one string, and the key that finds duplicates."""

from __future__ import annotations

import html
import re
import unicodedata

_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9]*(\s[^<>]*)?/?\s*>")
_BREAK_TAG = re.compile(r"<\s*(br|p|div|li|tr|h[1-6])\b[^<>]*>", re.IGNORECASE)
# Zero-width and bidi marks are invisible but make equal texts differ.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad\u202a-\u202e]")
_SPACE = re.compile(r"\s+")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def _strip_control(text: str) -> str:
    # Keep tabs and newlines (folded later), drop the other C0/C1 control characters.
    return "".join(ch for ch in text if ch in "\t\n\r" or unicodedata.category(ch) != "Cc")


def clean_text(text: str, form: str = "NFKC", strip_html: bool = True) -> tuple[str, set[str]]:
    """Return the cleaned text and the set of rules that changed it."""
    changed: set[str] = set()
    out = text
    if strip_html and ("<" in out or "&" in out):
        stripped = _TAG.sub(" ", _BREAK_TAG.sub(" ", out))
        stripped = html.unescape(stripped)
        if stripped != out:
            changed.add("html_stripped")
        out = stripped
    normalized = unicodedata.normalize(form, out)
    if normalized != out:
        changed.add("unicode_normalized")
    out = normalized
    no_ctrl = _INVISIBLE.sub("", _strip_control(out))
    if no_ctrl != out:
        changed.add("control_chars_removed")
    out = no_ctrl
    folded = _SPACE.sub(" ", out).strip()
    if folded != out:
        changed.add("whitespace_folded")
    return folded, changed


def dedupe_key(text: str) -> str:
    """Normalised form under which two texts count as the same (case, punctuation, spacing)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _NON_WORD.sub(" ", text)).strip()
