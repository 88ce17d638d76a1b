"""Normalized ballots: the record format, its validation, and the source adapters.

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
:func:`prefsweep.prompts.normalize_text` (case and runs of white space ignored: two such texts
give a pair whose chosen response is its rejected one). Every string encodes as UTF-8 (a lone
surrogate such as ``"\\ud800"`` is valid JSON but not text).

``prompt`` is the raw question; a multi-turn prompt holds the earlier turns written with the
turn markers of ``prompt_format`` (:func:`prefsweep.prompts.turn_markers`), for style ``hh``
``"first question\\n\\nAssistant: first answer\\n\\nHuman: next question"``. A candidate is one
assistant turn: a candidate holding a turn marker (``"\\n\\nHuman:"``, ``"\\n\\nAssistant:"`` for
``hh``) would teach the model to write the turns it is cut at, so it is an error, or with
``data.candidate_turn_markers: drop`` it is dropped with the votes that then name nothing
(counted in the job log; :func:`screen_turn_markers`).

``weight`` (default 1.0) is a number in [:data:`MIN_WEIGHT`, :data:`MAX_WEIGHT`] = [1e-6, 1e6].
Weights are decimal numbers: :mod:`prefsweep.arms` rounds each to a whole number of
:data:`WEIGHT_UNIT` = 1e-6 (6 decimal places) and sums those integers, so every support,
margin and score is exact (0.1 + 0.2 ties 0.3; in binary floating point it would be a majority
of 5.55e-17). For the sums to stay exact (below 2**53 units, with room for score differences)
a prompt's total weight times its number of candidates is at most :data:`MAX_WEIGHT_MASS`.

Every problem raises :class:`BallotError` whose message names the file, the record (line number
and ``prompt_id``), the field, and what was expected (a file that is empty, holds no record, or
has bytes that are not UTF-8 is an error too), e.g.::

    ballots.jsonl: line 7 (prompt_id 'p6'): votes[2].pair[1]: unknown candidate 'x'
    (expected one of 'a', 'b', 'c')

Adapters: :func:`load_jsonl` (the format above); the datasets read through
``datasets.load_dataset`` (SHP, MultiPref, HelpSteer2, UltraFeedback, PRISM, HH-RLHF) are
:mod:`prefsweep.sources`.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import operator
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NotRequired, TypedDict

import numpy as np
import pyarrow as pa

from prefsweep.io import DataFileError, atomic_write_jsonl, jsonl_lines, rebuild_hint
from prefsweep.prompts import normalize_text, turn_markers

log = logging.getLogger(__name__)


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

#: Vote weights are whole numbers of this unit (6 decimal places) in :mod:`prefsweep.arms`.
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

#: Stanford Human Preferences columns the adapter reads.
SHP_COLUMNS = (
    "post_id", "domain", "history", "c_root_id_A", "c_root_id_B",
    "human_ref_A", "human_ref_B", "labels",
)


class BallotError(ValueError):
    """A ballot record breaks the format; the message says where and what was expected."""


#: A JSON ``\\u`` escape of a UTF-16 surrogate (``\\ud800``-``\\udfff``): only a line holding one
#: can decode to a string that UTF-8 cannot encode, so only such lines are searched for one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _not_utf8(text: str) -> str | None:
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


def _first_not_utf8(value: Any, field: str) -> tuple[str, str] | None:
    """(field path, message) of the first string in ``value`` (keys included) that UTF-8 cannot
    encode, depth first; ``None`` if there is none."""
    if isinstance(value, str):
        msg = _not_utf8(value)
        return None if msg is None else (field, msg)
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{field}.{key}" if field else str(key)
            bad_key = _not_utf8(key) if isinstance(key, str) else None
            if bad_key:
                return sub, f"key: {bad_key}"
            found = _first_not_utf8(item, sub)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _first_not_utf8(item, f"{field}[{i}]")
            if found:
                return found
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


def _where(source: str, line: int | None, prompt_id: Any, unit: str = "line") -> str:
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
    :func:`~prefsweep.prompts.normalize_text`: :func:`load_source` checks it for every source
    (records built by hand, e.g. in tests, may leave it off). The prompt, topic, ids and texts
    are checked to encode as UTF-8 (the rest of a jsonl line: :func:`load_jsonl`). Turn markers
    are :func:`screen_turn_markers`'s. Raises :class:`BallotError`.
    """
    pid = record.get("prompt_id") if isinstance(record, dict) else None

    def fail(field: str, msg: str) -> BallotError:
        return BallotError(f"{_where(source, line, pid, unit)}: {field}: {msg}")

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
        bad = _not_utf8(record[key])
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
                bad = _not_utf8(cand[key])
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
            "prompt, one JSON object per line (see the README, 'Ballots: the input format')"
        )
    seen: dict[str, int] = {}
    for i, rec in enumerate(records):
        line = lines[i] if lines is not None else i + 1
        validate_record(rec, source, line, unit, distinct_texts)
        pid = rec["prompt_id"]
        if pid in seen:
            raise BallotError(
                f"{_where(source, line, pid, unit)}: prompt_id: duplicate prompt id "
                f"(first at {unit} {seen[pid]}; expected every prompt_id once)"
            )
        seen[pid] = line
    return list(records)


