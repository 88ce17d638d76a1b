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
#: The three marker patterns as groups 1, 2, 3 (= feature columns) of one regex.
_MARKERS_RE = re.compile(f"({POLITENESS_RE.pattern})|({DETAIL_RE.pattern})|({HUMOUR_RE.pattern})")

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
    out = np.zeros((len(texts), len(FEATURES)), dtype=np.float64)
    for i, text in enumerate(texts):
        low = text.lower()
        out[i, 0] = len(low.split())
        # One pass over the text: each match fills exactly one of the three groups.
        for m in _MARKERS_RE.finditer(low):
            out[i, m.lastindex] += 1.0  # type: ignore[index]
    out[:, 0] /= 10.0
    np.minimum(out[:, 1:], MARKER_CAP, out=out[:, 1:])
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


def _n_words(text: str) -> int:
    return len(text.split())


def _draw_counts(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    probs = PHRASE_COUNT_PROBS[kind]
    return rng.choice(len(probs), size=n, p=probs)


def _first_k(rng: np.random.Generator, n: int, pool: int) -> np.ndarray:
    """``[n, pool]`` random permutations of ``range(pool)`` (take the first k: k draws
    without replacement)."""
    return np.argsort(rng.random((n, pool)), axis=1)


def _compose_responses(
    rng: np.random.Generator, prompts: Sequence[tuple[str, str, str]], k: int
) -> tuple[list[str], np.ndarray]:
    """``k`` responses per prompt in the fixed phrase order, 10-40 words each.

    Returns the texts (prompt-major) and their ``[n, n_features]`` features, computed from the
    phrases' known word and marker counts (each optional phrase carries one marker).
    Vectorized: every choice is drawn for all responses at once; responses outside the word
    range are redrawn as a batch.
    """
    n = len(prompts) * k
    topic_of = [TOPICS[t] for t, _, _ in prompts for _ in range(k)]
    task_of = [task for _, task, _ in prompts for _ in range(k)]
    n_details = len(next(iter(TOPICS.values())).details) + len(GENERIC_DETAILS)
    texts: list[str | None] = [None] * n
    feats = np.zeros((n, len(FEATURES)), dtype=np.float64)
    todo = np.arange(n)
    while todo.size:
        m = todo.size
        n_pol = _draw_counts(rng, m, "politeness")
        n_det = _draw_counts(rng, m, "detail")
        n_fil = _draw_counts(rng, m, "filler")
        n_hum = _draw_counts(rng, m, "humour")
        opener = rng.integers(len(POLITE_OPENERS), size=m).tolist()
        closer = rng.integers(len(POLITE_CLOSERS), size=m).tolist()
        advice = rng.integers(4, size=m).tolist()
        det = _first_k(rng, m, n_details).tolist()
        fil = _first_k(rng, m, len(FILLERS)).tolist()
        hum = _first_k(rng, m, len(HUMOUR_PHRASES)).tolist()
        nums = rng.integers(2, 30, size=(m, n_details)).tolist()
        again = []
        for r, i in enumerate(todo.tolist()):
            topic = topic_of[i]
            parts: list[str] = []
            p, d, f, h = int(n_pol[r]), int(n_det[r]), int(n_fil[r]), int(n_hum[r])
            if p >= 1:
                parts.append(POLITE_OPENERS[opener[r]])
            parts.append(f"To {task_of[i]}, {topic.advice[advice[r] % len(topic.advice)]}.")
            pool = topic.details + GENERIC_DETAILS
            parts.extend(pool[j].format(n=nums[r][j]) for j in det[r][:d])
            parts.extend(FILLERS[j] for j in fil[r][:f])
            parts.extend(HUMOUR_PHRASES[j] for j in hum[r][:h])
            if p >= 2:
                parts.append(POLITE_CLOSERS[closer[r]])
            text = " ".join(parts)
            words = _n_words(text)
            if not MIN_WORDS <= words <= MAX_WORDS:
                again.append(i)
                continue
            texts[i] = text
            feats[i] = (words / 10.0, min(p, MARKER_CAP), min(d, MARKER_CAP), min(h, MARKER_CAP))
        todo = np.array(again, dtype=np.int64)
    return texts, feats  # type: ignore[return-value]
