"""HH-RLHF (``data.source: hh``): Anthropic/hh-rlhf as ballots.

One prompt per dialogue prefix (its chosen/rejected pairs), one pairwise vote per row; no voters,
no groups. :func:`hh_rows` is also the reader of ``sft.data.source: hh``
(:mod:`prefsweep.data.sft_data`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prefsweep.data.ballots import BallotError, BallotRecord, gc_paused
from prefsweep.data.sources.hf_dataset import (
    Builder, dataset_rows, dataset_source, load_hf, require_columns, split_where, text_id,
)
from prefsweep.data.sources.registry import register

#: Anthropic HH-RLHF (Anthropic/hh-rlhf card: columns chosen and rejected, each a whole
#: dialogue "\n\nHuman: ...\n\nAssistant: ..."; splits train and test).
HH_HUMAN, HH_ASSISTANT = "\n\nHuman: ", "\n\nAssistant:"


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
    where = split_where(spec)
    require_columns(ds, ("chosen", "rejected"), where, "HH-RLHF")
    for row, r in dataset_rows(ds, ("chosen", "rejected")):
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
    where = split_where(spec)
    b = Builder(where, spec["max_prompts"])
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


register(dataset_source(
    "hh", load_hh,
    card="https://huggingface.co/datasets/Anthropic/hh-rlhf",
    citation="Bai et al. 2022, Training a Helpful and Harmless Assistant with Reinforcement Learning from "
             "Human Feedback",
))
