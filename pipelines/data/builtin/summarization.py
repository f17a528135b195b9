"""Builtin summarization data: short news items and office e-mails with a subject-line summary.

Each document (5 to 9 sentences) reports one event. Its facts are spread over several sentences:
who did what in one, where in another (which says "the company", "the museum", never the name),
when or how it ended in a third. Distractor sentences mention other organisations, places and
days, so the summary ("Acme Corp opens new office in Lyon on Monday") has to be put together from
the right sentences rather than copied from one. Twelve kinds of event, each with several
wordings, keep the vocabulary varied. The shared dirt of :mod:`.dirt` is then applied.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pipelines.data import dirt

MIN_SENTENCES, MAX_SENTENCES = 5, 9

ORG_STEMS = ("Acme", "Northwind", "Brightwater", "Globex", "Initech", "Veridian", "Halcyon", "Bluepeak",
             "Ironbridge", "Quantix", "Lumen", "Orchard", "Redwood", "Silverline", "Crestview", "Nimbus",
             "Arcadia", "Kestrel", "Meridian", "Sable", "Tidewater", "Vantage", "Corvid", "Elmstead",
             "Fjordline", "Granite", "Helix", "Juniper", "Larkspur", "Mosaic", "Novabright", "Pinecrest")
ORG_KINDS = ("Corp", "Labs", "Group", "Logistics", "Foods", "Energy", "Motors", "Bank", "Systems", "Pharma",
             "Airlines", "Telecom", "Retail", "Robotics", "Textiles", "Insurance", "Media", "Analytics")
CITIES = ("Lyon", "Porto", "Málaga", "Zürich", "Kraków", "Gdańsk", "Rotterdam", "Leipzig", "Turin", "Bilbao",
          "Aarhus", "Tampere", "Ghent", "Brno", "Graz", "Cork", "Göteborg", "Malmö", "Reykjavík", "Córdoba",
          "São Paulo", "Montréal", "Osaka", "Busan", "Austin", "Denver", "Leeds", "Glasgow", "Bordeaux",
          "Toulouse", "Valencia", "Bologna", "Seville", "Utrecht", "Tallinn", "Riga", "Vilnius", "Ljubljana",
          "Nantes", "Lille", "Hamburg", "Dresden", "Salzburg", "Innsbruck", "Bergen", "Lausanne", "Antwerp")
COUNTRIES = ("France", "Portugal", "Spain", "Poland", "Germany", "Italy", "Denmark", "Finland", "Belgium",
             "Austria", "Ireland", "Sweden", "Norway", "Canada", "Japan", "Brazil", "Estonia", "Slovenia")
DISTRICTS = ("harbour", "old town", "university", "riverside", "business", "northern", "station", "market")
FIRST = ("Ana", "Lukas", "Priya", "Tomás", "Ingrid", "Kwame", "Mei", "Jonas", "Fatima", "Oliver", "Sofia",
         "Mateo", "Hannah", "Yusuf", "Elena", "Noah", "Chloé", "Rafael", "Aisha", "Henrik", "Zoë", "Daniel",
         "Leila", "Marco", "Nadia", "Pavel", "Greta", "Samuel", "Irene", "Viktor")
LAST = ("Costa", "Berger", "Nair", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Kowalski", "Haddad", "Schmidt",
        "Rossi", "Fernández", "Novak", "Jensen", "Dubois", "Petrov", "Walsh", "Yilmaz", "Andersen", "Mendes",
        "Larsen", "Keller", "Brennan", "Horvat", "Silva", "Varga", "Ivanova", "Dunne", "Müller", "Sato")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
FACILITIES = ("office", "store", "factory", "research lab", "warehouse", "data centre", "training centre",
              "distribution hub", "clinic", "design studio")
ROLES = ("chief executive", "finance director", "head of research", "chief operating officer",
         "head of sales", "chief technology officer")
SPOKES = ("a spokesperson", "a company spokesperson", "a press officer", "a representative")
SECTORS = ("retail", "energy", "logistics", "software", "food", "travel", "banking", "housing")


@dataclass
class Example:
    """One generated item with the facts its summary is built from."""

    document: str
    summary: str
    entity: str
    place: str
    kind: str
    sentences: list[str] = field(default_factory=list)


class _World:
    """Names drawn for one example, none reused, so distractors never share the event's facts."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()

    def _fresh(self, make) -> str:
        for _ in range(200):
            value = make()
            if not any(value in u or u in value for u in self.used):
                break
        # after 200 draws the pool is spent; a repeat then is rarer than an endless loop is bad
        self.used.add(value)
        return value

    def org(self) -> str:
        return self._fresh(lambda: f"{self.rng.choice(ORG_STEMS)} {self.rng.choice(ORG_KINDS)}")

    def city(self) -> str:
        return self._fresh(lambda: self.rng.choice(CITIES))

    def country(self) -> str:
        return self._fresh(lambda: self.rng.choice(COUNTRIES))

    def person(self) -> str:
        return self._fresh(lambda: f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}")

    def day(self) -> str:
        """A weekday or a date: "Monday", "14 March"."""
        rng = self.rng
        return self._fresh(lambda: rng.choice(DAYS) if rng.random() < 0.6
                           else f"{rng.randint(1, 28)} {rng.choice(MONTHS)}")

    def month(self) -> str:
        return self._fresh(lambda: self.rng.choice(MONTHS))


