#!/usr/bin/env python
"""Generate a small, deterministic FLAN-2022-style demo dataset.

Usage: python scripts/make_demo_data.py --out data/demo [--seed 0] [--scale 1.0]

Writes OUT/train.parquet with string columns inputs, targets, task_name, task_source and
template_type. 49 tasks in families (sentiment, NLI, QA, translation, summarisation,
arithmetic, dialogue, ...) over the five FLAN sources, sized and skewed like FLAN (many small
NIv2 tasks, a few big Flan 2021 ones), with some exact duplicate prompts. The same seed and
scale give a byte-identical file. Only the standard library and pyarrow are used, so
the script runs without smart_cli installed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

COLUMNS = ("inputs", "targets", "task_name", "task_source", "template_type")
SOURCES = ("flan2021", "t0", "niv2", "cot", "dialog")
TEMPLATE_TYPES = ("zs_opt", "zs_noopt", "fs_opt", "fs_noopt")
# Few-shot prompts get exemplars only while they stay under this many words (at least one).
FEW_SHOT_WORD_BUDGET = 80
# FLAN mixes zero- and few-shot prompts about evenly; zero-shot is drawn more often here to
# keep prompts short, since `make demo` embeds every prompt on CPU.
ZERO_SHOT_WEIGHT = 2


class Rand:
    """The few draws the generators need, all from one explicitly seeded random.Random."""

    def __init__(self, rng: random.Random) -> None:
        self.g = rng

    def pick(self, seq: Sequence):
        return seq[self.g.randrange(len(seq))]

    def int(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi], both ends included."""
        return self.g.randint(lo, hi)

    def chance(self, p: float) -> bool:
        return self.g.random() < p

    def sample(self, seq: Sequence, k: int) -> list:
        return self.g.sample(list(seq), k)

    def shuffled(self, seq: Sequence) -> list:
        out = list(seq)
        self.g.shuffle(out)
        return out


@dataclass(frozen=True)
class Ex:
    """One generated instance: template fields, the response, and answer options if any."""

    fields: dict[str, str]
    target: str
    options: tuple[str, ...] | None = None


Gen = Callable[[Rand], Ex]


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def low(s: str) -> str:
    return s[:1].lower() + s[1:]


def indef(word: str) -> str:
    """The word with its indefinite article."""
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


# --- word lists ----------------------------------------------------------------------------

