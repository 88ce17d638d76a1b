"""A synthetic electorate: templated prompts, composed responses, voters with utilities.

The electorate both *creates* ballots (``data.source: synthetic``) and later *judges* model
answers (``eval.judge.type: electorate``), with one utility function defined on any text given
the question it answers, so training data and verdicts stay consistent.

Responses are composed from a fixed phrase inventory, always in the same order, so a tiny LM can
learn the patterns::

    [polite opener] core sentence [detail phrases] [filler phrases] [humour phrases] [polite closer]

The core sentence ``To {task}, {advice}.`` names the prompt's task; each optional phrase carries
exactly one marker of its feature (fillers carry none, only words); candidates have 10-40 words.
Prompts are ``template.format(task=task + modifier)`` over :data:`TOPICS` (8 topics: computers,
cooking, fitness, gardening, money, pets, study, travel; 240 distinct prompts each).

Features of a text ``t`` answering question ``q`` (:data:`FEATURES`, :func:`text_features`):

- ``words``: number of whitespace-separated words of ``t``;
- ``well_formed`` in [0, 1]: the share of the words of ``t`` covered by inventory phrases in the
  inventory's order (:func:`parse_answer`). ``t`` is split into sentences (a sentence ends with a
  word ending in ``.``, ``!`` or ``?``; case and spacing are ignored); a sentence is *covered*
  when it is an inventory phrase, not a repeat of an earlier one (a detail phrase with another
  number is a repeat), and part of the heaviest chain of sentences whose slots follow the order
  above (at most one opener, core and closer). Repeated, broken, out-of-order and
  out-of-inventory words are in the denominator only; an empty text has share 0;
- ``answers_question`` in {0, 1}: 1 when the covered core sentence is the core of ``q``'s task
  (:func:`question_task`; a question outside the synthetic prompts has no task: 0);
- ``politeness``, ``detail``, ``humour``: the markers of the *covered* phrases (one per opener
  or closer, detail phrase, humour phrase), each capped at :data:`MARKER_CAP`, so markers
  sprinkled into text that is not an answer count for nothing.

Utility of voter ``v`` of group ``g`` (``data.synthetic``)::

    u_v(t | q) = quality.well_formed * well_formed(t) + quality.answers_question * answers_question(t, q)
                 - p_v * |words(t) - target_g| / 10
                 + sum_f w_vf * f(t)           (f: politeness, detail, humour)

The first line is the component every voter values equally (``data.synthetic.quality``): the
answer is well formed and answers the question. The second is the group's length preference
(``voter_groups[].length``: a preferred length ``target`` in words and a ``penalty`` per 10 words
away from it), so shorter is not always better (with the default config every voter prefers
every candidate of a ballot to an empty answer, a unit test checks it); the third trades off style
(``voter_groups[].weights``; a feature not named weighs 0). Voter ``v`` has ``w_v = w_g + e_v``
and ``p_v = max(0, p_g + e_v0)``, ``e_v ~ N(0, jitter^2)`` per feature (drawn once from the
electorate's seed). When it votes on a prompt it ranks the K candidates by ``u_v(t | q) + eps``,
``eps ~ N(0, noise^2)`` per voter and candidate (a random-utility model; ties have probability
zero). Every candidate is well formed and answers its prompt, so on ballots the common component
is the same for all candidates and the rankings trade length against style; it separates real
answers from degenerate text when the electorate judges model answers.

Seeds: voter weights come from ``default_rng([seed, 0])`` of the electorate's seed; prompts,
responses and vote noise from ``default_rng([seed, 1])`` of :meth:`Electorate.make_ballots`. The
candidates of a prompt are distinct texts (:func:`prefsweep.prompts.normalize_text`): a response
composed a second time for its prompt is redrawn from a child stream of that generator, so no
other draw changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from prefsweep.ballots import BallotRecord, gc_paused
from prefsweep.prompts import normalize_text

FEATURES: tuple[str, ...] = ("words", "well_formed", "answers_question", "politeness", "detail", "humour")
#: The style features the group weights trade off (the last three columns of the features).
STYLE: tuple[str, ...] = ("politeness", "detail", "humour")
#: Marker counts above this add nothing.
MARKER_CAP = 4
#: The length penalty is per this many words away from the target.
LENGTH_UNIT = 10.0
MIN_WORDS, MAX_WORDS = 10, 40
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

#: Rounds of redrawing responses that repeat another of their prompt before giving up: a guard
#: against an endless loop (the default ballots needed one round, 2000 prompts x 26 two).
MAX_REDRAW_ROUNDS = 100
#: Range of the numbers drawn into detail phrases.
DETAIL_NUMBERS = (2, 30)
#: Probabilities of 0, 1, 2, ... optional phrases of each kind in a response (politeness: an
#: opener, then also a closer).
PHRASE_COUNT_PROBS: dict[str, tuple[float, ...]] = {
    "politeness": (0.45, 0.35, 0.2),
    "detail": (0.35, 0.3, 0.2, 0.15),
    "filler": (0.4, 0.3, 0.2, 0.1),
    "humour": (0.55, 0.3, 0.15),
}


def _second_person(task: str) -> str:
    """The prompt's task as the answer says it ("back up my files" -> "back up your files")."""
    return " ".join("your" if w == "my" else w for w in task.split())