# --------------------------------------------------------------------------- distractors
def _distractor(w: _World) -> str:
    r, pick = w.rng, w.rng.choice
    n = r.randint(2, 40)
    return pick((
        lambda: f"Rival {w.org()} opened {n} {pick(FACILITIES)}s in {w.city()} last year.",
        lambda: f"Earlier this month, {w.org()} reported {pick(('higher', 'lower', 'flat', 'record'))} sales in "
                f"{w.country()}.",
        lambda: f"Analysts at {w.org()} said the {pick(SECTORS)} market in {w.country()} remains "
                f"{pick(('difficult', 'strong', 'uncertain', 'crowded'))}.",
        lambda: f"The news came a day after {w.org()} said it would close its site in {w.city()}.",
        lambda: f"{w.person()}, {pick(SPOKES)} for {w.org()}, declined to comment.",
        lambda: f"Heavy rain is forecast for {w.city()} on {w.day()}.",
        lambda: f"Shares in {w.org()} {pick(('rose', 'fell'))} {n} percent on {w.day()}.",
        lambda: f"A similar plan in {w.city()} was dropped in {w.month()}.",
        lambda: f"{w.person()} of {w.org()} called the {pick(SECTORS)} sector "
                f"\"{pick(('busier than ever', 'under pressure', 'hard to predict'))}\".",
        lambda: f"Local elections in {w.city()} are due in {w.month()}.",
    ))()


# --------------------------------------------------------------------------- events
# Each returns entity, place, summary, the fact sentences (who/what first) and optional extras.
# No sentence names both the entity and the place: the summary has to join them.
def _opening(w: _World):
    r, pick = w.rng, w.rng.choice
    org, city, day, fac = w.org(), w.city(), w.day(), pick(FACILITIES)
    n = r.randint(2, 60) * 10
    who = pick((f"{org} announced on {w.day()} that it will open a new {fac}.",
                f"{org} is expanding with a new {fac}, the company said in a statement.",
                f"{org} has finished work on a new {fac} after two years of planning."))
    where = pick((f"The {fac} is located in {city}, close to the {pick(DISTRICTS)} district.",
                  f"The company chose a site in {city}'s {pick(DISTRICTS)} district.",
                  f"It will be the company's first site in {city}."))
    when = pick((f"Doors are set to open on {day}.", f"The opening is planned for {day}.",
                 f"Staff will move in on {day}."))
    outcome = pick((f"The {fac} will employ around {n} people.", f"About {n} jobs will be created."))
    quote = f"\"This is a big step for us,\" said {w.person()}, the company's {pick(ROLES)}."
    summary = pick((f"{org} opens new {fac} in {city} on {day}", f"{org} to open {fac} in {city} on {day}",
                    f"New {org} {fac} in {city} opens on {day}"))
    return org, city, summary, [who, where, when, outcome], [quote]


