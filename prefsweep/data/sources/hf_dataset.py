"""What the sources read through ``datasets.load_dataset`` share.

Every such source takes its config section ``data.<source>`` and calls
``datasets.load_dataset(path, name, split=split, data_dir=..., cache_dir=...)`` (:func:`load_hf`):
``path`` is a hub name or a local directory laid out like the hub repository (the tests build
such directories in each dataset's own schema, tests/fixtures/datasets.py). Field names, splits
and value ranges are those of the dataset cards, cited in each source's module.

Candidates with the same text within a prompt (compared by
:func:`prefsweep.data.prompts.normalize_text`: case and runs of white space ignored) are one
candidate (its first id, text and, for rated sources, its first rating); a pairwise vote between
two equal texts says nothing and is dropped; a prompt left with fewer than two candidates is
dropped. Both are counted and logged (:class:`Builder`).

A record that breaks the dataset's schema raises :class:`~prefsweep.data.ballots.BallotError`
naming the dataset, the split, the row (1-based, in dataset order), its id and the field
(:func:`row_error`), e.g.::

    allenai/multipref (split train): row 7 (comparison_id 'c7'): expert_worker_annotations[1].overall_pref:
    expected one of 'A-is-clearly-better', ... , got 'A-wins'
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from prefsweep.data.ballots import BallotError, BallotRecord, validate_ballots
from prefsweep.data.prompts import normalize_text
from prefsweep.data.sources.registry import Source, SourceBallots

log = logging.getLogger(__name__)


def load_hf(spec: Mapping[str, Any], source: str, name: str | None = None, cache_dir: str | None = None):
    """``datasets.load_dataset`` of ``data.<source>`` (``path``, ``split``, optional ``data_dir``);
    a path that does not load raises :class:`BallotError` naming the config key.

    A local directory is read into memory through a fresh temporary cache directory
    (``cache_dir`` is for hub datasets): datasets 5.2 keys the cache of a local copy by its
    directory name and layout, not its content, so after an edit it returned the old rows (an
    edited score came back unchanged; another copy of the same name failed its split-size
    check). The workflow reruns this job exactly when the copy changes (its fingerprint)."""
    import os
    import tempfile

    import datasets

    kwargs = {"split": spec["split"]}
    if spec.get("data_dir"):
        kwargs["data_dir"] = spec["data_dir"]
    local = os.path.exists(spec["path"])
    with tempfile.TemporaryDirectory(prefix="prefsweep-hf-") as tmp:
        if local:
            kwargs.update(cache_dir=tmp, keep_in_memory=True)
        else:
            kwargs["cache_dir"] = cache_dir
        return _load_dataset(datasets, spec, source, name, kwargs)


def _load_dataset(datasets, spec, source, name, kwargs):
    from prefsweep import hub  # a hub id: the cache without network, else a bounded wait for the hub

    try:
        return hub.load_dataset(spec["path"], name, **kwargs)
    except (FileNotFoundError, ValueError, ConnectionError, datasets.exceptions.DatasetNotFoundError) as exc:
        config = f" (config {name!r})" if name else ""
        raise BallotError(
            f"data.{source}.path: {spec['path']}{config} split {spec['split']!r}: cannot be loaded by "
            f"datasets.load_dataset ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "expected a hub name or a local directory in the dataset's layout"
        ) from None


def require_columns(ds, columns: Iterable[str], where: str, what: str) -> None:
    """A :class:`BallotError` naming the missing ones unless the dataset has every column."""
    columns = list(columns)
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise BallotError(f"{where}: columns {missing} missing; expected the {what} schema ({', '.join(columns)}, "
                          f"...); the dataset has {', '.join(ds.column_names)}")


def dataset_rows(ds, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based row number, row dict of ``columns``) in dataset order, read in batches."""
    n = 0
    for batch in ds.select_columns(list(columns)).iter(batch_size=1024):
        for values in zip(*(batch[c] for c in columns)):
            n += 1
            yield n, dict(zip(columns, values))


def text_id(prefix: str, text: str) -> str:
    """A stable prompt id from a prompt's text (sources without ids): ``prefix-<12 hex of sha1>``."""
    return f"{prefix}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]}"


