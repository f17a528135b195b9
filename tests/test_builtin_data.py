"""The builtin generators: deterministic, the task's fields, learnable but dirty data, real German."""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter
from types import SimpleNamespace

import pytest

from pipelines.data.builtin import classification as cls
from pipelines.data.builtin import summarization as summ
from pipelines.data.builtin import translation as tr
from pipelines.data.builtin import translation_lexicon as lex
from pipelines.data import dirt
from pipelines.data.sources import load_builtin
from pipelines.tasks import get_task
from pipelines.data.text import clean_text, dedupe_key

GENERATORS = {"classification": cls, "translation": tr, "summarization": summ}
FIELDS = {"classification": ("text", "label"), "translation": ("source", "target"),
          "summarization": ("document", "summary")}
HTML = re.compile(r"<\s*/?\s*(p|b|br|div)\b|&(amp|nbsp|quot);", re.IGNORECASE)


@pytest.fixture(scope="module")
def reviews():
    return cls.generate(2000, 11)


@pytest.mark.parametrize("task", sorted(GENERATORS))
def test_same_seed_same_records_other_seed_other_records(task):
    gen = GENERATORS[task].generate
    assert gen(300, 3) == gen(300, 3)
    assert gen(300, 3) != gen(300, 4)


@pytest.mark.parametrize("task", sorted(GENERATORS))
def test_records_have_the_task_fields_and_the_requested_count(task):
    rows = GENERATORS[task].generate(400, 5)
    assert len(rows) == 400
    assert all(set(r) == set(FIELDS[task]) and all(isinstance(v, str) for v in r.values()) for r in rows)


@pytest.mark.parametrize("task", sorted(GENERATORS))
def test_load_builtin_finds_the_generator(task):
    raw = load_builtin(get_task(task), SimpleNamespace(builtin_size=120), seed=1)
    assert len(raw.records) == 120 and raw.stats["generator"] == f"pipelines.tasks.{task}.builtin"
    assert all(set(r) == set(get_task(task).fields) for r in raw.records)


# --------------------------------------------------------------------------- classification
def test_labels_are_several_and_roughly_balanced(reviews):
    counts = Counter(r["label"] for r in reviews)
    assert set(counts) == set(cls.LABELS) and len(counts) >= 3
    for label, k in counts.items():
        assert 0.18 < k / len(reviews) < 0.32, (label, counts)


def test_label_noise_is_present_but_below_ten_percent():
    clean = cls.generate(2000, 11, label_noise=0.0, dirty=False)
    noisy = cls.generate(2000, 11, dirty=False)
    assert [r["text"] for r in clean] == [r["text"] for r in noisy]  # noise only touches labels
    flipped = sum(a["label"] != b["label"] for a, b in zip(clean, noisy)) / len(clean)
    assert 0.01 < flipped < 0.10


def test_reviews_use_negation_and_contrast():
    texts = " ".join(r["text"].lower() for r in cls.generate(600, 2, dirty=False))
    for marker in ("not ", "isn't", "far from", " but ", "however"):
        assert marker in texts


def test_output_holds_every_kind_of_dirt(reviews):
    texts = [r["text"] for r in reviews]
    keys = Counter(dedupe_key(clean_text(t)[0]) for t in texts)
    assert any("<" in t for t in texts)
    assert any(not unicodedata.is_normalized("NFC", t) for t in texts)
    assert any(re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\u200b\u2060\ufeff\u00a0]", t) for t in texts)
    assert any(not t.strip() or clean_text(t)[0] == "" for t in texts)
    assert any(len(t) > 2000 for t in texts)
    assert sum(k > 1 for k in keys.values()) >= 10  # exact and near duplicates
    changed = sum(t != t.strip() or clean_text(t)[0] != t for t in texts) / len(texts)
    assert 0.03 < changed < 0.20


def test_clean_text_removes_the_html(reviews):
    dirty = [r["text"] for r in reviews if "<" in r["text"] or "&" in r["text"]]
    assert dirty
    for text in dirty:
        cleaned, _ = clean_text(text)
        assert not HTML.search(cleaned), (text, cleaned)