def _acquisition(w: _World):
    r, pick = w.rng, w.rng.choice
    org, target, city = w.org(), w.org(), w.city()
    amount = r.randint(12, 950)
    goods = pick(("packaging", "batteries", "medical sensors", "frozen meals", "bicycle parts", "payroll software"))
    who = pick((f"{org} has agreed to buy {target}, a maker of {goods}.",
                f"{org} is buying its smaller rival {target}, both firms confirmed.",
                f"{org} will take over {target} in an all-cash deal."))
    where = pick((f"{target} is based in {city} and employs {r.randint(80, 900)} people.",
                  f"The company being bought has its headquarters in {city}."))
    outcome = pick((f"The deal values {target} at {amount} million euros.",
                    f"The price was put at {amount} million euros."))
    when = f"The takeover is expected to close in {w.month()}."
    summary = pick((f"{org} to buy {city}-based {target} for {amount} million euros",
                    f"{org} agrees {amount} million euro deal for {target} of {city}"))
    return org, city, summary, [who, where, outcome, when], []


def _match(w: _World):
    r, pick = w.rng, w.rng.choice
    animals = ("Wolves", "Herons", "Falcons", "Otters", "Lynx", "Ravens", "Bears", "Stags", "Comets", "Pilots")
    colours = ("Northern", "Blue", "Red", "Royal", "Iron", "Golden", "Harbour", "Valley", "Western")
    club = w._fresh(lambda: f"{pick(colours)} {pick(animals)}")
    other = w._fresh(lambda: f"{pick(colours)} {pick(animals)}")
    city, day = w.city(), w.day()
    a, b = r.randint(1, 5), r.randint(0, 4)
    a, b = max(a, b + 1), min(a, b)
    who = pick((f"The {club} beat the {other} in their {pick(('league', 'cup', 'derby', 'season-opening'))} match.",
                f"The {club} came from behind to defeat the {other}."))
    outcome = pick((f"The final score was {a}-{b}, with {w.person()} scoring twice.",
                    f"It ended {a}-{b} after a late goal from {w.person()}."))
    where = pick((f"Some {r.randint(3, 40)},000 fans watched the game in {city}.",
                  f"The match was played in {city} in heavy wind."))
    when = f"The game took place on {day}."
    other_game = f"In the other game, the {w._fresh(lambda: f'{pick(colours)} {pick(animals)}')} drew in {w.city()}."
    summary = pick((f"{club} beat {other} {a}-{b} in {city}", f"{club} defeat {other} {a}-{b} in {city} on {day}"))
    return club, city, summary, [who, outcome, where, when], [other_game]


def _festival(w: _World):
    r, pick = w.rng, w.rng.choice
    fest = w._fresh(lambda: pick(("Harvest Moon", "Blue Note", "Midsummer Lights", "Open Air", "Riverbank",
                                  "Northern Sounds", "Lantern", "Street Food")) + " " +
                    pick(("Festival", "Jazz Week", "Film Days", "Market", "Parade")))
    city, month = w.city(), w.month()
    who = pick((f"Organisers of the {fest} have postponed this year's event.",
                f"The {fest} will not go ahead as planned, its organisers said."))
    reason = pick(("Flooding near the main stage forced the decision.", "A dispute over security costs is to blame.",
                   "Ticket sales were lower than expected."))
    where = pick((f"The event normally draws {r.randint(5, 90)},000 visitors to {city}.",
                  f"It has been held in {city} every year since {r.randint(1975, 2015)}."))
    when = pick((f"It will now take place in {month}.", f"The new date is in {month}."))
    summary = pick((f"{fest} in {city} postponed to {month}", f"{city}'s {fest} moved to {month}"))
    return fest, city, summary, [who, reason, where, when], []


def _launch(w: _World):
    r, pick = w.rng, w.rng.choice
    org, city, day = w.org(), w.city(), w.day()
    ptype = pick(("electric scooter", "smartwatch", "banking app", "coffee machine", "delivery drone", "e-reader"))
    model = f"{pick(('Aero', 'Nova', 'Pulse', 'Orbit', 'Zest', 'Echo'))} {r.randint(2, 9)}"
    who = pick((f"{org} has unveiled its new {ptype}, the {model}.", f"{org} showed off the {model}, a new {ptype}."))
    where = pick((f"The launch event was held in {city}.", f"Journalists were invited to a warehouse in {city} to see it."))
    when = pick((f"The {model} goes on sale on {day}.", f"Shops will stock it from {day}."))
    outcome = f"It will cost {r.randint(49, 899)} euros."
    summary = pick((f"{org} unveils {model} {ptype} in {city}", f"{org} launches {model} in {city}, on sale {day}"))
    return org, city, summary, [who, where, when, outcome], []


