"""Print the README's results table from a finished experiment's tables (Markdown).

    python scripts/readme_results.py --configfile config/config.yaml    # after `make run`

Reads ``eval/win_rates.csv``, ``eval/pair_accuracy.csv`` and the ballots job's log of the
experiment (paths from :class:`prefsweep.paths.Layout`) and prints, for the largest size, one
row per arm and matching with each seed's win rate, bootstrap CI and held-out pair accuracy,
plus the zero point, and the ballots log's majority-vs-rule line. Every number in the README's
"What the default run shows" is a line of this output.
"""

from __future__ import annotations

import argparse
import re

import pandas as pd

from prefsweep.config import load_config
from prefsweep.paths import SHARED, arm_rules, layout, zero_point_id
from prefsweep.winrate import WIN_RATE_COLUMNS, read_table


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configfile", nargs="*", default=[], help="config files merged over config/config.yaml")
    return p


def _cell(row: pd.Series) -> str:
    return f"{row['win_rate']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"


def results_table(win_rates: pd.DataFrame, accuracy: pd.Series, config: dict) -> str:
    """Markdown rows for the zero point and every (arm, matching) at the largest size."""
    zero = zero_point_id(config)
    size = max(config["data"]["sizes"])
    rules = arm_rules(config)
    lines = [
        f"| model (N = {size}) | training pairs | win rate vs {zero} (seeds "
        + " / ".join(str(s) for s in config["dpo"]["seeds"]) + ") | held-out pair accuracy |",
        "| --- | --- | --- | --- |",
        f"| zero point ({zero}) | 0 | 0.50 | {accuracy[zero]:.3f} |",
    ]
    dpo = win_rates[(win_rates["kind"] == "dpo") & (win_rates["size"] == size)]
    for (init, arm, matching), rows in dpo.groupby(["init", "arm", "matching"], sort=True):
        rows = rows.sort_values("seed")
        name = arm if arm == "maj" or rules.get(arm) == arm else f"{arm} ({rules.get(arm, arm)})"
        name += f" from {init}" if isinstance(config["dpo"]["init"], list) else ""
        name += " (shared by both matchings)" if matching == SHARED else f", {matching}-matched"
        pairs = " / ".join(sorted({str(int(n)) for n in rows["n_pairs"]}))
        rates = " / ".join(_cell(r) for _, r in rows.iterrows())
        accs = " / ".join(f"{accuracy[m]:.3f}" for m in rows["model_id"])
        lines.append(f"| {name} | {pairs} | {rates} | {accs} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    config = load_config(*args.configfile, check=False)
    paths = layout(config)
    win_rates = read_table(paths.table("win_rates"), WIN_RATE_COLUMNS)
    accuracy = pd.read_csv(paths.table("pair_accuracy")).set_index("model_id")["accuracy"]
    print(results_table(win_rates, accuracy, config))
    with open(paths.log(paths.ballots()), encoding="utf-8") as fh:
        for line in fh:
            if re.search(r"Condorcet winner in", line):
                print(line.strip())


if __name__ == "__main__":
    main()