def _normalize(sentence: str) -> str:
    return " ".join(sentence.lower().split())


# -- the phrase inventory as one table ------------------------------------------------------


@dataclass(frozen=True)
class _PhraseTable:
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
    def build(cls) -> _PhraseTable:
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
_TABLE: _PhraseTable | None = None
_PROMPT_TASKS: dict[str, int] | None = None


def _phrase_table() -> _PhraseTable:
    global _TABLE
    if _TABLE is None:
        _TABLE = _PhraseTable.build()
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


# -- features of any text ---------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerParse:
    """What :func:`parse_answer` found: ``sentences`` (normalized), ``covered[i]`` (sentence i
    is part of the well-formed chain), ``words`` and ``covered_words``, ``answers_question``
    (the covered core is the question's), ``markers`` (politeness, detail, humour of the covered
    phrases, uncapped)."""

    sentences: list[str]
    covered: list[bool]
    words: int
    covered_words: int
    answers_question: bool
    markers: tuple[int, int, int]

    @property
    def well_formed(self) -> float:
        return self.covered_words / self.words if self.words else 0.0


def _sentences(text: str) -> list[list[str]]:
    """Words of ``text`` grouped into sentences: a sentence ends with a word ending in . ! or ?;
    trailing words without an end are a last (unfinished) sentence."""
    out: list[list[str]] = []
    current: list[str] = []
    for word in text.split():
        current.append(word)
        if word[-1] in ".!?":
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def parse_answer(text: str, task: int | None) -> AnswerParse:
    """The well-formed part of ``text`` as an answer to a question of task ``task`` (module
    docstring): the chain of inventory sentences, in slot order, first occurrences only, with
    the most words (ties: the chain whose core answers the question). Dynamic programming over
    the sentences, O(sentences^2)."""
    table = _phrase_table()
    sents = _sentences(text)
    norm = [" ".join(s).lower() for s in sents]
    seen: set[str] = set()
    rows: list[int] = []
    for s in norm:
        j = table.lookup.get(s, -1)
        if j >= 0:
            key = table.repeat_key[j]
            if key in seen:
                j = -1  # a repeat counts against
            else:
                seen.add(key)
        rows.append(j)
    n = len(sents)
    # Score in half words: a covered core of the question's task adds 1 (half a word), which
    # only breaks ties between chains of equal length.
    best = [0] * n
    prev = [-1] * n
    for i, j in enumerate(rows):
        if j < 0:
            continue
        gain = 2 * int(table.words[j]) + int(task is not None and table.task[j] == task)
        top, arg = 0, -1
        for k in range(i):
            jk = rows[k]
            if jk < 0:
                continue
            rk, ri = table.rank[jk], table.rank[j]
            if (rk < ri or (rk == ri and SLOT_ORDER[ri] in REPEATABLE)) and best[k] > top:
                top, arg = best[k], k
        best[i], prev[i] = gain + top, arg
    covered = [False] * n
    if n and max(best) > 0:
        i = int(np.argmax(best))
        while i >= 0:
            covered[i] = True
            i = prev[i]
    chosen = [rows[i] for i in range(n) if covered[i]]
    markers = table.markers[chosen].sum(axis=0) if chosen else np.zeros(3, dtype=np.int64)
    return AnswerParse(
        sentences=norm,
        covered=covered,
        words=sum(len(s) for s in sents),
        covered_words=int(sum(table.words[j] for j in chosen)),
        answers_question=any(task is not None and table.task[j] == task for j in chosen),
        markers=(int(markers[0]), int(markers[1]), int(markers[2])),
    )