def _job_cuts(w: _World):
    r, pick = w.rng, w.rng.choice
    org, city = w.org(), w.city()
    n = r.randint(3, 120) * 10
    who = pick((f"{org} said it will cut {n} jobs as demand for its products falls.",
                f"{org} plans to shed {n} jobs, according to a memo seen by reporters."))
    where = pick((f"Most of the losses will be at the company's plant in {city}.",
                  f"The factory in {city} will bear the brunt of the cuts."))
    when = f"The cuts will take effect in {w.month()}."
    reaction = f"Union leader {w.person()} called the plan \"a disaster for the region\"."
    summary = pick((f"{org} to cut {n} jobs at {city} plant", f"{org} cuts {n} jobs, mostly in {city}"))
    return org, city, summary, [who, where, when], [reaction]


def _museum(w: _World):
    r, pick = w.rng, w.rng.choice
    museum = w._fresh(lambda: f"{pick(LAST)} Museum of {pick(('Modern Art', 'Science', 'Design', 'Natural History', 'Music', 'Photography'))}")
    city, day = w.city(), w.day()
    months = r.randint(6, 40)
    who = pick((f"The {museum} will reopen after a {months}-month renovation.",
                f"Work on the {museum} is finally finished after {months} months."))
    where = pick((f"The museum, in the centre of {city}, was closed in {w.month()}.",
                  f"The building is one of the most visited in {city}."))
    when = pick((f"Visitors can return from {day}.", f"Its doors reopen on {day}."))
    extra = f"The renovation cost {r.randint(5, 90)} million euros, paid partly by {w.org()}."
    summary = pick((f"{museum} in {city} reopens on {day} after renovation",
                    f"{city}'s {museum} reopens on {day}"))
    return museum, city, summary, [who, where, when], [extra]


def _award(w: _World):
    r, pick = w.rng, w.rng.choice
    person, city, day = w.person(), w.city(), w.day()
    prize = w._fresh(lambda: f"{pick(('Golden', 'Silver', 'Crystal', 'European', 'Nordic'))} "
                             f"{pick(('Quill', 'Lens', 'Baton', 'Compass', 'Star'))} Prize")
    work = pick(("her debut novel", "his documentary on rivers", "a study of city trees", "a jazz album",
                 "a series of photographs"))
    who = f"{person} has won the {prize} for {work}."
    where = pick((f"The ceremony was held in {city}.", f"Guests gathered at a concert hall in {city} for the award."))
    when = f"The winner was announced on {day}."
    outcome = f"The prize comes with {r.randint(5, 50)},000 euros."
    runner = f"{w.person()} and {w.person()} were also on the shortlist."
    summary = pick((f"{person} wins {prize} at {city} ceremony", f"{prize} goes to {person} in {city}"))
    return person, city, summary, [who, where, when, outcome], [runner]


def _research(w: _World):
    r, pick = w.rng, w.rng.choice
    inst = w._fresh(lambda: f"{pick(LAST)} Institute")
    place = w.city()
    finding, short = pick((("a new species of tree frog", "new frog species"),
                           ("traces of Roman pottery", "Roman pottery"),
                           ("a rare blue mineral", "rare mineral"),
                           ("the wreck of a 17th-century ship", "17th-century shipwreck"),
                           ("bacteria that break down plastic", "plastic-eating bacteria")))
    who = pick((f"Scientists at the {inst} have found {finding}.", f"A team from the {inst} reported {finding}."))
    where = f"The samples were collected near {place} over {r.randint(2, 6)} summers."
    when = f"The results were published on {w.day()} in the journal {pick(('Nature Letters', 'Field Reports', 'Open Science'))}."
    summary = pick((f"{inst} scientists find {short} near {place}", f"{short.capitalize()} found near {place} by {inst}"))
    return inst, place, summary, [who, where, when], []


def _appointment(w: _World):
    r, pick = w.rng, w.rng.choice
    org, person, city, role, day = w.org(), w.person(), w.city(), pick(ROLES), w.day()
    who = pick((f"{org} has appointed {person} as its new {role}.", f"{org} named {person} {role}."))
    where = f"The new {role} will be based in {city}."
    when = pick((f"{person} starts on {day}.", f"The appointment takes effect on {day}."))
    before = f"{person} previously worked at {w.org()} for {r.randint(3, 20)} years."
    summary = pick((f"{org} names {person} {role}, based in {city}", f"{org} appoints {person} as {role} in {city}"))
    return org, city, summary, [who, where, when], [before]


