"""The synthetic electorate's language: prompts and the phrase inventory responses are made of.

Responses are composed from a fixed phrase inventory, always in the same order, so a tiny LM can
learn the patterns::

    [polite opener] core sentence [detail phrases] [filler phrases] [humour phrases] [polite closer]

The core sentence ``To {task}, {advice}.`` names the prompt's task; each optional phrase carries
exactly one marker of its feature (fillers carry none, only words). Prompts are
``template.format(task=task + modifier)`` over :data:`TOPICS` (8 topics: computers, cooking,
fitness, gardening, money, pets, study, travel; 240 distinct prompts each). :func:`phrase_table`
holds every phrase as one table (its slot, words and markers); :func:`question_task` finds the
task a question asks about. Features of any text: :mod:`prefsweep.data.synthetic`; drawing
prompts and responses: :mod:`prefsweep.data.synthetic_responses`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Features of a text (:func:`prefsweep.data.synthetic.text_features`), in column order.
FEATURES: tuple[str, ...] = ("words", "well_formed", "answers_question", "politeness", "detail", "humour")
#: The style features the group weights trade off (the last three columns of the features).
STYLE: tuple[str, ...] = ("politeness", "detail", "humour")
#: Marker counts above this add nothing.
MARKER_CAP = 4

#: Slots of a response, in their order; phrases of the repeatable kinds may follow each other.
SLOT_ORDER: tuple[str, ...] = ("opener", "core", "detail", "filler", "humour", "closer")
REPEATABLE = frozenset({"detail", "filler", "humour"})

#: Question templates shared by all topics; ``{task}`` is a topic task plus a modifier.
PROMPT_TEMPLATES = (
    "How do I {task}?",
    "What is the best way to {task}?",
    "Any tips to {task}?",
    "Can you help me {task}?",
)
MODIFIERS = ("", " as a beginner", " on a budget", " this week", " at home", " without stress")


@dataclass(frozen=True)
class Topic:
    """Prompt material and topic-specific phrases (``{n}`` is a number drawn per response)."""

    tasks: tuple[str, ...]
    advice: tuple[str, ...]
    details: tuple[str, ...]


TOPICS: dict[str, Topic] = {
    "cooking": Topic(
        ("cook rice", "bake bread", "make soup", "grill fish", "roast vegetables", "make pasta",
         "fry eggs", "cook beans", "make pancakes", "bake a cake"),
        ("use fresh food and taste as you go", "keep the heat low and stay close",
         "prepare everything before you start", "follow a simple recipe first"),
        ("Use {n} cups of water.", "Cook it for {n} minutes.", "Set the oven to {n} degrees.",
         "Add {n} pinches of salt."),
    ),
    "gardening": Topic(
        ("grow tomatoes", "plant roses", "grow herbs", "keep a lawn green", "grow lettuce",
         "plant bulbs", "prune a tree", "grow peppers", "make compost", "grow strawberries"),
        ("give the plants sun and steady water", "start with good soil and patience",
         "watch the leaves and adjust your care", "pick a spot with enough light"),
        ("Water them every {n} days.", "Leave {n} inches between plants.",
         "Give them {n} hours of sun.", "Add compost every {n} weeks."),
    ),
    "fitness": Topic(
        ("start running", "build strength", "get more flexible", "improve my posture",
         "start swimming", "train for a race", "do push ups", "lose some weight",
         "stay active", "start cycling"),
        ("start slowly and stay consistent", "warm up well and rest between sessions",
         "pick an activity you enjoy", "listen to your body and build up"),
        ("Train {n} times a week.", "Rest for {n} minutes between sets.",
         "Aim for {n} minutes per session.", "Add {n} percent more each week."),
    ),
    "travel": Topic(
        ("pack a suitcase", "plan a road trip", "find cheap flights", "travel with kids",
         "beat jet lag", "visit a big city", "go camping", "travel by train", "plan a holiday",
         "learn basic phrases"),
        ("plan the main steps and keep some room", "pack light and keep papers close",
         "book early and compare options", "check the rules before you go"),
        ("Book about {n} weeks ahead.", "Pack {n} outfits at most.", "Plan {n} stops per day.",
         "Keep {n} copies of your papers."),
    ),
    "money": Topic(
        ("save money", "make a budget", "pay off debt", "start investing", "build an emergency fund",
         "cut my bills", "plan for retirement", "track my spending", "buy a car", "save for a house"),
        ("write down what you spend and set a goal", "pay yourself first every month",
         "keep it simple and avoid high fees", "review your plan and adjust it"),
        ("Save {n} percent of your income.", "Check your account every {n} days.",
         "Keep {n} months of costs aside.", "Cut {n} small expenses."),
    ),
    "computers": Topic(
        ("speed up my laptop", "back up my files", "learn to code", "set up a router",
         "clean my keyboard", "choose a password", "free up disk space", "update my phone",
         "protect my accounts", "fix slow internet"),
        ("restart it and remove what you do not use", "keep things updated and backed up",
         "go one step at a time and test", "use the built in tools first"),
        ("Restart it every {n} days.", "Keep {n} backups in different places.",
         "Use at least {n} characters.", "Close {n} unused programs."),
    ),
    "pets": Topic(
        ("train a puppy", "care for a cat", "feed a rabbit", "clean a fish tank", "walk a dog",
         "groom a cat", "pick a pet", "calm a nervous dog", "teach a dog tricks", "keep a hamster"),
        ("be patient and reward good behaviour", "keep a calm routine every day",
         "watch how your pet reacts", "ask a vet when in doubt"),
        ("Feed it {n} times a day.", "Walk it for {n} minutes.", "Train for {n} minutes at a time.",
         "Change the water every {n} days."),
    ),
    "study": Topic(
        ("learn a language", "study for exams", "take better notes", "read faster",
         "remember names", "write an essay", "learn math", "focus while studying",
         "prepare a talk", "learn to draw"),
        ("work in short sessions and review often", "test yourself instead of rereading",
         "set a clear goal for each session", "practice a little every day"),
        ("Study for {n} minutes, then rest.", "Review it after {n} days.",
         "Learn {n} new words a day.", "Write {n} short summaries."),
    ),
}

POLITE_OPENERS = ("Great question!", "Thanks for asking.", "Happy to help.")
POLITE_CLOSERS = ("Good luck!", "I hope this helps.", "Please ask again anytime.")
#: Generic detail phrases (one marker each) mixed with the topic's numeric ones.
GENERIC_DETAILS = ("For example, note what works.", "Specifically, change one thing at a time.")
HUMOUR_PHRASES = (
    "Fun fact: even experts mess this up.",
    "My cat could do it, lol.",
    "Haha, it gets easier.",
    "Just kidding, it is not that hard.",
)
FILLERS = (
    "Keep it simple and steady.",
    "Take your time with each part.",
    "Small changes add up over time.",
    "See how it goes and adjust.",
    "It is easier than it looks.",
)

#: Range of the numbers drawn into detail phrases.
DETAIL_NUMBERS = (2, 30)


def _second_person(task: str) -> str:
    """The prompt's task as the answer says it ("back up my files" -> "back up your files")."""
    return " ".join("your" if w == "my" else w for w in task.split())


