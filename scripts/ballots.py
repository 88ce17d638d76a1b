"""Build the normalized ballots of an experiment from its source (synthetic, jsonl or shp).

    python scripts/ballots.py --config-json results/default/config.resolved.json \
        --out results/default/data/ballots.jsonl

Source: ``data.source`` (``synthetic``: :class:`prefsweep.synthetic.Electorate`; ``jsonl``:
``data.jsonl.path``; ``shp``: ``data.shp`` through ``datasets.load_dataset``). The ballots are
validated (:mod:`prefsweep.ballots`) and written atomically; the log gets the counts and how
often the majority (Condorcet) winner and the Borda winner (and the ``sc.rule`` winner)
disagree.
"""

from __future__ import annotations

import argparse
import gc
import time

from prefsweep.arms import winner_disagreement
from prefsweep.ballots import load_source, write_ballots
from prefsweep.io import load_config_json


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="resolved config (JSON file)")
    p.add_argument("--out", required=True, help="output data/ballots.jsonl")
    return p


def describe(stats: dict) -> str:
    n = stats["n_prompts"]
    return (
        f"{stats['rule']}: Condorcet winner in {stats['condorcet']}/{n} prompts, majority cycle in "
        f"{stats['cycles']}; Condorcet winner != {stats['rule']} winner in {stats['disagree']} prompts "
        f"= {stats['share_disagree']:.1%} of all ({stats['share_disagree_given_condorcet']:.1%} of "
        f"those with a Condorcet winner); {stats['ties_broken']} ties broken"
    )


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    t0 = time.perf_counter()
    config = load_config_json(args.config_json)
    records = load_source(config)
    gc.freeze()  # the ballots live to the end: keep the collector from rescanning them
    write_ballots(args.out, records)
    n_votes = sum(len(r["votes"]) for r in records)
    n_cands = sum(len(r["candidates"]) for r in records)
    topics = sorted({r["topic"] for r in records})
    print(f"wrote {len(records)} prompts, {n_cands} candidates, {n_votes} votes, "
          f"{len(topics)} topics ({', '.join(topics[:12])}{', ...' if len(topics) > 12 else ''}) to {args.out}")
    seed = int(config["data"]["seed"])
    rules = ["borda"] + [r for r in [(config.get("sc") or {}).get("rule", "borda")] if r != "borda"]
    for rule in rules:
        print(describe(winner_disagreement(records, rule, seed)))
    print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
