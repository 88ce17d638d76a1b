"""Build the normalized ballots of an experiment from its source (``data.source``).

    python scripts/ballots.py --config-json "$(python -m prefsweep.config ballots)" \
        --out results/default/data/ballots.jsonl

    # data.source jsonl: the ballots file is named on the command line (a declared input)
    python scripts/ballots.py --config-json "$(python -m prefsweep.config ballots --configfile my.yaml)" \
        --source-file my_ballots.jsonl --out results/my/data/ballots.jsonl

Source: ``data.source``, one of :mod:`prefsweep.data.sources` (``synthetic``: the electorate of
``data.synthetic``; ``jsonl``: the file ``--source-file``, which the workflow sets to
``data.jsonl.path``; a dataset: ``data.<source>`` through ``datasets.load_dataset``). Every record
is validated (:mod:`prefsweep.data.ballots`) and the per-prompt statistics are computed before
anything is written; a bad record stops the job with the file, line, prompt id and field named,
and ``--out`` is then left as it was. The file is written atomically; the log gets the counts,
how many vote weights were rounded to 6 decimal places, and how often the majority (Condorcet)
winner and the Borda winner (and the ``sc.rule`` winner) disagree.
"""

from __future__ import annotations

import argparse
import gc
import time

import pyarrow.compute as pc

from prefsweep.data.arms import winner_disagreement
from prefsweep.data.ballot_table import VOTES_SCHEMA, ballots_table, rounded_weights
from prefsweep.data.ballots import WEIGHT_DECIMALS
from prefsweep.data.sources import load_source
from prefsweep.io import atomic_write_jsonl, fail_clearly, load_config_json
from prefsweep.paths import arm_rules


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of step 'ballots' (JSON or a JSON file)")
    p.add_argument("--source-file", help="the ballots file of data.source jsonl (data.jsonl.path); only then")
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
    seed = int(config["data"]["seed"])
    # the job's slice holds the first rule only (prefsweep.config.job_config)
    rules = ["borda"] + [r for r in arm_rules(config).values() if r != "borda"]
    # Bad data, a bad source or an inexact weight stop the job here, before --out is touched.
    with fail_clearly(ValueError):
        # The ballots are millions of small dicts and lists without reference cycles that live
        # to the end: the cyclic collector would only rescan them (seconds at 100k prompts), so
        # it is off while they are built and validated, and they are then frozen out of its way.
        gc.disable()
        try:
            records = load_source(config, args.source_file)
        finally:
            gc.freeze()
            gc.enable()
        table = ballots_table(records, VOTES_SCHEMA)  # what the statistics read
        stats = [winner_disagreement(table, rule, seed) for rule in rules]
        n_rounded = rounded_weights(table)
    atomic_write_jsonl(args.out, records)
    n_votes = pc.sum(pc.list_value_length(table["votes"])).as_py()
    n_cands = pc.sum(pc.list_value_length(table["candidates"])).as_py()
    topics = sorted({r["topic"] for r in records})
    print(f"wrote {table.num_rows} prompts, {n_cands} candidates, {n_votes} votes, "
          f"{len(topics)} topics ({', '.join(topics[:12])}{', ...' if len(topics) > 12 else ''}) to {args.out}")
    if n_rounded:
        print(f"{n_rounded} vote weights have more than {WEIGHT_DECIMALS} decimal places and were rounded "
              f"to {WEIGHT_DECIMALS} (supports and margins are exact sums of the rounded weights)")
    for s in stats:
        print(describe(s))
    print(f"done in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
