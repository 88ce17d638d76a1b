"""MultiPref (``data.source: multipref``): allenai/multipref as ballots.

One prompt per ``prompt_id`` (all its comparisons), one voter per annotator (``evaluator``), the
group ``normal`` or ``expert``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefsweep.data.ballots import BallotRecord, gc_paused
from prefsweep.data.sources.hf_dataset import (
    Builder, dataset_rows, dataset_source, load_hf, require_columns, row_error, split_where,
)
from prefsweep.data.sources.registry import register

#: MultiPref annotation values (allenai/multipref card, "Dataset Structure": each annotation of
#: ``normal_worker_annotations`` / ``expert_worker_annotations`` has ``evaluator`` and
#: ``overall_pref``, ``helpful_pref``, ``truthful_pref``, ``harmless_pref`` on this scale).
MULTIPREF_PREFS = {
    "A-is-clearly-better": "a", "A-is-slightly-better": "a", "Tie": None,
    "B-is-slightly-better": "b", "B-is-clearly-better": "b",
}
MULTIPREF_COLUMNS = ("comparison_id", "prompt_id", "text", "completion_a", "completion_b", "category")
MULTIPREF_ANNOTATORS = {"normal": "normal_worker_annotations", "expert": "expert_worker_annotations"}


def load_multipref(spec: Mapping[str, Any], cache_dir: str | None = None) -> list[BallotRecord]:
    """allenai/multipref (config ``default``, split ``train``): one prompt per ``prompt_id``
    (``prompt`` = ``text``, ``topic`` = ``category``), its comparisons' completions as
    candidates, one pairwise vote per annotation of ``spec["annotators"]`` on the
    ``<spec["preference"]>_pref`` scale (A-/B-is-clearly/slightly-better: that response wins,
    weight 1 either way; Tie: a tie), voter ``<kind>:<evaluator>``, group = the annotator kind
    (``normal`` crowdworkers or domain ``expert``\\ s)."""
    ds = load_hf(spec, "multipref", spec.get("name"), cache_dir)
    where = split_where(spec, spec.get("name"))
    kinds = list(spec["annotators"])
    columns = MULTIPREF_COLUMNS + tuple(MULTIPREF_ANNOTATORS[k] for k in kinds)
    require_columns(ds, columns, where, "MultiPref")
    field = f"{spec['preference']}_pref"
    b = Builder(where, spec["max_prompts"])
    with gc_paused():
        for row, r in dataset_rows(ds, columns):
            cid = r["comparison_id"]
            for key in ("prompt_id", "text", "completion_a", "completion_b"):
                if not isinstance(r[key], str) or (key != "text" and not r[key]):
                    raise row_error(where, row, "comparison_id", cid, key, f"expected a non-empty string, got {r[key]!r}")
            rec = b.prompt(str(r["prompt_id"]), r["text"], r["category"] or "none")
            if rec is None:
                continue
            a, bb = b.candidate(rec, r["completion_a"]), b.candidate(rec, r["completion_b"])
            for kind in kinds:
                col = MULTIPREF_ANNOTATORS[kind]
                anns = r[col]
                if not isinstance(anns, list):
                    raise row_error(where, row, "comparison_id", cid, col, f"expected a list of annotations, got {anns!r}")
                for i, ann in enumerate(anns):
                    f = f"{col}[{i}]"
                    if not isinstance(ann, dict) or not isinstance(ann.get("evaluator"), str) or not ann["evaluator"]:
                        raise row_error(where, row, "comparison_id", cid, f"{f}.evaluator",
                                    "expected an annotation with a non-empty evaluator id")
                    pref = ann.get(field)
                    if pref not in MULTIPREF_PREFS:
                        raise row_error(where, row, "comparison_id", cid, f"{f}.{field}",
                                    f"expected one of {', '.join(map(repr, MULTIPREF_PREFS))}, got {pref!r}")
                    side = MULTIPREF_PREFS[pref]
                    winner = None if side is None else (a if side == "a" else bb)
                    b.pair(rec, a, bb, winner, voter=f"{kind}:{ann['evaluator']}", group=kind)
    return b.records("MultiPref")


register(dataset_source(
    "multipref", load_multipref,
    card="https://huggingface.co/datasets/allenai/multipref",
    citation="Miranda et al. 2024, Hybrid Preferences: Learning to Route Instances for Human vs. AI Feedback",
))
