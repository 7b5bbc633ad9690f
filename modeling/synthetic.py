"""Deterministic OIG-like lines for tests, the benchmark and the demo (all text written here).

Mimics `unified_abstract_infill.jsonl`: about half the lines are ``Background: ...`` passages
with one or more ``<human>:``/``<bot>:`` turns, the rest are other instruction lines. Mixed in:
Thai passages, emoji, URLs and HTML/wiki junk, exact and near duplicates, malformed JSON.
Each line carries the label of what `modeling.oig.prepare.prepare` should do with it.

About 580 lines, over half of them the word lists and passages the lines are drawn from.
"""

from __future__ import annotations

import json
import os
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from modeling.prompting import render_oig

__all__ = [
    "KINDS",
    "SyntheticLine",
    "iter_synthetic_oig",
    "iter_synthetic_oig_labelled",
    "write_synthetic_oig",
]

# What prepare should count each line as ("kept" lines become records).
KINDS = ("kept", "no_background", "malformed", "exact_duplicate", "near_duplicate")

_PLACES = [
    "Arlen",
    "Bexford",
    "Calloway",
    "Dunmere",
    "Eastvale",
    "Fernholt",
    "Greywick",
    "Harrowgate",
    "Ilsworth",
    "Juniper Bay",
    "Kestrel Point",
    "Lindqvist",
    "Morrowind Flats",
    "Northam",
    "Oakhurst",
    "Pellham",
    "Quarry Hill",
    "Rosenthal",
    "Saltmarsh",
    "Thornbury",
    "Ulverston",
    "Vantage",
    "Westmoor",
    "Yarrow",
    "Zellmere",
    "Ashcombe",
    "Brightwater",
    "Coldharbour",
]
_PEOPLE = [
    "Amara Okafor",
    "Bruno Lindgren",
    "Chen Wei",
    "Dolores Ibarra",
    "Emil Novak",
    "Farah Haddad",
    "Gustav Ek",
    "Hana Sato",
    "Ivan Petrov",
    "Jonas Weber",
    "Kavya Rao",
    "Lucia Moretti",
    "Malik Johnson",
    "Nadia Kowalski",
    "Oskar Berg",
    "Priya Nair",
    "Rafael Souza",
    "Sofia Lind",
    "Tomás Ortega",
    "Ulla Virtanen",
    "Viktor Hale",
    "Wen Li",
    "Yusuf Demir",
    "Zoë Laurent",
]
_THINGS = [
    "the river",
    "the old mill",
    "the railway",
    "the harbour",
    "the cathedral",
    "the museum",
    "the botanical garden",
    "the observatory",
    "the textile industry",
    "the annual festival",
    "the university",
    "the lighthouse",
    "the copper mine",
    "the printing press",
    "the bridge",
    "the public library",
    "the glassworks",
    "the salt trade",
    "the orchestra",
    "the canal",
    "the vineyards",
    "the weather station",
    "the fishing fleet",
    "the clock tower",
]
_ADJ = [
    "small",
    "venerable",
    "busy",
    "quiet",
    "prosperous",
    "remote",
    "coastal",
    "mountainous",
    "historic",
    "modern",
    "famous",
    "neglected",
    "restored",
    "fertile",
    "rugged",
    "lively",
]
_VERBS = [
    "built",
    "restored",
    "expanded",
    "documented",
    "founded",
    "rebuilt",
    "studied",
    "mapped",
    "funded",
    "designed",
    "protected",
    "renamed",
    "modernised",
    "surveyed",
    "described",
]
_TOPICS = [
    "geology",
    "economics",
    "medieval history",
    "marine biology",
    "astronomy",
    "linguistics",
    "urban planning",
    "botany",
    "metallurgy",
    "music theory",
    "climatology",
    "architecture",
]
_TEMPLATES = [
    "{place} is a {adj} town known for {thing}.",
    "In {year}, {person} {verb} {thing} in {place}.",
    "{thing_cap} of {place} was {verb} in {year} after a long debate in the town council.",
    "According to local records, {person} first {verb} {thing} around {year}.",
    "By {year} the population of {place} had grown to about {number} people.",
    "Visitors often describe {place} as {adj}, especially in the months after {year}.",
    "{person} wrote that {thing} shaped the {adj} character of {place} for generations.",
    "The study of {topic} at {place} began when {person} {verb} {thing}.",
    "Between {year} and {year2}, {thing} employed roughly {number} workers.",
    "{thing_cap} remains one of the most {adj} landmarks in the region around {place}.",
    "A {adj} flood in {year} damaged {thing}, which was later {verb} by {person}.",
    "Researchers in {topic} still cite the survey that {person} made of {place} in {year}.",
    "Every {month}, merchants bring {noun} and {noun2} to the market square of {place}.",
    "The {material} roof of {thing} was replaced in {year2} with help from {person}.",
    "Few people know that {place} once exported {noun} as far as {place2}.",
    "{person} and {person2} argued for decades about the origin of {thing}.",
    "Local children learn early how {noun} is made from {material} and {noun2}.",
    "During the winter of {year}, snow cut {place} off from {place2} for {small} weeks.",
    "An inscription on {thing} mentions {person}, a {adj} collector of {noun}.",
    "Trains from {place2} reach {place} in about {small} hours on the {adj} coastal line.",
    "The museum keeps {number} objects, among them {noun} carved from {material}.",
    "Critics called the {adj} design of {thing} a mistake, yet it survived until {year2}.",
    "Farmers near {place} grow {noun} on terraces first cut in {year}.",
    "In {month} {year2} a fire at {thing} destroyed records of {topic} kept since {year}.",
    "{place2} and {place} signed a trade agreement on {noun} in {year}.",
    "Today {thing} hosts concerts, lectures on {topic} and a small {noun} fair.",
    "Historians disagree about whether {person2} ever visited {place}.",
    "The road to {place} climbs past {material} quarries and {adj} orchards of {noun}.",
]
_NOUNS = [
    "amber",
    "barley",
    "candles",
    "dyed wool",
    "eels",
    "figs",
    "glass beads",
    "honey",
    "ink",
    "juniper oil",
    "kelp",
    "lace",
    "maps",
    "nails",
    "olives",
    "paper",
    "quinces",
    "rope",
    "saffron",
    "tin cups",
    "umbrellas",
    "violins",
    "walnuts",
    "yarn",
    "zinc plates",
    "bells",
    "clocks",
    "cheese",
    "pottery",
    "salted fish",
    "tea",
    "tiles",
    "wine",
    "soap",
]
_MATERIALS = ["oak", "slate", "granite", "copper", "limestone", "brick", "pine", "marble"]
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_QUESTIONS = [
    ("Who {verb} {thing} in {place}?", "{person} {verb} {thing} in {year}."),
    ("When was {thing} of {place} {verb}?", "It was {verb} in {year}."),
    ("What is {place} known for?", "{place} is known for {thing}."),
    ("How many people lived in {place} by {year}?", "About {number} people lived there."),
    ("Why is {person} remembered in {place}?", "Because {person} {verb} {thing}."),
]
_FOLLOW_UPS = [
    ("Can you say more about that?", "Yes. {sentence}"),
    ("Is there anything else worth knowing?", "{sentence}"),
    ("What happened next?", "Later, {sentence_lc}"),
]