def _normalize(sentence: str) -> str:
    return " ".join(sentence.lower().split())


@dataclass(frozen=True)
class PhraseTable:
    """Every phrase a response can use, as one flat table: ``text[j]``, ``words[j]``, the marker
    counts ``markers[j] = (politeness, detail, humour)``, its slot ``rank[j]`` (index in
    :data:`SLOT_ORDER`), ``repeat_key[j]`` (phrases with the same key are repeats of each other:
    a detail template with any number), ``task[j]`` (the task id of a core sentence, else -1);
    ``index`` maps construction keys and ``lookup`` normalized texts to rows."""

    text: list[str]
    words: np.ndarray
    markers: np.ndarray
    rank: np.ndarray
    repeat_key: list[str]
    task: np.ndarray
    index: dict[tuple, int]
    lookup: dict[str, int]

    @classmethod
    def build(cls) -> PhraseTable:
        keys: list[tuple] = []
        texts: list[str] = []
        marks: list[tuple[int, int, int]] = []
        ranks: list[int] = []
        repeat: list[str] = []
        tasks: list[int] = []

        def add(key: tuple, text: str, mark: tuple[int, int, int], template: str | None = None,
                task: int = -1) -> None:
            keys.append(key)
            texts.append(text)
            marks.append(mark)
            ranks.append(SLOT_ORDER.index(key[0]))
            repeat.append(_normalize(template or text))
            tasks.append(task)

        for i, t in enumerate(POLITE_OPENERS):
            add(("opener", i), t, (1, 0, 0))
        for i, t in enumerate(POLITE_CLOSERS):
            add(("closer", i), t, (1, 0, 0))
        for i, t in enumerate(FILLERS):
            add(("filler", i), t, (0, 0, 0))
        for i, t in enumerate(HUMOUR_PHRASES):
            add(("humour", i), t, (0, 0, 1))
        for name in sorted(TOPICS):
            topic = TOPICS[name]
            for ti, task in enumerate(topic.tasks):
                for ai, advice in enumerate(topic.advice):
                    add(("core", name, ti, ai), f"To {_second_person(task)}, {advice}.", (0, 0, 0),
                        task=_TASK_IDS[(name, ti)])
            for di, phrase in enumerate(topic.details + GENERIC_DETAILS):
                for n in range(*DETAIL_NUMBERS):
                    add(("detail", name, di, n), phrase.format(n=n), (0, 1, 0), template=phrase)
        lookup: dict[str, int] = {}
        for j, t in enumerate(texts):
            lookup.setdefault(_normalize(t), j)  # generic details: the same text in every topic
        return cls(texts, np.array([len(t.split()) for t in texts], dtype=np.int64), np.array(marks, dtype=np.int64),
                   np.array(ranks, dtype=np.int64), repeat, np.array(tasks, dtype=np.int64),
                   {k: j for j, k in enumerate(keys)}, lookup)