def load_jsonl(
    path: str | os.PathLike, markers: Sequence[str] = (), drop_marked: bool = False
) -> list[BallotRecord]:
    """Read and validate a ballots file (format above); errors name file, line and field.

    Candidates holding one of ``markers`` (the prompt format's turn markers) are an error, or
    dropped when ``drop_marked`` (:func:`screen_turn_markers`). Raises :class:`BallotError`
    (also for bytes that are not UTF-8, a string UTF-8 cannot encode, a missing file and a file
    without records)."""
    records: list[Any] = []
    lines: list[int] = []
    try:
        with gc_paused():
            for lineno, line in jsonl_lines(path):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BallotError(
                        f"{path}: line {lineno}: record: not valid JSON ({exc.msg} at column {exc.colno}); "
                        "expected one JSON object per line"
                    ) from None
                if _SURROGATE_ESCAPE.search(line):
                    found = _first_not_utf8(record, "")
                    if found:
                        pid = record.get("prompt_id") if isinstance(record, dict) else None
                        raise BallotError(f"{_where(path, lineno, pid)}: {found[0] or 'record'}: {found[1]}")
                records.append(record)
                lines.append(lineno)
    except DataFileError as exc:
        raise BallotError(str(exc)) from None
    except FileNotFoundError:
        raise BallotError(f"{path}: no such file; expected a ballots file (data.jsonl.path)") from None
    records = validate_ballots(records, str(path), lines, distinct_texts=True)
    return screen_turn_markers(records, markers, drop_marked, str(path), lines)


def _marker_in(text: str, markers: Sequence[str]) -> str | None:
    """The first of ``markers`` that ``text`` holds, or ``None``."""
    for marker in markers:
        if marker in text:
            return marker
    return None


def _without_candidates(record: BallotRecord, drop: set[str]) -> BallotRecord:
    """``record`` without the candidates ``drop``: they leave every ranking (a tier left empty
    goes, the order of the rest stays), a pair vote naming one goes, and so does a ranking that
    named only them (the rest were tied below it: it says nothing)."""
    votes: list[Vote] = []
    for vote in record["votes"]:
        if "pair" in vote:
            if not drop.intersection(vote["pair"]):
                votes.append(vote)
            continue
        tiers = [kept for tier in vote["ranking"] if (kept := [c for c in tier if c not in drop])]
        if tiers:
            votes.append({**vote, "ranking": tiers})
    cands = [c for c in record["candidates"] if c["id"] not in drop]
    return {**record, "candidates": cands, "votes": votes}  # type: ignore[typeddict-item]