# Thai fragments (written for this generator); the combining vowels and tone marks must survive.
_TH_KINDS = ["วัด", "ตลาด", "หมู่บ้าน", "โรงเรียน", "สะพาน", "พิพิธภัณฑ์", "อุทยาน", "ท่าเรือ"]
_TH_NAMES = [
    "ศรีสุข",
    "บ้านนา",
    "ทองคำ",
    "แสงจันทร์",
    "ริมน้ำ",
    "ดอยคำ",
    "สามพราน",
    "บางกระเจ้า",
    "น้ำใส",
    "ป่าไผ่",
    "เชียงดาว",
    "ลำปาง",
    "หนองบัว",
    "ท่าช้าง",
    "เขาเขียว",
    "คลองสาน",
]
_TH_SUBJECTS = [
    "เมืองเชียงใหม่",
    "แม่น้ำเจ้าพระยา",
    "ตลาดน้ำดำเนินสะดวก",
    "วัดพระแก้ว",
    "เกาะสมุย",
    "อุทยานแห่งชาติเขาใหญ่",
    "สถานีรถไฟหัวลำโพง",
    "พิพิธภัณฑ์สถานแห่งชาติ",
    "หมู่บ้านชาวประมง",
    "มหาวิทยาลัยเก่าแก่",
    "สวนพฤกษศาสตร์",
    "ห้องสมุดประชาชน",
] + [kind + name for kind in _TH_KINDS for name in _TH_NAMES]
_TH_PREDICATES = [
    "มีประวัติศาสตร์ยาวนานกว่าหนึ่งร้อยปี",
    "เป็นที่รู้จักของนักท่องเที่ยวทั่วโลก",
    "ได้รับการบูรณะใหม่เมื่อไม่นานมานี้",
    "ตั้งอยู่ใกล้กับภูเขาที่สวยงาม",
    "มีผู้คนมาเยี่ยมชมทุกวันหยุดสุดสัปดาห์",
    "เคยเป็นศูนย์กลางการค้าที่สำคัญ",
    "มีอาหารพื้นเมืองที่อร่อยมาก",
    "จัดงานเทศกาลประจำปีในฤดูหนาว",
    "ถูกน้ำท่วมครั้งใหญ่เมื่อหลายปีก่อน",
    "มีสถาปัตยกรรมแบบดั้งเดิมที่งดงาม",
    "มีต้นไม้ใหญ่อายุหลายร้อยปี",
    "เป็นแหล่งเรียนรู้ของนักเรียนในจังหวัด",
    "มีพระพุทธรูปที่ผู้คนเคารพนับถือ",
    "ขายผ้าทอมือที่สวยงาม",
    "อยู่ห่างจากตัวเมืองประมาณสามสิบกิโลเมตร",
    "เปิดให้เข้าชมฟรีทุกวันอาทิตย์",
    "มีตลาดนัดทุกเช้าวันเสาร์",
    "เคยเป็นที่พักของพ่อค้าจากต่างเมือง",
    "มีชื่อเสียงเรื่องขนมหวานโบราณ",
    "ได้รับรางวัลด้านการอนุรักษ์ธรรมชาติ",
    "มีสะพานไม้เก่าข้ามลำธาร",
    "เป็นบ้านเกิดของศิลปินพื้นบ้านหลายคน",
]
_TH_TIMES = [
    " เมื่อปี พ.ศ. {year}",
    " ตั้งแต่ปี พ.ศ. {year}",
    " โดยมีผู้คนประมาณ {n} คน",
    " ราว {n} ปีก่อน",
    " ในช่วงปี พ.ศ. {year}",
    " หลังปี พ.ศ. {year} ราว {n} วัน",
    " และมีนักเรียนมาศึกษาดูงานปีละ {n} คน",
    "",
]
_TH_TAILS = [
    "",
    "และยังคงได้รับความนิยม",
    "ตามบันทึกของชาวบ้าน",
    "ซึ่งทำให้เศรษฐกิจเติบโต",
    "แม้ว่าจะอยู่ไกลจากถนนใหญ่",
    "จนกลายเป็นสัญลักษณ์ของท้องถิ่น",
    "โดยได้รับการสนับสนุนจากวัดใกล้เคียง",
    "ท่ามกลางทุ่งนาสีเขียว",
]
_TH_QUESTIONS = [
    ("{subject}มีชื่อเสียงเรื่องอะไร", "{subject}{predicate}"),
    ("ทำไมผู้คนจึงไปเยี่ยมชม{subject}", "เพราะ{subject}{predicate}"),
    ("{subject}ตั้งอยู่ที่ไหน", "{subject}ตั้งอยู่ห่างจากกรุงเทพฯ ประมาณ {n} กิโลเมตร"),
    ("{subject}มีอายุกี่ปี", "{subject}มีอายุประมาณ {n} ปี"),
]
_EMOJI = ["🌍", "🎉", "❤️", "👨\u200d👩\u200d👧", "🚗", "📚", "🌊", "🙂", "👍🏽", "🇹🇭"]
_JUNK = [
    "<b>{w}</b>",
    "{w} &amp; co",
    "[[{w}|{w}]]",
    "{w}{{{{citation needed}}}}",
    "<br/>{w}",
    "see https://example.org/wiki/{w}?ref=42 for details",
    "{w}&nbsp;(www.example.com/{w})",
    "'''{w}'''",
    '<span class="x">{w}</span>',
    "&quot;{w}&quot;",
]


