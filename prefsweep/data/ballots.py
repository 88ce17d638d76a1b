"""Normalized ballots: the record format and its validation.

One record per prompt (``data/ballots.jsonl``, one JSON object per line; also the ``jsonl``
source format)::

    {"prompt_id": str, "prompt": str (raw question text), "topic": str,
     "candidates": [{"id": str, "text": str}, ...]          # at least two, distinct ids
     "votes": [vote, ...]}                                   # at least one

    vote = {"ranking": [["a"], ["b", "c"], ["d"]], "weight": 1.0, "voter": "v3", "group": "g1"}
         | {"pair": ["a", "b"], "winner": "a" | null, "weight": 1.0, "voter"?: str, "group"?: str}

A ranking is a list of tiers, best first; candidates within a tier are tied, candidates not
listed are tied below every listed one. A pair vote compares two candidates; ``winner: null``
is a tie. ``voter`` and ``group`` are optional strings. Unknown keys are errors (a typo must
not be silently ignored). ``prompt`` and every candidate ``text`` are not empty or only white
space (they would be trained on as they are); the candidate texts of a prompt are distinct after
:func:`prefsweep.data.prompts.normalize_text` (case and runs of white space ignored: two such texts
give a pair whose chosen response is its rejected one). Every string encodes as UTF-8 (a lone
surrogate such as ``"\\ud800"`` is valid JSON but not text).

``prompt`` is the raw question; a multi-turn prompt holds the earlier turns written with the
turn markers of ``prompt_format`` (:func:`prefsweep.data.prompts.turn_markers`), for style ``hh``
``"first question\\n\\nAssistant: first answer\\n\\nHuman: next question"``. A candidate is one
assistant turn: a candidate holding a turn marker is screened out or refused by
:func:`prefsweep.data.marker_screen.screen_turn_markers`.

``weight`` (default 1.0) is a number in [:data:`MIN_WEIGHT`, :data:`MAX_WEIGHT`] = [1e-6, 1e6].
Weights are decimal numbers: :mod:`prefsweep.data.support` rounds each to a whole number of
:data:`WEIGHT_UNIT` = 1e-6 (6 decimal places) and sums those integers, so every support,
margin and score is exact (0.1 + 0.2 ties 0.3; in binary floating point it would be a majority
of 5.55e-17). For the sums to stay exact (below 2**53 units, with room for score differences)
a prompt's total weight times its number of candidates is at most :data:`MAX_WEIGHT_MASS`.

Every problem raises :class:`BallotError` whose message names the file, the record (line number
and ``prompt_id``), the field, and what was expected (a file that is empty, holds no record, or
has bytes that are not UTF-8 is an error too), e.g.::

    ballots.jsonl: line 7 (prompt_id 'p6'): votes[2].pair[1]: unknown candidate 'x'
    (expected one of 'a', 'b', 'c')

Reading a ballots file: :func:`prefsweep.data.sources.jsonl.load_jsonl`; the workflow's own
file as an Arrow table: :mod:`prefsweep.data.ballot_table`; where ballots come from:
:mod:`prefsweep.data.sources`.
"""

from __future__ import annotations

import contextlib
import gc
import math
import operator
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NotRequired, TypedDict

from prefsweep.io import atomic_write_jsonl
from prefsweep.data.prompts import normalize_text


class Candidate(TypedDict):
    id: str
    text: str


class Vote(TypedDict, total=False):
    ranking: list[list[str]]
    pair: list[str]
    winner: str | None
    weight: float
    voter: str
    group: str


class BallotRecord(TypedDict):
    prompt_id: str
    prompt: str
    topic: str
    candidates: list[Candidate]
    votes: list[Vote]
    meta: NotRequired[dict[str, Any]]


RECORD_KEYS = ("prompt_id", "prompt", "topic", "candidates", "votes")
#: ``meta`` is an optional free-form dict (kept, never interpreted).
OPTIONAL_RECORD_KEYS = ("meta",)
CANDIDATE_KEYS = ("id", "text")
RANKING_VOTE_KEYS = ("ranking", "weight", "voter", "group")
PAIR_VOTE_KEYS = ("pair", "winner", "weight", "voter", "group")
_RANKING_KEYSET = frozenset(RANKING_VOTE_KEYS)
_first = operator.itemgetter(0)
_RECORD_KEYSET = frozenset(RECORD_KEYS)

