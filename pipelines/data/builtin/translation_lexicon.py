"""The lexicon of the builtin translation data: English and German nouns (gender, plural, weak
declension, where they can be), adjectives, verbs (principal parts, auxiliary, separable prefix,
the case of their object), and the conjunctions and time phrases the grammar in
:mod:`pipelines.data.builtin.translation` combines them with."""

from __future__ import annotations

from dataclasses import dataclass

TENSES = ("pres", "past", "perf", "fut")

@dataclass(frozen=True)
class Noun:
    en: str
    en_pl: str
    de: str
    de_pl: str
    gender: str  # m, f, n
    tags: tuple[str, ...]  # what the noun can be: person, animal, food, small, site, ...
    weak: str = ""  # n-declension form for accusative and dative singular ("Jungen")
    mass: bool = False  # no article "a", no plural: water, milk, music
    places: tuple[tuple[str, str], ...] = ()  # (English, German) prepositions it takes as a place

    def de_form(self, case: str, plural: bool) -> str:
        if plural:
            if case == "dat" and not self.de_pl.endswith(("n", "s")):
                return self.de_pl + "n"  # dative plural: den Kindern, but den Autos, den Frauen
            return self.de_pl
        return self.weak if (self.weak and case != "nom") else self.de


def _n(en, en_pl, de, de_pl, gender, tags, weak="", mass=False, places=()):
    return Noun(en, en_pl, de, de_pl, gender, tuple(tags.split()), weak, mass, places)


IN = (("in", "in"),)
AROUND = (("behind", "hinter"), ("next to", "neben"), ("in front of", "vor"))
UNDER_ON = (("on", "auf"), ("under", "unter"), ("next to", "neben"))

