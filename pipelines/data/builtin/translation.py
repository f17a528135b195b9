"""Builtin translation data: English sentences and their German translations, from a small grammar.

The English side is a clause (subject, verb, object, optional place and time, four tenses,
negation) or two clauses joined by "because", "although", "and" or "says that". The German side
is rendered by rule, not looked up: grammatical gender, case (nominative subject, accusative or
dative object, dative after prepositions, "in dem" -> "im"), adjective endings after der-words,
ein-words and no article, weak masculine nouns ("den Jungen"), separable verbs ("ruft ... an"),
verb-second order with inversion after a fronted time or place ("Heute sieht der Mann den Hund"),
the verb bracket of the perfect and future, and verb-final subordinate clauses ("weil ... sieht").
A few pairs are then corrupted the way crawled parallel text is: an empty side, a side repeated
(implausible length ratio), an untranslated copy, and the shared dirt of :mod:`.dirt`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pipelines.data import dirt
from pipelines.data.builtin.translation_lexicon import (ADJECTIVE_LIST, CONJUNCTIONS, NOUN_LIST, SAY_VERBS, TENSES, TIMES,
                                                       VERB_LIST, Adj, Noun, Verb)

EMPTY_SIDE_RATE = 0.01  # a pair with one side missing
RATIO_RATE = 0.01  # a pair with one side repeated, far longer than the other
UNTRANSLATED_RATE = 0.005  # the target is a copy of the source, as in badly aligned web data


# --------------------------------------------------------------------------- German inflection
_CASE_ROW = {"nom": 0, "acc": 1, "dat": 2}
_COL = {"m": 0, "f": 1, "n": 2, "pl": 3}
DEFINITE = (("der", "die", "das", "die"), ("den", "die", "das", "die"), ("dem", "der", "dem", "den"))
DER_WORD_ENDINGS = (("er", "e", "es", "e"), ("en", "e", "es", "e"), ("em", "er", "em", "en"))  # dieser
EIN_WORD_ENDINGS = (("", "e", "", "e"), ("en", "e", "", "e"), ("em", "er", "em", "en"))  # ein, kein, mein
WEAK_ADJ = (("e", "e", "e", "en"), ("en", "e", "e", "en"), ("en", "en", "en", "en"))  # after der, dieser
MIXED_ADJ = (("er", "e", "es", "en"), ("en", "e", "es", "en"), ("en", "en", "en", "en"))  # after ein-words
STRONG_ADJ = (("er", "e", "es", "e"), ("en", "e", "es", "e"), ("em", "er", "em", "en"))  # no article
CONTRACTIONS = {("in", "dem"): "im", ("an", "dem"): "am"}

# determiner -> (English singular, English plural, German stem, kind of German determiner)
DETERMINERS = {
    "the": ("the", "the", "", "def"),
    "a": ("a", "", "ein", "ein"),
    "this": ("this", "these", "dies", "der_word"),
    "my": ("my", "my", "mein", "ein"),
    "our": ("our", "our", "unser", "ein"),
    "his": ("his", "his", "sein", "ein"),
    "her": ("her", "her", "ihr", "ein"),
    "no": ("a", "any", "kein", "ein"),  # only under negation: "does not see a dog" -> "sieht keinen Hund"
    "bare": ("", "", "", "none"),  # plural or mass noun without article: "dogs", "milk"
}


@dataclass(frozen=True)
class NP:
    noun: Noun
    det: str = "the"  # a key of DETERMINERS
    adj: Adj | None = None
    plural: bool = False


def np_de(np: NP, case: str) -> str:
    """The German noun phrase in ``case``: "den großen Hund", "einem alten Mann", "kalte Milch"."""
    col = _COL["pl" if np.plural else np.noun.gender]
    row = _CASE_ROW[case]
    _, _, stem, kind = DETERMINERS[np.det]
    if kind == "def":
        article, adj_endings = DEFINITE[row][col], WEAK_ADJ
    elif kind == "der_word":
        article, adj_endings = stem + DER_WORD_ENDINGS[row][col], WEAK_ADJ
    elif kind == "ein":
        article, adj_endings = stem + EIN_WORD_ENDINGS[row][col], MIXED_ADJ
        if stem == "unser" and EIN_WORD_ENDINGS[row][col].startswith("e"):
            article = "unser" + EIN_WORD_ENDINGS[row][col]  # unsere, unseren (not unsre)
    else:
        article, adj_endings = "", STRONG_ADJ
    adj = ""
    if np.adj:
        ending = adj_endings[row][col]
        # müde + e -> müde, müde + en -> müden
        adj = np.adj.de + (ending[1:] if np.adj.de.endswith("e") and ending.startswith("e") else ending)
    return " ".join(w for w in (article, adj, np.noun.de_form(case, np.plural)) if w)


def pp_de(prep: str, np: NP) -> str:
    """A German dative prepositional phrase, contracting "in dem" to "im" and "an dem" to "am"."""
    phrase = np_de(np, "dat")
    first, _, rest = phrase.partition(" ")
    short = CONTRACTIONS.get((prep, first)) if np.det == "the" else None
    return f"{short} {rest}" if short else f"{prep} {phrase}"


# --------------------------------------------------------------------------- English
def _indefinite(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def np_en(np: NP) -> str:
    sg, pl, _, _ = DETERMINERS[np.det]
    if np.det == "no" and np.noun.mass:
        sg = "any"  # "does not drink any milk"
    noun = np.noun.en_pl if np.plural else np.noun.en
    words = [w for w in ((pl if np.plural else sg), np.adj.en if np.adj else "", noun) if w]
    if words[0] == "a":
        words[0] = _indefinite(words[1])
    return " ".join(words)


# --------------------------------------------------------------------------- clauses
@dataclass(frozen=True)
class Clause:
    subj: NP
    verb: Verb
    obj: NP
    tense: str = "pres"
    negated: bool = False  # rendered with "no" as the object's determiner: "keinen Hund"
    place: tuple[str, str, NP] | None = None  # English preposition, German preposition, noun phrase
    time: tuple[str, str] | None = None  # English, German
    front: str = "subj"  # what opens a main clause: subj, time or place


def _en_verb(c: Clause) -> str:
    base, sg3, past, pp = c.verb.en
    pl = c.subj.plural
    if c.negated:
        return {"pres": f"{'do' if pl else 'does'} not {base}", "past": f"did not {base}",
                "perf": f"{'have' if pl else 'has'} not {pp}", "fut": f"will not {base}"}[c.tense]
    return {"pres": base if pl else sg3, "past": past, "perf": f"{'have' if pl else 'has'} {pp}",
            "fut": f"will {base}"}[c.tense]


def clause_en(c: Clause, main: bool = True) -> str:
    """The English clause, with a fronted time or place in a main clause ("Yesterday, the man saw ...")."""
    place = f"{c.place[0]} {np_en(c.place[2])}" if c.place else ""
    time = c.time[0] if c.time else ""
    core = [np_en(c.subj), _en_verb(c), np_en(c.obj)]
    if main and c.front == "time" and time:
        return f"{time} " + " ".join(core + [place]).strip()
    if main and c.front == "place" and place:
        return f"{place}, " + " ".join(core + [time]).strip()
    return " ".join(w for w in core + [place, time] if w)


def _de_parts(c: Clause) -> tuple[str, str, str, str]:
    """Subject, time, object, place: the German middle field in its neutral order (time before place)."""
    obj = np_de(c.obj, c.verb.case)
    place = pp_de(c.place[1], c.place[2]) if c.place else ""
    time = c.time[1] if c.time else ""
    return np_de(c.subj, "nom"), time, obj, place


def clause_de_main(c: Clause) -> str:
    """German main clause, verb second: "Heute ruft die Frau den Arzt an"."""
    subj, time, obj, place = _de_parts(c)
    finite = c.verb.finite(c.tense, c.subj.plural)
    end = c.verb.nonfinite(c.tense)
    if c.front == "time" and time:
        first, middle = time, [subj, obj, place]
    elif c.front == "place" and place:
        first, middle = place, [subj, time, obj]
    else:
        first, middle = subj, [time, obj, place]
    return " ".join(w for w in [first, finite, *middle, end] if w)


def clause_de_sub(c: Clause, conj: str) -> str:
    """German subordinate clause, verb last: "weil die Frau heute den Arzt anruft"."""
    subj, time, obj, place = _de_parts(c)
    v, pl = c.verb, c.subj.plural
    if c.tense in ("pres", "past"):
        cluster = v.prefix + v.finite(c.tense, pl)
    else:
        cluster = f"{v.nonfinite(c.tense)} {v.finite(c.tense, pl)}"
    return " ".join(w for w in [conj, subj, time, obj, place, cluster] if w)


def clause_de_verb_first(c: Clause) -> str:
    """German main clause after a fronted subordinate clause: the finite verb opens it."""
    subj, time, obj, place = _de_parts(c)
    words = [c.verb.finite(c.tense, c.subj.plural), subj, time, obj, place, c.verb.nonfinite(c.tense)]
    return " ".join(w for w in words if w)


def _cap(s: str) -> str:
    return s[0].upper() + s[1:] if s else s


# --------------------------------------------------------------------------- random choices
def _fits(tags: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    return any(t in wanted for t in tags)


_NOUNS_BY_TAG: dict[str, list[Noun]] = {}
for _noun in NOUN_LIST:
    for _tag in _noun.tags:
        _NOUNS_BY_TAG.setdefault(_tag, []).append(_noun)
PLACE_NOUNS = [n for n in NOUN_LIST if n.places]


def _pick_noun(rng: random.Random, wanted: tuple[str, ...], avoid: Noun | None = None) -> Noun:
    pool = [n for tag in wanted for n in _NOUNS_BY_TAG.get(tag, ()) if n is not avoid]
    return rng.choice(pool)


def _pick_np(rng: random.Random, noun: Noun, role: str, negated: bool = False) -> NP:
    """A determiner, maybe an adjective, and a number for ``noun``; ``role`` is subj, obj, place or with."""
    plural = not noun.mass and role != "place" and rng.random() < 0.3
    possessive = rng.random() < 0.15
    if negated:
        det = "no"
    elif possessive:
        det = rng.choice(("my", "our", "his", "her"))
    elif noun.mass:
        det = rng.choice(("the", "this", "bare", "bare"))
    elif plural:
        det = rng.choice(("the", "the", "this", "bare", "bare"))
    else:
        det = rng.choice(("the", "the", "the", "a", "a", "this"))
    if role == "place" and det == "a" and rng.random() < 0.5:
        det = "the"  # places are mostly known ones: "im Park" more often than "in einem Park"
    adj = None
    if rng.random() < 0.4:
        fitting = [a for a in ADJECTIVE_LIST if _fits(noun.tags, a.tags)]
        adj = rng.choice(fitting) if fitting else None
    return NP(noun, det, adj, plural)


def random_clause(rng: random.Random, main: bool = True) -> Clause:
    verb = rng.choice(VERB_LIST)
    subj_noun = _pick_noun(rng, verb.subj)
    obj_noun = _pick_noun(rng, verb.obj, avoid=subj_noun)
    tense = rng.choice(TENSES)
    # Negation as "kein" needs an indefinite object: "sieht keinen Hund" but "sieht den Hund nicht".
    negated = rng.random() < 0.15
    subj = _pick_np(rng, subj_noun, "subj")
    obj = _pick_np(rng, obj_noun, "obj", negated)
    place = None
    r = rng.random()
    if r < 0.3:
        noun = rng.choice([n for n in PLACE_NOUNS if n is not obj_noun and n is not subj_noun])
        en_prep, de_prep = rng.choice(noun.places)
        place = (en_prep, de_prep, _pick_np(rng, noun, "place"))
    elif r < 0.38:
        noun = _pick_noun(rng, ("person", "animal", "tool"), avoid=subj_noun)
        place = ("with", "mit", _pick_np(rng, noun, "with"))
    time = None
    if rng.random() < 0.4:
        en, de, tenses = rng.choice([t for t in TIMES if tense in t[2]])
        time = (en, de)
    fronts = ["subj", "subj"] + (["time", "time"] if time else []) + (["place"] if place and main else [])
    return Clause(subj, verb, obj, tense, negated, place, time, rng.choice(fronts))


def random_pair(rng: random.Random) -> tuple[str, str]:
    """One English sentence and its German translation."""
    kind = rng.random()
    if kind < 0.65:
        c = random_clause(rng)
        return _cap(clause_en(c)) + ".", _cap(clause_de_main(c)) + "."
    if kind < 0.8:  # "..., weil ... sieht" or "Weil ... sieht, sieht ..."
        main, sub = random_clause(rng), random_clause(rng, main=False)
        en_conj, de_conj = rng.choice(CONJUNCTIONS)
        if rng.random() < 0.6:
            en = f"{clause_en(main)} {en_conj} {clause_en(sub, main=False)}"
            de = f"{clause_de_main(main)}, {clause_de_sub(sub, de_conj)}"
        else:  # the subordinate clause takes the first position, so the main verb comes right after it
            en = f"{en_conj} {clause_en(sub, main=False)}, {clause_en(main, main=False)}"
            de = f"{clause_de_sub(sub, de_conj)}, {clause_de_verb_first(main)}"
        return _cap(en) + ".", _cap(de) + "."
    if kind < 0.9:  # "The woman says that the man sees the dog."
        speaker = _pick_np(rng, _pick_noun(rng, ("person",)), "subj")
        (en3, enpl, enpast), (de3, depl, depast) = rng.choice(SAY_VERBS)
        past = rng.random() < 0.4
        en_say = enpast if past else (enpl if speaker.plural else en3)
        de_say = (depast + ("n" if depast.endswith("e") else "en") if speaker.plural else depast) if past else (
            depl if speaker.plural else de3)
        sub = random_clause(rng, main=False)
        that = " that" if rng.random() < 0.6 else ""
        en = f"{np_en(speaker)} {en_say}{that} {clause_en(sub, main=False)}"
        de = f"{np_de(speaker, 'nom')} {de_say}, {clause_de_sub(sub, 'dass')}"
        return _cap(en) + ".", _cap(de) + "."
    a, b = random_clause(rng), random_clause(rng)
    return f"{_cap(clause_en(a))} and {clause_en(b)}.", f"{_cap(clause_de_main(a))}, und {clause_de_main(b)}."


# --------------------------------------------------------------------------- corruption and entry point
def _corrupt_pairs(rows: list[dict], rng: random.Random) -> None:
    """Empty sides, repeated sides and untranslated copies, in place, as crawled parallel data has."""
    for row in rows:
        r = rng.random()
        if r < EMPTY_SIDE_RATE:
            row[rng.choice(("source", "target"))] = rng.choice(("", " ", "\n"))
        elif r < EMPTY_SIDE_RATE + RATIO_RATE:
            side = rng.choice(("source", "target"))
            row[side] = " ".join([row[side]] * 6)
        elif r < EMPTY_SIDE_RATE + RATIO_RATE + UNTRANSLATED_RATE:
            row["target"] = row["source"]


def generate(n: int, seed: int, dirty: bool = True) -> list[dict]:
    """``n`` records ``{"source": English, "target": German}``; the same (n, seed) gives the same records.

    ``dirty=False`` gives the same pairs without corruption (corruption draws from its own stream).
    """
    rng = random.Random(seed)
    base = n - dirt.duplicate_count(n) if dirty else n
    rows = []
    for _ in range(base):
        en, de = random_pair(rng)
        rows.append({"source": en, "target": de})
    if dirty:
        noise = random.Random(f"{seed}:pairs")
        _corrupt_pairs(rows, noise)
        rows = dirt.add_dirt(rows, random.Random(f"{seed}:dirt"), ["source", "target"],
                             duplicates=dirt.duplicate_count(n), overlong_chars=400)
    return rows