#: Vote weights are whole numbers of this unit (6 decimal places) in :mod:`prefsweep.data.support`.
WEIGHT_DECIMALS = 6
#: Units per weight 1 (an integer: ``units / WEIGHT_SCALE`` is the float nearest the decimal).
WEIGHT_SCALE = 10**WEIGHT_DECIMALS
WEIGHT_UNIT = 1 / WEIGHT_SCALE
#: Bounds of one vote's weight: the smallest is one unit, the largest keeps many votes exact.
MIN_WEIGHT = WEIGHT_UNIT
MAX_WEIGHT = 1e6
#: Largest total weight x number of candidates of one prompt: Borda scores and their
#: differences (at most 2 K total) stay below 2**53 units, where float64 sums are exact.
MAX_WEIGHT_MASS = 2.0**52 * WEIGHT_UNIT


class BallotError(ValueError):
    """A ballot record breaks the format; the message says where and what was expected."""


def not_utf8(text: str) -> str | None:
    """``None`` when ``text`` encodes as UTF-8, else a message naming the first character
    that does not (a lone surrogate) and its position."""
    if text.isascii():  # O(1) in CPython
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"character {text[exc.start]!r} at position {exc.start} is not encodable as UTF-8 (a lone "
                "surrogate, e.g. one half of a JSON \\ud83d\\ude00 pair); expected UTF-8 text")
    return None


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while building many small containers.

    Ballots are trees of dicts and lists (no reference cycles, so nothing leaks). With the
    collector on, CPython 3.11 rescans every live container each time allocations pile up:
    parsing 20k ballot lines took 4.0 s CPU with it and 0.6 s without.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def locate(source: str, line: int | None, prompt_id: Any, unit: str = "line") -> str:
    """Where a record is, for messages: ``source: line 7 (prompt_id 'p6')``."""
    loc = str(source) if line is None else f"{source}: {unit} {line}"
    if prompt_id is not None:
        loc += f" (prompt_id {prompt_id!r})"
    return loc


def _quote_all(ids: Iterable[str], limit: int = 8) -> str:
    ids = list(ids)
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")