NOUN_LIST = (
    # people
    _n("man", "men", "Mann", "Männer", "m", "person"),
    _n("woman", "women", "Frau", "Frauen", "f", "person"),
    _n("child", "children", "Kind", "Kinder", "n", "person"),
    _n("boy", "boys", "Junge", "Jungen", "m", "person", weak="Jungen"),
    _n("girl", "girls", "Mädchen", "Mädchen", "n", "person"),
    _n("teacher", "teachers", "Lehrer", "Lehrer", "m", "person"),
    _n("doctor", "doctors", "Arzt", "Ärzte", "m", "person"),
    _n("student", "students", "Student", "Studenten", "m", "person", weak="Studenten"),
    _n("farmer", "farmers", "Bauer", "Bauern", "m", "person", weak="Bauern"),
    _n("friend", "friends", "Freund", "Freunde", "m", "person"),
    _n("neighbour", "neighbours", "Nachbar", "Nachbarn", "m", "person", weak="Nachbarn"),
    _n("cook", "cooks", "Koch", "Köche", "m", "person"),
    _n("baker", "bakers", "Bäcker", "Bäcker", "m", "person"),
    _n("driver", "drivers", "Fahrer", "Fahrer", "m", "person"),
    _n("king", "kings", "König", "Könige", "m", "person"),
    _n("queen", "queens", "Königin", "Königinnen", "f", "person"),
    _n("soldier", "soldiers", "Soldat", "Soldaten", "m", "person", weak="Soldaten"),
    _n("police officer", "police officers", "Polizist", "Polizisten", "m", "person", weak="Polizisten"),
    _n("customer", "customers", "Kunde", "Kunden", "m", "person", weak="Kunden"),
    _n("sister", "sisters", "Schwester", "Schwestern", "f", "person"),
    _n("brother", "brothers", "Bruder", "Brüder", "m", "person"),
    _n("mother", "mothers", "Mutter", "Mütter", "f", "person"),
    _n("father", "fathers", "Vater", "Väter", "m", "person"),
    _n("grandmother", "grandmothers", "Großmutter", "Großmütter", "f", "person"),
    _n("grandfather", "grandfathers", "Großvater", "Großväter", "m", "person"),
    _n("waiter", "waiters", "Kellner", "Kellner", "m", "person"),
    _n("artist", "artists", "Künstler", "Künstler", "m", "person"),
    _n("pupil", "pupils", "Schüler", "Schüler", "m", "person"),
    _n("guest", "guests", "Gast", "Gäste", "m", "person"),
    _n("tourist", "tourists", "Tourist", "Touristen", "m", "person", weak="Touristen"),
    _n("president", "presidents", "Präsident", "Präsidenten", "m", "person", weak="Präsidenten"),
    _n("gardener", "gardeners", "Gärtner", "Gärtner", "m", "person"),
    _n("pilot", "pilots", "Pilot", "Piloten", "m", "person", weak="Piloten"),
    _n("nurse", "nurses", "Pflegerin", "Pflegerinnen", "f", "person"),
    # animals
    _n("dog", "dogs", "Hund", "Hunde", "m", "animal"),
    _n("cat", "cats", "Katze", "Katzen", "f", "animal small_animal"),
    _n("horse", "horses", "Pferd", "Pferde", "n", "animal"),
    _n("bird", "birds", "Vogel", "Vögel", "m", "animal small_animal"),
    _n("mouse", "mice", "Maus", "Mäuse", "f", "animal small_animal"),
    _n("cow", "cows", "Kuh", "Kühe", "f", "animal"),
    _n("pig", "pigs", "Schwein", "Schweine", "n", "animal"),
    _n("sheep", "sheep", "Schaf", "Schafe", "n", "animal"),
    _n("lion", "lions", "Löwe", "Löwen", "m", "animal", weak="Löwen"),
    _n("bear", "bears", "Bär", "Bären", "m", "animal", weak="Bären"),
    _n("monkey", "monkeys", "Affe", "Affen", "m", "animal", weak="Affen"),
    _n("rabbit", "rabbits", "Kaninchen", "Kaninchen", "n", "animal small_animal"),
    _n("duck", "ducks", "Ente", "Enten", "f", "animal small_animal"),
    _n("goat", "goats", "Ziege", "Ziegen", "f", "animal"),
    _n("chicken", "chickens", "Huhn", "Hühner", "n", "animal small_animal"),
    _n("fox", "foxes", "Fuchs", "Füchse", "m", "animal"),
    _n("wolf", "wolves", "Wolf", "Wölfe", "m", "animal"),
    _n("elephant", "elephants", "Elefant", "Elefanten", "m", "animal", weak="Elefanten"),
    _n("donkey", "donkeys", "Esel", "Esel", "m", "animal"),
    _n("owl", "owls", "Eule", "Eulen", "f", "animal small_animal"),
    _n("frog", "frogs", "Frosch", "Frösche", "m", "animal small_animal"),
    # food and drink
    _n("apple", "apples", "Apfel", "Äpfel", "m", "food small"),
    _n("cake", "cakes", "Kuchen", "Kuchen", "m", "food"),
    _n("soup", "soups", "Suppe", "Suppen", "f", "food cookable"),
    _n("sausage", "sausages", "Wurst", "Würste", "f", "food cookable"),
    _n("egg", "eggs", "Ei", "Eier", "n", "food cookable small"),
    _n("banana", "bananas", "Banane", "Bananen", "f", "food small"),
    _n("pear", "pears", "Birne", "Birnen", "f", "food small"),
    _n("potato", "potatoes", "Kartoffel", "Kartoffeln", "f", "food cookable"),
    _n("tomato", "tomatoes", "Tomate", "Tomaten", "f", "food"),
    _n("bread roll", "bread rolls", "Brötchen", "Brötchen", "n", "food small"),
    _n("carrot", "carrots", "Karotte", "Karotten", "f", "food cookable"),
    _n("orange", "oranges", "Orange", "Orangen", "f", "food small"),
    _n("biscuit", "biscuits", "Keks", "Kekse", "m", "food small"),
    _n("salad", "salads", "Salat", "Salate", "m", "food"),
    _n("fish", "fish", "Fisch", "Fische", "m", "food cookable animal small_animal"),
    _n("bread", "", "Brot", "", "n", "food", mass=True),
    _n("cheese", "", "Käse", "", "m", "food", mass=True),
    _n("rice", "", "Reis", "", "m", "food cookable", mass=True),
    _n("water", "", "Wasser", "", "n", "drink", mass=True),
    _n("milk", "", "Milch", "", "f", "drink", mass=True),
    _n("coffee", "", "Kaffee", "", "m", "drink cookable", mass=True),
    _n("tea", "", "Tee", "", "m", "drink cookable", mass=True),
    _n("juice", "", "Saft", "", "m", "drink", mass=True),
    _n("beer", "", "Bier", "", "n", "drink", mass=True),
    _n("wine", "", "Wein", "", "m", "drink", mass=True),
    # things to read and write
    _n("book", "books", "Buch", "Bücher", "n", "readable writable openable"),
    _n("letter", "letters", "Brief", "Briefe", "m", "readable writable openable small"),
    _n("newspaper", "newspapers", "Zeitung", "Zeitungen", "f", "readable"),
    _n("map", "maps", "Karte", "Karten", "f", "readable small"),
    _n("magazine", "magazines", "Zeitschrift", "Zeitschriften", "f", "readable"),
    _n("story", "stories", "Geschichte", "Geschichten", "f", "readable writable"),
    _n("poem", "poems", "Gedicht", "Gedichte", "n", "readable writable"),
    _n("message", "messages", "Nachricht", "Nachrichten", "f", "readable writable"),
    _n("report", "reports", "Bericht", "Berichte", "m", "readable writable"),
    _n("recipe", "recipes", "Rezept", "Rezepte", "n", "readable writable"),
    # things
    _n("key", "keys", "Schlüssel", "Schlüssel", "m", "thing small"),
    _n("bag", "bags", "Tasche", "Taschen", "f", "thing small openable"),
    _n("ball", "balls", "Ball", "Bälle", "m", "thing small ball"),
    _n("hat", "hats", "Hut", "Hüte", "m", "thing small clothing"),
    _n("shirt", "shirts", "Hemd", "Hemden", "n", "thing clothing"),
    _n("coat", "coats", "Mantel", "Mäntel", "m", "thing clothing"),
    _n("shoe", "shoes", "Schuh", "Schuhe", "m", "thing clothing cleanable"),
    _n("umbrella", "umbrellas", "Regenschirm", "Regenschirme", "m", "thing small"),
    _n("phone", "phones", "Telefon", "Telefone", "n", "thing small repairable"),
    _n("clock", "clocks", "Uhr", "Uhren", "f", "thing repairable"),
    _n("lamp", "lamps", "Lampe", "Lampen", "f", "thing repairable"),
    _n("box", "boxes", "Kiste", "Kisten", "f", "thing openable"),
    _n("cup", "cups", "Tasse", "Tassen", "f", "thing small dish"),
    _n("plate", "plates", "Teller", "Teller", "m", "thing dish"),
    _n("knife", "knives", "Messer", "Messer", "n", "thing small dish tool"),
    _n("spoon", "spoons", "Löffel", "Löffel", "m", "thing small dish tool"),
    _n("bottle", "bottles", "Flasche", "Flaschen", "f", "thing small openable dish"),
    _n("glass", "glasses", "Glas", "Gläser", "n", "thing small dish"),
    _n("picture", "pictures", "Bild", "Bilder", "n", "thing scenery"),
    _n("camera", "cameras", "Kamera", "Kameras", "f", "thing small repairable tool"),
    _n("computer", "computers", "Computer", "Computer", "m", "thing repairable"),
    _n("pen", "pens", "Stift", "Stifte", "m", "thing small tool"),
    _n("ring", "rings", "Ring", "Ringe", "m", "thing small"),
    _n("wallet", "wallets", "Brieftasche", "Brieftaschen", "f", "thing small"),
    _n("ticket", "tickets", "Fahrkarte", "Fahrkarten", "f", "thing small"),
    _n("present", "presents", "Geschenk", "Geschenke", "n", "thing openable"),
    _n("toy", "toys", "Spielzeug", "Spielzeuge", "n", "thing small"),
    _n("hammer", "hammers", "Hammer", "Hämmer", "m", "thing tool"),
    # furniture and parts of a house
    _n("table", "tables", "Tisch", "Tische", "m", "thing furniture buildable repairable", places=UNDER_ON),
    _n("chair", "chairs", "Stuhl", "Stühle", "m", "thing furniture buildable repairable", places=UNDER_ON),
    _n("bed", "beds", "Bett", "Betten", "n", "furniture buildable",
       places=(("in", "in"), ("under", "unter"), ("next to", "neben"))),
    _n("sofa", "sofas", "Sofa", "Sofas", "n", "furniture", places=(("on", "auf"), ("behind", "hinter"))),
    _n("shelf", "shelves", "Regal", "Regale", "n", "furniture buildable", places=(("on", "auf"), ("next to", "neben"))),
    _n("window", "windows", "Fenster", "Fenster", "n", "openable repairable cleanable",
       places=(("at", "an"), ("next to", "neben"))),
    _n("door", "doors", "Tür", "Türen", "f", "openable repairable", places=(("at", "an"), ("behind", "hinter"))),
    # vehicles
    _n("car", "cars", "Auto", "Autos", "n", "vehicle drivable repairable cleanable", places=IN),
    _n("bicycle", "bicycles", "Fahrrad", "Fahrräder", "n", "vehicle repairable cleanable"),
    _n("bus", "buses", "Bus", "Busse", "m", "vehicle drivable transport", places=(("on", "in"),)),
    _n("train", "trains", "Zug", "Züge", "m", "vehicle transport", places=(("on", "in"),)),
    _n("boat", "boats", "Boot", "Boote", "n", "vehicle buildable", places=(("on", "auf"),)),
    _n("truck", "trucks", "Lastwagen", "Lastwagen", "m", "vehicle drivable repairable cleanable"),
    _n("ship", "ships", "Schiff", "Schiffe", "n", "vehicle buildable transport", places=(("on", "auf"),)),
    _n("plane", "planes", "Flugzeug", "Flugzeuge", "n", "vehicle transport", places=(("on", "in"),)),
    _n("tractor", "tractors", "Traktor", "Traktoren", "m", "vehicle drivable repairable"),
    # places
    _n("house", "houses", "Haus", "Häuser", "n", "building property buildable", places=IN + AROUND),
    _n("garden", "gardens", "Garten", "Gärten", "m", "place scenery", places=IN),
    _n("park", "parks", "Park", "Parks", "m", "place site scenery", places=IN),
    _n("kitchen", "kitchens", "Küche", "Küchen", "f", "place cleanable", places=IN),
    _n("school", "schools", "Schule", "Schulen", "f", "building site", places=IN + AROUND),
    _n("station", "stations", "Bahnhof", "Bahnhöfe", "m", "building site", places=(("at", "an"),) + AROUND),
    _n("city", "cities", "Stadt", "Städte", "f", "place site", places=IN),
    _n("forest", "forests", "Wald", "Wälder", "m", "place scenery", places=IN),
    _n("village", "villages", "Dorf", "Dörfer", "n", "place site scenery", places=IN),
    _n("office", "offices", "Büro", "Büros", "n", "place cleanable", places=IN),
    _n("shop", "shops", "Laden", "Läden", "m", "building property openable", places=IN + AROUND),
    _n("market", "markets", "Markt", "Märkte", "m", "place site", places=(("at", "auf"),)),
    _n("church", "churches", "Kirche", "Kirchen", "f", "building site scenery", places=IN + AROUND),
    _n("bridge", "bridges", "Brücke", "Brücken", "f", "building buildable scenery",
       places=(("on", "auf"), ("under", "unter"))),
    _n("street", "streets", "Straße", "Straßen", "f", "place", places=(("on", "auf"),)),
    _n("river", "rivers", "Fluss", "Flüsse", "m", "place scenery", places=(("by", "an"),)),
    _n("lake", "lakes", "See", "Seen", "m", "place site scenery", places=(("by", "an"), ("on", "auf"))),
    _n("hospital", "hospitals", "Krankenhaus", "Krankenhäuser", "n", "building site", places=IN),
    _n("museum", "museums", "Museum", "Museen", "n", "building site", places=IN + AROUND),
    _n("library", "libraries", "Bibliothek", "Bibliotheken", "f", "building site", places=IN),
    _n("restaurant", "restaurants", "Restaurant", "Restaurants", "n", "building property", places=IN),
    _n("hotel", "hotels", "Hotel", "Hotels", "n", "building property site", places=IN + AROUND),
    _n("room", "rooms", "Zimmer", "Zimmer", "n", "place cleanable", places=IN),
    _n("cellar", "cellars", "Keller", "Keller", "m", "place cleanable", places=IN),
    _n("castle", "castles", "Schloss", "Schlösser", "n", "building property site scenery", places=IN + AROUND),
    _n("beach", "beaches", "Strand", "Strände", "m", "place scenery", places=(("on", "an"),)),
    _n("tree", "trees", "Baum", "Bäume", "m", "scenery", places=(("under", "unter"), ("behind", "hinter"))),
    _n("hill", "hills", "Hügel", "Hügel", "m", "place scenery", places=(("on", "auf"),)),
    _n("wall", "walls", "Mauer", "Mauern", "f", "building buildable", places=(("behind", "hinter"),)),
    _n("barn", "barns", "Scheune", "Scheunen", "f", "building property buildable", places=IN + AROUND),
    _n("tower", "towers", "Turm", "Türme", "m", "building buildable scenery", places=IN),
    _n("farm", "farms", "Bauernhof", "Bauernhöfe", "m", "building property site", places=(("on", "auf"),)),
    # things heard
    _n("music", "", "Musik", "", "f", "sound", mass=True),
    _n("noise", "", "Lärm", "", "m", "sound", mass=True),
    _n("song", "songs", "Lied", "Lieder", "n", "sound"),
    _n("voice", "voices", "Stimme", "Stimmen", "f", "sound"),
    _n("bell", "bells", "Glocke", "Glocken", "f", "sound"),
)
NOUNS = {n.en: n for n in NOUN_LIST}