@pytest.mark.parametrize("name", ["html", "invisible", "nbsp", "non_nfc", "whitespace"])
def test_clean_text_undoes_the_repairable_dirt(name):
    base = "The café was very good and cheap."
    fn = dict((n, f) for n, f, _ in dirt.MUTATIONS)[name]
    for seed in range(40):
        cleaned, _ = clean_text(fn(base, random.Random(seed)))
        # &quot; and &amp; leave plain quotes and "&", as on a real page
        assert cleaned.strip('"') in (base, base.replace(" and ", " & "))


def test_add_dirt_keeps_fields_and_leaves_other_fields_alone():
    rows = [{"text": f"sentence number {i} is here", "label": "x"} for i in range(500)]
    counts: Counter = Counter()
    out = dirt.add_dirt(rows, random.Random(0), ["text"], duplicates=20, counts=counts)
    assert len(out) == 520 and all(set(r) == {"text", "label"} and r["label"] == "x" for r in out)
    assert rows[0] == {"text": "sentence number 0 is here", "label": "x"}  # input not mutated
    mutated = sum(v for k, v in counts.items() if not k.startswith("duplicate"))
    assert 20 < mutated < 80 and counts["duplicate_exact"] + counts["duplicate_near"] == 20


# --------------------------------------------------------------------------- translation
N, A, V = lex.NOUNS, lex.ADJECTIVES, lex.VERBS


@pytest.mark.parametrize("np, case, german", [
    (tr.NP(N["dog"], "the", A["big"]), "nom", "der große Hund"),
    (tr.NP(N["dog"], "a", A["big"]), "nom", "ein großer Hund"),
    (tr.NP(N["dog"], "the", A["big"]), "acc", "den großen Hund"),
    (tr.NP(N["dog"], "a", A["big"]), "acc", "einen großen Hund"),
    (tr.NP(N["dog"], "no", A["big"]), "acc", "keinen großen Hund"),
    (tr.NP(N["car"], "a", A["expensive"]), "nom", "ein teures Auto"),
    (tr.NP(N["car"], "the", A["expensive"]), "acc", "das teure Auto"),
    (tr.NP(N["cat"], "this", A["tired"]), "nom", "diese müde Katze"),
    (tr.NP(N["man"], "this", A["tired"], plural=True), "acc", "diese müden Männer"),
    (tr.NP(N["boy"], "the"), "acc", "den Jungen"),
    (tr.NP(N["child"], "the", plural=True), "dat", "den Kindern"),
    (tr.NP(N["car"], "my", plural=True), "dat", "meinen Autos"),
    (tr.NP(N["water"], "bare", A["cold"]), "acc", "kaltes Wasser"),
    (tr.NP(N["woman"], "our", A["old"]), "dat", "unserer alten Frau"),
])
def test_german_noun_phrases_agree_in_gender_case_and_number(np, case, german):
    assert tr.np_de(np, case) == german


def test_german_prepositions_take_the_dative_and_contract():
    assert tr.pp_de("mit", tr.NP(N["dog"], "the", A["big"])) == "mit dem großen Hund"
    assert tr.pp_de("in", tr.NP(N["house"], "the", A["old"])) == "im alten Haus"
    assert tr.pp_de("in", tr.NP(N["house"], "a")) == "in einem Haus"
    assert tr.pp_de("an", tr.NP(N["station"], "the")) == "am Bahnhof"
    assert tr.pp_de("in", tr.NP(N["kitchen"], "the")) == "in der Küche"
    assert tr.np_en(tr.NP(N["car"], "a", A["expensive"])) == "an expensive car"