def validate_record(
    record: Any,
    source: str = "<ballots>",
    line: int | None = None,
    unit: str = "line",
    distinct_texts: bool = False,
) -> BallotRecord:
    """Check one record against the format above; return it unchanged.

    ``source``, ``line`` and ``unit`` (what ``line`` counts) only shape the error message.
    ``distinct_texts`` also checks that the candidate texts of the record differ after
    :func:`~prefsweep.data.prompts.normalize_text`: every source of :mod:`prefsweep.data.sources`
    checks it (records built by hand, e.g. in tests, may leave it off). The prompt, topic, ids and texts
    are checked to encode as UTF-8 (the rest of a jsonl line:
    :func:`prefsweep.data.sources.jsonl.load_jsonl`). Turn markers are
    :func:`prefsweep.data.marker_screen.screen_turn_markers`'s. Raises :class:`BallotError`.
    """
    pid = record.get("prompt_id") if isinstance(record, dict) else None

    def fail(field: str, msg: str) -> BallotError:
        return BallotError(f"{locate(source, line, pid, unit)}: {field}: {msg}")

    if not isinstance(record, dict):
        raise fail("record", f"expected a JSON object, got {type(record).__name__}")
    for key in RECORD_KEYS:
        if key not in record:
            raise fail(key, f"missing field (a record needs {', '.join(RECORD_KEYS)})")
    extra = [k for k in record if k not in RECORD_KEYS and k not in OPTIONAL_RECORD_KEYS]
    if extra:
        raise fail(extra[0], f"unknown field (allowed: {', '.join(RECORD_KEYS + OPTIONAL_RECORD_KEYS)})")
    for key in ("prompt_id", "topic"):
        if not isinstance(record[key], str) or not record[key]:
            raise fail(key, f"expected a non-empty string, got {record[key]!r}")
    if not isinstance(record["prompt"], str):
        raise fail("prompt", f"expected a string, got {type(record['prompt']).__name__}")
    if not record["prompt"].strip():
        raise fail("prompt", f"expected the question's text, got {record['prompt']!r} (empty or only white space)")
    for key in ("prompt_id", "prompt", "topic"):
        bad = not_utf8(record[key])
        if bad:
            raise fail(key, bad)
    if "meta" in record and not isinstance(record["meta"], dict):
        raise fail("meta", "expected a JSON object")

    cands = record["candidates"]
    if not isinstance(cands, list) or len(cands) < 2:
        n = len(cands) if isinstance(cands, list) else type(cands).__name__
        raise fail("candidates", f"expected a list of at least two candidates, got {n}")
    ids: set[str] = set()
    for i, cand in enumerate(cands):
        f = f"candidates[{i}]"
        if not isinstance(cand, dict):
            raise fail(f, "expected an object {\"id\": str, \"text\": str}")
        for key in CANDIDATE_KEYS:
            if key not in cand:
                raise fail(f"{f}.{key}", "missing field")
        if len(cand) != len(CANDIDATE_KEYS):
            bad = next(k for k in cand if k not in CANDIDATE_KEYS)
            raise fail(f"{f}.{bad}", "unknown field (allowed: id, text)")
        if not isinstance(cand["id"], str) or not cand["id"]:
            raise fail(f"{f}.id", f"expected a non-empty string, got {cand['id']!r}")
        if not isinstance(cand["text"], str):
            raise fail(f"{f}.text", f"expected a string, got {type(cand['text']).__name__}")
        if not cand["text"].strip():
            raise fail(f"{f}.text", f"expected the response's text, got {cand['text']!r} (empty or only white space)")
        if not (cand["text"].isascii() and cand["id"].isascii()):  # O(1): only non-ASCII pays an encode
            for key in CANDIDATE_KEYS:
                bad = not_utf8(cand[key])
                if bad:
                    raise fail(f"{f}.{key}", bad)
        if cand["id"] in ids:
            raise fail(f"{f}.id", f"duplicate candidate id {cand['id']!r}")
        ids.add(cand["id"])
    known = [c["id"] for c in cands]
    if distinct_texts:
        first: dict[str, int] = {}
        for i, cand in enumerate(cands):
            j = first.setdefault(normalize_text(cand["text"]), i)
            if j != i:
                raise fail(
                    f"candidates[{i}].text",
                    f"candidate {cand['id']!r} has the same text as candidate {cands[j]['id']!r} "
                    f"(candidates[{j}]), compared ignoring case and runs of white space; expected "
                    "distinct response texts (a pair of the two would have chosen == rejected)",
                )

    def check_id(field: str, cid: Any) -> None:
        if not isinstance(cid, str) or cid not in ids:
            raise fail(field, f"unknown candidate {cid!r} (expected one of {_quote_all(known)})")

    votes = record["votes"]
    if not isinstance(votes, list) or not votes:
        raise fail("votes", "expected a non-empty list of votes")
    # Fast path for the common vote, a complete strict ranking (K singleton tiers naming every
    # candidate once) with well-typed extras, checked with C-level map()s; anything else (or
    # anything wrong) goes through the detailed checks below, which name the problem.
    k = len(ids)
    lists, ones = [list] * k, [1] * k
    for v, vote in enumerate(votes):
        ranking = vote.get("ranking") if type(vote) is dict else None
        try:
            if (
                type(ranking) is list
                and len(ranking) == k
                and list(map(type, ranking)) == lists
                and list(map(len, ranking)) == ones
                and set(map(_first, ranking)) == ids
                and vote.keys() <= _RANKING_KEYSET
                and type(vote.get("weight", 1.0)) is float
                and MIN_WEIGHT <= vote.get("weight", 1.0) <= MAX_WEIGHT
                and type(vote.get("voter", "")) is str
                and type(vote.get("group", "")) is str
            ):
                continue
        except TypeError:  # an unhashable tier member: the detailed checks report it
            pass
        f = f"votes[{v}]"
        if not isinstance(vote, dict):
            raise fail(f, "expected an object with 'ranking' or 'pair'")
        if ("ranking" in vote) == ("pair" in vote):
            raise fail(f, "expected exactly one of 'ranking' (list of tiers) or 'pair' ([a, b] + winner)")
        allowed = RANKING_VOTE_KEYS if "ranking" in vote else PAIR_VOTE_KEYS
        for key in vote:
            if key not in allowed:
                raise fail(f"{f}.{key}", f"unknown field (allowed: {', '.join(allowed)})")
        weight = vote.get("weight", 1.0)
        if (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not MIN_WEIGHT <= weight <= MAX_WEIGHT  # False for NaN
        ):
            raise fail(
                f"{f}.weight",
                f"expected a finite number from {MIN_WEIGHT:g} to {MAX_WEIGHT:g} (weights are summed "
                f"exactly in units of {WEIGHT_UNIT:g}), got {weight!r}",
            )
        for key in ("voter", "group"):
            if key in vote and not isinstance(vote[key], str):
                raise fail(f"{f}.{key}", f"expected a string, got {vote[key]!r}")
        if "ranking" in vote:
            ranking = vote["ranking"]
            if not isinstance(ranking, list) or not ranking:
                raise fail(f"{f}.ranking", "expected a non-empty list of tiers, e.g. [[\"a\"], [\"b\", \"c\"]]")
            seen: set[str] = set()
            for t, tier in enumerate(ranking):
                ft = f"{f}.ranking[{t}]"
                if not isinstance(tier, list) or not tier:
                    raise fail(ft, f"expected a non-empty list of candidate ids (a tier), got {tier!r}")
                for c, cid in enumerate(tier):
                    check_id(f"{ft}[{c}]", cid)
                    if cid in seen:
                        raise fail(f"{ft}[{c}]", f"candidate {cid!r} listed twice (each at most once)")
                    seen.add(cid)
        else:
            pair = vote["pair"]
            if not isinstance(pair, list) or len(pair) != 2:
                raise fail(f"{f}.pair", f"expected two candidate ids [a, b], got {pair!r}")
            check_id(f"{f}.pair[0]", pair[0])
            check_id(f"{f}.pair[1]", pair[1])
            if pair[0] == pair[1]:
                raise fail(f"{f}.pair", f"expected two different candidates, got {pair!r}")
            if "winner" not in vote:
                raise fail(f"{f}.winner", "missing field (a candidate of the pair, or null for a tie)")
            if vote["winner"] is not None and vote["winner"] not in pair:
                raise fail(f"{f}.winner", f"expected {pair[0]!r}, {pair[1]!r} or null, got {vote['winner']!r}")
    # Every weight is <= MAX_WEIGHT: only prompts with very many votes can reach the bound.
    if len(votes) * MAX_WEIGHT * k > MAX_WEIGHT_MASS:
        total = math.fsum(vote.get("weight", 1.0) for vote in votes)
        if total * k > MAX_WEIGHT_MASS:
            raise fail(
                "votes",
                f"total weight {total:g} over {k} candidates is more than can be summed exactly "
                f"(total x candidates <= {MAX_WEIGHT_MASS:.4g}); expected smaller weights (scale "
                "them down: only their ratios matter)",
            )
    return record  # type: ignore[return-value]


