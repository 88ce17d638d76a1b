"""Synthetic ballots (``data.source: synthetic``): the electorate of ``data.synthetic`` votes on
prompts and responses it composes (:class:`prefsweep.data.synthetic.Electorate`), seeded by
``data.seed``. Every voter ranks every candidate; the voter's group is its
``data.synthetic.voter_groups`` entry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from prefsweep.config import ConfigError
from prefsweep.data.ballots import validate_ballots
from prefsweep.data.sources.registry import Source, SourceBallots, register
from prefsweep.data.synthetic import Electorate

#: How messages name the synthetic ballots.
WHERE = "synthetic ballots (data.synthetic)"


def load_synthetic(config: dict, source_file: str | os.PathLike | None = None) -> SourceBallots:
    """The electorate's ballots: ``data.synthetic.n_prompts`` prompts with ``n_candidates``
    candidates each, validated (one record a prompt)."""
    data = config["data"]
    syn = data["synthetic"]
    electorate = Electorate.from_config(config)
    records = electorate.make_ballots(syn["n_prompts"], syn["n_candidates"], data["seed"])
    records = validate_ballots(records, WHERE, unit="record", distinct_texts=True)
    return SourceBallots(records, WHERE, "record")


def train_prompts(data: Mapping[str, Any]) -> int:
    """The training prompts: every prompt but the held-out ones."""
    return data["synthetic"]["n_prompts"] - data["n_eval_prompts"]


def pairs_per_prompt(data: Mapping[str, Any]) -> int:
    """Every candidate pair of a prompt: K (K - 1) / 2."""
    k = data["synthetic"]["n_candidates"]
    return k * (k - 1) // 2


def check_sizes(data: Mapping[str, Any]) -> None:
    """Every size of ``data.sizes`` is reachable: at most every candidate pair of every training
    prompt (maj), one pair a prompt for a winner-loser rule (the reference arm's pairs)."""
    syn = data["synthetic"]
    k = syn["n_candidates"]
    per_prompt = k * (k - 1) // 2 if data["reference_arm"] == "maj" else k - 1
    reachable = max(0, syn["n_prompts"] - data["n_eval_prompts"]) * per_prompt
    too_big = [s for s in data["sizes"] if s > reachable]
    if too_big:
        raise ConfigError(
            f"data.sizes: {too_big} cannot be reached: {syn['n_prompts']} prompts less "
            f"{data['n_eval_prompts']} held out give at most {reachable} {data['reference_arm']} pairs; "
            "raise data.synthetic.n_prompts or lower the sizes"
        )


register(Source(
    name="synthetic",
    card="prefsweep.data.synthetic (the synthetic electorate; README, 'Ballot sources')",
    load=load_synthetic,
    train_prompts=train_prompts,
    pairs_per_prompt=pairs_per_prompt,
    check=check_sizes,
    electorate=True,
))