# fmt: off
PEOPLE = (
    ("Alice", "she"), ("Bruno", "he"), ("Chen", "he"), ("Dana", "she"), ("Elena", "she"),
    ("Farid", "he"), ("Grace", "she"), ("Hiro", "he"), ("Ines", "she"), ("Jamal", "he"),
    ("Keiko", "she"), ("Liam", "he"), ("Maya", "she"), ("Nikolai", "he"), ("Olivia", "she"),
    ("Pedro", "he"), ("Rosa", "she"), ("Samir", "he"), ("Tara", "she"), ("Umar", "he"),
    ("Vera", "she"), ("Wei", "he"), ("Ximena", "she"), ("Yusuf", "he"), ("Zoe", "she"),
    ("Amara", "she"), ("Felix", "he"), ("Leila", "she"), ("Oscar", "he"), ("Priya", "she"),
)
SURNAMES = (
    "Okafor", "Lindqvist", "Moreau", "Tanaka", "Novak", "Alvarez", "Brennan", "Costa",
    "Haddad", "Kowalski", "Mensah", "Petrov", "Quispe", "Rahman", "Schulz", "Varga",
    "Whitfield", "Yilmaz", "Ferreira", "Nakamura", "Dubois", "Osei", "Larsen", "Romero",
)
CITIES = (
    "Lisbon", "Nairobi", "Osaka", "Toronto", "Krakow", "Lima", "Auckland", "Marseille",
    "Hanoi", "Denver", "Accra", "Valencia", "Tbilisi", "Glasgow", "Cebu", "Porto", "Leipzig",
    "Mumbai", "Quito", "Tampere", "Adelaide", "Bergen", "Curitiba", "Dakar", "Edinburgh",
)
COUNTRIES = (
    "Portugal", "Kenya", "Japan", "Canada", "Poland", "Peru", "New Zealand", "France",
    "Vietnam", "Ghana", "Spain", "Georgia", "Norway", "Brazil", "Senegal", "Chile",
    "Finland", "India", "Egypt", "Mexico",
)
PROFESSIONS = (
    "teacher", "chef", "nurse", "pilot", "carpenter", "journalist", "architect", "farmer",
    "engineer", "photographer", "librarian", "mechanic", "dentist", "painter", "firefighter",
)
STUDY_SUBJECTS = (
    "chemistry", "economics", "architecture", "marine biology", "philosophy", "law",
    "mechanical engineering", "music", "linguistics", "medicine", "computer science",
    "art history", "agriculture", "geology",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")
ORG_A = ("Blue", "North", "Silver", "Bright", "Red", "Green", "Iron", "Cedar", "Summit", "Harbor")
ORG_B = ("Leaf", "Stone", "Wave", "Peak", "Field", "River", "Bridge", "Lantern", "Oak")
ORG_C = ("Labs", "Foods", "Systems", "Press", "Motors", "Media", "Energy", "Studios", "Textiles")
MASCOTS = ("Rovers", "Falcons", "United", "Tigers", "Wanderers", "Sharks", "Rangers", "Comets")
POS_ADJ = (
    "excellent", "wonderful", "fantastic", "superb", "delightful", "impressive",
    "outstanding", "lovely", "great", "first-rate",
)
NEG_ADJ = (
    "terrible", "disappointing", "awful", "poor", "mediocre", "dreadful", "frustrating",
    "underwhelming", "bad", "sloppy",
)
ADVERBS = ("really", "truly", "surprisingly", "absolutely", "rather", "incredibly", "quite")
WORDS = (
    "apple", "river", "candle", "garden", "rocket", "pencil", "violin", "harbor", "meadow",
    "lantern", "tiger", "blanket", "mirror", "orchard", "pepper", "saddle", "island",
    "button", "falcon", "kettle", "ladder", "marble", "needle", "oyster", "puzzle", "quilt",
    "ribbon", "shovel", "tunnel", "velvet", "walnut", "yogurt", "zebra", "bucket", "cactus",
)
# fmt: on


def person(r: Rand) -> tuple[str, str]:
    return r.pick(PEOPLE)


def org(r: Rand) -> str:
    return f"{r.pick(ORG_A)} {r.pick(ORG_B)} {r.pick(ORG_C)}"


def team(r: Rand, avoid: str = "") -> str:
    while True:
        name = f"{r.pick(CITIES)} {r.pick(MASCOTS)}"
        if name != avoid:
            return name


def two(r: Rand, seq: Sequence) -> tuple:
    a, b = r.sample(seq, 2)
    return a, b


def choices(r: Rand, answer: str, pool: Sequence[str], k: int) -> tuple[str, ...]:
    distractors = r.sample([p for p in pool if p != answer], k - 1)
    return tuple(r.shuffled([answer, *distractors]))


# --- families ------------------------------------------------------------------------------

# fmt: off
SENTIMENT_DOMAINS = {
    "movie": dict(
        things=("film", "movie", "picture"),
        openers=(
            "I watched this {thing} last {weekday}.",
            "We saw this {thing} at a small cinema in {city}.",
            "My friends talked me into this {thing}.",
            "I had high hopes for this {thing}.",
        ),
        aspects=(
            "the acting", "the plot", "the script", "the soundtrack", "the camera work",
            "the ending", "the dialogue", "the pacing", "the lead performance", "the visual style",
        ),
        pos_end=("I would happily watch it again.", "One of the best films of the year.",
                 "The director deserves every award."),
        neg_end=("I nearly walked out halfway through.", "Save your money and skip it.",
                 "Two hours I will never get back."),
    ),
    "restaurant": dict(
        things=("restaurant", "place", "diner", "cafe", "bistro"),
        openers=(
            "We had dinner at this {thing} on {weekday}.",
            "Stopped by this {thing} for lunch while visiting {city}.",
            "This {thing} opened near my office in {month}.",
            "Came here with {n} friends for a birthday.",
        ),
        aspects=(
            "the pasta", "the service", "the coffee", "the burger", "the dessert menu",
            "the staff", "the atmosphere", "the portion size", "the wait", "the taco platter",
        ),
        pos_end=("We will definitely be back.", "Five stars from our table.",
                 "Best meal I have had in {city}."),
        neg_end=("Never again.", "We left hungry and annoyed.",
                 "Not worth the drive across {city}."),
    ),
    "product": dict(
        things=("blender", "pair of headphones", "backpack", "desk lamp", "kettle", "keyboard",
                "water bottle", "vacuum cleaner", "camping stove", "phone case"),
        openers=(
            "I bought this {thing} {n} weeks ago.",
            "Ordered this {thing} as a gift for my {relative}.",
            "I needed a new {thing} and picked this one.",
            "This {thing} arrived two days after I ordered it.",
        ),
        aspects=(
            "the battery", "the build quality", "the price", "the manual", "the packaging",
            "the sound", "the handle", "the motor", "the zipper", "the charging cable",
        ),
        pos_end=("Would buy again.", "Great value for money.", "My whole family uses it now."),
        neg_end=("Returned it after a week.", "It broke within a month.",
                 "Do not waste your money."),
    ),
    "hotel": dict(
        things=("hotel", "guesthouse", "resort", "inn"),
        openers=(
            "We stayed at this {thing} for {n} nights in {month}.",
            "I booked this {thing} for a work trip to {city}.",
            "Spent our anniversary weekend at this {thing}.",
        ),
        aspects=(
            "the room", "the breakfast", "the front desk", "the pool", "the bed", "the view",
            "the location", "the bathroom", "the wifi", "the parking",
        ),
        pos_end=("We are already planning our next stay.", "Highly recommended.",
                 "The best hotel we have tried in {city}."),
        neg_end=("We checked out a day early.", "Avoid this place.",
                 "There are far better options in {city}."),
    ),
}
RELATIVES = ("brother", "sister", "mother", "father", "cousin", "neighbour", "husband", "wife")
REVIEW_TITLES_POS = ("Love it", "Exactly what I needed", "Great {thing}", "Five stars", "Perfect")
REVIEW_TITLES_NEG = ("Disappointed", "Broke quickly", "Not as described", "Avoid", "Meh")
# fmt: on


def sentiment(domain: str, labels: tuple[str, str], sentences: tuple[int, int] = (2, 3)) -> Gen:
    d = SENTIMENT_DOMAINS[domain]

    def gen(r: Rand) -> Ex:
        positive = r.chance(0.5)
        adj, other = (POS_ADJ, NEG_ADJ) if positive else (NEG_ADJ, POS_ADJ)
        a1, a2 = two(r, d["aspects"])
        fill = dict(
            thing=r.pick(d["things"]),
            weekday=r.pick(WEEKDAYS),
            city=r.pick(CITIES),
            month=r.pick(MONTHS),
            n=str(r.int(2, 6)),
            relative=r.pick(RELATIVES),
        )
        body = r.pick(
            (
                f"{cap(a1)} was {r.pick(ADVERBS)} {r.pick(adj)}.",
                f"I found {a1} {r.pick(adj)}.",
                f"Honestly, {a1} felt {r.pick(ADVERBS)} {r.pick(adj)}.",
                f"{cap(a1)} was {r.pick(adj)}, and {a2} was just as {r.pick(adj)}.",
                f"{cap(a1)} was {r.pick(adj)}, although {a2} was a bit {r.pick(other)}.",
            )
        )
        end = r.pick(d["pos_end"] if positive else d["neg_end"])
        opener = r.pick(d["openers"])
        parts = {1: [body], 2: r.pick(([opener, body], [body, end])), 3: [opener, body, end]}
        text = " ".join(parts[r.int(*sentences)]).format(**fill)
        title = r.pick(REVIEW_TITLES_POS if positive else REVIEW_TITLES_NEG).format(**fill)
        return Ex({"text": text, "title": title, "thing": fill["thing"]}, labels[positive], labels)

    return gen


# fmt: off
TWEET_POS = (
    "best {weekday} ever! {activity} with my crew #happy",
    "finally finished {activity} and feeling amazing :)",
    "so proud of my little {relative} today, what a star",
    "sunny morning in {city}, coffee in hand. life is good",
)
TWEET_NEG = (
    "ugh, {activity} got cancelled again. worst {weekday} ever",
    "my flight to {city} is delayed for the third time #fail",
    "can't believe my {thing} broke on day two. so annoyed",
    "stuck in traffic outside {city} for two hours. hate this",
)
TWEET_NEU = (
    "heading to {city} for a conference on {weekday}",
    "anyone know if the library opens early on {weekday}s?",
    "reading about {subject} before class tomorrow",
    "my {relative} moved to {city} last {month}",
)
ACTIVITIES = ("the marathon", "band practice", "the football match", "yoga class", "the hike")
# fmt: on


def tweet_sentiment(labels: tuple[str, str, str]) -> Gen:
    def gen(r: Rand) -> Ex:
        k = r.int(0, 2)
        text = r.pick((TWEET_NEG, TWEET_NEU, TWEET_POS)[k]).format(
            weekday=r.pick(WEEKDAYS),
            activity=r.pick(ACTIVITIES),
            relative=r.pick(RELATIVES),
            city=r.pick(CITIES),
            thing=r.pick(SENTIMENT_DOMAINS["product"]["things"]),
            subject=r.pick(STUDY_SUBJECTS),
            month=r.pick(MONTHS),
        )
        return Ex({"text": f"@{r.pick(SURNAMES).lower()}{r.int(1, 99)} {text}"}, labels[k], labels)

    return gen


# fmt: off
NLI_ADJ = ("young", "tall", "elderly", "smiling", "tired", "cheerful")
NLI_ACTS = (
    "reading a newspaper", "fixing a bicycle", "painting a fence", "cooking dinner",
    "playing the guitar", "walking a dog", "carrying groceries", "taking photographs",
    "selling vegetables", "feeding pigeons", "writing in a notebook", "sweeping the floor",
)
NLI_PLACES = (
    "in a park", "at a train station", "on a busy street", "in a small kitchen",
    "near the river", "at a market", "outside a cafe", "on a beach", "in a garage",
)
# fmt: on


def nli(labels: tuple[str, str, str], long_premise: bool = False, explain: bool = False) -> Gen:
    """labels are (entailment, neutral, contradiction) answers."""

    def gen(r: Rand) -> Ex:
        prof, adj = r.pick(PROFESSIONS), r.pick(NLI_ADJ)
        act, place = r.pick(NLI_ACTS), r.pick(NLI_PLACES)
        premise = f"{cap(indef(adj))} {prof} is {act} {place}."
        if long_premise:
            name, pron = person(r)
            premise = (
                f"{name} has worked as {indef(prof)} in {r.pick(CITIES)} for {r.int(2, 30)} years. "
                f"On most {r.pick(WEEKDAYS)}s {pron} can be found {act} {place}."
            )
        k = r.int(0, 2)
        if k == 0:
            hyp, why = r.pick(
                (
                    (f"A person is {act} {place}.", f"{indef(prof)} is a person"),
                    (f"Someone is {act}.", f"the {prof} is someone who is {act}"),
                    (f"There is {indef(prof)} {place}.", f"the {prof} is {place}"),
                )
            )
        elif k == 1:
            hyp, why = r.pick(
                (
                    (f"The {prof} is {act} to earn extra money.", "we are not told why"),
                    (f"The {prof} is waiting for a friend.", "nothing mentions a friend"),
                    (f"The {prof} is {act} on a {r.pick(WEEKDAYS)}.", "no day is given"),
                )
            )
        else:
            other = r.pick([a for a in NLI_ACTS if a != act])
            hyp, why = r.pick(
                (
                    (f"The {prof} is asleep in bed.", f"one cannot be {act} while asleep"),
                    (f"Nobody is {place}.", f"the {prof} is {place}"),
                    (f"The {prof} is only {other}.", f"the {prof} is {act}, not only {other}"),
                )
            )
        target = labels[k]
        if explain:
            target = f"{cap(why)}. So the answer is {labels[k]}."
        return Ex({"premise": premise, "hypothesis": hyp}, target, tuple(dict.fromkeys(labels)))

    return gen


# fmt: off
TOPIC_HEADLINES = {
    "World": (
        "{country} and {country2} agree to reopen border talks after {n} days",
        "Thousands rally in {city} over rising rents",
        "{country} calls snap election as prime minister resigns",
        "Floods force {n},000 people from their homes in northern {country}",
    ),
    "Sports": (
        "{team} edge {team2} {s1}-{s2} in cup thriller",
        "{name} {surname} wins {city} marathon in record time",
        "Injury rules {name} {surname} out of {team} season opener",
        "{team} sack coach after {n} straight defeats",
    ),
    "Business": (
        "{org} shares fall {n} percent after weak quarterly results",
        "{org} to cut {n}00 jobs at {city} plant",
        "{org} agrees {n} billion dollar takeover of {org2}",
        "Oil prices climb as {country} output slows",
    ),
    "Science/Tech": (
        "{org} unveils phone with week-long battery life",
        "Scientists in {city} find new species of deep-sea fish",
        "New space telescope spots water vapour on distant planet",
        "Researchers in {country} build faster solar cell",
    ),
}
# fmt: on


def topic_news(lead: bool = True) -> Gen:
    names = tuple(TOPIC_HEADLINES)

    def gen(r: Rand) -> Ex:
        topic = r.pick(names)
        name, _ = person(r)
        t1 = team(r)
        c1, c2 = two(r, COUNTRIES)
        head = r.pick(TOPIC_HEADLINES[topic]).format(
            country=c1,
            country2=c2,
            city=r.pick(CITIES),
            n=str(r.int(2, 40)),
            team=t1,
            team2=team(r, t1),
            s1=str(r.int(2, 5)),
            s2=str(r.int(0, 1)),
            name=name,
            surname=r.pick(SURNAMES),
            org=org(r),
            org2=org(r),
        )
        text = head
        if lead:
            text = f"{head}. {r.pick(CITIES).upper()} ({r.pick(('AP', 'Reuters', 'AFP'))}) - "
            text += r.pick(
                (
                    "Officials said more details would follow later in the week.",
                    "The announcement came late on " + r.pick(WEEKDAYS) + ".",
                    "Analysts had expected the move for several months.",
                )
            )
        return Ex({"text": text}, topic, names)

    return gen


def dbpedia() -> Gen:
    cats = ("Company", "Athlete", "Village", "Animal", "Album", "Building")

    def gen(r: Rand) -> Ex:
        cat = r.pick(cats)
        name, pron = person(r)
        year, city, country = str(r.int(1850, 2015)), r.pick(CITIES), r.pick(COUNTRIES)
        village = r.pick(("Ash", "Brook", "Kel", "Mar", "Dun", "Wil", "Thorn", "Ros"))
        village += r.pick(("by", "ford", "ton", "wick", "ley", "more", "stead"))
        text = {
            "Company": f"{org(r)} is a company based in {city}, {country}, that makes "
            f"{r.pick(('furniture', 'bicycles', 'software', 'paint', 'toys'))}. "
            f"It was founded in {year}.",
            "Athlete": f"{name} {r.pick(SURNAMES)} (born {year}) is a {country}-born "
            f"{r.pick(('football', 'rugby', 'tennis', 'basketball'))} player. "
            f"{cap(pron)} currently plays for {team(r)}.",
            "Village": f"{village} is a village in the {r.pick(('eastern', 'western', 'hill'))} "
            f"district of {country}. At the {year} census its population was {r.int(80, 3000)}.",
            "Animal": f"The {r.pick(('striped', 'golden', 'spotted', 'pale', 'crimson'))} "
            f"{r.pick(('beetle', 'moth', 'frog', 'snail', 'finch', 'gecko'))} is a small species "
            f"found in the {r.pick(('forests', 'wetlands', 'deserts', 'mountains'))} of {country}.",
            "Album": f"{cap(r.pick(WORDS))} {cap(r.pick(WORDS))} is the {r.pick(ORDINALS)} "
            f"studio album by the {country} band The {r.pick(MASCOTS)}, released in {year}.",
            "Building": f"The {r.pick(SURNAMES)} Tower is a {r.int(8, 70)}-storey office building "
            f"in {city}, {country}. It was completed in {year}.",
        }[cat]
        return Ex({"text": text}, cat, cats)

    return gen


def _bio(r: Rand) -> dict[str, str]:
    name, pron = person(r)
    c1, c2 = two(r, CITIES)
    year = r.int(1940, 1995)
    return dict(
        name=f"{name} {r.pick(SURNAMES)}",
        pron=pron,
        born=c1,
        year=str(year),
        subject=r.pick(STUDY_SUBJECTS),
        work=c2,
        prof=r.pick(PROFESSIONS),
        org=org(r),
        founded=str(year + r.int(25, 35)),
    )


def _passage(b: dict[str, str]) -> str:
    return (
        f"{b['name']} was born in {b['born']} in {b['year']}. {cap(b['pron'])} studied "
        f"{b['subject']} and later worked as {indef(b['prof'])} in {b['work']}. In {b['founded']}, "
        f"{b['pron']} founded {b['org']}."
    )


def extractive_qa() -> Gen:
    def gen(r: Rand) -> Ex:
        b = _bio(r)
        q, a = r.pick(
            (
                (f"Where was {b['name']} born?", b["born"]),
                (f"What did {b['name']} study?", b["subject"]),
                (f"In what year did {b['name']} found {b['org']}?", b["founded"]),
                (f"Which company did {b['name']} found?", b["org"]),
                (f"In which city did {b['name']} work as {indef(b['prof'])}?", b["work"]),
                (f"What was {b['name']}'s job in {b['work']}?", b["prof"]),
            )
        )
        return Ex({"passage": _passage(b), "question": q}, a)

    return gen


def yes_no_qa(labels: tuple[str, str] = ("no", "yes")) -> Gen:
    def gen(r: Rand) -> Ex:
        b = _bio(r)
        truth = r.chance(0.5)
        city = b["born"] if truth else r.pick([c for c in CITIES if c != b["born"]])
        subj = b["subject"] if truth else r.pick([s for s in STUDY_SUBJECTS if s != b["subject"]])
        q = r.pick((f"was {b['name']} born in {city}", f"did {b['name']} study {subj}"))
        return Ex({"passage": _passage(b), "question": q}, labels[truth], labels)

    return gen


def answer_check() -> Gen:
    """wiki_qa style: is a candidate sentence a correct answer to the question?"""

    def gen(r: Rand) -> Ex:
        b = _bio(r)
        q = f"where was {b['name']} born"
        good = r.chance(0.5)
        cand = (
            f"{b['name']} was born in {b['born']} in {b['year']}."
            if good
            else f"{b['name']} worked as {indef(b['prof'])} in {b['work']}."
        )
        return Ex({"question": q, "candidate": cand}, ("No", "Yes")[good], ("No", "Yes"))

    return gen


# Parallel lexicon: English, French, German, Spanish.
# fmt: off
TR_SUBJ = (
    ("The teacher", "Le professeur", "Der Lehrer", "El profesor"),
    ("My sister", "Ma sœur", "Meine Schwester", "Mi hermana"),
    ("The old man", "Le vieil homme", "Der alte Mann", "El anciano"),
    ("Our neighbour", "Notre voisin", "Unser Nachbar", "Nuestro vecino"),
    ("The child", "L'enfant", "Das Kind", "El niño"),
    ("The doctor", "Le médecin", "Der Arzt", "El médico"),
    ("My father", "Mon père", "Mein Vater", "Mi padre"),
    ("The student", "L'étudiant", "Der Student", "El estudiante"),
    ("The waiter", "Le serveur", "Der Kellner", "El camarero"),
)
TR_VERB_OBJ = (
    (("reads", "lit", "liest", "lee"), (
        ("the newspaper", "le journal", "die Zeitung", "el periódico"),
        ("a long letter", "une longue lettre", "einen langen Brief", "una carta larga"),
        ("the book", "le livre", "das Buch", "el libro"))),
    (("buys", "achète", "kauft", "compra"), (
        ("fresh bread", "du pain frais", "frisches Brot", "pan fresco"),
        ("a red bicycle", "un vélo rouge", "ein rotes Fahrrad", "una bicicleta roja"),
        ("the tickets", "les billets", "die Karten", "las entradas"))),
    (("cooks", "prépare", "kocht", "cocina"), (
        ("the soup", "la soupe", "die Suppe", "la sopa"),
        ("dinner", "le dîner", "das Abendessen", "la cena"))),
    (("cleans", "nettoie", "putzt", "limpia"), (
        ("the kitchen", "la cuisine", "die Küche", "la cocina"),
        ("the windows", "les fenêtres", "die Fenster", "las ventanas"))),
    (("writes", "écrit", "schreibt", "escribe"), (
        ("a short story", "une courte histoire", "eine kurze Geschichte", "una historia corta"),
        ("an email", "un e-mail", "eine E-Mail", "un correo"))),
    (("repairs", "répare", "repariert", "repara"), (
        ("the old car", "la vieille voiture", "das alte Auto", "el coche viejo"),
        ("the door", "la porte", "die Tür", "la puerta"))),
)
TR_PLACE = (
    ("in the garden", "dans le jardin", "im Garten", "en el jardín"),
    ("at the station", "à la gare", "am Bahnhof", "en la estación"),
    ("at home", "à la maison", "zu Hause", "en casa"),
    ("in the library", "à la bibliothèque", "in der Bibliothek", "en la biblioteca"),
    ("near the harbour", "près du port", "am Hafen", "cerca del puerto"),
)
TR_TIME = (
    ("every morning", "chaque matin", "jeden Morgen", "cada mañana"),
    ("on Sundays", "le dimanche", "sonntags", "los domingos"),
    ("today", "aujourd'hui", "heute", "hoy"),
    ("after work", "après le travail", "nach der Arbeit", "después del trabajo"),
)
TR_BUT = ("but", "mais", "aber", "pero")
LANGS = ("English", "French", "German", "Spanish")
# fmt: on


def _clause(r: Rand) -> list[str]:
    s = r.pick(TR_SUBJ)
    verb, objs = r.pick(TR_VERB_OBJ)
    o, p, t = r.pick(objs), r.pick(TR_PLACE), r.pick(TR_TIME)
    use_p, use_t = r.chance(0.6), r.chance(0.6)
    out = []
    for i in range(4):
        words = [s[i], verb[i]]
        if i == 2 and use_t:  # German keeps the time adverb right after the verb
            words.append(t[i])
        words.append(o[i])
        if use_p:
            words.append(p[i])
        if i != 2 and use_t:
            words.append(t[i])
        out.append(" ".join(words))
    return out


def parallel_sentence(r: Rand) -> list[str]:
    first = _clause(r)
    if r.chance(0.3):
        second = _clause(r)
        first = [f"{a}, {TR_BUT[i]} {low(b)}" for i, (a, b) in enumerate(zip(first, second, strict=True))]
    return [s + "." for s in first]


def translation(src: int, tgt: int) -> Gen:
    def gen(r: Rand) -> Ex:
        sent = parallel_sentence(r)
        return Ex({"src": sent[src], "src_lang": LANGS[src], "tgt_lang": LANGS[tgt]}, sent[tgt])

    return gen


# fmt: off
FINDINGS = (
    "people who walk every day sleep better", "regular reading slows memory loss",
    "a diet rich in beans lowers blood pressure", "short naps improve test scores",
    "green spaces reduce stress in children", "learning a second language sharpens focus",
)
FACILITIES = ("factory", "research centre", "warehouse", "call centre", "bakery")
PLANS = (
    ("build a new bridge over the river", "new bridge"),
    ("turn the old rail yard into a park", "rail yard park"),
    ("add bus lanes to the main road", "bus lanes"),
    ("open two new public libraries", "new libraries"),
)
# fmt: on


def news_article(headline: bool = False) -> Gen:
    def gen(r: Rand) -> Ex:
        name, pron = person(r)
        full = f"{name} {r.pick(SURNAMES)}"
        city, n = r.pick(CITIES), r.int(3, 90)
        kind = r.int(0, 3)
        if kind == 0:
            plan, short = r.pick(PLANS)
            art = (
                f"{city} city council on {r.pick(WEEKDAYS)} approved a plan to {plan}. "
                f"The project, backed by mayor {full}, will cost about {n} million dollars. "
                f"Supporters say it will ease traffic, while critics warned of delays."
            )
            summ = f"{city} council approves a {n} million dollar plan to {plan}."
            head = f"{city} approves {short} plan"
        elif kind == 1:
            company, fac = org(r), r.pick(FACILITIES)
            art = (
                f"{company} said on {r.pick(WEEKDAYS)} it would open a {fac} in {city}, "
                f"creating about {n}0 jobs. Chief executive {full} said the site would start "
                f"work next year. Local officials welcomed the investment."
            )
            summ = f"{company} will open a {fac} in {city}, creating about {n}0 jobs."
            head = f"{company} to create {n}0 jobs in {city}"
        elif kind == 2:
            t1 = team(r)
            t2 = team(r, t1)
            s1, s2 = r.int(2, 5), r.int(0, 1)
            art = (
                f"{t1} beat {t2} {s1}-{s2} on {r.pick(WEEKDAYS)} night. {full} scored twice "
                f"before half-time as the visitors struggled. The win lifts {t1} to "
                f"{r.pick(ORDINALS)} place in the league."
            )
            summ = f"{full} scored twice as {t1} beat {t2} {s1}-{s2}."
            head = f"{full} double sinks {t2}"
        else:
            finding = r.pick(FINDINGS)
            art = (
                f"Researchers at the University of {city} have found that {finding}. "
                f"The study followed {n}0 volunteers over {r.int(2, 9)} years. Lead author "
                f"{full} said {pron} hoped larger trials would follow."
            )
            summ = f"A University of {city} study of {n}0 volunteers found that {finding}."
            head = f"Study: {finding}"
        return Ex({"article": art}, head if headline else summ)

    return gen


# fmt: off
QQP_GOALS = (
    "learn French quickly", "lose weight without dieting", "improve my credit score",
    "become a better public speaker", "start a vegetable garden", "get better sleep",
    "prepare for a job interview", "stop procrastinating", "learn to play the piano",
    "save money on groceries", "train for a marathon", "write a good cover letter",
    "make friends in a new city", "fix a slow laptop", "learn to code in Python",
)
QQP_FORMS = (
    "How do I {g}?", "What is the best way to {g}?", "How can I {g}?",
    "What are some tips to {g}?", "What should I do to {g}?",
)
# fmt: on


def question_pairs(labels: tuple[str, str]) -> Gen:
    def gen(r: Rand) -> Ex:
        same = r.chance(0.5)
        g1, g2 = two(r, QQP_GOALS)
        f1, f2 = two(r, QQP_FORMS)
        q1, q2 = f1.format(g=g1), f2.format(g=g1 if same else g2)
        return Ex({"q1": q1, "q2": q2}, labels[same], labels)

    return gen


def sentence_pairs(labels: tuple[str, str]) -> Gen:
    """paws style: same words, but swapping two places changes the meaning."""

    def gen(r: Rand) -> Ex:
        name, pron = person(r)
        full = f"{name} {r.pick(SURNAMES)}"
        c1, c2 = two(r, CITIES)
        year = r.int(1950, 2020)
        job = indef(r.pick(PROFESSIONS))
        s1 = f"{full} moved from {c1} to {c2} in {year} to work as {job}."
        same = r.chance(0.5)
        if same:
            s2 = f"In {year}, {full} moved from {c1} to {c2} to work as {job}."
        else:
            s2 = s1.replace(c1, "@").replace(c2, c1).replace("@", c2)
        return Ex({"s1": s1, "s2": s2}, labels[same], labels)

    return gen


# fmt: off
COMMONSENSE = (
    ("milk", "refrigerator", "milk spoils quickly unless it is kept cold"),
    ("a toothbrush", "bathroom", "people brush their teeth at the bathroom sink"),
    ("a stapler", "office", "staplers fasten papers together at work"),
    ("a tent", "campsite", "tents are put up for sleeping outdoors"),
    ("a stethoscope", "hospital", "doctors use stethoscopes to examine patients"),
    ("a chalkboard", "classroom", "teachers write lessons on a chalkboard"),
    ("a shopping cart", "supermarket", "shoppers push carts around a supermarket"),
    ("a pillow", "bedroom", "pillows are used when sleeping in bed"),
    ("a wrench", "garage", "wrenches are tools for fixing cars"),
    ("a microscope", "laboratory", "scientists study tiny samples in a laboratory"),
    ("an anchor", "harbor", "boats drop anchor when they stop in a harbor"),
    ("a scarecrow", "farm", "farmers use scarecrows to keep birds off their crops"),
    ("popcorn", "cinema", "people often eat popcorn while watching films"),
    ("a passport", "airport", "travellers show passports before flying abroad"),
    ("a rolling pin", "kitchen", "rolling pins flatten dough for baking"),
    ("sunscreen", "beach", "people protect their skin from the sun at the beach"),
    ("a saddle", "stable", "saddles are kept near the horses"),
    ("a telescope", "observatory", "astronomers watch the sky from an observatory"),
)
CS_QUESTIONS = (
    "Where would you most likely find {item}?",
    "If you wanted to use {item}, where would you probably go?",
    "{name} was looking for {item}. Where should {pron} look first?",
    "Where is {item} usually kept?",
)
# fmt: on


def commonsense(explain: bool = False) -> Gen:
    places = tuple(c[1] for c in COMMONSENSE)

    def gen(r: Rand) -> Ex:
        item, place, why = r.pick(COMMONSENSE)
        name, pron = person(r)
        q = r.pick(CS_QUESTIONS).format(item=item, name=name, pron=pron)
        target = f"{cap(why)}. So the answer is {place}." if explain else place
        return Ex({"question": q}, target, choices(r, place, places, 5))

    return gen


def grammaticality(labels: tuple[str, str]) -> Gen:
    verbs = {v[0][0] for v in TR_VERB_OBJ}

    def gen(r: Rand) -> Ex:
        words = _clause(r)[0].split()
        ok = r.chance(0.5)
        if not ok:
            v = next(i for i, w in enumerate(words) if w in verbs)
            if r.chance(0.5):  # verb moved to the end: "The teacher the book reads."
                words.append(words.pop(v))
            else:  # verb swapped into the subject: "The reads teacher the book."
                words[v - 1], words[v] = words[v], words[v - 1]
        return Ex({"sentence": " ".join(words) + "."}, labels[ok], labels)

    return gen


def _word_sentence(r: Rand, n: int) -> list[str]:
    return r.sample(WORDS, n)


def reverse_words() -> Gen:
    def gen(r: Rand) -> Ex:
        w = _word_sentence(r, r.int(4, 7))
        return Ex({"x": " ".join(w)}, " ".join(reversed(w)))

    return gen


def longest_word() -> Gen:
    def gen(r: Rand) -> Ex:
        w = _word_sentence(r, r.int(4, 7))
        return Ex({"x": " ".join(w)}, max(w, key=len))

    return gen


def count_letter() -> Gen:
    def gen(r: Rand) -> Ex:
        w = _word_sentence(r, r.int(5, 8))
        letter = r.pick(w)[0]
        return Ex({"x": " ".join(w), "letter": letter}, str(sum(x[0] == letter for x in w)))

    return gen


def sort_words() -> Gen:
    def gen(r: Rand) -> Ex:
        w = _word_sentence(r, r.int(4, 7))
        return Ex({"x": ", ".join(w)}, ", ".join(sorted(w)))

    return gen


def city_extraction() -> Gen:
    def gen(r: Rand) -> Ex:
        name, _ = person(r)
        city = r.pick(CITIES)
        s = r.pick(
            (
                f"{name} moved to {city} last {r.pick(MONTHS)} to work as {indef(r.pick(PROFESSIONS))}.",
                f"The conference on {r.pick(STUDY_SUBJECTS)} will be held in {city} next year.",
                f"After {r.int(2, 20)} years abroad, {name} finally returned to {city}.",
                f"Tickets for the {city} festival sold out in {r.int(2, 50)} minutes.",
            )
        )
        return Ex({"x": s}, city)

    return gen


ITEMS = ("apples", "stickers", "marbles", "pencils", "cookies", "stamps", "books", "shells")


def math_problem(r: Rand) -> tuple[str, str, int]:
    """Returns (problem, step-by-step rationale, integer answer)."""
    name, pron = person(r)
    kind = r.int(0, 4)
    if kind == 0:
        item, a, b = r.pick(ITEMS), r.int(5, 40), r.int(2, 25)
        c = r.int(1, min(a + b - 1, 20))
        friend = r.pick([p for p, _ in PEOPLE if p != name])
        q = (
            f"{name} has {a} {item}. {cap(pron)} buys {b} more and then gives {c} to {friend}. "
            f"How many {item} does {name} have now?"
        )
        ans = a + b - c
        why = f"{name} starts with {a} {item} and buys {b}, so {a} + {b} = {a + b}. "
        why += f"After giving away {c}, {a + b} - {c} = {ans}."
    elif kind == 1:
        p, n = r.int(2, 15), r.int(2, 6)
        bill = next(x for x in (20, 50, 100) if x >= p * n)
        thing = r.pick(("notebooks", "sandwiches", "plants", "candles"))
        q = (
            f"A shop sells {thing} for ${p} each. {name} buys {n} of them and pays with a "
            f"${bill} bill. How much change does {pron} get?"
        )
        ans = bill - p * n
        why = f"{n} {thing} cost {n} x {p} = {p * n} dollars. The change is {bill} - {p * n} = "
        why += f"{ans} dollars."
    elif kind == 2:
        rows, per = r.int(3, 12), r.int(4, 15)
        taken = r.int(1, rows * per - 1)
        q = (
            f"A hall has {rows} rows of chairs with {per} chairs in each row. If {taken} "
            f"people are already seated, how many chairs are empty?"
        )
        ans = rows * per - taken
        why = f"There are {rows} x {per} = {rows * per} chairs. {rows * per} - {taken} = {ans}."
    elif kind == 3:
        speed, hours = 5 * r.int(8, 24), r.int(2, 6)
        q = f"A train travels at {speed} km per hour for {hours} hours. How many kilometres does it travel?"
        ans = speed * hours
        why = f"Distance is speed times time, so {speed} x {hours} = {ans} km."
    else:
        w, k = r.int(3, 20), r.int(3, 12)
        s = r.int(1, w * k - 1)
        q = (
            f"{name} saves ${w} every week for {k} weeks, then spends ${s} on a gift. "
            f"How much money does {pron} have left?"
        )
        ans = w * k - s
        why = f"{name} saves {w} x {k} = {w * k} dollars. After the gift, {w * k} - {s} = {ans}."
    return q, why, ans


def arithmetic(rationale: bool, options: bool = False) -> Gen:
    def gen(r: Rand) -> Ex:
        q, why, ans = math_problem(r)
        if not options:
            target = f"{why} The answer is {ans}." if rationale else str(ans)
            return Ex({"question": q}, target)
        values = {ans}
        while len(values) < 5:
            values.add(max(0, ans + r.pick((-10, -5, -2, -1, 1, 2, 3, 5, 10, 20))))
        ordered = r.shuffled(sorted(values))
        opts = tuple(f"({'ABCDE'[i]}) {v}" for i, v in enumerate(ordered))
        letter = "ABCDE"[ordered.index(ans)]
        return Ex({"question": q}, f"{why} The answer is ({letter}).", opts)

    return gen


def date_reasoning() -> Gen:
    def fmt(d: dt.date) -> str:
        return d.strftime("%m/%d/%Y")

    def gen(r: Rand) -> Ex:
        today = dt.date(2000, 1, 1) + dt.timedelta(days=r.int(0, 9000))
        k = r.int(1, 40)
        q, why, ans = r.pick(
            (
                (
                    f"Today is {today:%B} {today.day}, {today.year}. What is the date {k} days "
                    f"from today in MM/DD/YYYY?",
                    f"Today is {fmt(today)}. {k} days later is",
                    today + dt.timedelta(days=k),
                ),
                (
                    f"Yesterday was {fmt(today - dt.timedelta(days=1))}. What is the date {k} days ago in MM/DD/YYYY?",
                    f"If yesterday was {fmt(today - dt.timedelta(days=1))}, today is "
                    f"{fmt(today)}. {k} days before today is",
                    today - dt.timedelta(days=k),
                ),
                (
                    f"A concert was planned for {fmt(today)}, but it was moved {k // 7 + 1} "
                    f"weeks later. What is the new date in MM/DD/YYYY?",
                    f"{k // 7 + 1} weeks is {7 * (k // 7 + 1)} days. {fmt(today)} plus {7 * (k // 7 + 1)} days is",
                    today + dt.timedelta(days=7 * (k // 7 + 1)),
                ),
            )
        )
        wrong = {
            fmt(ans + dt.timedelta(days=1)),
            fmt(ans - dt.timedelta(days=1)),
            fmt(ans.replace(year=ans.year + 1) if (ans.month, ans.day) != (2, 29) else ans),
        } - {fmt(ans)}
        opts = tuple(r.shuffled(sorted({fmt(ans)} | wrong)))
        return Ex({"question": q}, f"{why} {fmt(ans)}. So the answer is {fmt(ans)}.", opts)

    return gen


# fmt: off
SIZES_M = (
    ("a mouse", 0.1), ("a cat", 0.5), ("a fox", 0.9), ("a sheep", 1.3), ("a horse", 2.4),
    ("an elephant", 6.0), ("a blue whale", 25.0),
)
BOXES_M = (
    ("a shoebox", 0.3), ("a suitcase", 0.7), ("a car boot", 1.1), ("a garage", 6.0),
    ("a shipping container", 12.0), ("a football stadium", 105.0),
)
FREEZING_C = (("water", 0), ("sea water", -2), ("olive oil", -6), ("pure ethanol", -114))
# fmt: on


def strategy_yes_no() -> Gen:
    def gen(r: Rand) -> Ex:
        if r.chance(0.7):
            (a, la), (b, lb) = r.pick(SIZES_M), r.pick(BOXES_M)
            q = f"Could {a} fit inside {b}?"
            yes = la < lb
            why = f"{cap(a)} is about {la} m long and {b} is about {lb} m long. "
            why += f"{cap(a)} is {'smaller' if yes else 'not smaller'}."
        else:
            (liq, fp), t = r.pick(FREEZING_C), r.pick((-150, -40, -20, -10, -4, -1, 5, 10))
            q = f"Would {liq} freeze on a day when it is {t} degrees Celsius?"
            yes = t < fp
            why = f"{cap(liq)} freezes at about {fp} degrees Celsius, and {t} is "
            why += f"{'below' if yes else 'not below'} that."
        ans = ("no", "yes")[yes]
        return Ex({"question": q}, f"{why} So the answer is {ans}.", ("no", "yes"))

    return gen


# fmt: off
SUPPORT = (
    (
        "Hi, my order #{num} still hasn't arrived. It's been {n} days.",
        "I'm sorry about the wait. Could you confirm the email on the order?",
        "Sure, it's {lname}@example.com.",
        "Thanks, {name}. Your parcel left our {city} warehouse on {weekday} and should "
        "arrive within two days.",
    ),
    (
        "I'd like a refund for the {thing} I bought last week.",
        "I can help with that. What was wrong with the {thing}?",
        "It stopped working after {n} days.",
        "I'm sorry to hear that. I've started a full refund for order #{num}; you'll see it "
        "in 3 to 5 business days.",
    ),
    (
        "I can't log into my account, the password reset email never comes.",
        "Let me check. Which email address do you use to sign in?",
        "{lname}@example.com",
        "I've sent a new reset link to {lname}@example.com. Please check your spam folder too.",
    ),
    (
        "How do I cancel my subscription? I'm moving to {city}.",
        "I can do that for you. Would you like it cancelled today or at the end of the month?",
        "End of the month, please.",
        "Done, {name}. Your subscription ends on the last day of this month and you won't be "
        "charged again.",
    ),
)
CUISINES = ("Italian", "Thai", "Mexican", "Ethiopian", "Japanese", "Lebanese", "Greek")
AREAS = ("north", "south", "east", "west", "centre")
# fmt: on


def dialog_turns(lines: Sequence[str], speakers: tuple[str, str]) -> str:
    return "\n".join(f"{speakers[i % 2]}: {line}" for i, line in enumerate(lines))


def support_dialog() -> Gen:
    def gen(r: Rand) -> Ex:
        name, _ = person(r)
        fill = dict(
            num=str(r.int(10000, 99999)),
            n=str(r.int(2, 14)),
            lname=name.lower(),
            name=name,
            city=r.pick(CITIES),
            weekday=r.pick(WEEKDAYS),
            thing=r.pick(SENTIMENT_DOMAINS["product"]["things"]),
        )
        turns = [t.format(**fill) for t in r.pick(SUPPORT)]
        cut = r.pick((3, 3, 1))  # sometimes predict the agent's first reply instead
        return Ex({"dialog": dialog_turns(turns[:cut], ("Customer", "Agent"))}, turns[cut])

    return gen


def booking_dialog() -> Gen:
    def gen(r: Rand) -> Ex:
        cuisine, area, n = r.pick(CUISINES), r.pick(AREAS), r.int(2, 8)
        rest = f"{r.pick(SURNAMES)}'s {r.pick(('Kitchen', 'Bistro', 'Grill', 'Table'))}"
        day, time = r.pick(WEEKDAYS), f"{r.int(5, 9)}:{r.pick(('00', '15', '30', '45'))} pm"
        turns = [
            f"I'm looking for a {cuisine} restaurant in the {area} of town.",
            f"{rest} is a popular {cuisine} place in the {area}. Shall I book a table?",
            f"Yes please, a table for {n} on {day} at {time}.",
            f"Your table for {n} at {rest} is booked for {day} at {time}. "
            f"The reference number is {r.pick(ORG_B).upper()[:3]}{r.int(100, 999)}.",
        ]
        return Ex({"dialog": dialog_turns(turns[:3], ("User", "System"))}, turns[3])

    return gen


# fmt: off
TOPIC_FACTS = (
    ("surfing", "modern surfing was popularised in Hawaii in the early 1900s"),
    ("chess", "the longest possible chess game is thousands of moves long"),
    ("honey", "honey found in ancient tombs was still edible"),
    ("octopuses", "octopuses have three hearts and blue blood"),
    ("the violin", "a violin is made from more than seventy pieces of wood"),
    ("coffee", "coffee beans are actually the seeds of a fruit"),
    ("bicycles", "there are about twice as many bicycles as cars in the world"),
    ("volcanoes", "Iceland has around thirty active volcano systems"),
    ("tea", "tea is the most widely drunk beverage after water"),
    ("penguins", "emperor penguins can dive deeper than five hundred metres"),
)
PERSONAS = (
    "I have two dogs", "I love hiking in the mountains", "I play the violin",
    "I work night shifts at a hospital", "I am learning Spanish", "I grew up on a farm",
    "I bake bread every weekend", "I collect old maps", "I run a small bookshop",
    "I just moved to a new city", "I coach a kids' football team", "I hate cold weather",
)
# fmt: on


def knowledge_dialog() -> Gen:
    def gen(r: Rand) -> Ex:
        topic, fact = r.pick(TOPIC_FACTS)
        opener = r.pick(
            (
                f"I've been reading a lot about {topic} lately.",
                f"Do you know much about {topic}?",
                f"My {r.pick(RELATIVES)} is obsessed with {topic}.",
            )
        )
        dialog = f"Knowledge: {cap(fact)}.\nA: {opener}"
        return Ex({"dialog": dialog}, f"That's fun! Did you know that {fact}?")

    return gen


def persona_dialog() -> Gen:
    def gen(r: Rand) -> Ex:
        p1, p2 = two(r, PERSONAS)
        q = r.pick(
            ("Hi! What do you do for fun?", "Hey, tell me a bit about yourself.", "Hello! How was your weekend?")
        )
        dialog = f"Persona: {p1}. {p2}.\nA: {q}"
        reply = f"{p1}, and {p2}. What about you?"
        return Ex({"dialog": dialog}, reply)

    return gen


def question_rewrite() -> Gen:
    def gen(r: Rand) -> Ex:
        b = _bio(r)
        turns, target = r.pick(
            (
                (
                    [f"Where was {b['name']} born?", f"In {b['born']}.", "What did they study?"],
                    f"What did {b['name']} study?",
                ),
                (
                    [f"What company did {b['name']} found?", b["org"], "When was it founded?"],
                    f"When was {b['org']} founded?",
                ),
                (
                    [f"Who founded {b['org']}?", b["name"], "Where did they work before that?"],
                    f"Where did {b['name']} work before founding {b['org']}?",
                ),
            )
        )
        return Ex({"dialog": dialog_turns(turns, ("Q", "A"))}, target)

    return gen


# --- tasks ---------------------------------------------------------------------------------

ALL4 = TEMPLATE_TYPES
ZS = ("zs_opt", "zs_noopt")
NOOPT = ("zs_noopt", "fs_noopt")
OPT = ("zs_opt", "fs_opt")


def niv2(definition: str) -> tuple[str, ...]:
    """NIv2 prompts: a task definition, then the instance."""
    return (
        f"Definition: {definition}\n\nInput: {{x}}{{options}}\n\nOutput:",
        f"{definition}\n\n{{x}}",
    )


@dataclass(frozen=True)
class Task:
    name: str
    source: str
    family: str
    size: int
    types: tuple[str, ...]
    gen: Gen
    templates: tuple[str, ...]
    dup: float = 0.0  # fraction of rows that copy another row of the task verbatim
    opt_header: str = "OPTIONS:"


REVIEW_TPL = (
    "{text}\nWhat is the sentiment of this review?",
    "Review: {text}\nIs this review positive or negative?",
    "How would you describe the sentiment of this {thing} review?\n{text}",
    "{text}\n\nDid the reviewer like the {thing}?",
)
NLI_TPL = (
    "Premise: {premise}\nHypothesis: {hypothesis}\nDoes the premise entail the hypothesis?",
    'If "{premise}", does this mean that "{hypothesis}"?',
    'Can we conclude that "{hypothesis}" if "{premise}"?',
    '{premise}\n\nBased on that sentence, is it true that "{hypothesis}"?',
)
QA_TPL = (
    "{passage}\n\nAnswer this question: {question}",
    "Read this and answer the question.\n\n{passage}\n\n{question}",
    "{passage}\nQ: {question}\nA:",
)
SUMM_TPL = (
    "{article}\n\nWrite a one-sentence summary of this article.",
    "Summarize this article:\n\n{article}",
    "Article: {article}\n\nWhat is a short summary of the article?",
)
DIALOG_TPL = (
    "{dialog}\n\nWhat is the next response in this conversation?",
    "Read the dialogue and write the next turn.\n\n{dialog}",
    "{dialog}\nGenerate the next turn in the conversation.",
)
MATH_TPL = (
    "{question}",
    "Solve this math word problem. {question}",
    "Answer the following question step by step. {question}",
)


def _tr_tpl(lang: str) -> tuple[str, ...]:
    return (
        f'Translate "{{src}}" to {lang}.',
        f"Translate the following sentence to {lang}:\n{{src}}",
        f'How is "{{src}}" said in {lang}?',
        f"{{src}}\n\nTranslate to {lang}.",
    )


def _niv2_input(fields: str) -> Callable[[Gen], Gen]:
    """Wraps a generator so its fields are also rendered into the single NIv2 field x."""

    def wrap(g: Gen) -> Gen:
        def gen(r: Rand) -> Ex:
            ex = g(r)
            return Ex({**ex.fields, "x": fields.format(**ex.fields)}, ex.target, ex.options)

        return gen

    return wrap


# fmt: off
TASKS: tuple[Task, ...] = (
    # flan2021: few, large tasks
    Task("imdb_reviews", "flan2021", "sentiment", 2100, ALL4,
         sentiment("movie", ("negative", "positive")), REVIEW_TPL, dup=0.08),
    Task("yelp_polarity_reviews", "flan2021", "sentiment", 400, ALL4,
         sentiment("restaurant", ("negative", "positive")), REVIEW_TPL),
    Task("ag_news_subset", "flan2021", "topic", 600, ALL4, topic_news(), (
        "{text}\n\nWhat is this text about?",
        "Which topic is this article about?\n\n{text}",
        "{text}\nWhich is the best summary of this article's topic?",
    ), dup=0.1),
    Task("snli", "flan2021", "nli", 500, ALL4,
         nli(("yes", "it is not possible to tell", "no")), NLI_TPL, dup=0.06),
    Task("anli_r1", "flan2021", "nli", 160, ("zs_opt", "fs_opt"),
         nli(("Yes", "It's impossible to say", "No"), long_premise=True), (
        '{premise}\n\nBased on the paragraph above can we conclude that "{hypothesis}"?',
        "Read the text and determine if the sentence is true:\n\n{premise}\n\n"
        "Sentence: {hypothesis}",
    )),
    Task("wmt14_translate_fr-en", "flan2021", "translation", 320, NOOPT,
         translation(0, 1), _tr_tpl("French")),
    Task("wmt16_translate_de-en", "flan2021", "translation", 200, NOOPT,
         translation(2, 0), _tr_tpl("English")),
    Task("cnn_dailymail", "flan2021", "summarization", 160, NOOPT, news_article(), SUMM_TPL),
    Task("squad_v1", "flan2021", "qa", 280, NOOPT, extractive_qa(), QA_TPL),
    Task("glue_qqp", "flan2021", "paraphrase", 250, ALL4, question_pairs(("no", "yes")), (
        "Are the following two questions the same?\n{q1}\n{q2}",
        "Question 1: {q1}\nQuestion 2: {q2}\nWould the answer to these two questions be the "
        "same?",
    )),
    Task("bool_q", "flan2021", "qa", 180, ALL4, yes_no_qa(), (
        "{passage}\n\nBased on the passage, {question}?",
        "{passage}\n\nIs it true that {question}?",
    )),
    # t0: medium tasks, mostly zero-shot
    Task("amazon_polarity", "t0", "sentiment", 260, ZS,
         sentiment("product", ("No", "Yes")), (
        "Title: {title}\nReview: {text}\nIs this product review positive?",
        "Is this product review positive?\nTitle: {title}\nReview: {text}\nAnswer:",
    ), dup=0.12),
    Task("rotten_tomatoes", "t0", "sentiment", 180, ("zs_opt", "zs_noopt", "fs_opt"),
         sentiment("movie", ("negative", "positive"), (1, 1)), (
        "{text} Did the reviewer find this movie good or bad?",
        "{text}\nIs this review positive or negative?",
    )),
    Task("dbpedia_14", "t0", "topic", 200, ZS, dbpedia(), (
        "Pick one category for the following text.\n{text}",
        "{text}\nGiven a list of categories, what category does the paragraph belong to?",
    ), dup=0.05, opt_header="Options:"),
    Task("paws_wiki", "t0", "paraphrase", 120, ZS, sentence_pairs(("No", "Yes")), (
        "Sentence 1: {s1}\nSentence 2: {s2}\nDo Sentence 1 and Sentence 2 express the same "
        "meaning? Yes or No?",
        "{s1}\n{s2}\nAre these two sentences paraphrases of each other?",
    )),
    Task("xsum", "t0", "summarization", 90, ("zs_noopt",), news_article(), (
        "{article}\n\nWhat is a one-sentence summary of the article above?",
        "Summarize: {article}",
    )),
    Task("cos_e", "t0", "commonsense", 130, ("zs_opt", "fs_opt"), commonsense(), (
        "{question}\nPick the option in line with common sense to answer the question.",
        "Question: {question}\nChoose the most suitable option to answer the question.",
    ), opt_header="Options:"),
    Task("adversarial_qa", "t0", "qa", 100, ("zs_noopt",), extractive_qa(), (
        'Given the following passage\n\n"{passage}",\n\nanswer the following question. '
        "Note that the answer is present within the text.\n\nQuestion: {question}",
    )),
    Task("wiki_qa", "t0", "qa", 70, ("zs_opt",), answer_check(), (
        "Question: {question}\nI found the following answer: {candidate}\n"
        "Is that a correct answer?",
    )),
    # niv2: many small tasks with a definition each
    Task("task1312_amazonreview_polarity_classification", "niv2", "sentiment", 60, ALL4,
         _niv2_input("{text}")(sentiment("product", ("NEG", "POS"))), niv2(
        "In this task, you are given a product review. Classify it as POS if the review is "
        "positive and NEG if it is negative."), dup=0.12),
    Task("task195_sentiment140_classification", "niv2", "sentiment", 45, ZS,
         _niv2_input("{text}")(tweet_sentiment(("negative", "neutral", "positive"))), niv2(
        "Classify the sentiment of the given tweet as positive, negative or neutral.")),
    Task("task512_hotel_review_sentiment", "niv2", "sentiment", 30, ("zs_noopt", "fs_noopt"),
         _niv2_input("{text}")(sentiment("hotel", ("negative", "positive"))), niv2(
        "You are given a hotel review. Answer positive if the guest was happy with the stay "
        "and negative otherwise.")),
    Task("task1344_glue_entailment_classification", "niv2", "nli", 50, ALL4,
         _niv2_input("Sentence 1: {premise} Sentence 2: {hypothesis}")(nli(("1", "0", "0"))),
         niv2("In this task, you are given two sentences. Indicate with 1 if the first "
              "sentence entails the second, otherwise answer 0."), dup=0.1),
    Task("task200_mnli_premise_hypothesis_classification", "niv2", "nli", 40, ZS,
         _niv2_input("Premise: {premise} Hypothesis: {hypothesis}")(
             nli(("entailment", "neutral", "contradiction"))),
         niv2("Determine whether the hypothesis is an entailment, a contradiction, or neutral "
              "with respect to the premise.")),
    Task("task1439_bio_question_answering", "niv2", "qa", 35, NOOPT,
         _niv2_input("Passage: {passage} Question: {question}")(extractive_qa()), niv2(
        "Read the passage and answer the question with a short span copied from the passage.")),
    Task("task073_word_order_reversal", "niv2", "string", 25, ("zs_noopt",),
         reverse_words(), niv2("Reverse the order of the words in the given sentence.")),
    Task("task101_longest_word", "niv2", "string", 20, ("zs_noopt", "fs_noopt"),
         longest_word(), niv2(
        "Given a sentence, return its longest word. If there is a tie, return the first one.")),
    Task("task1088_count_words_starting_with_letter", "niv2", "string", 22, ("zs_noopt",),
         _niv2_input("Sentence: {x} Letter: {letter}")(count_letter()), niv2(
        "Count how many words in the sentence begin with the given letter.")),
    Task("task122_alphabetical_sorting", "niv2", "string", 30, NOOPT, sort_words(), niv2(
        "Sort the given comma-separated words in alphabetical order."), dup=0.1),
    Task("task085_arithmetic_word_problem", "niv2", "arithmetic", 45, NOOPT,
         _niv2_input("{question}")(arithmetic(rationale=False)), niv2(
        "Solve the math word problem. Answer with a single number only.")),
    Task("task1104_english_to_spanish_translation", "niv2", "translation", 40, NOOPT,
         _niv2_input("{src}")(translation(0, 3)), niv2(
        "In this task, you are given a sentence in English. Translate it into Spanish.")),
    Task("task1375_english_to_german_translation", "niv2", "translation", 30, ("zs_noopt",),
         _niv2_input("{src}")(translation(0, 2)), niv2(
        "Translate the given English sentence into German, keeping names and numbers.")),
    Task("task052_news_headline_topic", "niv2", "topic", 35, ALL4,
         _niv2_input("{text}")(topic_news(lead=False)), niv2(
        "Classify the news headline into one of four topics: World, Sports, Business or "
        "Science/Tech."), dup=0.15),
    Task("task1540_headline_generation", "niv2", "summarization", 30, NOOPT,
         _niv2_input("{article}")(news_article(headline=True)), niv2(
        "Generate a short headline for the given news article.")),
    Task("task620_cola_grammaticality", "niv2", "grammar", 45, ALL4,
         _niv2_input("{sentence}")(grammaticality(("unacceptable", "acceptable"))), niv2(
        "Decide whether the sentence is grammatically acceptable or unacceptable.")),
    Task("task400_question_paraphrase", "niv2", "paraphrase", 25, ZS,
         _niv2_input("Q1: {q1} Q2: {q2}")(question_pairs(("Dissimilar", "Similar"))), niv2(
        "Given two questions, classify them as Similar if they ask the same thing and "
        "Dissimilar otherwise.")),
    Task("task1599_city_name_extraction", "niv2", "extraction", 28, NOOPT,
         city_extraction(), niv2("Identify the name of the city mentioned in the sentence.")),
    Task("task1186_commonsense_location", "niv2", "commonsense", 38, ("zs_opt",),
         _niv2_input("{question}")(commonsense()), niv2(
        "Answer the commonsense question by choosing the most likely location.")),
    # cot: chain-of-thought targets
    Task("cot_gsm8k", "cot", "arithmetic", 240, NOOPT, arithmetic(rationale=True), MATH_TPL,
         dup=0.05),
    Task("cot_aqua", "cot", "arithmetic", 130, OPT, arithmetic(True, options=True), (
        "{question} Think step by step, then pick the answer.",
        "Question: {question}\nLet's reason step by step.",
    ), opt_header="Options:"),
    Task("cot_date_understanding", "cot", "date", 100, ("zs_opt", "zs_noopt", "fs_noopt"),
         date_reasoning(), (
        "{question} Let's think step by step.",
        "Answer with reasoning. {question}",
    )),
    Task("cot_strategyqa", "cot", "yesno_reasoning", 120, NOOPT, strategy_yes_no(), (
        "{question} Give the rationale and then the answer.",
        "Q: {question}\nA: Let's think step by step.",
    ), dup=0.08),
    Task("cot_ecqa", "cot", "commonsense", 90, OPT, commonsense(explain=True), (
        "{question} Explain your reasoning before answering.",
        "Question: {question}\nThink it through, then answer.",
    )),
    Task("cot_esnli", "cot", "nli", 80, ("zs_opt", "fs_opt"),
         nli(("yes", "it is not possible to tell", "no"), explain=True), (
        'Premise: "{premise}"\nHypothesis: "{hypothesis}"\nIs the hypothesis entailed by the '
        "premise? Explain first.",
        'Given the sentence "{premise}" can we conclude that "{hypothesis}"? Let\'s solve it '
        "slowly.",
    )),
    # dialog: next-turn generation
    Task("customer_support_next_turn", "dialog", "dialogue", 150, NOOPT, support_dialog(),
         DIALOG_TPL, dup=0.1),
    Task("multiwoz_restaurant_booking", "dialog", "dialogue", 130, ("zs_noopt",),
         booking_dialog(), DIALOG_TPL),
    Task("wow_knowledge_grounded", "dialog", "dialogue", 90, NOOPT, knowledge_dialog(), (
        "{dialog}\n\nContinue the conversation using the knowledge above.",
        "{dialog}\nB:",
    )),
    Task("persona_chat", "dialog", "dialogue", 80, ("zs_noopt",), persona_dialog(), (
        "{dialog}\n\nReply as B, staying consistent with the persona.",
        "{dialog}\nWrite B's next turn.",
    )),
    Task("qrecc_question_rewrite", "dialog", "question_rewrite", 70, NOOPT, question_rewrite(), (
        "{dialog}\n\nRewrite the last question so it can be understood without the "
        "conversation.",
        "Conversation:\n{dialog}\nMake the final question self-contained.",
    )),
)
# fmt: on


def task_families() -> dict[str, str]:
    """task_name -> family, for checking that selections follow the task clusters."""
    return {t.name: t.family for t in TASKS}


# --- rendering -----------------------------------------------------------------------------


def render(ex: Ex, template: str, with_options: bool, header: str) -> str:
    """Fills a template; options go where it says {options}, else at the end."""
    opts = ""
    if with_options:
        opts = f"\n\n{header}\n" + "\n".join(f"- {o}" for o in ex.options or ())
    if "{options}" in template:
        return template.format(**ex.fields, options=opts)
    return template.format(**ex.fields) + opts


def make_row(task: Task, r: Rand) -> dict[str, str]:
    ttype = r.pick([t for t in task.types for _ in range(ZERO_SHOT_WEIGHT if t[:2] == "zs" else 1)])
    template = r.pick(task.templates)
    opt = ttype.endswith("_opt")
    ex = task.gen(r)
    if opt and not ex.options:
        raise ValueError(f"task {task.name} has template type {ttype} but no answer options")
    prompt = render(ex, template, opt, task.opt_header)
    if ttype.startswith("fs"):
        shots: list[str] = []
        words = len(prompt.split())
        for _ in range(r.int(1, 3)):
            ex_i = task.gen(r)
            shot = f"{render(ex_i, template, opt, task.opt_header)}\n{ex_i.target}"
            if shots and words + len(shot.split()) > FEW_SHOT_WORD_BUDGET:
                break
            shots.append(shot)
            words += len(shot.split())
        prompt = "\n\n".join([*shots, prompt])
    return dict(
        inputs=prompt,
        targets=ex.target,
        task_name=task.name,
        task_source=task.source,
        template_type=ttype,
    )


def task_rows(task: Task, index: int, seed: int, scale: float) -> list[dict[str, str]]:
    # One generator per task, keyed by (seed, task index), so tasks stay independent of each
    # other. A str seed is hashed with SHA-512, the same on every run and platform.
    r = Rand(random.Random(f"smart-demo/{seed}/{index}"))
    n = max(2, round(task.size * scale))
    n_dup = int(task.dup * n)
    rows = [make_row(task, r) for _ in range(n - n_dup)]
    rows += [dict(rows[r.int(0, len(rows) - 1)]) for _ in range(n_dup)]
    return r.shuffled(rows)


def generate(seed: int = 0, scale: float = 1.0) -> pa.Table:
    """The demo dataset as a table, grouped by source then task like the FLAN releases."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    rows: list[dict[str, str]] = []
    order = sorted(range(len(TASKS)), key=lambda i: SOURCES.index(TASKS[i].source))
    for i in order:
        rows += task_rows(TASKS[i], i, seed, scale)
    schema = pa.schema([(c, pa.string()) for c in COLUMNS])
    return pa.table({c: [row[c] for row in rows] for c in COLUMNS}, schema=schema)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Atomic write with fixed writer options, so the bytes depend only on the table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            compression_level=3,
            use_dictionary=True,
            write_statistics=True,
            version="2.6",
            row_group_size=1 << 20,
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies task sizes (min 2 rows per task)")
    args = ap.parse_args(argv)
    if args.scale <= 0:
        ap.error("--scale must be positive")
    table = generate(args.seed, args.scale)
    path = args.out / "train.parquet"
    write_parquet(table, path)
    tasks = len(set(table.column("task_name").to_pylist()))
    sources = len(set(table.column("task_source").to_pylist()))
    print(
        f"wrote {table.num_rows} rows, {tasks} tasks, {sources} sources to {path}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
