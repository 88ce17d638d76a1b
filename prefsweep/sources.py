"""Real preference datasets as normalized ballots (:mod:`prefsweep.ballots`), through
``datasets.load_dataset``.

Every adapter takes the config section ``data.<source>`` and calls
``datasets.load_dataset(path, name, split=split, data_dir=..., cache_dir=...)``: ``path`` is a
hub name or a local directory laid out like the hub repository (the tests build such
directories in each dataset's own schema). Field names, splits and value ranges are those of the
dataset cards, cited at each adapter. What a voter and a group are in each (the README's table
"Ballot sources"):

============== ============================== ===================== ===========================
source         one prompt                     one voter             group
============== ============================== ===================== ===========================
multipref      a ``prompt_id`` (all its       an annotator          ``normal`` or ``expert``
               comparisons)                   (``evaluator``)
helpsteer2     a ``prompt`` text (its rated   an attribute          the attribute
               responses)                     (helpfulness, ...)
ultrafeedback  an ``instruction`` (its 4      an aspect             the aspect
               completions)                   (honesty, ...)
prism          a conversation's opening turn  the participant       a survey field of the
               (the models' rated answers)    (``user_id``)         participant (``group_by``)
hh             a dialogue prefix (its         none (one pairwise    none
               chosen/rejected pairs)         vote per row)
shp            a post (its comments)          none (one pairwise    none
                                              vote per row)
============== ============================== ===================== ===========================

Candidates with the same text within a prompt (compared by :func:`prefsweep.prompts.normalize_text`:
case and runs of white space ignored) are one candidate (its first id, text and, for rated
sources, its first rating); a pairwise vote between two equal texts says nothing and is dropped;
a prompt left with fewer than two candidates is dropped. Both are counted and logged. Prompts may
hold turn markers (HH's dialogue prefixes do); candidates may not (:func:`prefsweep.ballots.load_source`).

A record that breaks the dataset's schema raises :class:`~prefsweep.ballots.BallotError` naming
the dataset, the split, the row (1-based, in dataset order), its id and the field, e.g.::

    allenai/multipref (split train): row 7 (comparison_id 'c7'): expert_worker_annotations[1].overall_pref:
    expected one of 'A-is-clearly-better', ... , got 'A-wins'
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from prefsweep.ballots import SHP_COLUMNS, BallotError, BallotRecord, gc_paused, validate_ballots
from prefsweep.prompts import normalize_text

log = logging.getLogger(__name__)

#: Sources read through ``datasets.load_dataset`` (``data.source``; ``shp`` included).
DATASET_SOURCES = ("multipref", "helpsteer2", "ultrafeedback", "prism", "hh", "shp")

#: MultiPref annotation values (allenai/multipref card, "Dataset Structure": each annotation of
#: ``normal_worker_annotations`` / ``expert_worker_annotations`` has ``evaluator`` and
#: ``overall_pref``, ``helpful_pref``, ``truthful_pref``, ``harmless_pref`` on this scale).
MULTIPREF_PREFS = {
    "A-is-clearly-better": "a", "A-is-slightly-better": "a", "Tie": None,
    "B-is-slightly-better": "b", "B-is-clearly-better": "b",
}
MULTIPREF_COLUMNS = ("comparison_id", "prompt_id", "text", "completion_a", "completion_b", "category")
MULTIPREF_ANNOTATORS = {"normal": "normal_worker_annotations", "expert": "expert_worker_annotations"}
#: HelpSteer2 (nvidia/HelpSteer2 card: columns prompt, response and five attributes, each an
#: integer rating 0-4; splits train and validation).
HELPSTEER2_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
HELPSTEER2_RANGE = (0, 4)
#: UltraFeedback (openbmb/UltraFeedback card: columns source, instruction, completions; each
#: completion has response, model and annotations[aspect]["Rating"], "1".."5" or "N/A").
ULTRAFEEDBACK_ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")
ULTRAFEEDBACK_RANGE = (1, 5)
#: PRISM (HannahRoseKirk/prism-alignment card: configs ``conversations`` and ``survey``, split
#: train; ``conversation_history`` turns have turn, role ("user"/"model"), content, score; the
#: participant rates the opening turn's model responses from 1 (Terrible) to 100 (Perfect)).
PRISM_RANGE = (1, 100)
#: Anthropic HH-RLHF (Anthropic/hh-rlhf card: columns chosen and rejected, each a whole
#: dialogue "\n\nHuman: ...\n\nAssistant: ..."; splits train and test).
HH_HUMAN, HH_ASSISTANT = "\n\nHuman: ", "\n\nAssistant:"


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


def _require(ds, columns: Iterable[str], where: str, what: str) -> None:
    columns = list(columns)
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise BallotError(f"{where}: columns {missing} missing; expected the {what} schema ({', '.join(columns)}, "
                          f"...); the dataset has {', '.join(ds.column_names)}")


def _rows(ds, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based row number, row dict of ``columns``) in dataset order, read in batches."""
    n = 0
    for batch in ds.select_columns(list(columns)).iter(batch_size=1024):
        for values in zip(*(batch[c] for c in columns)):
            n += 1
            yield n, dict(zip(columns, values))


