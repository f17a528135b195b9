"""Text rules shared by the stages: cleaning one string, the key that finds duplicates, and the
class name a classification label stands for."""

from __future__ import annotations

import ast
import html
import json
import math
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
    """Normalised form under which two texts count as the same (case, punctuation, spacing).

    A text with no letters or digits (only emoji or punctuation, say) keeps its symbols: stripping
    them would give every such text the same empty key and make them all duplicates of one another.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    words = _SPACE.sub(" ", _NON_WORD.sub(" ", text)).strip()
    return words or _SPACE.sub(" ", text).strip()


# Brackets around a list, a tuple or an object (or a set) that reached a CSV cell as text:
# '["neg", "x"]', "{'y': 1}". Brackets alone do not make one: "[other]" and "{neutral}" are class
# names, so the text must also parse, as JSON or as a Python literal.
_BRACKETS = ("[]", "{}", "()")


def _written_collection(text: str) -> bool:
    if not any(text.startswith(o) and text.endswith(c) for o, c in _BRACKETS):
        return False
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        try:
            value = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return False
    return isinstance(value, (list, tuple, dict, set))


def label_text(value: object) -> str:
    """The class name a classification label stands for; ``""`` when the label is missing.

    Strings are stripped; integers, and floats without a fractional part (1.0 from a spreadsheet),
    become digits, so 1 and 1.0 are one class; true / false become "True" / "False". A value that
    is not one class raises ValueError naming it: a list or an object (several labels, or the
    wrong column), a list written as text, a fraction or an infinity (a score, not a class).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, int)):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value) or not value.is_integer():
            raise ValueError(f"the {'number' if math.isinf(value) else 'fraction'} {value:.6g}")
        return str(int(value))
    if isinstance(value, str):
        text = value.strip()
        if _written_collection(text):
            raise ValueError(f"the text {text[:40]!r}, a list or an object written as text")
        return text
    kind = "a list" if isinstance(value, (list, tuple)) else "an object" if isinstance(value, dict) else "a value"
    raise ValueError(f"{kind} {str(value)[:40]}")