def test_german_word_order_inversion_brackets_and_verb_final():
    man, dog, woman, doctor = (tr.NP(N[k]) for k in ("man", "dog", "woman", "doctor"))
    today = tr.Clause(man, V["see"], dog, time=("today", "heute"), front="time")
    assert tr.clause_en(today) == "today the man sees the dog"
    assert tr.clause_de_main(today) == "heute sieht der Mann den Hund"
    call = tr.Clause(woman, V["call"], doctor)
    assert tr.clause_de_main(call) == "die Frau ruft den Arzt an"
    assert tr.clause_de_sub(call, "weil") == "weil die Frau den Arzt anruft"
    assert tr.clause_de_main(tr.Clause(woman, V["call"], doctor, "perf")) == "die Frau hat den Arzt angerufen"
    assert tr.clause_de_sub(tr.Clause(woman, V["call"], doctor, "fut"), "dass") == "dass die Frau den Arzt anrufen wird"
    assert tr.clause_de_verb_first(call) == "ruft die Frau den Arzt an"
    assert tr.clause_de_main(tr.Clause(man, V["help"], tr.NP(N["child"]))) == "der Mann hilft dem Kind"
    assert tr.clause_de_main(tr.Clause(dog, V["follow"], man, "perf")) == "der Hund ist dem Mann gefolgt"
    kids = tr.NP(N["child"], plural=True)
    assert tr.clause_de_main(tr.Clause(kids, V["see"], dog, "past")) == "die Kinder sahen den Hund"
    assert tr.clause_en(tr.Clause(kids, V["see"], tr.NP(N["dog"], "no"), "pres", negated=True)) == \
        "the children do not see a dog"


def test_generated_clauses_put_the_object_in_its_case():
    rng = random.Random(0)
    masculine_acc = 0
    for _ in range(400):
        c = tr.random_clause(rng)
        german = tr.clause_de_main(c)
        assert tr.np_de(c.obj, c.verb.case) in german
        if c.obj.noun.gender == "m" and c.verb.case == "acc" and not c.obj.plural and c.obj.det in ("the", "a"):
            masculine_acc += 1
            assert re.search(r"\b(den|einen)\b", german), german
        if c.front == "time" and c.time:  # verb second after a fronted time
            assert german.startswith(f"{c.time[1]} {c.verb.finite(c.tense, c.subj.plural)} "), german
    assert masculine_acc > 20


def test_translation_lexicon_is_large_and_pairs_are_corrupted_sometimes():
    assert len(lex.NOUN_LIST) + len(lex.VERB_LIST) + len(lex.ADJECTIVE_LIST) + len(lex.TIMES) >= 200
    rows = tr.generate(1500, 9)
    assert len({r["source"] for r in rows}) > 1300  # varied
    cleaned = [(clean_text(r["source"], "NFC")[0], clean_text(r["target"], "NFC")[0]) for r in rows]
    assert any(not s or not t for s, t in cleaned)
    assert any(s and t and max(len(s), len(t)) / min(len(s), len(t)) > 3 for s, t in cleaned)
    assert any(s and s == t for s, t in cleaned)
    assert any(not unicodedata.is_normalized("NFC", r["target"]) for r in rows)
    ok = [(s, t) for s, t in cleaned if s and t and s != t and max(len(s), len(t)) / min(len(s), len(t)) <= 3]
    assert len(ok) / len(rows) > 0.9


# --------------------------------------------------------------------------- summarization
SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def test_summary_facts_come_from_different_sentences():
    rng = random.Random(0)
    kinds = Counter()
    for _ in range(600):
        ex = summ.make_example(rng)
        kinds[ex.kind] += 1
        sentences = [s for s in SENTENCE.split(ex.document) if s]
        assert ex.entity in ex.summary and ex.place in ex.summary
        assert any(ex.entity in s for s in sentences) and any(ex.place in s for s in sentences)
        # no sentence holds both: the summary must join facts from two places in the document
        assert not [s for s in sentences if ex.entity in s and ex.place in s], ex.document
        body = len(sentences) - (2 if ex.kind == "email" else 0)
        assert summ.MIN_SENTENCES <= body <= summ.MAX_SENTENCES
    assert len(kinds) >= 10


def test_summaries_are_short_and_shorter_than_documents():
    rows = summ.generate(500, 4, dirty=False)
    assert all(len(r["summary"]) < len(r["document"]) / 2 for r in rows)
    assert max(len(r["summary"].split()) for r in rows) <= 16
    assert len({r["summary"] for r in rows}) > 450