def well_formedness(text: str) -> float:
    """The ``well_formed`` feature of ``text`` (it does not depend on the question)."""
    return parse_answer(text, None).well_formed


def _broadcast_questions(questions: str | None | Sequence[str | None], n: int) -> list[str | None]:
    if questions is None or isinstance(questions, str):
        return [questions] * n
    questions = list(questions)
    if len(questions) != n:
        raise ValueError(f"{len(questions)} questions for {n} texts; expected one question, or one per text")
    return questions


def text_features(texts: Sequence[str], questions: str | None | Sequence[str | None]) -> np.ndarray:
    """Feature matrix ``[len(texts), len(FEATURES)]`` (float64) of ``texts`` answering
    ``questions`` (one question for all texts, or one per text), see the module docstring."""
    qs = _broadcast_questions(questions, len(texts))
    out = np.empty((len(texts), len(FEATURES)), dtype=np.float64)
    tasks: dict[str | None, int | None] = {}
    for i, (text, q) in enumerate(zip(texts, qs)):
        if q not in tasks:
            tasks[q] = question_task(q)
        p = parse_answer(text, tasks[q])
        out[i, 0] = p.words
        out[i, 1] = p.well_formed
        out[i, 2] = float(p.answers_question)
        out[i, 3:] = np.minimum(p.markers, MARKER_CAP)
    return out


# -- the electorate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VoterGroup:
    """One group of ``data.synthetic.voter_groups``: ``size`` voters who prefer answers of
    ``length_target`` words (``length_penalty`` utility per 10 words away) and weigh the style
    features by ``weights`` (a subset of :data:`STYLE`)."""

    name: str
    size: int
    length_target: float
    length_penalty: float
    weights: Mapping[str, float]


@dataclass(frozen=True)
class Quality:
    """``data.synthetic.quality``: the utility every voter gets from a well-formed answer
    (share 1 vs 0) and from an answer to the question."""

    well_formed: float
    answers_question: float