@dataclass(frozen=True)
class Adj:
    en: str
    de: str  # stem the endings attach to: "teur" for teuer, "dunkl" for dunkel
    tags: tuple[str, ...]  # nouns it fits: one of their tags must be here


def _a(en, de, tags):
    return Adj(en, de, tuple(tags.split()))


_ALIVE = "person animal"
_OBJ = "thing furniture vehicle building food readable"
ADJECTIVE_LIST = (
    _a("big", "groß", f"{_ALIVE} {_OBJ} place scenery"),
    _a("small", "klein", f"{_ALIVE} {_OBJ} place scenery"),
    _a("old", "alt", f"{_ALIVE} thing furniture vehicle building readable place scenery"),
    _a("new", "neu", "thing furniture vehicle building readable sound"),
    _a("young", "jung", _ALIVE),
    _a("red", "rot", "thing furniture vehicle building"),
    _a("blue", "blau", "thing furniture vehicle"),
    _a("green", "grün", "thing furniture vehicle food"),
    _a("black", "schwarz", "thing furniture vehicle animal"),
    _a("white", "weiß", "thing furniture vehicle animal building"),
    _a("yellow", "gelb", "thing vehicle food"),
    _a("brown", "braun", "thing furniture animal"),
    _a("beautiful", "schön", f"{_ALIVE} {_OBJ} place scenery sound"),
    _a("ugly", "hässlich", "thing furniture vehicle building animal"),
    _a("tired", "müde", _ALIVE),
    _a("happy", "glücklich", _ALIVE),
    _a("hungry", "hungrig", _ALIVE),
    _a("friendly", "freundlich", _ALIVE),
    _a("clever", "klug", _ALIVE),
    _a("lazy", "faul", _ALIVE),
    _a("brave", "mutig", "person"),
    _a("sick", "krank", _ALIVE),
    _a("angry", "wütend", _ALIVE),
    _a("funny", "lustig", "person animal readable"),
    _a("famous", "berühmt", "person building readable sound place"),
    _a("strange", "seltsam", f"{_ALIVE} {_OBJ} sound"),
    _a("quiet", "ruhig", "person animal place"),
    _a("interesting", "interessant", "person readable place building"),
    _a("boring", "langweilig", "person readable"),
    _a("expensive", "teur", "thing furniture vehicle food drink building"),
    _a("cheap", "billig", "thing furniture vehicle"),
    _a("dark", "dunkl", "thing furniture place building"),
    _a("heavy", "schwer", "thing furniture"),
    _a("long", "lang", "readable sound"),
    _a("short", "kurz", "readable sound"),
    _a("fresh", "frisch", "food drink"),
    _a("hot", "heiß", "drink"),
    _a("cold", "kalt", "drink food place"),
    _a("sweet", "süß", "food drink animal"),
    _a("dirty", "schmutzig", "thing vehicle animal clothing place"),
    _a("clean", "sauber", "thing vehicle furniture place"),
    _a("empty", "leer", "thing building place"),
    _a("loud", "laut", "person sound vehicle"),
    _a("fast", "schnell", "vehicle animal"),
    _a("wet", "nass", "animal thing"),
)
ADJECTIVES = {a.en: a for a in ADJECTIVE_LIST}


