"""Builtin classification data: short product and service reviews labelled by overall sentiment.

Four labels: positive, negative, neutral (facts, questions, lukewarm remarks) and mixed (praise
and complaint about different aspects). The sentiment words are spread over many synonyms;
negation flips them ("not bad", "far from reliable"), intensifiers and hedges vary the wording,
and filler sentences, product words and a few comparison or "not" sentences are shared by every
class, so a model has to read the clause rather than spot a keyword. About 5 % of labels are
replaced by a wrong one, and the text is dirtied as scraped reviews are (see :mod:`.dirt`).
"""

from __future__ import annotations

import random

from pipelines.data import dirt

LABELS = ("positive", "negative", "neutral", "mixed")
LABEL_NOISE = 0.05  # share of rows whose label is replaced by a random wrong one

# domain -> (things reviewed, aspects of them). Aspects are singular nouns: "the X is ...".
DOMAINS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "phone": (("phone", "smartphone", "handset", "smartwatch"),
              ("battery", "screen", "camera", "speaker", "charger", "case", "fingerprint reader")),
    "computer": (("laptop", "notebook", "tablet", "monitor", "keyboard"),
                 ("display", "trackpad", "fan", "hinge", "battery life", "webcam", "build quality")),
    "hotel": (("hotel", "hostel", "guesthouse", "resort", "holiday flat"),
              ("room", "staff", "breakfast", "location", "bed", "pool", "reception", "view")),
    "restaurant": (("restaurant", "bistro", "café", "diner", "brasserie", "pizzeria"),
                   ("food", "service", "dessert", "wine list", "crème brûlée", "entrée", "waiter", "menu", "rosé")),
    "film": (("film", "movie", "documentary", "series", "sequel"),
             ("plot", "acting", "soundtrack", "ending", "dialogue", "pacing", "cinematography")),
    "book": (("book", "novel", "memoir", "cookbook", "biography"),
             ("story", "prose", "cover", "translation", "ending", "main character", "index")),
    "kitchen": (("blender", "kettle", "toaster", "coffee machine", "microwave", "rice cooker", "crêpe maker"),
                ("motor", "lid", "handle", "timer", "design", "power cable", "display")),
    "audio": (("headset", "speaker", "soundbar", "turntable", "radio"),
              ("sound", "bass", "microphone", "volume control", "app", "remote", "connection")),
    "outdoor": (("tent", "backpack", "rain jacket", "sleeping bag", "bike helmet"),
                ("zip", "fabric", "strap", "hood", "lining", "fit", "stitching")),
    "service": (("courier", "bank", "gym", "airline", "internet provider", "car rental"),
                ("app", "support team", "refund process", "price", "website", "check-in", "contract")),
}

POSITIVE = ("great", "excellent", "fantastic", "superb", "wonderful", "solid", "reliable", "impressive",
            "lovely", "outstanding", "brilliant", "sturdy", "comfortable", "delightful", "flawless",
            "terrific", "top-notch", "first-rate", "stellar", "charming", "well made", "fabulous",
            "superior", "marvellous", "spot on", "smooth", "pleasant")
NEGATIVE = ("terrible", "awful", "disappointing", "flimsy", "poor", "dreadful", "useless", "faulty",
            "unreliable", "overpriced", "clunky", "noisy", "frustrating", "broken", "horrible", "sloppy",
            "subpar", "shoddy", "dire", "mediocre", "appalling", "atrocious", "lousy", "cheap-feeling",
            "defective", "annoying", "sluggish", "clichéd", "naïve")
LUKEWARM = ("average", "okay", "standard", "ordinary", "unremarkable", "acceptable", "adequate",
            "as described", "as expected", "middle of the road", "passable", "fine, I guess")
INTENSIFIERS = ("very", "really", "extremely", "incredibly", "truly", "remarkably", "absolutely", "quite",
                "pretty", "rather", "genuinely", "so", "seriously", "surprisingly", "")
SOFT_INTENSIFIERS = ("very", "particularly", "exactly", "that", "all that", "especially", "")
COPULAS = ("is", "was", "seems", "feels", "turned out to be", "has been", "looks", "is honestly")
NEG_COPULAS = ("is not", "isn't", "was not", "wasn't", "is far from", "was anything but", "is never",
               "has never been", "did not seem", "doesn't feel", "is hardly")
CONTRASTS = (" but ", ", but ", "; however, ", ", although ", " - on the other hand, ", ", yet ",
             ", though ", ". Still, ", ". Then again, ", ", whereas ")
LIKE = ("I love", "I adore", "I really like", "we enjoyed", "I can't fault", "I appreciate", "I'm a fan of",
        "my family loves", "I was impressed by")
DISLIKE = ("I hate", "I can't stand", "I was let down by", "I regret trusting", "we were annoyed by",
           "I'm unhappy with", "I gave up on", "my family dislikes", "I was disappointed by")
