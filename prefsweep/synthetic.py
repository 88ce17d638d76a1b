"""A synthetic electorate: templated prompts, composed responses, voters with utilities.

The electorate both *creates* ballots (``data.source: synthetic``) and later *judges* model
answers (``eval.judge.type: electorate``), so its utilities are defined on arbitrary text.

Features (:data:`FEATURES`, measured by :func:`text_features` in any text, case-insensitive):

- ``length``     = number of whitespace-separated words / 10;
- ``politeness`` = count of politeness markers (:data:`POLITENESS_RE`: please, thanks,
  thank you, good luck, great question, happy to help, hope this helps), capped at
  :data:`MARKER_CAP`;
- ``detail``     = count of numbers and of "for example" / "for instance" / "specifically"
  (:data:`DETAIL_RE`), capped;
- ``humour``     = count of humour markers (:data:`HUMOUR_RE`: haha, lol, just kidding,
  fun fact, no joke), capped.

The cap keeps a text that repeats one marker from gaining without bound.

Voters: ``data.synthetic.voter_groups`` lists groups ``{name, size, weights: {feature: w}}``
(missing features weigh 0). Voter ``v`` of group ``g`` has weights ``w_v = w_g + e_v``,
``e_v ~ N(0, jitter^2)`` per feature (drawn once from the electorate's seed). Its noise-free
utility of a text ``t`` is ``u_v(t) = w_v . f(t)``; when it votes on a prompt it ranks the K
candidates by ``u_v(t) + eps``, ``eps ~ N(0, noise^2)`` drawn per voter and candidate
(a random-utility model; ties have probability zero).

Responses are composed from a fixed phrase inventory, always in the same order, so a tiny LM can
learn the patterns::

    [polite opener] core sentence [detail phrases] [filler phrases] [humour phrases] [polite closer]

Each optional phrase carries exactly one marker of its feature (fillers carry none, only
words); responses have 10-40 words. Prompts are ``template.format(task=task + modifier)`` over
:data:`TOPICS` (8 topics: computers, cooking, fitness, gardening, money, pets, study, travel;
240 distinct prompts each).

Seeds: voter weights come from ``default_rng([seed, 0])`` of the electorate's seed; prompts,
responses and vote noise from ``default_rng([seed, 1])`` of :meth:`Electorate.make_ballots`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from prefsweep.ballots import BallotRecord, gc_paused

FEATURES: tuple[str, ...] = ("length", "politeness", "detail", "humour")
#: Marker counts above this add nothing (``length`` is not capped).
MARKER_CAP = 4
#: Default std of the per-voter jitter of group weights (``data.synthetic.jitter`` overrides).
DEFAULT_JITTER = 0.1
MIN_WORDS, MAX_WORDS = 10, 40

POLITENESS_RE = re.compile(
    r"\b(?:please|thanks|thank you|good luck|great question|happy to help|hope this helps)\b"
)
DETAIL_RE = re.compile(r"\b\d+(?:\.\d+)?\b|\b(?:for example|for instance|specifically)\b")
HUMOUR_RE = re.compile(r"\b(?:haha|lol|just kidding|fun fact|no joke)\b")

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
#: Probabilities of 0, 1, 2, ... optional phrases of each kind in a response (politeness: an
#: opener, then also a closer).
PHRASE_COUNT_PROBS: dict[str, tuple[float, ...]] = {
    "politeness": (0.45, 0.35, 0.2),
    "detail": (0.35, 0.3, 0.2, 0.15),
    "filler": (0.4, 0.3, 0.2, 0.1),
    "humour": (0.55, 0.3, 0.15),
}


def text_features(texts: Sequence[str]) -> np.ndarray:
    """Feature matrix ``[len(texts), len(FEATURES)]`` (float64), see the module docstring."""
    out = np.empty((len(texts), len(FEATURES)), dtype=np.float64)
    for i, text in enumerate(texts):
        low = text.lower()
        out[i, 0] = len(low.split()) / 10.0
        out[i, 1] = min(len(POLITENESS_RE.findall(low)), MARKER_CAP)
        out[i, 2] = min(len(DETAIL_RE.findall(low)), MARKER_CAP)
        out[i, 3] = min(len(HUMOUR_RE.findall(low)), MARKER_CAP)
    return out


@dataclass(frozen=True)
class VoterGroup:
    name: str
    size: int
    weights: dict[str, float]


class Electorate:
    """Voters with linear utilities over :data:`FEATURES` (see the module docstring).

    Deterministic: the same groups, jitter and ``seed`` give the same voter weights; the same
    ``seed`` of :meth:`make_ballots` gives the same ballots.
    """

    def __init__(
        self, groups: Sequence[VoterGroup], noise: float, seed: int, jitter: float = DEFAULT_JITTER
    ) -> None:
        if not groups:
            raise ValueError("data.synthetic.voter_groups: expected at least one group")
        for g in groups:
            unknown = set(g.weights) - set(FEATURES)
            if unknown:
                raise ValueError(
                    f"data.synthetic.voter_groups[{g.name}].weights: unknown features "
                    f"{sorted(unknown)} (expected {', '.join(FEATURES)})"
                )
            if g.size < 1:
                raise ValueError(f"data.synthetic.voter_groups[{g.name}].size: expected >= 1, got {g.size}")
        self.voter_groups = tuple(groups)
        self.noise = float(noise)
        self.jitter = float(jitter)
        self.seed = int(seed)
        base = np.array(
            [[g.weights.get(f, 0.0) for f in FEATURES] for g in groups for _ in range(g.size)],
            dtype=np.float64,
        )
        rng = np.random.default_rng([self.seed, 0])
        #: ``[n_voters, n_features]`` voter weights.
        self.weights: np.ndarray = base + rng.normal(0.0, self.jitter, size=base.shape)
        self._groups = [g.name for g in groups for _ in range(g.size)]

    @classmethod
    def from_config(cls, config: dict[str, Any], seed: int | None = None) -> Electorate:
        """Build from the resolved config (reads ``data.synthetic``; ``seed`` defaults to
        ``data.seed``). Optional ``data.synthetic.jitter`` sets the weight jitter std."""
        data = config["data"]
        syn = data["synthetic"]
        groups = [VoterGroup(g["name"], int(g["size"]), dict(g["weights"])) for g in syn["voter_groups"]]
        return cls(
            groups,
            noise=syn["noise"],
            seed=data["seed"] if seed is None else seed,
            jitter=syn.get("jitter", DEFAULT_JITTER),
        )

    @property
    def n_voters(self) -> int:
        return self.weights.shape[0]

    @property
    def groups(self) -> list[str]:
        """Group name of every voter, in voter order."""
        return list(self._groups)

    @property
    def voters(self) -> list[str]:
        """Voter ids ``v0, v1, ...`` in voter order."""
        return [f"v{i}" for i in range(self.n_voters)]

    @staticmethod
    def features(texts: Sequence[str]) -> np.ndarray:
        """``[n_texts, n_features]`` features of any texts (:func:`text_features`)."""
        return text_features(texts)

    def utilities(self, texts: Sequence[str]) -> np.ndarray:
        """Noise-free utilities ``[n_voters, n_texts]``: ``u[v, t] = w_v . f(t)``."""
        return self.weights @ text_features(texts).T

    # -- ballots ----------------------------------------------------------------------------

    def make_ballots(self, n_prompts: int, n_candidates: int, seed: int) -> list[BallotRecord]:
        """``n_prompts`` ballot records with ``n_candidates`` responses each, every voter
        ranking every candidate (one tier per candidate, best first).

        Prompt ids are ``syn-00000``...; topics are balanced over :data:`TOPICS` and prompt texts
        distinct while the inventory allows. Candidate ids are ``c0``...; votes carry ``voter``
        and ``group``, weight 1.0. The candidates' features come from their construction and
        equal :func:`text_features` of their texts (a unit test checks this).
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
        feats = feats.reshape(n_prompts, n_candidates, len(FEATURES))
        # Random-utility voting: u[v, p, k] = w_v . f(text_pk) + eps, ranked best first.
        util = np.einsum("vf,pkf->vpk", self.weights, feats)
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


