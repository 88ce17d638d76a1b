"""One series cell: the first pairs of an arm's pool, matched to the reference arm.

    python scripts/series.py --config-json "$(python -m prefsweep.config data)" \
        --ref-pool results/default/data/pool/maj.parquet --pool results/default/data/pool/sc.parquet \
        --arm sc --matching prompt --size 64 \
        --pairs-out results/default/data/sc/prompt/n64/pairs.parquet \
        --manifest-out results/default/data/sc/prompt/n64/manifest.json

For the reference arm (``data.reference_arm``) pass ``--matching shared`` and the same pool
twice. Writes the pairs and their manifest (see :mod:`prefsweep.data.series`).
A truncated or corrupt pool stops the job with the pool's path and how to rebuild it.
"""

from __future__ import annotations

import argparse

from prefsweep.io import DataFileError, fail_clearly, load_config_json
from prefsweep.paths import SHARED
from prefsweep.data.series import MATCHINGS, SeriesError, read_series, write_series


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-json", required=True, help="config slice of step 'data' (JSON or a JSON file)")
    p.add_argument("--ref-pool", required=True, help="pool of the reference arm")
    p.add_argument("--pool", required=True, help="pool of --arm")
    p.add_argument("--arm", required=True, help="maj or a rule arm of the config (prefsweep.paths.arm_rules)")
    p.add_argument("--matching", required=True, choices=(*MATCHINGS, SHARED))
    p.add_argument("--size", required=True, type=int, help="N, in pairs of the reference arm")
    p.add_argument("--pairs-out", required=True, help="output data/{arm}/{matching}/n{size}/pairs.parquet")
    p.add_argument("--manifest-out", required=True, help="output data/{arm}/{matching}/n{size}/manifest.json")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    config = load_config_json(args.config_json)
    with fail_clearly(DataFileError, SeriesError):
        df = read_series(args.ref_pool, args.pool, args.arm, args.matching, args.size,
                         config["data"]["reference_arm"])
    manifest = write_series(args.pairs_out, args.manifest_out, df, args.arm, args.matching, args.size)
    print(f"{args.arm}/{args.matching}/n{args.size}: {manifest['n_pairs']} pairs over "
          f"{manifest['n_prompts']} prompts -> {args.pairs_out}")


if __name__ == "__main__":
    main()