def validate_ballots(
    records: Sequence[Any],
    source: str = "<ballots>",
    lines: Sequence[int] | None = None,
    unit: str = "line",
    distinct_texts: bool = False,
) -> list[BallotRecord]:
    """Validate every record and check that there is at least one and that prompt ids are
    unique; return the records as a list.

    ``lines[i]`` is the line number of ``records[i]`` in ``source`` (default ``i + 1``);
    ``unit`` names what it counts in messages ("line", "record", "post"); ``distinct_texts`` as
    in :func:`validate_record`.
    """
    if not records:
        raise BallotError(
            f"{source}: no ballot records (empty, or only blank lines); expected at least one "
            "prompt, one JSON object per line (see docs/ballots.md)"
        )
    seen: dict[str, int] = {}
    for i, rec in enumerate(records):
        line = lines[i] if lines is not None else i + 1
        validate_record(rec, source, line, unit, distinct_texts)
        pid = rec["prompt_id"]
        if pid in seen:
            raise BallotError(
                f"{locate(source, line, pid, unit)}: prompt_id: duplicate prompt id "
                f"(first at {unit} {seen[pid]}; expected every prompt_id once)"
            )
        seen[pid] = line
    return list(records)


def write_ballots(
    path: str | os.PathLike, records: Sequence[BallotRecord], distinct_texts: bool = False
) -> None:
    """Validate ``records`` and write them atomically, one JSON object per line, in order
    (``distinct_texts`` as in :func:`validate_record`). Nothing is written on an error."""
    validate_ballots(records, str(path), unit="record", distinct_texts=distinct_texts)
    atomic_write_jsonl(path, records)