def _key(node: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(node, Mapping) or key not in node:
        raise ValueError(f"{where}.{key}: missing from the config (expected the validated config, whose schema "
                         "workflow/schemas/config.schema.yaml gives every key)")
    return node[key]


class Electorate:
    """Voters with the utilities of the module docstring.

    Deterministic: the same groups, jitter and ``seed`` give the same voters; the same ``seed``
    of :meth:`make_ballots` gives the same ballots.
    """

    def __init__(self, groups: Sequence[VoterGroup], quality: Quality, noise: float, seed: int,
                 jitter: float) -> None:
        if not groups:
            raise ValueError("data.synthetic.voter_groups: expected at least one group")
        for g in groups:
            unknown = set(g.weights) - set(STYLE)
            if unknown:
                raise ValueError(
                    f"data.synthetic.voter_groups[{g.name}].weights: unknown features "
                    f"{sorted(unknown)} (expected {', '.join(STYLE)})"
                )
            if g.size < 1:
                raise ValueError(f"data.synthetic.voter_groups[{g.name}].size: expected >= 1, got {g.size}")
            if g.length_penalty < 0:
                raise ValueError(f"data.synthetic.voter_groups[{g.name}].length.penalty: expected >= 0, "
                                 f"got {g.length_penalty}")
        self.voter_groups = tuple(groups)
        self.quality = quality
        self.noise = float(noise)
        self.jitter = float(jitter)
        self.seed = int(seed)
        per_voter = [g for g in groups for _ in range(g.size)]
        base = np.array([[g.length_penalty, *(g.weights.get(f, 0.0) for f in STYLE)] for g in per_voter],
                        dtype=np.float64)
        rng = np.random.default_rng([self.seed, 0])
        jittered = base + rng.normal(0.0, self.jitter, size=base.shape)
        #: ``[n_voters]`` length penalties (per 10 words) and preferred lengths (words).
        self.length_penalty: np.ndarray = np.maximum(jittered[:, 0], 0.0)
        self.length_target: np.ndarray = np.array([g.length_target for g in per_voter], dtype=np.float64)
        #: ``[n_voters, len(STYLE)]`` style weights.
        self.style_weights: np.ndarray = jittered[:, 1:]
        self._groups = [g.name for g in per_voter]

    @classmethod
    def from_config(cls, config: dict[str, Any], seed: int | None = None) -> Electorate:
        """Build from the validated config (reads ``data.synthetic``; ``seed`` defaults to
        ``data.seed``). A missing key is a ``ValueError`` naming it."""
        data = _key(config, "data", "config")
        syn = _key(data, "synthetic", "data")
        where = "data.synthetic"
        quality = _key(syn, "quality", where)
        groups = []
        for i, g in enumerate(_key(syn, "voter_groups", where)):
            gw = f"{where}.voter_groups[{g.get('name', i) if isinstance(g, Mapping) else i}]"
            length = _key(g, "length", gw)
            groups.append(VoterGroup(
                str(_key(g, "name", gw)), int(_key(g, "size", gw)), float(_key(length, "target", f"{gw}.length")),
                float(_key(length, "penalty", f"{gw}.length")), dict(_key(g, "weights", gw)),
            ))
        return cls(
            groups,
            Quality(float(_key(quality, "well_formed", f"{where}.quality")),
                    float(_key(quality, "answers_question", f"{where}.quality"))),
            noise=float(_key(syn, "noise", where)),
            seed=int(_key(data, "seed", "data")) if seed is None else seed,
            jitter=float(_key(syn, "jitter", where)),
        )

    @property
    def n_voters(self) -> int:
        return len(self._groups)

    @property
    def groups(self) -> list[str]:
        """Group name of every voter, in voter order."""
        return list(self._groups)

    @property
    def group_names(self) -> list[str]:
        """The groups' names, in config order."""
        return [g.name for g in self.voter_groups]

    @property
    def voters(self) -> list[str]:
        """Voter ids ``v0, v1, ...`` in voter order."""
        return [f"v{i}" for i in range(self.n_voters)]

    @staticmethod
    def features(texts: Sequence[str], questions: str | None | Sequence[str | None]) -> np.ndarray:
        """``[n_texts, n_features]`` features of any texts (:func:`text_features`)."""
        return text_features(texts, questions)

    def utilities_of_features(self, feats: np.ndarray) -> np.ndarray:
        """Noise-free utilities ``[n_voters, n]`` of ``n`` texts with features ``feats``
        (``[n, len(FEATURES)]``), the formula of the module docstring."""
        feats = np.asarray(feats, dtype=np.float64)
        common = self.quality.well_formed * feats[:, 1] + self.quality.answers_question * feats[:, 2]
        length = self.length_penalty[:, None] * np.abs(feats[None, :, 0] - self.length_target[:, None]) / LENGTH_UNIT
        return common[None, :] - length + self.style_weights @ feats[:, 3:].T

    def utilities(self, texts: Sequence[str], questions: str | None | Sequence[str | None]) -> np.ndarray:
        """Noise-free utilities ``[n_voters, n_texts]`` of ``texts`` as answers to ``questions``
        (one question for all texts, or one per text)."""
        return self.utilities_of_features(text_features(texts, questions))

    # -- ballots ----------------------------------------------------------------------------

    def make_ballots(self, n_prompts: int, n_candidates: int, seed: int) -> list[BallotRecord]:
        """``n_prompts`` ballot records with ``n_candidates`` responses each, every voter
        ranking every candidate (one tier per candidate, best first).

        Prompt ids are ``syn-00000``...; topics are balanced over :data:`TOPICS` and prompt texts
        distinct while the inventory allows. Candidate ids are ``c0``...; votes carry ``voter``
        and ``group``, weight 1.0. The candidates' features come from their construction and
        equal :func:`text_features` of their texts and prompts (a unit test checks this).
        """
        if n_prompts < 1:
            raise ValueError(f"data.synthetic.n_prompts: expected >= 1, got {n_prompts}")
        if n_candidates < 2:
            raise ValueError(f"data.synthetic.n_candidates: expected >= 2, got {n_candidates}")
        with gc_paused():
            return self._make_ballots(n_prompts, n_candidates, seed)

    def _make_ballots(self, n_prompts: int, n_candidates: int, seed: int) -> list[BallotRecord]:
        rng = np.random.default_rng([int(seed), 1])
        prompts = _draw_prompts(rng, n_prompts)
        texts, feats = _compose_responses(rng, prompts, n_candidates)
        # Random-utility voting: u[v, p, k] = u_v(text_pk | prompt_p) + eps, ranked best first.
        util = self.utilities_of_features(feats).reshape(self.n_voters, n_prompts, n_candidates)
        util += rng.normal(0.0, self.noise, size=util.shape)
        order = np.argsort(-util, axis=2, kind="stable").tolist()
        cand_ids = [f"c{k}" for k in range(n_candidates)]
        tiers = [[c] for c in cand_ids]
        voters, groups = self.voters, self._groups
        width = max(5, len(str(n_prompts - 1)))
        records: list[BallotRecord] = []
        for p, (topic, _task, prompt) in enumerate(prompts):
            base = p * n_candidates
            records.append({
                "prompt_id": f"syn-{p:0{width}d}",
                "prompt": prompt,
                "topic": topic,
                "candidates": [{"id": cand_ids[k], "text": texts[base + k]} for k in range(n_candidates)],
                "votes": [
                    {
                        "ranking": [tiers[k] for k in order[v][p]],
                        "weight": 1.0,
                        "voter": voters[v],
                        "group": groups[v],
                    }
                    for v in range(len(voters))
                ],
            })
        return records


def _draw_prompts(rng: np.random.Generator, n: int) -> list[tuple[str, str, str]]:
    """``n`` (topic, task, prompt text) triples, topics balanced (round robin, then shuffled),
    texts distinct within a topic until its inventory is used up (then it starts over)."""
    topics = sorted(TOPICS)
    # Every topic has the same number of tasks: j in range(size) indexes (task, template, modifier).
    size = len(PROMPT_TEMPLATES) * len(MODIFIERS) * len(TOPICS[topics[0]].tasks)
    per_topic = -(-n // len(topics))
    out: list[tuple[str, str, str]] = []
    draws = {t: np.concatenate([rng.permutation(size) for _ in range(-(-per_topic // size))]) for t in topics}
    for i in range(n):
        topic = topics[i % len(topics)]
        j = int(draws[topic][i // len(topics)])
        tasks = TOPICS[topic].tasks
        task = tasks[j % len(tasks)]
        rest = j // len(tasks)
        template = PROMPT_TEMPLATES[rest % len(PROMPT_TEMPLATES)]
        modifier = MODIFIERS[rest // len(PROMPT_TEMPLATES)]
        out.append((topic, task, template.format(task=task + modifier)))
    perm = rng.permutation(n)  # prompt ids carry no topic pattern
    return [out[i] for i in perm.tolist()]


def _draw_counts(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    probs = PHRASE_COUNT_PROBS[kind]
    return rng.choice(len(probs), size=n, p=probs)


def _without_replacement(rng: np.random.Generator, n: int, pool: int, k: int) -> np.ndarray:
    """``[n, k]``: for each row, ``k`` distinct draws from ``range(pool)`` (order random)."""
    return np.argsort(rng.random((n, pool)), axis=1)[:, :k]


def _compose_responses(
    rng: np.random.Generator, prompts: Sequence[tuple[str, str, str]], k: int
) -> tuple[list[str], np.ndarray]:
    """``k`` distinct responses per prompt in the fixed phrase order, 10-40 words each.

    Returns the texts (prompt-major) and their ``[n, len(FEATURES)]`` features: words and
    markers summed from the phrases' known counts; every response is well formed (share 1) and
    answers its prompt (its core is the prompt's task). A unit test checks they equal
    :func:`text_features`. Vectorized: each response is a row of slots holding phrase-table
    indices (-1 = empty slot), drawn for all responses at once (:func:`_draw_slots`). A response
    whose text (:func:`~prefsweep.prompts.normalize_text`) repeats an earlier one of its prompt
    is redrawn from ``rng.spawn(1)``: spawning does not advance ``rng``, so every other
    response and the vote noise drawn after them stay as they were.
    """
    table = _phrase_table()
    n = len(prompts) * k
    names = sorted(TOPICS)
    topic_ix = np.repeat(np.array([names.index(t) for t, _, _ in prompts]), k)
    task_ix = np.repeat(np.array([TOPICS[t].tasks.index(task) for t, task, _ in prompts]), k)
    slots = _draw_slots(rng, table, topic_ix, task_ix)
    phrases = table.text
    texts = [" ".join([phrases[j] for j in r if j >= 0]) for r in slots.tolist()]
    again: np.random.Generator | None = None
    repeats = _repeated(texts, k, range(n))
    for _ in range(MAX_REDRAW_ROUNDS):
        if not repeats.size:
            break
        if again is None:
            again = rng.spawn(1)[0]
        slots[repeats] = _draw_slots(again, table, topic_ix[repeats], task_ix[repeats])
        for i, r in zip(repeats.tolist(), slots[repeats].tolist()):
            texts[i] = " ".join([phrases[j] for j in r if j >= 0])
        repeats = _repeated(texts, k, repeats.tolist())  # only a redrawn response can repeat now
    else:
        raise RuntimeError(f"{len(repeats)} synthetic responses still repeat an earlier one of their prompt "
                           f"after {MAX_REDRAW_ROUNDS} redraws; lower data.synthetic.n_candidates")

    used = slots >= 0
    words = np.where(used, table.words[slots], 0).sum(axis=1)
    markers = np.where(used[:, :, None], table.markers[slots], 0).sum(axis=1)
    ones = np.ones(n, dtype=np.float64)
    feats = np.column_stack([words, ones, ones, np.minimum(markers, MARKER_CAP)]).astype(np.float64)
    return texts, feats


def _repeated(texts: Sequence[str], k: int, rows: Sequence[int]) -> np.ndarray:
    """Of ``rows`` (ascending indices into ``texts``, prompt-major with ``k`` per prompt), those
    whose normalized text is that of another response of their prompt that is not in ``rows``
    or comes earlier in ``rows``: the responses to redraw, so that every other one stays."""
    out: list[int] = []
    chosen = set(rows)
    for p in sorted({i // k for i in rows}):
        span = range(p * k, (p + 1) * k)
        seen = {normalize_text(texts[i]) for i in span if i not in chosen}
        for i in span:
            if i in chosen:
                key = normalize_text(texts[i])
                if key in seen:
                    out.append(i)
                seen.add(key)
    return np.array(out, dtype=np.int64)


def _draw_slots(
    rng: np.random.Generator, table: _PhraseTable, topic_ix: np.ndarray, task_ix: np.ndarray
) -> np.ndarray:
    """``[n, slots]`` phrase-table rows (-1 = empty slot) of one response per (topic, task)
    index pair, in the order ``[opener] core [detail x max] [filler x max] [humour x max]
    [closer]``; responses outside :data:`MIN_WORDS`-:data:`MAX_WORDS` words are redrawn as a
    batch until none is."""
    names = sorted(TOPICS)
    first = next(iter(TOPICS.values()))
    n_advice = len(first.advice)
    n_det = len(first.details) + len(GENERIC_DETAILS)
    n_num = DETAIL_NUMBERS[1] - DETAIL_NUMBERS[0]
    core_base = np.array([table.index[("core", t, 0, 0)] for t in names])
    det_base = np.array([table.index[("detail", t, 0, DETAIL_NUMBERS[0])] for t in names])
    opener0, closer0 = table.index[("opener", 0)], table.index[("closer", 0)]
    filler0, humour0 = table.index[("filler", 0)], table.index[("humour", 0)]
    assert len(PHRASE_COUNT_PROBS["politeness"]) == 3  # 0, opener, opener + closer
    max_det = len(PHRASE_COUNT_PROBS["detail"]) - 1
    max_fil = len(PHRASE_COUNT_PROBS["filler"]) - 1
    max_hum = len(PHRASE_COUNT_PROBS["humour"]) - 1

    slots = np.full((len(topic_ix), 2 + max_det + max_fil + max_hum + 1), -1, dtype=np.int64)
    todo = np.arange(len(topic_ix))
    while todo.size:
        m = todo.size
        n_pol = _draw_counts(rng, m, "politeness")
        counts = {kind: _draw_counts(rng, m, kind) for kind in ("detail", "filler", "humour")}
        row = np.full((m, slots.shape[1]), -1, dtype=np.int64)
        col = np.arange(max_det)
        # [opener] core [detail x max_det] [filler x max_fil] [humour x max_hum] [closer]
        row[:, 0] = np.where(n_pol >= 1, opener0 + rng.integers(len(POLITE_OPENERS), size=m), -1)
        row[:, 1] = (
            core_base[topic_ix[todo]] + task_ix[todo] * n_advice + rng.integers(n_advice, size=m)
        )
        det = _without_replacement(rng, m, n_det, max_det)
        num = rng.integers(0, n_num, size=(m, max_det))
        det_ids = det_base[topic_ix[todo]][:, None] + det * n_num + num
        row[:, 2 : 2 + max_det] = np.where(col < counts["detail"][:, None], det_ids, -1)
        c = 2 + max_det
        fil = filler0 + _without_replacement(rng, m, len(FILLERS), max_fil)
        row[:, c : c + max_fil] = np.where(np.arange(max_fil) < counts["filler"][:, None], fil, -1)
        c += max_fil
        hum = humour0 + _without_replacement(rng, m, len(HUMOUR_PHRASES), max_hum)
        row[:, c : c + max_hum] = np.where(np.arange(max_hum) < counts["humour"][:, None], hum, -1)
        row[:, -1] = np.where(n_pol >= 2, closer0 + rng.integers(len(POLITE_CLOSERS), size=m), -1)
        words = np.where(row >= 0, table.words[row], 0).sum(axis=1)
        ok = (words >= MIN_WORDS) & (words <= MAX_WORDS)
        slots[todo[ok]] = row[ok]
        todo = todo[~ok]
    return slots