@dataclass(frozen=True)
class Verb:
    en: tuple[str, str, str, str]  # base, 3rd singular, past, past participle
    de_inf: str  # with a separable prefix: "anrufen"
    de_3sg: str  # present, 3rd singular, without the prefix: "ruft"
    de_past: str  # Präteritum, 3rd singular, without the prefix: "rief"
    de_pp: str  # Partizip II with the prefix: "angerufen"
    subj: tuple[str, ...]
    obj: tuple[str, ...]
    case: str = "acc"  # case of the object: helfen, folgen, danken, antworten take the dative
    prefix: str = ""  # separable prefix, sent to the end of a main clause
    aux: str = "haben"

    def finite(self, tense: str, plural: bool) -> str:
        """German finite verb of a main clause (the separable prefix is not included)."""
        if tense == "pres":
            return self.de_inf[len(self.prefix):] if plural else self.de_3sg
        if tense == "past":
            return self.de_past + ("n" if self.de_past.endswith("e") else "en") if plural else self.de_past
        if tense == "perf":
            return {"haben": ("hat", "haben"), "sein": ("ist", "sind")}[self.aux][plural]
        return "werden" if plural else "wird"

    def nonfinite(self, tense: str) -> str:
        """What goes to the end of a main clause: prefix, participle or infinitive."""
        return {"pres": self.prefix, "past": self.prefix, "perf": self.de_pp, "fut": self.de_inf}[tense]


