"""Drawing the synthetic prompts and their candidate responses (:meth:`Electorate.make_ballots
<prefsweep.data.synthetic.Electorate.make_ballots>`).

Prompts are balanced over the topics and distinct while the inventory allows; each response
fills the slots of :data:`prefsweep.data.synthetic_phrases.SLOT_ORDER` with phrases drawn by
:data:`PHRASE_COUNT_PROBS` and has :data:`MIN_WORDS`-:data:`MAX_WORDS` words. The candidates of a
prompt are distinct texts (:func:`prefsweep.data.prompts.normalize_text`): a response composed a
second time for its prompt is redrawn from a child stream of the generator, so no other draw
changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prefsweep.data.prompts import normalize_text
from prefsweep.data.synthetic_phrases import (
    DETAIL_NUMBERS, FILLERS, GENERIC_DETAILS, HUMOUR_PHRASES, MARKER_CAP, MODIFIERS, POLITE_CLOSERS,
    POLITE_OPENERS, PROMPT_TEMPLATES, TOPICS, PhraseTable, phrase_table,
)

#: Words of a response, at least and at most.
MIN_WORDS, MAX_WORDS = 10, 40
#: Rounds of redrawing responses that repeat another of their prompt before giving up: a guard
#: against an endless loop (the default ballots needed one round, 2000 prompts x 26 two).
MAX_REDRAW_ROUNDS = 100
#: Probabilities of 0, 1, 2, ... optional phrases of each kind in a response (politeness: an
#: opener, then also a closer).
PHRASE_COUNT_PROBS: dict[str, tuple[float, ...]] = {
    "politeness": (0.45, 0.35, 0.2),
    "detail": (0.35, 0.3, 0.2, 0.15),
    "filler": (0.4, 0.3, 0.2, 0.1),
    "humour": (0.55, 0.3, 0.15),
}


def draw_prompts(rng: np.random.Generator, n: int) -> list[tuple[str, str, str]]:
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


def compose_responses(
    rng: np.random.Generator, prompts: Sequence[tuple[str, str, str]], k: int
) -> tuple[list[str], np.ndarray]:
    """``k`` distinct responses per prompt in the fixed phrase order, 10-40 words each.

    Returns the texts (prompt-major) and their ``[n, len(FEATURES)]`` features: words and
    markers summed from the phrases' known counts; every response is well formed (share 1) and
    answers its prompt (its core is the prompt's task). A unit test checks they equal
    :func:`prefsweep.data.synthetic.text_features`. Vectorized: each response is a row of slots
    holding phrase-table indices (-1 = empty slot), drawn for all responses at once
    (:func:`draw_slots`). A response whose text (:func:`~prefsweep.data.prompts.normalize_text`)
    repeats an earlier one of its prompt is redrawn from ``rng.spawn(1)``: spawning does not advance ``rng``, so every other
    response and the vote noise drawn after them stay as they were.
    """
    table = phrase_table()
    n = len(prompts) * k
    names = sorted(TOPICS)
    topic_ix = np.repeat(np.array([names.index(t) for t, _, _ in prompts]), k)
    task_ix = np.repeat(np.array([TOPICS[t].tasks.index(task) for t, task, _ in prompts]), k)
    slots = draw_slots(rng, table, topic_ix, task_ix)
    phrases = table.text
    texts = [" ".join([phrases[j] for j in r if j >= 0]) for r in slots.tolist()]
    again: np.random.Generator | None = None
    repeats = _repeated(texts, k, range(n))
    for _ in range(MAX_REDRAW_ROUNDS):
        if not repeats.size:
            break
        if again is None:
            again = rng.spawn(1)[0]
        slots[repeats] = draw_slots(again, table, topic_ix[repeats], task_ix[repeats])
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


def draw_slots(
    rng: np.random.Generator, table: PhraseTable, topic_ix: np.ndarray, task_ix: np.ndarray
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