@dataclass(frozen=True)
class SyntheticLine:
    """One JSON line (no trailing newline) and what prepare should count it as."""

    text: str
    kind: str


class _Writer:
    """Fills templates from one seeded RNG."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def slots(self) -> dict[str, str]:
        r = self.rng
        year = r.randint(1450, 2015)
        thing = r.choice(_THINGS)
        return {
            "place": r.choice(_PLACES),
            "person": r.choice(_PEOPLE),
            "thing": thing,
            "thing_cap": thing[0].upper() + thing[1:],
            "adj": r.choice(_ADJ),
            "verb": r.choice(_VERBS),
            "topic": r.choice(_TOPICS),
            "year": str(year),
            "year2": str(year + r.randint(3, 80)),
            "number": f"{r.randint(2, 900) * 50:,}",
            "place2": r.choice(_PLACES),
            "person2": r.choice(_PEOPLE),
            "noun": r.choice(_NOUNS),
            "noun2": r.choice(_NOUNS),
            "material": r.choice(_MATERIALS),
            "month": r.choice(_MONTHS),
            "small": str(r.randint(2, 19)),
        }

    def sentence(self, slots: dict[str, str] | None = None) -> str:
        merged = {**self.slots(), **(slots or {})}
        return self.rng.choice(_TEMPLATES).format(**merged)

    def passage(self, n_sentences: int, anchor: dict[str, str]) -> str:
        # Every third sentence mentions the anchor so the questions are about the passage.
        return " ".join(self.sentence(anchor if i % 3 == 0 else None) for i in range(n_sentences))


def _decorate(rng: random.Random, text: str, rate: float, pieces: list[str]) -> str:
    if rng.random() >= rate:
        return text
    words = text.split(" ")
    at = rng.randrange(len(words) + 1)
    words.insert(at, rng.choice(pieces).replace("{w}", rng.choice(_ADJ)))
    return " ".join(words)


def _near_variant(rng: random.Random, background: str, turns: list[dict[str, str]]) -> str:
    """A copy that differs by case, punctuation or one word: a near, not exact, duplicate.

    Only plain words are edited: an edit inside a URL or a tag would vanish in cleaning and
    leave an exact duplicate.
    """
    words = background.split(" ")
    plain = [i for i, w in enumerate(words) if w.isalpha() and w.swapcase() != w]
    choice = rng.randrange(3) if plain else 1  # Thai words have no case and carry marks
    if choice == 0:
        for i in plain:
            words[i] = words[i].swapcase()
        background = " ".join(words)
    elif choice == 1:
        background = background.replace(".", "!", 1) + " ;"
    else:
        i = rng.choice(plain)
        words[i] = words[i] + "s" if not words[i].endswith("s") else words[i][:-1]
        background = " ".join(words)
    return render_oig(background, turns)


def iter_synthetic_oig_labelled(
    n: int,
    seed: int = 0,
    *,
    malformed_rate: float = 0.01,
    background_rate: float = 0.5,
    duplicate_rate: float = 0.03,
    near_duplicate_rate: float = 0.03,
    thai_rate: float = 0.1,
    emoji_rate: float = 0.1,
    junk_rate: float = 0.1,
    multi_turn_rate: float = 0.3,
    sentences: tuple[int, int] = (10, 28),
) -> Iterator[SyntheticLine]:
    """N labelled OIG-like lines, identical for identical arguments."""
    rng = random.Random(seed)
    writer = _Writer(rng)
    recent: deque[tuple[str, str, list[dict[str, str]]]] = deque(maxlen=64)
    for i in range(n):
        roll = rng.random()
        if roll < malformed_rate:
            yield SyntheticLine(_malformed(rng, i), "malformed")
            continue
        roll = rng.random()
        if recent and roll < duplicate_rate:
            raw, background, turns = rng.choice(recent)
            if rng.random() < 0.5:
                yield SyntheticLine(raw, "exact_duplicate")
            else:
                # Whitespace and markup differences vanish in cleaning: still an exact duplicate.
                spaced = render_oig(f"  {background}  <br>", turns).replace(" ", "  ", 3)
                yield SyntheticLine(
                    json.dumps({"text": spaced}, ensure_ascii=False), "exact_duplicate"
                )
            continue
        if recent and roll < duplicate_rate + near_duplicate_rate:
            _, background, turns = rng.choice(recent)
            text = _near_variant(rng, background, turns)
            yield SyntheticLine(json.dumps({"text": text}, ensure_ascii=False), "near_duplicate")
            continue
        if rng.random() >= background_rate:
            yield SyntheticLine(_instruction_line(rng, writer, sentences), "no_background")
            continue
        if rng.random() < thai_rate:
            background, turns = _thai_record(rng)
        else:
            background, turns = _english_record(rng, writer, sentences, multi_turn_rate)
        background = _decorate(rng, background, junk_rate, _JUNK)
        background = _decorate(rng, background, emoji_rate, _EMOJI)
        turns[-1]["text"] = _decorate(rng, turns[-1]["text"], emoji_rate, _EMOJI)
        text = render_oig(background, turns)
        if rng.random() < 0.3:  # some real lines put each tag on its own line
            text = text.replace("<human>:", "\n<human>:").replace("<bot>:", "\n<bot>:")
        obj: dict[str, object] = {"text": text}
        if rng.random() < 0.3:
            obj["metadata"] = {"source": "convgen-synthetic", "n": i}
        raw = json.dumps(obj, ensure_ascii=False)
        recent.append((raw, background, turns))
        yield SyntheticLine(raw, "kept")


def _english_record(
    rng: random.Random, writer: _Writer, sentences: tuple[int, int], multi_turn_rate: float
) -> tuple[str, list[dict[str, str]]]:
    anchor = writer.slots()
    background = writer.passage(rng.randint(*sentences), anchor)
    question, answer = rng.choice(_QUESTIONS)
    turns = [
        {"role": "human", "text": question.format(**anchor)},
        {"role": "bot", "text": answer.format(**anchor)},
    ]
    while rng.random() < multi_turn_rate and len(turns) < 8:
        follow_q, follow_a = rng.choice(_FOLLOW_UPS)
        sentence = writer.sentence(anchor)
        turns.append({"role": "human", "text": follow_q})
        turns.append(
            {
                "role": "bot",
                "text": follow_a.format(
                    sentence=sentence, sentence_lc=sentence[0].lower() + sentence[1:]
                ),
            }
        )
    return background, turns


def _thai_record(rng: random.Random) -> tuple[str, list[dict[str, str]]]:
    subject = rng.choice(_TH_SUBJECTS)
    parts = []
    # Few sentences: the fragment lists are short, and long passages would share most shingles.
    for _ in range(rng.randint(2, 5)):
        s = rng.choice([*_TH_SUBJECTS, subject, subject])
        when = rng.choice(_TH_TIMES).format(year=rng.randint(2300, 2566), n=rng.randint(2, 900))
        parts.append(s + rng.choice(_TH_PREDICATES) + when + rng.choice(_TH_TAILS))
    predicate = rng.choice(_TH_PREDICATES)
    parts.insert(rng.randrange(len(parts) + 1), subject + predicate)
    question, answer = rng.choice(_TH_QUESTIONS)
    turns = [
        {"role": "human", "text": question.format(subject=subject)},
        {
            "role": "bot",
            "text": answer.format(subject=subject, predicate=predicate, n=rng.randint(5, 990)),
        },
    ]
    return " ".join(parts), turns


def _instruction_line(rng: random.Random, writer: _Writer, sentences: tuple[int, int]) -> str:
    topic = rng.choice(_TOPICS)
    body = writer.passage(rng.randint(*sentences), writer.slots())
    line = f"<human>: Write a short abstract about {topic} in {rng.choice(_PLACES)}.\n<bot>: {body}"
    return json.dumps({"text": line}, ensure_ascii=False)


def _malformed(rng: random.Random, i: int) -> str:
    choice = rng.randrange(4)
    if choice == 0:
        return json.dumps({"text": f"Background: truncated line {i}. <human>: Hi? <bot>: Hi."})[:-9]
    if choice == 1:
        return json.dumps({"text": i})
    if choice == 2:
        return f"not json at all {i}"
    return json.dumps([f"Background: a list, not an object {i}"])


def iter_synthetic_oig(
    n: int, seed: int = 0, *, malformed_rate: float = 0.01, **kwargs: object
) -> Iterator[str]:
    """N OIG-like JSON lines (without newlines), identical for identical arguments."""
    for line in iter_synthetic_oig_labelled(n, seed, malformed_rate=malformed_rate, **kwargs):  # type: ignore[arg-type]
        yield line.text


def write_synthetic_oig(
    path: str | os.PathLike[str], n: int, seed: int = 0, **kwargs: object
) -> dict[str, int]:
    """Write N lines to PATH; returns how many lines of each kind it wrote."""
    counts = dict.fromkeys(KINDS, 0)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", encoding="utf-8") as fh:
        for line in iter_synthetic_oig_labelled(n, seed, **kwargs):  # type: ignore[arg-type]
            fh.write(line.text + "\n")
            counts[line.kind] += 1
    return counts