def _v(en, de, subj, obj, case="acc", prefix="", aux="haben"):
    inf, sg3, past, pp = de.split(",")
    return Verb(tuple(en.split(",")), inf, sg3, past, pp, tuple(subj.split()), tuple(obj.split()), case, prefix, aux)


_P, _PA = "person", "person animal"
VERB_LIST = (
    _v("see,sees,saw,seen", "sehen,sieht,sah,gesehen", _PA, "person animal thing vehicle building food scenery"),
    _v("find,finds,found,found", "finden,findet,fand,gefunden", _PA, "person animal small readable food"),
    _v("buy,buys,bought,bought", "kaufen,kauft,kaufte,gekauft", _P, "thing food drink vehicle readable furniture"),
    _v("sell,sells,sold,sold", "verkaufen,verkauft,verkaufte,verkauft", _P, "thing food vehicle property animal"),
    _v("visit,visits,visited,visited", "besuchen,besucht,besuchte,besucht", _P, "person site"),
    _v("love,loves,loved,loved", "lieben,liebt,liebte,geliebt", _PA, "person animal food drink readable sound"),
    _v("carry,carries,carried,carried", "tragen,trägt,trug,getragen", _P, "small food readable clothing"),
    _v("build,builds,built,built", "bauen,baut,baute,gebaut", _P, "buildable"),
    _v("read,reads,read,read", "lesen,liest,las,gelesen", _P, "readable"),
    _v("write,writes,wrote,written", "schreiben,schreibt,schrieb,geschrieben", _P, "writable"),
    _v("open,opens,opened,opened", "öffnen,öffnet,öffnete,geöffnet", _P, "openable"),
    _v("wash,washes,washed,washed", "waschen,wäscht,wusch,gewaschen", _P, "vehicle animal clothing dish"),
    _v("eat,eats,ate,eaten", "essen,isst,aß,gegessen", _PA, "food"),
    _v("drink,drinks,drank,drunk", "trinken,trinkt,trank,getrunken", _PA, "drink"),
    _v("cook,cooks,cooked,cooked", "kochen,kocht,kochte,gekocht", _P, "cookable"),
    _v("help,helps,helped,helped", "helfen,hilft,half,geholfen", _PA, "person animal", case="dat"),
    _v("follow,follows,followed,followed", "folgen,folgt,folgte,gefolgt", _PA, "person animal vehicle",
       case="dat", aux="sein"),
    _v("thank,thanks,thanked,thanked", "danken,dankt,dankte,gedankt", _P, "person", case="dat"),
    _v("answer,answers,answered,answered", "antworten,antwortet,antwortete,geantwortet", _P, "person", case="dat"),
    _v("call,calls,called,called", "anrufen,ruft,rief,angerufen", _P, "person", prefix="an"),
    _v("pick up,picks up,picked up,picked up", "abholen,holt,holte,abgeholt", _P, "person small readable",
       prefix="ab"),
    _v("invite,invites,invited,invited", "einladen,lädt,lud,eingeladen", _P, "person", prefix="ein"),
    _v("like,likes,liked,liked", "mögen,mag,mochte,gemocht", _PA, "person animal food drink readable sound"),
    _v("meet,meets,met,met", "treffen,trifft,traf,getroffen", _P, "person"),
    _v("paint,paints,painted,painted", "malen,malt,malte,gemalt", _P, "person animal scenery"),
    _v("draw,draws,drew,drawn", "zeichnen,zeichnet,zeichnete,gezeichnet", _P, "person animal scenery vehicle"),
    _v("photograph,photographs,photographed,photographed", "fotografieren,fotografiert,fotografierte,fotografiert",
       _P, "person animal scenery building vehicle"),
    _v("repair,repairs,repaired,repaired", "reparieren,repariert,reparierte,repariert", _P, "repairable"),
    _v("lose,loses,lost,lost", "verlieren,verliert,verlor,verloren", _P, "small"),
    _v("bring,brings,brought,brought", "bringen,bringt,brachte,gebracht", _PA, "small food drink readable"),
    _v("hold,holds,held,held", "halten,hält,hielt,gehalten", _P, "small dish small_animal"),
    _v("take,takes,took,taken", "nehmen,nimmt,nahm,genommen", _P, "small food transport"),
    _v("catch,catches,caught,caught", "fangen,fängt,fing,gefangen", _PA, "small_animal ball"),
    _v("feed,feeds,fed,fed", "füttern,füttert,fütterte,gefüttert", _P, "animal"),
    _v("look for,looks for,looked for,looked for", "suchen,sucht,suchte,gesucht", _PA, "person animal small readable"),
    _v("clean,cleans,cleaned,cleaned", "putzen,putzt,putzte,geputzt", _P, "cleanable dish"),
    _v("hear,hears,heard,heard", "hören,hört,hörte,gehört", _PA, "sound person animal vehicle"),
    _v("know,knows,knew,known", "kennen,kennt,kannte,gekannt", _PA, "person site readable"),
    _v("forget,forgets,forgot,forgotten", "vergessen,vergisst,vergaß,vergessen", _P, "small readable"),
    _v("need,needs,needed,needed", "brauchen,braucht,brauchte,gebraucht", _PA, "thing food drink vehicle person"),
    _v("order,orders,ordered,ordered", "bestellen,bestellt,bestellte,bestellt", _P, "food drink"),
    _v("drive,drives,drove,driven", "fahren,fährt,fuhr,gefahren", _P, "drivable"),
    _v("greet,greets,greeted,greeted", "begrüßen,begrüßt,begrüßte,begrüßt", _PA, "person"),
    _v("ask,asks,asked,asked", "fragen,fragt,fragte,gefragt", _P, "person"),
    _v("watch,watches,watched,watched", "beobachten,beobachtet,beobachtete,beobachtet", _PA, "person animal vehicle"),
    _v("count,counts,counted,counted", "zählen,zählt,zählte,gezählt", _P, "animal small food"),
)
VERBS = {v.en[0]: v for v in VERB_LIST}