#: Task ids: (topic, task index) -> id, topics sorted.
_TASK_IDS: dict[tuple[str, int], int] = {
    (name, ti): i
    for i, (name, ti) in enumerate((n, t) for n in sorted(TOPICS) for t in range(len(TOPICS[n].tasks)))
}
_TABLE: PhraseTable | None = None
_PROMPT_TASKS: dict[str, int] | None = None


def phrase_table() -> PhraseTable:
    global _TABLE
    if _TABLE is None:
        _TABLE = PhraseTable.build()
    return _TABLE


def _prompt_tasks() -> dict[str, int]:
    """Normalized text of every synthetic prompt -> its task id."""
    global _PROMPT_TASKS
    if _PROMPT_TASKS is None:
        _PROMPT_TASKS = {
            _normalize(template.format(task=task + modifier)): _TASK_IDS[(name, ti)]
            for name, topic in TOPICS.items() for ti, task in enumerate(topic.tasks)
            for template in PROMPT_TEMPLATES for modifier in MODIFIERS
        }
    return _PROMPT_TASKS


def question_task(question: str | None) -> int | None:
    """Task id of a question: the task of the synthetic prompt it is; otherwise the longest
    task named in it (a prompt reworded around its task); ``None`` when it names none."""
    if not question:
        return None
    q = _normalize(question)
    found = _prompt_tasks().get(q)
    if found is not None:
        return found
    named = [(len(task), _TASK_IDS[(name, ti)]) for name, topic in TOPICS.items()
             for ti, task in enumerate(topic.tasks) if task in q]
    return max(named)[1] if named else None