@dataclass(frozen=True)
class _PhraseTable:
    """Every phrase a response can use, as one flat table: ``text[j]``, ``words[j]`` and the
    marker counts ``markers[j] = (politeness, detail, humour)``."""

    text: list[str]
    words: np.ndarray
    markers: np.ndarray
    index: dict[tuple, int]

    @classmethod
    def build(cls) -> _PhraseTable:
        keys: list[tuple] = []
        texts: list[str] = []
        marks: list[tuple[int, int, int]] = []

        def add(key: tuple, text: str, mark: tuple[int, int, int]) -> None:
            keys.append(key)
            texts.append(text)
            marks.append(mark)

        for i, t in enumerate(POLITE_OPENERS):
            add(("opener", i), t, (1, 0, 0))
        for i, t in enumerate(POLITE_CLOSERS):
            add(("closer", i), t, (1, 0, 0))
        for i, t in enumerate(FILLERS):
            add(("filler", i), t, (0, 0, 0))
        for i, t in enumerate(HUMOUR_PHRASES):
            add(("humour", i), t, (0, 0, 1))
        for name, topic in TOPICS.items():
            for ti, task in enumerate(topic.tasks):
                for ai, advice in enumerate(topic.advice):
                    add(("core", name, ti, ai), f"To {_second_person(task)}, {advice}.", (0, 0, 0))
            for di, phrase in enumerate(topic.details + GENERIC_DETAILS):
                for n in range(*DETAIL_NUMBERS):
                    add(("detail", name, di, n), phrase.format(n=n), (0, 1, 0))
        return cls(
            texts,
            np.array([len(t.split()) for t in texts], dtype=np.int64),
            np.array(marks, dtype=np.int64),
            {k: j for j, k in enumerate(keys)},
        )