# verbs that take a "that" clause: English present/past, German 3sg/3pl present, 3sg past
SAY_VERBS = (
    (("says", "say", "said"), ("sagt", "sagen", "sagte")),
    (("thinks", "think", "thought"), ("denkt", "denken", "dachte")),
    (("knows", "know", "knew"), ("weiß", "wissen", "wusste")),
    (("hopes", "hope", "hoped"), ("hofft", "hoffen", "hoffte")),
    (("believes", "believe", "believed"), ("glaubt", "glauben", "glaubte")),
    (("hears", "hear", "heard"), ("hört", "hören", "hörte")),
)
CONJUNCTIONS = (("because", "weil"), ("although", "obwohl"), ("while", "während"))

# (English, German, tenses the English adverb fits)
_ALL = TENSES
_NOT_PERF = ("pres", "past", "fut")
TIMES = (
    ("today", "heute", _ALL), ("this week", "diese Woche", _ALL), ("now", "jetzt", ("pres",)),
    ("every day", "jeden Tag", ("pres",)), ("every morning", "jeden Morgen", ("pres", "past")),
    ("in the evening", "am Abend", _NOT_PERF), ("in the morning", "am Morgen", _NOT_PERF),
    ("at night", "in der Nacht", _NOT_PERF), ("in the summer", "im Sommer", _NOT_PERF),
    ("in winter", "im Winter", _NOT_PERF), ("yesterday", "gestern", ("past",)),
    ("last week", "letzte Woche", ("past",)), ("last year", "letztes Jahr", ("past",)),
    ("two days ago", "vor zwei Tagen", ("past",)), ("tomorrow", "morgen", ("fut",)),
    ("next week", "nächste Woche", ("fut",)), ("soon", "bald", ("fut",)),
    ("on Monday", "am Montag", ("past", "fut")), ("on Tuesday", "am Dienstag", ("past", "fut")),
    ("on Wednesday", "am Mittwoch", ("past", "fut")), ("on Thursday", "am Donnerstag", ("past", "fut")),
    ("on Friday", "am Freitag", ("past", "fut")), ("on Saturday", "am Samstag", ("past", "fut")),
    ("on Sunday", "am Sonntag", ("past", "fut")),
)
