"""Make generated text dirty the way scraped text is, deterministically from a ``random.Random``.

Every mutation here is one a real crawl produces and one the clean stage has to undo or drop:
HTML fragments and entities, control and zero-width characters, non-breaking spaces, decomposed
(non-NFC) accents, runs of whitespace, empty fields, overlong rows, exact and near duplicates.
The builtin generators share them so that all three projects exercise the same clean rules.
"""

from __future__ import annotations

import random
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence

DIRT_RATE = 0.08  # share of rows that get a mutation; about what a light scrape shows
DUPLICATE_RATE = 0.03  # extra rows that repeat another one, exactly or up to case and spacing
SECOND_MUTATION = 0.15  # share of mutated rows that get a second one (layered dirt is common)

_CONTROL = "\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85"
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_SPACE_RUNS = ("  ", "   ", " \t ", "\t", " \n ", "\n\n", "  \r\n ")
_EMPTY = ("", " ", "   ", "\n", "\t \n", "<p></p>", "<br/>", "&nbsp;")


def _space_positions(text: str) -> list[int]:
    return [i for i, ch in enumerate(text) if ch == " "]


def html_fragment(text: str, rng: random.Random) -> str:
    """Wrap in a paragraph, break a line, bold a word or escape an ampersand, as a CMS export does."""
    kind = rng.randrange(5)
    words = text.split(" ")
    if kind == 0:
        return f"<p>{text}</p>"
    if kind == 1 and len(words) > 2:
        i = rng.randrange(1, len(words))
        return " ".join(words[:i]) + rng.choice(("<br/>", "<br>", "<br />")) + " ".join(words[i:])
    if kind == 2 and len(words) > 1:
        i = rng.randrange(len(words))
        words[i] = f"<b>{words[i]}</b>"
        return " ".join(words)
    if kind == 3 and " and " in text:
        return text.replace(" and ", " &amp; ", 1)
    # The quotes survive clean as plain quotes, as they would on a real page.
    return f'<div class="review"><p>{text}</p>&nbsp;</div>' if rng.random() < 0.5 else f"&quot;{text}&quot;"


def invisible_chars(text: str, rng: random.Random) -> str:
    """Insert control characters or zero-width marks, inside words as well as between them."""
    chars = list(text)
    pool = _CONTROL if rng.random() < 0.5 else _INVISIBLE
    for _ in range(rng.randint(1, 3)):
        chars.insert(rng.randrange(len(chars) + 1), rng.choice(pool))
    return "".join(chars)


def non_breaking_spaces(text: str, rng: random.Random) -> str:
    """Replace some spaces with U+00A0 (or the narrow U+202F) as word processors do."""
    chars = list(text)
    for i in _space_positions(text):
        if rng.random() < 0.4:
            chars[i] = rng.choice(("\u00a0", "\u00a0", "\u202f"))
    return "".join(chars)


def decomposed(text: str, rng: random.Random) -> str:
    """Decompose accented letters (e + U+0301 instead of é), as macOS file names and some feeds do."""
    return unicodedata.normalize("NFD", text)


def whitespace_runs(text: str, rng: random.Random) -> str:
    """Runs of spaces, tabs and newlines between words and around the text."""
    chars = list(text)
    for i in _space_positions(text):
        if rng.random() < 0.3:
            chars[i] = rng.choice(_SPACE_RUNS)
    out = "".join(chars)
    if rng.random() < 0.5:
        out = rng.choice(("\n", "  ", "\t")) + out + rng.choice(("\n", " \n\n", "   "))
    return out


def emptied(text: str, rng: random.Random) -> str:
    """A field that lost its content: empty, whitespace only, or markup only."""
    return rng.choice(_EMPTY)


def overlong(text: str, rng: random.Random, min_chars: int = 2000) -> str:
    """The text repeated past ``min_chars``, as a scraper that swallowed a whole page produces."""
    unit = text.strip() or "lorem ipsum"
    sep = rng.choice((" ", "\n", " | "))
    reps = min_chars // (len(unit) + len(sep)) + 2
    return sep.join([unit] * reps)


def near_duplicate(text: str, rng: random.Random) -> str:
    """The same text up to case, spacing or final punctuation; ``dedupe_key`` maps both to one key."""
    kind = rng.randrange(4)
    if kind == 0:
        return text.lower() if rng.random() < 0.5 else text.upper()
    if kind == 1:
        return " ".join(w.capitalize() for w in text.split(" "))
    if kind == 2:
        return "  " + text.replace(" ", "  ", 2) + " "
    return text.rstrip(".!") + rng.choice(("", "!", " .", "..."))


# name, function, weight. Empty and overlong rows are dropped by clean, the others repaired.
MUTATIONS: tuple[tuple[str, Callable[[str, random.Random], str], int], ...] = (
    ("html", html_fragment, 30),
    ("invisible", invisible_chars, 16),
    ("nbsp", non_breaking_spaces, 10),
    ("non_nfc", decomposed, 12),
    ("whitespace", whitespace_runs, 16),
    ("empty", emptied, 9),
    ("overlong", overlong, 7),
)
_TERMINAL = {"empty", "overlong"}


def duplicate_count(n: int, rate: float = DUPLICATE_RATE) -> int:
    """Duplicates to add to reach ``n`` rows; generators make ``n - duplicate_count(n)`` originals."""
    return round(n * rate)


def mutate(text: str, rng: random.Random, overlong_chars: int = 2000) -> tuple[str, list[str]]:
    """Apply one mutation (sometimes two) that changes ``text``; return the text and the names applied."""
    names, funcs, weights = zip(*MUTATIONS)
    applied: list[str] = []
    out = text
    for _ in range(2 if rng.random() < SECOND_MUTATION else 1):
        # A mutation can be a no-op (no accent to decompose, no space to widen): draw again.
        for _attempt in range(6):
            i = rng.choices(range(len(names)), weights=weights)[0]
            if applied and names[i] in _TERMINAL:
                continue
            fn = funcs[i]
            new = overlong(out, rng, overlong_chars) if names[i] == "overlong" else fn(out, rng)
            if new != out:
                out = new
                applied.append(names[i])
                break
        if applied and applied[-1] in _TERMINAL:
            break
    return out, applied


def add_dirt(
    records: Sequence[dict],
    rng: random.Random,
    fields: Sequence[str],
    rate: float = DIRT_RATE,
    duplicates: int | None = None,
    overlong_chars: int = 2000,
    counts: Counter | None = None,
) -> list[dict]:
    """Return copies of ``records`` with ~``rate`` of rows mutated in one of ``fields`` and duplicates
    inserted at random places (``duplicates``, default ``duplicate_count(len(records))``).

    Field names are kept; fields not named are never touched (a label stays a label). Near duplicates
    change only ``fields[0]``, the field clean deduplicates on. ``counts``, if given, receives how
    often each mutation was applied.
    """
    counts = counts if counts is not None else Counter()
    out = [dict(r) for r in records]
    for rec in out:
        if rng.random() >= rate:
            continue
        field = rng.choice(list(fields))
        rec[field], applied = mutate(str(rec[field]), rng, overlong_chars)
        counts.update(applied)
    n_dup = duplicate_count(len(records)) if duplicates is None else duplicates
    for _ in range(n_dup if out else 0):
        copy = dict(rng.choice(out))
        if rng.random() < 0.5:
            copy[fields[0]] = near_duplicate(str(copy[fields[0]]), rng)
            counts["duplicate_near"] += 1
        else:
            counts["duplicate_exact"] += 1
        out.insert(rng.randrange(len(out) + 1), copy)
    return out
