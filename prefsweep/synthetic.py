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
:data:`TOPICS` (8 topics).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from prefsweep.ballots import BallotRecord

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

#: Probabilities of 0, 1, 2, ... optional phrases of each kind in a response.
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

        Prompt ids are ``syn-00000``...; topics cycle through :data:`TOPICS` after a seeded
        shuffle of the prompt texts (distinct texts while the inventory allows). Candidate ids
        are ``c0``...; votes carry ``voter`` and ``group``, weight 1.0.
        """
        if n_candidates < 2:
            raise ValueError(f"data.synthetic.n_candidates: expected >= 2, got {n_candidates}")
        rng = np.random.default_rng([int(seed), 1])
        prompts = _draw_prompts(rng, n_prompts)
        texts: list[str] = []
        for topic, task, _ in prompts:
            for _k in range(n_candidates):
                texts.append(_compose_response(rng, TOPICS[topic], task))
        feats = text_features(texts).reshape(n_prompts, n_candidates, len(FEATURES))
        # utility[v, p, k] + noise; rank each voter's candidates best first.
        util = np.einsum("vf,pkf->vpk", self.weights, feats)
        util += rng.normal(0.0, self.noise, size=util.shape)
        order = np.argsort(-util, axis=2, kind="stable")
        cand_ids = [f"c{k}" for k in range(n_candidates)]
        voters, groups = self.voters, self._groups
        width = max(5, len(str(n_prompts - 1)))
        records: list[BallotRecord] = []
        for p, (topic, _task, prompt) in enumerate(prompts):
            votes = [
                {
                    "ranking": [[cand_ids[k]] for k in order[v, p].tolist()],
                    "weight": 1.0,
                    "voter": voters[v],
                    "group": groups[v],
                }
                for v in range(self.n_voters)
            ]
            records.append({
                "prompt_id": f"syn-{p:0{width}d}",
                "prompt": prompt,
                "topic": topic,
                "candidates": [
                    {"id": cand_ids[k], "text": texts[p * n_candidates + k]} for k in range(n_candidates)
                ],
                "votes": votes,
            })
        return records


def _draw_prompts(rng: np.random.Generator, n: int) -> list[tuple[str, str, str]]:
    """``n`` (topic, task, prompt text) triples: distinct texts while the inventory allows
    (then with repeats), topics balanced."""
    per_topic = len(PROMPT_TEMPLATES) * len(MODIFIERS)
    topics = sorted(TOPICS)
    out = []
    pools: dict[str, np.ndarray] = {}
    used: dict[str, int] = {}
    for i in range(n):
        topic = topics[i % len(topics)]
        tasks = TOPICS[topic].tasks
        size = per_topic * len(tasks)
        if topic not in pools or used[topic] == size:
            pools[topic], used[topic] = rng.permutation(size), 0
        j = int(pools[topic][used[topic]])
        used[topic] += 1
        task = tasks[j % len(tasks)]
        rest = j // len(tasks)
        template = PROMPT_TEMPLATES[rest % len(PROMPT_TEMPLATES)]
        modifier = MODIFIERS[rest // len(PROMPT_TEMPLATES)]
        out.append((topic, task, template.format(task=task + modifier)))
    # Topics were assigned round-robin; shuffle so prompt ids carry no topic pattern.
    perm = rng.permutation(n)
    return [out[i] for i in perm]


def _count(rng: np.random.Generator, kind: str) -> int:
    probs = PHRASE_COUNT_PROBS[kind]
    return int(rng.choice(len(probs), p=probs))


def _compose_response(rng: np.random.Generator, topic: Topic, task: str) -> str:
    """One response in the fixed phrase order; redrawn until it has 10-40 words."""
    while True:
        n_pol, n_det, n_fil, n_hum = (_count(rng, k) for k in ("politeness", "detail", "filler", "humour"))
        parts: list[str] = []
        if n_pol >= 1:
            parts.append(POLITE_OPENERS[rng.integers(len(POLITE_OPENERS))])
        advice = topic.advice[rng.integers(len(topic.advice))]
        parts.append(f"To {task}, {advice}.")
        detail_pool = topic.details + GENERIC_DETAILS
        for d in rng.choice(len(detail_pool), size=n_det, replace=False).tolist():
            parts.append(detail_pool[d].format(n=int(rng.integers(2, 30))))
        for f in rng.choice(len(FILLERS), size=n_fil, replace=False).tolist():
            parts.append(FILLERS[f])
        for h in rng.choice(len(HUMOUR_PHRASES), size=n_hum, replace=False).tolist():
            parts.append(HUMOUR_PHRASES[h])
        if n_pol >= 2:
            parts.append(POLITE_CLOSERS[rng.integers(len(POLITE_CLOSERS))])
        text = " ".join(parts)
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS:
            return text