def screen_turn_markers(
    records: Sequence[BallotRecord],
    markers: Sequence[str],
    drop: bool,
    source: str,
    lines: Sequence[int] | None = None,
    unit: str = "line",
) -> list[BallotRecord]:
    """Validated ``records`` whose candidate texts hold none of ``markers`` (the turn markers of
    ``prompt_format``, :func:`prefsweep.prompts.turn_markers`); prompts may hold them.

    Without ``drop`` (``data.candidate_turn_markers: error``) the first such candidate raises
    :class:`BallotError` naming ``source``, the line (``lines[i]``, default ``i + 1``, counted in
    ``unit``), the prompt id, the candidate and the marker. With ``drop`` such candidates are
    removed (:func:`_without_candidates`), a prompt left with fewer than two candidates or no
    vote goes too, and the counts are logged (a warning: the job log shows it); no prompt left is
    an error.
    """
    if not markers:
        return list(records)
    out: list[BallotRecord] = []
    n_cands = n_votes = n_prompts = 0
    for i, rec in enumerate(records):
        marked: set[str] = set()
        for j, cand in enumerate(rec["candidates"]):
            marker = _marker_in(cand["text"], markers)
            if marker is None:
                continue
            if not drop:
                line = lines[i] if lines is not None else i + 1
                raise BallotError(
                    f"{_where(source, line, rec['prompt_id'], unit)}: candidates[{j}].text: candidate "
                    f"{cand['id']!r} contains the turn marker {marker!r} of prompt_format; expected one "
                    "assistant response (earlier turns belong in the prompt; a candidate with a turn "
                    "marker teaches the model to write the turns it is cut at): remove it, or set "
                    "data.candidate_turn_markers: drop to drop such candidates"
                )
            marked.add(cand["id"])
        if not marked:
            out.append(rec)
            continue
        kept = _without_candidates(rec, marked)
        n_cands += len(marked)
        n_votes += len(rec["votes"]) - len(kept["votes"])
        if len(kept["candidates"]) < 2 or not kept["votes"]:
            n_prompts += 1
            continue
        out.append(kept)
    if n_cands:
        log.warning(
            "%s: dropped %d candidates containing a turn marker of prompt_format (%s), %d votes left "
            "comparing nothing (a pair with one of them, a ranking of only them), and %d prompts left "
            "with fewer than two candidates or no vote (data.candidate_turn_markers: drop)",
            source, n_cands, ", ".join(map(repr, markers)), n_votes, n_prompts,
        )
    if not out:
        raise BallotError(
            f"{source}: no prompt left after dropping the candidates that contain a turn marker "
            f"({', '.join(map(repr, markers))}); expected responses without them"
        )
    return out


#: Arrow schema of the ballots format (``meta`` is not read).
BALLOTS_SCHEMA = pa.schema([
    ("prompt_id", pa.string()),
    ("prompt", pa.string()),
    ("topic", pa.string()),
    ("candidates", pa.list_(pa.struct([("id", pa.string()), ("text", pa.string())]))),
    ("votes", pa.list_(pa.struct([
        ("ranking", pa.list_(pa.list_(pa.string()))),
        ("pair", pa.list_(pa.string())),
        ("winner", pa.string()),
        ("weight", pa.float64()),
        ("voter", pa.string()),
        ("group", pa.string()),
    ]))),
])
#: The part of :data:`BALLOTS_SCHEMA` that supports and voting rules read (:mod:`prefsweep.arms`):
#: a table of it is cheaper to build from records when only statistics are wanted.
VOTES_SCHEMA = pa.schema([
    BALLOTS_SCHEMA.field("prompt_id"),
    ("candidates", pa.list_(pa.struct([("id", pa.string())]))),
    ("votes", pa.list_(pa.struct([
        BALLOTS_SCHEMA.field("votes").type.value_type.field(name) for name in ("ranking", "pair", "winner", "weight")
    ]))),
])


def read_ballots_table(path: str | os.PathLike, columns: Sequence[str] | None = None) -> pa.Table:
    """The workflow's own ``data/ballots.jsonl`` as an Arrow table (:data:`BALLOTS_SCHEMA`, or
    just ``columns``), parsed by Arrow's JSON reader: no Python object per vote.

    That file holds only validated records (``scripts/ballots.py`` writes what
    :func:`load_source` validated; :func:`write_ballots` validates), so it is not validated
    again here (a file from elsewhere: use :func:`load_jsonl`). A missing vote ``weight`` reads
    as null and counts as 1.0 (:mod:`prefsweep.arms`). Reading only
    ``["prompt_id", "topic", "prompt"]`` skips the votes' cost. A missing, damaged or empty file
    raises :class:`BallotError` naming it and how to rebuild it.
    """
    import pyarrow.json as pj

    schema = BALLOTS_SCHEMA if columns is None else pa.schema([BALLOTS_SCHEMA.field(c) for c in columns])
    parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    block = 1 << 24
    while True:
        try:
            table = pj.read_json(path, read_options=pj.ReadOptions(block_size=block), parse_options=parse)
            break
        except FileNotFoundError:
            raise BallotError(f"{path}: no such file; build it with `snakemake {path}`") from None
        except pa.ArrowInvalid as exc:
            # A block must hold the longest line: grow it for files with huge records.
            if "straddl" in str(exc) and block < os.path.getsize(path) + 1:
                block *= 4
                continue
            raise BallotError(
                f"{path}: not a ballots file in the validated format ({exc}); {rebuild_hint(path)}"
            ) from None
    if table.num_rows == 0:
        raise BallotError(f"{path}: no ballot records (empty file); {rebuild_hint(path)}")
    return table.combine_chunks()


