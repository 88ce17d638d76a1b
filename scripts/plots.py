"""Draw the experiment's figures from the win-rate tables (issue 5), and log them to wandb.

One run builds all four figures, each as PNG + PDF (config ``plots.formats``) plus the CSV of
exactly the values it draws, then writes ``done.json`` (files, placeholders, input hashes):

    python scripts/plots.py --config-json results/default/config.resolved.json \\
        --win-rates results/default/eval/win_rates.csv \\
        --groups results/default/eval/win_rates_groups.csv \\
        --diffs results/default/eval/arm_differences.csv \\
        [--evolution results/default/eval/evolution.csv] \\
        --out-dir results/default/plots [--only groups length] [--no-wandb]

Outputs in ``--out-dir``: ``win_rate_vs_pairs.{png,pdf,csv}``, ``evolution.*``, ``groups.*``,
``length.*``, ``done.json``. ``--config-json`` takes a JSON file or the JSON text itself (the
workflow passes the ``plots`` slice of the config: experiment, data.reference_arm,
eval.baseline, eval.judge.type, plots). A missing or empty input table gives a placeholder
figure that says so. wandb: an eval run (job_type "eval", group = experiment) gets the PNGs and
the win-rate table; mode/project/dir come from config ``wandb`` or the WANDB_* environment
(default offline, dir ``<out-dir>/../wandb``); ``--no-wandb`` or mode ``disabled`` skips it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from prefsweep import plotting as P

log = logging.getLogger("plots")


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--config-json", required=True, help="resolved config (or its plots slice): file or JSON text")
    p.add_argument("--win-rates", required=True, type=Path, help="eval/win_rates.csv")
    p.add_argument("--groups", type=Path, default=None, help="eval/win_rates_groups.csv (optional)")
    p.add_argument("--diffs", type=Path, default=None, help="eval/arm_differences.csv (optional: panel b of figure 1)")
    p.add_argument("--evolution", type=Path, default=None,
                   help="eval/evolution.csv: checkpoint rows (optional; checkpoint rows of --win-rates are used too)")
    p.add_argument("--out-dir", required=True, type=Path, help="directory of the figures, e.g. results/<exp>/plots")
    p.add_argument("--only", nargs="+", choices=P.FIGURES, default=list(P.FIGURES), help="build only these figures")
    p.add_argument("--no-wandb", action="store_true", help="do not log to wandb")
    p.add_argument("--wandb-dir", type=Path, default=None, help="wandb directory (default: <out-dir>/../wandb)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = P.parse_config_arg(args.config_json)
    opts = P.PlotOptions.from_config(config.get("plots"))
    reference_arm = (config.get("data") or {}).get("reference_arm")

    win_rates = P.read_table(args.win_rates, P.WIN_RATE_COLUMNS, "win_rates")
    groups = P.read_table(args.groups, P.GROUP_COLUMNS, "groups")
    diffs = P.read_table(args.diffs, P.DIFF_COLUMNS, "diffs") if args.diffs is not None else None
    evolution = P.read_table(args.evolution, P.WIN_RATE_COLUMNS, "win_rates") if args.evolution else None
    log.info("read %d win-rate rows, %d group rows, %s difference rows, %s evolution rows", len(win_rates),
             len(groups), "no" if diffs is None else len(diffs), "no" if evolution is None else len(evolution))

    results = P.build_all(win_rates, groups, diffs, evolution, opts, reference_arm, only=args.only)
    files: dict[str, list[Path]] = {}
    for result in results:
        files[result.name] = P.save_result(result, args.out_dir, opts)
        if result.placeholder:
            log.warning("%s: placeholder figure (%s)", result.name, result.placeholder)
        log.info("wrote %s", ", ".join(str(p) for p in files[result.name]))

    if not args.no_wandb:
        pngs = {n: next((p for p in ps if p.suffix == ".png"), ps[0]) for n, ps in files.items()}
        tables = {"win_rates": win_rates}
        if diffs is not None:
            tables["arm_differences"] = diffs
        run_dir = P.log_to_wandb(config, pngs, tables, args.wandb_dir or args.out_dir.parent / "wandb")
        log.info("wandb: %s", run_dir or "disabled")

    done = P.write_done(args.out_dir, results, files, {
        "win_rates": str(args.win_rates), "groups": args.groups and str(args.groups),
        "diffs": args.diffs and str(args.diffs), "evolution": args.evolution and str(args.evolution),
    })
    log.info("wrote %s", done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
