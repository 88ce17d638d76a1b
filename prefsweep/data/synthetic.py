"""A synthetic electorate: voters with utilities over any text, and the ballots they cast.

The electorate both *creates* ballots (``data.source: synthetic``) and later *judges* model
answers (``eval.judge.type: electorate``), with one utility function defined on any text given
the question it answers, so training data and verdicts stay consistent. Its prompts and the
phrase inventory its candidates are composed from are :mod:`prefsweep.data.synthetic_phrases`;
drawing them, :mod:`prefsweep.data.synthetic_responses`.

Features of a text ``t`` answering question ``q`` (:data:`FEATURES`, :func:`text_features`):

- ``words``: number of whitespace-separated words of ``t``;
- ``well_formed`` in [0, 1]: the share of the words of ``t`` covered by inventory phrases in the
  inventory's order (:func:`parse_answer`). ``t`` is split into sentences (a sentence ends with a
  word ending in ``.``, ``!`` or ``?``; case and spacing are ignored); a sentence is *covered*
  when it is an inventory phrase, not a repeat of an earlier one (a detail phrase with another
  number is a repeat), and part of the heaviest chain of sentences whose slots follow
  :data:`~prefsweep.data.synthetic_phrases.SLOT_ORDER` (at most one opener, core and closer).
  Repeated, broken, out-of-order and out-of-inventory words are in the denominator only; an
  empty text has share 0;
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
responses and vote noise from ``default_rng([seed, 1])`` of :meth:`Electorate.make_ballots`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from prefsweep.data.ballots import BallotRecord, gc_paused
from prefsweep.data.synthetic_phrases import (
    FEATURES, MARKER_CAP, REPEATABLE, SLOT_ORDER, STYLE, phrase_table, question_task,
)
from prefsweep.data.synthetic_responses import compose_responses, draw_prompts

#: The length penalty is per this many words away from the target.
LENGTH_UNIT = 10.0


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
    table = phrase_table()
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
        prompts = draw_prompts(rng, n_prompts)
        texts, feats = compose_responses(rng, prompts, n_candidates)
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