def _one_array(table: pa.Table, name: str) -> pa.Array:
    """Column ``name`` as one array (no copy when it has one chunk; ``combine_chunks`` copies)."""
    col = table.column(name)
    return col.chunk(0) if col.num_chunks == 1 else pa.concat_arrays(col.chunks)


def weight_units(weight: float | None) -> int:
    """One vote weight (None: 1.0) as a whole number of :data:`WEIGHT_UNIT` (rounded to nearest)."""
    return int(np.rint((1.0 if weight is None else float(weight)) * WEIGHT_SCALE))


def rounded_weights(table: pa.Table) -> int:
    """Number of vote weights of a ballots table with more than :data:`WEIGHT_DECIMALS` decimal
    places (not a float nearest to a multiple of :data:`WEIGHT_UNIT`), which are rounded."""
    import pyarrow.compute as pc

    weight = pc.struct_field(pc.list_flatten(_one_array(table, "votes")), "weight")
    w = pc.drop_null(weight).to_numpy()
    return int(np.count_nonzero(np.rint(w * WEIGHT_SCALE) / WEIGHT_SCALE != w))


def weight_units_of(table: pa.Table, source: str | os.PathLike | None = None) -> np.ndarray:
    """The vote weights of a ballots table, flattened in vote order, as whole numbers of
    :data:`WEIGHT_UNIT` (float64 holding integers; a missing weight is 1.0).

    The table-side check of the weight rules of the format (a validated file always passes):
    a weight outside [:data:`MIN_WEIGHT`, :data:`MAX_WEIGHT`] (NaN, 1e308, 0, negative) or a
    prompt whose total weight x candidates exceeds :data:`MAX_WEIGHT_MASS` raises
    :class:`BallotError` naming ``source`` (when given), the prompt and the vote.
    """
    import pyarrow.compute as pc

    votes = _one_array(table, "votes")
    vote_rec = pc.list_parent_indices(votes).to_numpy()
    vote_off = votes.offsets.to_numpy() - votes.offsets[0].as_py()
    weight = pc.fill_null(pc.struct_field(pc.list_flatten(votes), "weight"), 1.0).to_numpy()
    where = "" if source is None else f"{source}: "

    def record(r: int) -> str:
        return f"{where}prompt_id {table.column('prompt_id')[r].as_py()!r}"

    ok = (weight >= MIN_WEIGHT) & (weight <= MAX_WEIGHT)  # False for NaN
    if not ok.all():
        bad = int(np.argmin(ok))
        r = int(vote_rec[bad])
        raise BallotError(
            f"{record(r)}: votes[{bad - int(vote_off[r])}].weight: expected a finite number from "
            f"{MIN_WEIGHT:g} to {MAX_WEIGHT:g}, got {float(weight[bad])!r}"
        )
    n_cands = pc.list_value_length(_one_array(table, "candidates")).to_numpy(zero_copy_only=False)
    total = np.bincount(vote_rec, weights=weight, minlength=table.num_rows)
    over = np.nonzero(total * n_cands > MAX_WEIGHT_MASS)[0]
    if len(over):
        r = int(over[0])
        raise BallotError(
            f"{record(r)}: votes: total weight {total[r]:g} over {n_cands[r]} candidates is more than "
            f"can be summed exactly (total x candidates <= {MAX_WEIGHT_MASS:.4g}); expected smaller weights"
        )
    return np.rint(weight * WEIGHT_SCALE)