class Builder:
    """Collects prompts, their candidates (merged by text) and votes, in order of first appearance."""

    def __init__(self, where: str, max_prompts: int | None) -> None:
        self.where = where
        self.max_prompts = max_prompts
        self.prompts: dict[str, dict[str, Any]] = {}
        self.dropped_votes = 0

    def prompt(self, pid: str, text: str, topic: str) -> dict[str, Any] | None:
        """The prompt ``pid`` (created if new); None once ``max_prompts`` prompts exist."""
        rec = self.prompts.get(pid)
        if rec is None:
            if self.max_prompts is not None and len(self.prompts) >= self.max_prompts:
                return None
            rec = self.prompts[pid] = {"prompt_id": pid, "prompt": text, "topic": topic or "none",
                                       "cands": {}, "votes": []}
        return rec

    @staticmethod
    def candidate(rec: dict[str, Any], text: str) -> str:
        """Id of the candidate with this text up to case and white space (``r1``, ``r2``, ... in
        order of appearance; ``rec["cands"]`` maps the normalized text to (id, first text))."""
        cands = rec["cands"]
        return cands.setdefault(normalize_text(text), (f"r{len(cands) + 1}", text))[0]

    def pair(self, rec: dict[str, Any], a: str, b: str, winner: str | None, **who: str) -> None:
        """A pairwise vote of weight 1 (``winner`` None: a tie); a pair of one candidate is dropped."""
        if a == b:  # two equal texts: the vote compares a response with itself
            self.dropped_votes += 1
            return
        rec["votes"].append({"pair": [a, b], "winner": winner, "weight": 1.0, **who})

    def records(self, source: str) -> list[BallotRecord]:
        """The validated ballots of the prompts with two candidates and a vote (the rest counted
        and logged); none left is a :class:`BallotError` naming the ``source`` schema."""
        out, dropped = [], 0
        for rec in self.prompts.values():
            if len(rec["cands"]) < 2 or not rec["votes"]:
                dropped += 1
                continue
            out.append({"prompt_id": rec["prompt_id"], "prompt": rec["prompt"], "topic": rec["topic"],
                        "candidates": [{"id": cid, "text": t} for cid, t in rec["cands"].values()],
                        "votes": rec["votes"]})
        if dropped or self.dropped_votes:
            log.warning("%s: dropped %d prompts with fewer than two distinct responses or no vote, and %d "
                        "votes between two equal texts", self.where, dropped, self.dropped_votes)
        if not out:
            raise BallotError(f"{self.where}: no prompt with two distinct rated responses; expected the {source} schema")
        return validate_ballots(out, self.where, unit="prompt", distinct_texts=True)


def row_error(where: str, row: int, key: str, value: Any, field: str, msg: str) -> BallotError:
    """``where: row 7 (key 'value'): field: msg`` as a :class:`BallotError`."""
    return BallotError(f"{where}: row {row} ({key} {value!r}): {field}: {msg}")


def split_where(spec: Mapping[str, Any], name: str | None = None) -> str:
    """How messages name a dataset section: ``path [config] (split s)``."""
    config = f" {name}" if name else ""
    return f"{spec['path']}{config} (split {spec['split']})"


def rating_tiers(ratings: Mapping[str, float]) -> list[list[str]]:
    """A ranking (tiers, best first) of candidate ids by rating; equal ratings share a tier."""
    by: dict[float, list[str]] = {}
    for cid, r in ratings.items():
        by.setdefault(r, []).append(cid)
    return [by[r] for r in sorted(by, reverse=True)]


def parse_rating(value: Any, lo: int, hi: int, integer: bool, where: str, row: int, key: str, kv: Any,
            field: str, na: Sequence[str] = ()) -> float | None:
    """A rating in [lo, hi] (None for a value in ``na``); anything else names the row and field."""
    if isinstance(value, str) and value in na:
        return None
    v = value
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            v = None
    ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi
          and (not integer or float(v).is_integer()))
    if not ok:
        kind = "an integer" if integer else "a number"
        extra = f" or {', '.join(map(repr, na))}" if na else ""
        raise row_error(where, row, key, kv, field, f"expected {kind} from {lo} to {hi}{extra}, got {value!r}")
    return float(v)


def dataset_source(
    name: str,
    read: Callable[[Mapping[str, Any]], list[BallotRecord]],
    card: str,
    citation: str,
    train_prompts: Callable[[Mapping[str, Any]], int | None] | None = None,
) -> Source:
    """The :class:`~prefsweep.data.sources.registry.Source` of a dataset read by ``read(spec)``
    from its section ``data.<name>`` (``path``, ``split``, ...): ``path`` may be a local copy
    (fingerprinted by the workflow), messages name ``path (split s)``, and the training prompts
    are bounded by ``train_prompts(data)`` (default: ``data.<name>.max_prompts``)."""

    def load(config: dict, source_file: object = None) -> SourceBallots:
        spec = config["data"][name]
        return SourceBallots(read(spec), split_where(spec), "prompt")

    def max_prompts(data: Mapping[str, Any]) -> int | None:
        return data[name].get("max_prompts")

    return Source(name=name, card=card, citation=citation, load=load, local_copy="path",
                  train_prompts=train_prompts or max_prompts)