def text_id(prefix: str, text: str) -> str:
    """A stable prompt id from a prompt's text (sources without ids): ``prefix-<12 hex of sha1>``."""
    return f"{prefix}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]}"


class _Builder:
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
        if a == b:  # two equal texts: the vote compares a response with itself
            self.dropped_votes += 1
            return
        rec["votes"].append({"pair": [a, b], "winner": winner, "weight": 1.0, **who})

    def records(self, source: str) -> list[BallotRecord]:
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


def _fail(where: str, row: int, key: str, value: Any, field: str, msg: str) -> BallotError:
    return BallotError(f"{where}: row {row} ({key} {value!r}): {field}: {msg}")


def _where(spec: Mapping[str, Any], name: str | None = None) -> str:
    config = f" {name}" if name else ""
    return f"{spec['path']}{config} (split {spec['split']})"


def _tiers(ratings: Mapping[str, float]) -> list[list[str]]:
    """A ranking (tiers, best first) of candidate ids by rating; equal ratings share a tier."""
    by: dict[float, list[str]] = {}
    for cid, r in ratings.items():
        by.setdefault(r, []).append(cid)
    return [by[r] for r in sorted(by, reverse=True)]


def _rating(value: Any, lo: int, hi: int, integer: bool, where: str, row: int, key: str, kv: Any,
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
        raise _fail(where, row, key, kv, field, f"expected {kind} from {lo} to {hi}{extra}, got {value!r}")
    return float(v)


# -- MultiPref --------------------------------------------------------------------------------


def load_multipref(spec: Mapping[str, Any], cache_dir: str | None = None) -> list[BallotRecord]:
    """allenai/multipref (config ``default``, split ``train``): one prompt per ``prompt_id``
    (``prompt`` = ``text``, ``topic`` = ``category``), its comparisons' completions as
    candidates, one pairwise vote per annotation of ``spec["annotators"]`` on the
    ``<spec["preference"]>_pref`` scale (A-/B-is-clearly/slightly-better: that response wins,
    weight 1 either way; Tie: a tie), voter ``<kind>:<evaluator>``, group = the annotator kind
    (``normal`` crowdworkers or domain ``expert``\\ s)."""
    ds = load_hf(spec, "multipref", spec.get("name"), cache_dir)
    where = _where(spec, spec.get("name"))
    kinds = list(spec["annotators"])
    columns = MULTIPREF_COLUMNS + tuple(MULTIPREF_ANNOTATORS[k] for k in kinds)
    _require(ds, columns, where, "MultiPref")
    field = f"{spec['preference']}_pref"
    b = _Builder(where, spec["max_prompts"])
    with gc_paused():
        for row, r in _rows(ds, columns):
            cid = r["comparison_id"]
            for key in ("prompt_id", "text", "completion_a", "completion_b"):
                if not isinstance(r[key], str) or (key != "text" and not r[key]):
                    raise _fail(where, row, "comparison_id", cid, key, f"expected a non-empty string, got {r[key]!r}")
            rec = b.prompt(str(r["prompt_id"]), r["text"], r["category"] or "none")
            if rec is None:
                continue
            a, bb = b.candidate(rec, r["completion_a"]), b.candidate(rec, r["completion_b"])
            for kind in kinds:
                col = MULTIPREF_ANNOTATORS[kind]
                anns = r[col]
                if not isinstance(anns, list):
                    raise _fail(where, row, "comparison_id", cid, col, f"expected a list of annotations, got {anns!r}")
                for i, ann in enumerate(anns):
                    f = f"{col}[{i}]"
                    if not isinstance(ann, dict) or not isinstance(ann.get("evaluator"), str) or not ann["evaluator"]:
                        raise _fail(where, row, "comparison_id", cid, f"{f}.evaluator",
                                    "expected an annotation with a non-empty evaluator id")
                    pref = ann.get(field)
                    if pref not in MULTIPREF_PREFS:
                        raise _fail(where, row, "comparison_id", cid, f"{f}.{field}",
                                    f"expected one of {', '.join(map(repr, MULTIPREF_PREFS))}, got {pref!r}")
                    side = MULTIPREF_PREFS[pref]
                    winner = None if side is None else (a if side == "a" else bb)
                    b.pair(rec, a, bb, winner, voter=f"{kind}:{ann['evaluator']}", group=kind)
    return b.records("MultiPref")


# -- HelpSteer2 -------------------------------------------------------------------------------


def load_helpsteer2(spec: Mapping[str, Any], cache_dir: str | None = None) -> list[BallotRecord]:
    """nvidia/HelpSteer2 (splits ``train``, ``validation``): rows are (prompt, response, five
    0-4 ratings); the rows of one ``prompt`` text are one prompt (id from its text, topic
    ``helpsteer2``: the data have none), its responses the candidates. Each attribute of
    ``spec["attributes"]`` is one voter (and its own group) whose ranking orders the responses
    by that rating (equal ratings tied). The card's rows keep no annotator ids: per-attribute
    voters are the finest individual preferences the data hold."""
    ds = load_hf(spec, "helpsteer2", None, cache_dir)
    where = _where(spec)
    attrs = list(spec["attributes"])
    _require(ds, ("prompt", "response", *attrs), where, "HelpSteer2")
    b = _Builder(where, spec["max_prompts"])
    ratings: dict[str, dict[str, dict[str, float]]] = {}
    lo, hi = HELPSTEER2_RANGE
    with gc_paused():
        for row, r in _rows(ds, ("prompt", "response", *attrs)):
            for key in ("prompt", "response"):
                if not isinstance(r[key], str) or not r[key].strip():
                    raise _fail(where, row, "prompt", str(r["prompt"])[:40], key, f"expected a non-empty string, got {r[key]!r}")
            pid = text_id("hs2", r["prompt"])
            rec = b.prompt(pid, r["prompt"], "helpsteer2")
            if rec is None:
                continue
            n_before = len(rec["cands"])
            cid = b.candidate(rec, r["response"])
            if len(rec["cands"]) == n_before:
                b.dropped_votes += 1  # the same response text again: its first ratings stand
                continue
            per = ratings.setdefault(pid, {})
            for attr in attrs:
                per.setdefault(attr, {})[cid] = _rating(r[attr], lo, hi, True, where, row, "prompt_id", pid, attr)
    for pid, per in ratings.items():
        for attr in attrs:
            b.prompts[pid]["votes"].append({"ranking": _tiers(per[attr]), "weight": 1.0, "voter": attr, "group": attr})
    return b.records("HelpSteer2")


# -- UltraFeedback ----------------------------------------------------------------------------


def load_ultrafeedback(spec: Mapping[str, Any], cache_dir: str | None = None) -> list[BallotRecord]:
    """openbmb/UltraFeedback (split ``train``): one prompt per ``instruction`` (id from its text,
    topic = ``source``; a repeated instruction keeps its first row), its ``completions`` the
    candidates. Each aspect of ``spec["aspects"]`` is one voter (and group) ranking the
    completions by ``annotations[aspect]["Rating"]`` (1-5). Completions rated "N/A" on an aspect
    are left out of that aspect's vote: it becomes pairwise votes among the rated ones (a
    ranking would put the unrated ones last)."""
    ds = load_hf(spec, "ultrafeedback", None, cache_dir)
    where = _where(spec)
    _require(ds, ("source", "instruction", "completions"), where, "UltraFeedback")
    aspects = list(spec["aspects"])
    lo, hi = ULTRAFEEDBACK_RANGE
    b = _Builder(where, spec["max_prompts"])
    repeated = 0
    with gc_paused():
        for row, r in _rows(ds, ("source", "instruction", "completions")):
            text = r["instruction"]
            if not isinstance(text, str) or not text.strip():
                raise _fail(where, row, "instruction", text, "instruction", "expected a non-empty string")
            pid = text_id("uf", text)
            if pid in b.prompts:
                repeated += 1
                continue
            rec = b.prompt(pid, text, r["source"] or "none")
            if rec is None:
                continue
            comps = r["completions"]
            if not isinstance(comps, list):
                raise _fail(where, row, "prompt_id", pid, "completions", f"expected a list, got {type(comps).__name__}")
            per: dict[str, dict[str, float]] = {a: {} for a in aspects}
            for i, c in enumerate(comps):
                f = f"completions[{i}]"
                resp = c.get("response") if isinstance(c, dict) else None
                if not isinstance(resp, str) or not resp.strip():
                    raise _fail(where, row, "prompt_id", pid, f"{f}.response", f"expected a non-empty string, got {resp!r}")
                n_before = len(rec["cands"])
                cid = b.candidate(rec, resp)
                if len(rec["cands"]) == n_before:
                    b.dropped_votes += 1
                    continue
                ann = c.get("annotations")
                for a in aspects:
                    rating = ann.get(a, {}).get("Rating") if isinstance(ann, dict) and isinstance(ann.get(a), dict) else None
                    v = _rating(rating, lo, hi, True, where, row, "prompt_id", pid, f"{f}.annotations.{a}.Rating", na=("N/A",))
                    if v is not None:
                        per[a][cid] = v
            for a in aspects:
                rated = per[a]
                if len(rated) == len(rec["cands"]):
                    rec["votes"].append({"ranking": _tiers(rated), "weight": 1.0, "voter": a, "group": a})
                    continue
                ids = list(rated)
                for x in range(len(ids)):
                    for y in range(x + 1, len(ids)):
                        i, j = ids[x], ids[y]
                        w = None if rated[i] == rated[j] else (i if rated[i] > rated[j] else j)
                        b.pair(rec, i, j, w, voter=a, group=a)
    if repeated:
        log.warning("%s: %d rows repeat an earlier instruction and were skipped", where, repeated)
    return b.records("UltraFeedback")


# -- PRISM ------------------------------------------------------------------------------------


def _dotted(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def load_prism(spec: Mapping[str, Any], cache_dir: str | None = None) -> list[BallotRecord]:
    """HannahRoseKirk/prism-alignment: config ``conversations`` (split ``train``) with the
    participants of config ``survey``. One prompt per conversation (``prompt_id`` =
    ``conversation_id``, topic = ``conversation_type``): the opening turn's user message
    (turn 0) and the models' responses to it, ranked by the participant's ``score`` (1-100,
    equal scores tied) as one vote, voter = ``user_id``, group = the participant's survey
    field ``spec["group_by"]`` (a dotted path into nested fields; a missing answer is the
    group ``unknown``; null: no groups)."""
    conv = load_hf(spec, "prism", "conversations", cache_dir)
    where = _where(spec, "conversations")
    _require(conv, ("conversation_id", "user_id", "conversation_type", "conversation_history"), where, "PRISM conversations")
    group_by = spec.get("group_by")
    groups: dict[str, str] = {}
    if group_by:
        survey = load_hf(spec, "prism", "survey", cache_dir)
        top = group_by.split(".")[0]
        if top not in survey.column_names:
            raise BallotError(f"data.prism.group_by: {group_by!r} is not a survey field (the survey has "
                              f"{', '.join(survey.column_names)})")
        for _, s in _rows(survey, ("user_id", top)):
            v = _dotted({top: s[top]}, group_by)
            groups[str(s["user_id"])] = "unknown" if v is None or v == "" else str(v)
    lo, hi = PRISM_RANGE
    b = _Builder(where, spec["max_prompts"])
    with gc_paused():
        for row, r in _rows(conv, ("conversation_id", "user_id", "conversation_type", "conversation_history")):
            cid = str(r["conversation_id"])
            hist = r["conversation_history"]
            if not isinstance(hist, list):
                raise _fail(where, row, "conversation_id", cid, "conversation_history", "expected a list of turns")
            turns = [t.get("turn") for t in hist if isinstance(t, dict) and isinstance(t.get("turn"), int)]
            first = min(turns) if turns else None  # the opening turn (numbered 0 in the card's data)
            opening = [(i, t) for i, t in enumerate(hist) if isinstance(t, dict) and t.get("turn") == first]
            users = [(i, t) for i, t in opening if t.get("role") == "user"]
            models = [(i, t) for i, t in opening if t.get("role") == "model"]
            if len(users) != 1 or not isinstance(users[0][1].get("content"), str) or not users[0][1]["content"].strip():
                raise _fail(where, row, "conversation_id", cid, "conversation_history",
                            f"expected one user message with text in the opening turn {first}, found {len(users)}")
            rec = b.prompt(cid, users[0][1]["content"], r["conversation_type"] or "none")
            if rec is None:
                continue
            scores: dict[str, float] = {}
            for i, t in models:
                f = f"conversation_history[{i}]"
                if not isinstance(t.get("content"), str) or not t["content"].strip():
                    raise _fail(where, row, "conversation_id", cid, f"{f}.content", "expected a model response text")
                n_before = len(rec["cands"])
                cand = b.candidate(rec, t["content"])
                if len(rec["cands"]) == n_before:
                    b.dropped_votes += 1
                    continue
                scores[cand] = _rating(t.get("score"), lo, hi, False, where, row, "conversation_id", cid, f"{f}.score")
            user = str(r["user_id"])
            vote: dict[str, Any] = {"ranking": _tiers(scores), "weight": 1.0, "voter": user}
            if group_by:
                vote["group"] = groups.get(user, "unknown")
            if scores:
                rec["votes"].append(vote)
    return b.records("PRISM")


# -- HH-RLHF ----------------------------------------------------------------------------------


def split_hh(chosen: str, rejected: str) -> tuple[str, str, str] | str:
    """(raw prompt, chosen response, rejected response) of an HH-RLHF row, or the name of the
    field that breaks the format. As the DPO reference's ``extract_anthropic_prompt``: the
    prompt is the dialogue up to the last "\\n\\nAssistant:" of ``chosen``; here without the
    leading "\\n\\nHuman: " and that final marker, so that ``prompt_format.style: hh`` renders
    it back exactly; the responses without their leading space (``render_completion`` adds it)."""
    if not isinstance(chosen, str) or not chosen.startswith(HH_HUMAN):
        return "chosen"
    cut = chosen.rfind(HH_ASSISTANT)
    if cut < 0:
        return "chosen"
    prefix = chosen[: cut + len(HH_ASSISTANT)]
    if not isinstance(rejected, str) or not rejected.startswith(prefix):
        return "rejected"
    prompt = prefix[len(HH_HUMAN): -len(HH_ASSISTANT)]
    strip = (lambda s: s[1:] if s.startswith(" ") else s)
    return prompt, strip(chosen[len(prefix):]), strip(rejected[len(prefix):])


def hh_rows(spec: Mapping[str, Any], cache_dir: str | None = None) -> Iterator[tuple[int, str, str, str]]:
    """(row, raw prompt, chosen, rejected) of Anthropic/hh-rlhf (``data_dir`` selects a subset
    such as ``helpful-base``); a row that is not an HH dialogue pair names row and field."""
    ds = load_hf(spec, "hh", None, cache_dir)
    where = _where(spec)
    _require(ds, ("chosen", "rejected"), where, "HH-RLHF")
    for row, r in _rows(ds, ("chosen", "rejected")):
        parts = split_hh(r["chosen"], r["rejected"])
        if isinstance(parts, str):
            expected = ("a dialogue starting with '\\n\\nHuman: ' and containing '\\n\\nAssistant:'"
                        if parts == "chosen" else "the same dialogue prefix as chosen, then the rejected response")
            raise BallotError(f"{where}: row {row}: {parts}: expected {expected}, got {str(r[parts])[:60]!r}")
        yield (row, *parts)


def load_hh(spec: Mapping[str, Any], cache_dir: str | None = None) -> list[BallotRecord]:
    """Anthropic/hh-rlhf (splits ``train``, ``test``): rows with the same dialogue prefix are one
    prompt (as the DPO reference's ``get_hh``; id from its text, topic ``hh`` or the
    ``data_dir``), chosen and rejected responses its candidates, one pairwise vote per row
    (chosen wins; no voter, no group). The sc winner of a prompt with one row is its chosen
    response, so ``eval.baseline: reference`` is the DPO paper's protocol: win rate against the
    dataset's chosen response."""
    where = _where(spec)
    b = _Builder(where, spec["max_prompts"])
    topic = spec.get("data_dir") or "hh"
    with gc_paused():
        for _row, prompt, chosen, rejected in hh_rows(spec, cache_dir):
            if not prompt.strip() or not chosen.strip() or not rejected.strip():
                b.dropped_votes += 1
                continue
            rec = b.prompt(text_id("hh", prompt), prompt, topic)
            if rec is None:
                continue
            c, r = b.candidate(rec, chosen), b.candidate(rec, rejected)
            b.pair(rec, c, r, c)
    return b.records("HH-RLHF")


# -- SHP --------------------------------------------------------------------------------------


def load_shp(spec: Mapping[str, Any], cache_dir: str | None = None) -> list[BallotRecord]:
    """Stanford Human Preferences (stanfordnlp/SHP card: post_id, domain, history, c_root_id_A/B,
    human_ref_A/B, score_A/B, labels (1: A preferred)) as ballots, one record per post:
    ``prompt_id`` = ``post_id``, ``prompt`` = ``history``, ``topic`` = ``domain``; candidates =
    the post's distinct comments (``c_root_id``, ``human_ref``); one pairwise vote per row.

    Filters (all optional): ``domains`` keeps those ``domain`` values; ``min_score_ratio`` keeps
    rows whose score ratio max(score_A/score_B, score_B/score_A) is at least that (the DPO
    reference's SHP loader uses 2); ``max_pairs_per_post`` keeps a post's first that many kept
    rows; ``max_posts`` keeps the first that many posts. Candidate texts must differ within a
    post (an error otherwise, naming the post).
    """
    ds = load_hf(spec, "shp", None, cache_dir)
    where = _where(spec)
    _require(ds, SHP_COLUMNS + ("score_A", "score_B"), where, "SHP")
    columns = SHP_COLUMNS + ("score_A", "score_B")
    ds = ds.select_columns(list(columns))
    if spec["domains"]:
        keep = set(spec["domains"])
        ds = ds.filter(lambda batch: [d in keep for d in batch["domain"]], batched=True)
    min_ratio, max_pairs, max_posts = spec["min_score_ratio"], spec["max_pairs_per_post"], spec["max_posts"]
    posts: dict[str, dict[str, Any]] = {}
    filtered = 0
    with gc_paused():
        for row_no, r in _rows(ds, columns):
            pid = str(r["post_id"])
            label = r["labels"]
            if label not in (0, 1):
                raise BallotError(f"{where}: row {row_no} (post_id {pid!r}): labels: expected 1 (A preferred) "
                                  f"or 0 (B preferred), got {label!r}")
            if min_ratio is not None:
                sa, sb = r["score_A"], r["score_B"]
                for key, s in (("score_A", sa), ("score_B", sb)):
                    if not isinstance(s, (int, float)) or isinstance(s, bool) or s < 0:
                        raise BallotError(f"{where}: row {row_no} (post_id {pid!r}): {key}: expected a "
                                          f"score >= 0, got {s!r}")
                lo, hi = min(sa, sb), max(sa, sb)
                if (hi / lo if lo > 0 else math.inf) < min_ratio:
                    filtered += 1
                    continue
            post = posts.get(pid)
            if post is None:
                if max_posts is not None and len(posts) >= max_posts:
                    continue
                post = posts[pid] = {"prompt_id": pid, "prompt": r["history"], "topic": r["domain"],
                                     "candidates": {}, "votes": []}
            if max_pairs is not None and len(post["votes"]) >= max_pairs:
                filtered += 1
                continue
            a, b = str(r["c_root_id_A"]), str(r["c_root_id_B"])
            post["candidates"].setdefault(a, r["human_ref_A"])
            post["candidates"].setdefault(b, r["human_ref_B"])
            post["votes"].append({"pair": [a, b], "winner": a if label == 1 else b, "weight": 1.0})
        records = [
            {**p, "candidates": [{"id": cid, "text": text} for cid, text in p["candidates"].items()]}
            for p in posts.values()
        ]
    if filtered:
        log.warning("%s: %d rows left out by min_score_ratio / max_pairs_per_post", where, filtered)
    return validate_ballots(records, where, unit="post", distinct_texts=True)


LOADERS = {
    "multipref": load_multipref, "helpsteer2": load_helpsteer2, "ultrafeedback": load_ultrafeedback,
    "prism": load_prism, "hh": load_hh, "shp": load_shp,
}


def load_dataset_source(source: str, spec: Mapping[str, Any], cache_dir: str | None = None) -> list[BallotRecord]:
    """The ballots of dataset source ``source`` (one of :data:`DATASET_SOURCES`) from its config
    section ``data.<source>``."""
    return LOADERS[source](spec, cache_dir)