def write_ballots(
    path: str | os.PathLike, records: Sequence[BallotRecord], distinct_texts: bool = False
) -> None:
    """Validate ``records`` and write them atomically, one JSON object per line, in order
    (``distinct_texts`` as in :func:`validate_record`). Nothing is written on an error."""
    validate_ballots(records, str(path), unit="record", distinct_texts=distinct_texts)
    atomic_write_jsonl(path, records)


def load_shp(
    path: str,
    split: str,
    domains: Sequence[str] | None,
    max_posts: int | None,
    cache_dir: str | None = None,
    min_score_ratio: float | None = None,
    max_pairs_per_post: int | None = None,
) -> list[BallotRecord]:
    """Stanford Human Preferences (SHP) as ballots, one record per post: see
    :func:`prefsweep.sources.load_shp` (this is its positional form)."""
    from prefsweep.sources import load_shp as load

    spec = {"path": path, "split": split, "domains": domains, "max_posts": max_posts,
            "min_score_ratio": min_score_ratio, "max_pairs_per_post": max_pairs_per_post}
    return load(spec, cache_dir)


def turn_marker_policy(config: dict) -> tuple[tuple[str, ...], bool]:
    """(turn markers of ``prompt_format``, whether ``data.candidate_turn_markers`` is ``drop``)
    of a config slice; a key the slice lacks (a config built by hand) takes the schema's default.
    An unknown mode raises ``ValueError`` naming the key."""
    from prefsweep.config import schema_node

    fmt = config.get("prompt_format") or {"style": schema_node("prompt_format.style")["default"]}
    node = schema_node("data.candidate_turn_markers")
    mode = config["data"].get("candidate_turn_markers", node["default"])
    if mode not in node["enum"]:
        raise ValueError(f"data.candidate_turn_markers: {mode!r} (expected one of {', '.join(node['enum'])})")
    return turn_markers(fmt), mode == "drop"


def load_source(config: dict, source_file: str | os.PathLike | None) -> list[BallotRecord]:
    """Ballots of the source named by ``config["data"]["source"]``, validated.

    ``synthetic``: :class:`prefsweep.synthetic.Electorate` with ``data.synthetic`` and
    ``data.seed``; ``jsonl``: the file ``source_file`` (the workflow passes ``data.jsonl.path``
    as a declared input, so an edit to the file reruns the job); a dataset source (``shp``,
    ``multipref``, ``helpsteer2``, ``ultrafeedback``, ``prism``, ``hh``): ``data.<source>``
    through ``datasets.load_dataset`` (:mod:`prefsweep.sources`).
    ``source_file`` is required for ``jsonl`` and refused for the other sources. Candidate
    texts of a prompt are distinct (:func:`validate_record`) and hold no turn marker of
    ``prompt_format`` (:func:`screen_turn_markers`, :func:`turn_marker_policy`).
    Raises :class:`BallotError` (or ``ValueError`` naming the config key).
    """
    data = config["data"]
    source = data["source"]
    markers, drop = turn_marker_policy(config)
    if source_file is not None and source != "jsonl":
        raise ValueError(
            f"--source-file {source_file}: data.source is {source!r}; a ballots file is read only "
            "for data.source 'jsonl'"
        )
    if source == "synthetic":
        from prefsweep.synthetic import Electorate

        syn = data["synthetic"]
        electorate = Electorate.from_config(config)
        records = electorate.make_ballots(syn["n_prompts"], syn["n_candidates"], data["seed"])
        where = "synthetic ballots (data.synthetic)"
        records = validate_ballots(records, where, unit="record", distinct_texts=True)
        return screen_turn_markers(records, markers, drop, where, unit="record")
    if source == "jsonl":
        if source_file is None:
            raise ValueError(
                "--source-file: required for data.source 'jsonl' (the ballots file, data.jsonl.path)"
            )
        return load_jsonl(source_file, markers, drop)
    from prefsweep.sources import DATASET_SOURCES, load_dataset_source

    if source in DATASET_SOURCES:
        spec = data[source]
        records = load_dataset_source(source, spec)
        where = f"{spec['path']} (split {spec['split']})"
        return screen_turn_markers(records, markers, drop, where, unit="prompt")
    raise ValueError(
        f"data.source: unknown source {source!r} (expected synthetic, jsonl, {', '.join(DATASET_SOURCES)})"
    )