def _second_person(task: str) -> str:
    """The prompt's task as the answer says it ("back up my files" -> "back up your files")."""
    return " ".join("your" if w == "my" else w for w in task.split())


_TABLE: _PhraseTable | None = None


def _phrase_table() -> _PhraseTable:
    global _TABLE
    if _TABLE is None:
        _TABLE = _PhraseTable.build()
    return _TABLE


def _draw_counts(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    probs = PHRASE_COUNT_PROBS[kind]
    return rng.choice(len(probs), size=n, p=probs)


def _without_replacement(rng: np.random.Generator, n: int, pool: int, k: int) -> np.ndarray:
    """``[n, k]``: for each row, ``k`` distinct draws from ``range(pool)`` (order random)."""
    return np.argsort(rng.random((n, pool)), axis=1)[:, :k]


def _compose_responses(
    rng: np.random.Generator, prompts: Sequence[tuple[str, str, str]], k: int
) -> tuple[list[str], np.ndarray]:
    """``k`` responses per prompt in the fixed phrase order, 10-40 words each.

    Returns the texts (prompt-major) and their ``[n, n_features]`` features, summed from the
    phrases' known word and marker counts (a unit test checks they equal
    :func:`text_features`). Vectorized: each response is a row of slots holding phrase-table
    indices (-1 = empty slot), drawn for all responses at once; rows outside the word range are
    redrawn as a batch.
    """
    table = _phrase_table()
    n = len(prompts) * k
    names = sorted(TOPICS)
    first = next(iter(TOPICS.values()))
    n_advice = len(first.advice)
    n_det = len(first.details) + len(GENERIC_DETAILS)
    n_num = DETAIL_NUMBERS[1] - DETAIL_NUMBERS[0]
    core_base = np.array([table.index[("core", t, 0, 0)] for t in names])
    det_base = np.array([table.index[("detail", t, 0, DETAIL_NUMBERS[0])] for t in names])
    topic_ix = np.repeat(np.array([names.index(t) for t, _, _ in prompts]), k)
    task_ix = np.repeat(np.array([TOPICS[t].tasks.index(task) for t, task, _ in prompts]), k)
    opener0, closer0 = table.index[("opener", 0)], table.index[("closer", 0)]
    filler0, humour0 = table.index[("filler", 0)], table.index[("humour", 0)]
    assert len(PHRASE_COUNT_PROBS["politeness"]) == 3  # 0, opener, opener + closer
    max_det = len(PHRASE_COUNT_PROBS["detail"]) - 1
    max_fil = len(PHRASE_COUNT_PROBS["filler"]) - 1
    max_hum = len(PHRASE_COUNT_PROBS["humour"]) - 1

    slots = np.full((n, 2 + max_det + max_fil + max_hum + 1), -1, dtype=np.int64)
    todo = np.arange(n)
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

    used = slots >= 0
    words = np.where(used, table.words[slots], 0).sum(axis=1)
    markers = np.where(used[:, :, None], table.markers[slots], 0).sum(axis=1)
    feats = np.column_stack([words / 10.0, np.minimum(markers, MARKER_CAP)]).astype(np.float64)
    phrases = table.text
    texts = [" ".join([phrases[j] for j in r if j >= 0]) for r in slots.tolist()]
    return texts, feats