PRAISE = ("worth every penny", "would buy again", "highly recommended", "it exceeded my expectations",
          "five stars from me", "no complaints so far", "a pleasant surprise", "best purchase this year",
          "it does everything I hoped", "ten out of ten", "I will be back", "money well spent")
COMPLAINT = ("a waste of money", "would not buy again", "it stopped working after a week", "avoid at all costs",
             "one star", "I returned it the next day", "never again", "I want a refund",
             "it fell apart within a month", "save your money", "I will not be back", "a complete letdown")
SHRUG = ("nothing special, nothing terrible", "it does what it says", "it is what it is",
         "neither good nor bad", "no strong feelings either way", "it works", "can't say much more",
         "time will tell", "we will see how it holds up")
TIMES = ("last week", "in March", "a month ago", "yesterday", "for Christmas", "on sale", "in the spring",
         "two weeks ago", "for my birthday", "during the summer", "on Friday", "after a long search")
RELATIVES = ("mum", "dad", "son", "daughter", "partner", "flatmate", "grandmother", "colleague", "neighbour",
             "fiancée", "fiancé")
# where it was bought or used; accented names are common in real reviews and matter for Unicode cleaning
TOWNS = ("Málaga", "Zürich", "Kraków", "Montréal", "São Paulo", "Besançon", "Malmö", "Reykjavík", "town", "Leeds")
COLOURS = ("black", "white", "grey", "navy", "red", "green", "silver", "beige", "blue")
# domains whose items have colours and weights and are bought; the rest are places, media or services
PHYSICAL = ("phone", "computer", "kitchen", "audio", "outdoor")
USED = {"hotel": "stayed at", "restaurant": "went to", "film": "watched", "book": "read", "service": "used"}
EMOTICONS = {"positive": (" :)", " :-)", "!!", " <3"), "negative": (" :(", " :-(", "!!", " >:(")}


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _phrase(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _aspect_np(rng: random.Random, item: str, aspect: str) -> str:
    return rng.choice((f"the {aspect}", f"the {aspect}", f"its {aspect}", f"the {aspect} of this {item}",
                       f"the {item}'s {aspect}", f"the {aspect} of the {item}"))


def _praise_clause(rng: random.Random, item: str, aspect: str) -> str:
    """A clause that praises ``aspect``: positive words, or a negated complaint."""
    np = _aspect_np(rng, item, aspect)
    kind = rng.random()
    if kind < 0.45:
        return _phrase(np, rng.choice(COPULAS), rng.choice(INTENSIFIERS), rng.choice(POSITIVE))
    if kind < 0.65:  # negation of a complaint reads as praise
        cop = rng.choice(NEG_COPULAS)
        at_all = "at all" if cop in ("is not", "isn't", "was not", "wasn't") and rng.random() < 0.3 else ""
        return _phrase(np, cop, rng.choice(NEGATIVE), at_all)
    if kind < 0.85:
        return _phrase(rng.choice(LIKE), np)
    return rng.choice(PRAISE) + rng.choice(("", f" for the {aspect}"))


def _complaint_clause(rng: random.Random, item: str, aspect: str) -> str:
    """A clause that criticises ``aspect``: negative words, or negated praise."""
    np = _aspect_np(rng, item, aspect)
    kind = rng.random()
    if kind < 0.45:
        return _phrase(np, rng.choice(COPULAS), rng.choice(INTENSIFIERS), rng.choice(NEGATIVE))
    if kind < 0.65:  # "not that great" is a complaint
        return _phrase(np, rng.choice(NEG_COPULAS), rng.choice(SOFT_INTENSIFIERS), rng.choice(POSITIVE))
    if kind < 0.85:
        return _phrase(rng.choice(DISLIKE), np)
    return rng.choice(COMPLAINT)


def _neutral_sentence(rng: random.Random, item: str, aspect: str, domain: str) -> str:
    """Facts, questions and lukewarm remarks; also used as filler in the other classes."""
    n = rng.randint(2, 30)
    if domain not in PHYSICAL:
        verb = USED[domain]
        return rng.choice((
            f"I {verb} the {item} {rng.choice(TIMES)}",
            f"we {verb} this {item} {rng.choice(TIMES)}",
            f"we {verb} this {item} in {rng.choice(TOWNS)}",
            f"my {rng.choice(RELATIVES)} {verb} the {item} first",
            f"does anyone know if the {aspect} has changed?",
            f"I have been a customer for {n} months" if domain == "service" else f"it was my first time, {n} of us",
            f"the {aspect} is {rng.choice(LUKEWARM)}",
            f"it is an {rng.choice(('average', 'ordinary', 'unremarkable'))} {item}",
            f"the {item} {rng.choice(('is', 'was'))} {rng.choice(LUKEWARM)}",
            rng.choice(SHRUG),
            f"the {aspect} was as described, {rng.choice(SHRUG)}",
            f"I am not sure yet what to think of the {aspect}",
            f"I did not expect to write a review of {_a(item)}",
        ))
    if rng.random() < 0.25:
        c1, c2 = rng.sample(COLOURS, 2)
        return rng.choice((f"it comes in {c1} and {c2}", f"the {aspect} is {c1}", f"I picked the {c1} {item}",
                           f"the {item} weighs about {n * 100} grams", f"the {item} arrived {rng.choice(TIMES)}",
                           f"I was not sure about the {c1} one"))
    return rng.choice((
        f"I bought the {item} {rng.choice(TIMES)}",
        f"I bought it in {rng.choice(TOWNS)}",
        f"I tried the {item} {rng.choice(TIMES)}",
        f"I have used the {item} for {n} days",
        f"we got it for my {rng.choice(RELATIVES)}",
        f"does anyone know if the {aspect} can be replaced?",
        f"has anyone else tried the {aspect} with an older {item}?",
        f"the {aspect} is {rng.choice(LUKEWARM)}",
        f"it is an {rng.choice(('average', 'ordinary', 'unremarkable'))} {item}",
        f"the {item} {rng.choice(('is', 'was'))} {rng.choice(LUKEWARM)}",
        rng.choice(SHRUG),
        f"the {aspect} works as described, {rng.choice(SHRUG)}",
        f"I paid {n * 5} euros for the {item}",
        f"it replaced the {item} I had for {n} years",
        f"I am not sure yet what to think of the {aspect}",
        f"I did not expect to write a review of {_a(item)}",
    ))


def _distractor(rng: random.Random, item: str) -> str:
    """A sentence with sentiment words that are not about this product (any class can hold one)."""
    return rng.choice((
        f"my old {item} was {rng.choice(POSITIVE + NEGATIVE)}",
        f"my {rng.choice(RELATIVES)} said it was {rng.choice(POSITIVE + NEGATIVE)}",
        f"I had read some {rng.choice(('good', 'bad', 'mixed', 'glowing', 'angry'))} reviews online",
        f"the weather was {rng.choice(('awful', 'lovely', 'terrible', 'great'))} that day",
    ))


def review(label: str, rng: random.Random) -> str:
    """One review whose overall sentiment is ``label``."""
    domain = rng.choice(sorted(DOMAINS))
    items, aspects = DOMAINS[domain]
    item = rng.choice(items)
    a1, a2 = rng.sample(aspects, 2)
    if label == "positive":
        core = [_praise_clause(rng, item, a1)]
        if rng.random() < 0.4:
            core.append(_praise_clause(rng, item, a2))
    elif label == "negative":
        core = [_complaint_clause(rng, item, a1)]
        if rng.random() < 0.4:
            core.append(_complaint_clause(rng, item, a2))
    elif label == "mixed":
        good, bad = _praise_clause(rng, item, a1), _complaint_clause(rng, item, a2)
        first, second = (good, bad) if rng.random() < 0.5 else (bad, good)
        core = [first + rng.choice(CONTRASTS) + second]
    else:
        core = [_neutral_sentence(rng, item, a1, domain)]
        if rng.random() < 0.5:
            core.append(_neutral_sentence(rng, item, a2, domain))
    sentences = list(core)
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        sentences.insert(rng.randrange(len(sentences) + 1), _neutral_sentence(rng, item, rng.choice(aspects), domain))
    if rng.random() < 0.08:
        sentences.insert(0, _distractor(rng, item))
    text = " ".join(_finish(s, rng) for s in sentences)
    if label in EMOTICONS and rng.random() < 0.08:
        text = text.rstrip(".") + rng.choice(EMOTICONS[label])
    if rng.random() < 0.04:  # some people never use the shift key
        text = text.lower()
    return text


def _finish(sentence: str, rng: random.Random) -> str:
    sentence = sentence[0].upper() + sentence[1:]
    if sentence.endswith(("?", ".")):
        return sentence
    return sentence + rng.choice((".", ".", ".", "!"))


def generate(n: int, seed: int, label_noise: float = LABEL_NOISE, dirty: bool = True) -> list[dict]:
    """``n`` records ``{"text", "label"}``; the same (n, seed) gives the same records.

    Labels are balanced before noise. Label noise and dirt draw from their own random streams, so
    ``label_noise=0`` or ``dirty=False`` gives the same texts in the same order, only cleaner.
    """
    rng = random.Random(seed)
    base = n - dirt.duplicate_count(n) if dirty else n
    rows = [{"text": review(LABELS[i % len(LABELS)], rng), "label": LABELS[i % len(LABELS)]} for i in range(base)]
    rng.shuffle(rows)
    noise = random.Random(f"{seed}:label-noise")
    for row in rows:
        if noise.random() < label_noise:
            row["label"] = noise.choice([lab for lab in LABELS if lab != row["label"]])
    if dirty:
        rows = dirt.add_dirt(rows, random.Random(f"{seed}:dirt"), ["text"], duplicates=dirt.duplicate_count(n))
    return rows