def _recall(w: _World):
    r, pick = w.rng, w.rng.choice
    org, country = w.org(), w.country()
    n = r.randint(2, 90) * 1000
    goods = pick(("kettles", "e-bikes", "baby monitors", "space heaters", "phone chargers", "dishwashers"))
    who = pick((f"{org} is recalling {n} {goods} over a faulty {pick(('switch', 'battery', 'seal', 'cable'))}.",
                f"{org} has asked customers to return {n} {goods}."))
    where = f"The affected units were sold in {country} between {w.month()} and {w.month()}."
    when = f"Refunds will be paid from {w.day()}."
    safety = "No injuries have been reported so far."
    summary = pick((f"{org} recalls {n} {goods} sold in {country}", f"{country}: {org} recalls {n} {goods}"))
    return org, country, summary, [who, where, when], [safety]


def _email(w: _World):
    r, pick = w.rng, w.rng.choice
    depts = ("Finance", "Marketing", "Legal", "Design", "Sales", "Engineering", "Support", "Procurement")
    dept = pick(depts)
    other = pick([d for d in depts if d != dept])
    meeting = pick(("weekly meeting", "budget review", "quarterly planning session", "training day", "offsite"))
    room = w._fresh(lambda: pick((f"Room {r.randint(1, 9)}{pick('ABCDE')}",
                                  f"the {pick(('Atlas', 'Juniper', 'Harbour', 'Cedar', 'Orion'))} room")))
    day, time = w.day(), f"{r.randint(8, 16)}:{pick(('00', '15', '30', '45'))}"
    sender = w.person()
    who = pick((f"The {dept} {meeting} has been moved.", f"Heads up: we are rescheduling the {dept} {meeting}."))
    where = pick((f"We will use {room} this time.", f"Please come to {room} instead of the usual place."))
    when = pick((f"It now starts on {day} at {time}.", f"The new slot is {day} at {time}."))
    extras = [f"{w.person()} from {other} will join for the first half.",
              pick(("Please bring your laptop.", "Lunch will be provided.", "Slides will be shared afterwards."))]
    summary = pick((f"{dept} {meeting} moved to {day} in {room}", f"New time for {dept} {meeting}: {day}, {room}"))
    return dept, room, summary, [who, where, when], extras, ("Hi all,", f"Thanks, {sender}")


EVENTS = (_opening, _acquisition, _match, _festival, _launch, _job_cuts, _museum, _award, _research,
          _appointment, _recall, _email)


def make_example(rng: random.Random) -> Example:
    """One document and its summary, with the facts they share."""
    w = _World(rng)
    event = rng.choice(EVENTS)
    entity, place, summary, facts, extras, *frame = event(w)
    target = rng.randint(MIN_SENTENCES, MAX_SENTENCES)
    body = facts[1:] + [e for e in extras if rng.random() < 0.7]
    distractors = [_distractor(w) for _ in range(max(0, target - 1 - len(body)))]
    # The who/what sentence leads, as in news; sometimes an unrelated item comes first. Facts
    # never precede it: "It will cost 250 euros" before the product is named reads as broken.
    opening = [distractors.pop()] if distractors and rng.random() < 0.25 else []
    body += distractors
    rng.shuffle(body)
    sentences = opening + [facts[0]] + body
    if frame:
        greeting, signoff = frame[0]
        document = greeting + "\n" + " ".join(sentences) + "\n" + signoff
        sentences = [greeting, *sentences, signoff]
    else:
        document = " ".join(sentences)
    return Example(document, summary, entity, place, event.__name__.strip("_"), sentences)


def generate(n: int, seed: int, dirty: bool = True) -> list[dict]:
    """``n`` records ``{"document", "summary"}``; the same (n, seed) gives the same records."""
    rng = random.Random(seed)
    base = n - dirt.duplicate_count(n) if dirty else n
    rows = []
    for _ in range(base):
        ex = make_example(rng)
        rows.append({"document": ex.document, "summary": ex.summary})
    if dirty:
        rows = dirt.add_dirt(rows, random.Random(f"{seed}:dirt"), ["document", "summary"],
                             duplicates=dirt.duplicate_count(n), overlong_chars=4000)
    return rows
