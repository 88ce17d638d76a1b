"""Draw the experiment's figures from the win-rate tables, and log them to wandb.

One run builds the figures of :mod:`prefsweep.plots.registry`, each in every format of config
``plots.formats`` plus the CSV of exactly the values it draws, then writes ``done.json`` (files,
placeholders, notes, input hashes):

    python scripts/plots.py --config-json "$(python -m prefsweep.config plots)" \\
        --win-rates results/default/eval/win_rates.csv \\
        --groups results/default/eval/win_rates_groups.csv \\
        --diffs results/default/eval/arm_differences.csv \\
        --evolution results/default/eval/evolution.csv \\
        --welfare results/default/eval/welfare.csv \\
        --pair-accuracy-groups results/default/eval/pair_accuracy_groups.csv \\
        --out-dir results/default/plots [--only groups length] [--no-wandb] [--wandb-dir results/default/wandb]

Outputs in ``--out-dir``: ``win_rate_vs_pairs.{png,pdf,csv}``, ``evolution.*``, ``groups.*``,
``length.*``, ``rule_comparison.*``, with ``--welfare`` (the electorate judge's welfare table) also
``welfare.*`` and ``distortion.*``, and ``done.json``. ``--evolution`` is left out when checkpoints are not evaluated
(``eval.checkpoints: false``). ``--pair-accuracy-groups`` (per-group held-out pair accuracy)
is drawn in ``groups.*`` when the win-rate groups table has no rows (a judge without voter
groups). ``--config-json`` is the ``plots`` slice of the config
(experiment, data.reference_arm, plots): inline JSON or a JSON
file. The tables must have the columns :mod:`prefsweep.eval.table_io` declares (else an error naming
the file); a table with nothing to draw gives a placeholder figure that says so, and rows left out
(e.g. a model without a valid verdict) are named in the log and in ``done.json``. wandb: an eval
run (job_type "eval", group = experiment) gets the PNGs and the tables; settings come from config
``wandb`` or the WANDB_* environment, files under ``--wandb-dir`` (default: ``$WANDB_DIR``, which
the workflow sets); ``--no-wandb`` or mode ``disabled`` skips it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from prefsweep.config import ConfigError
from prefsweep.eval.inputs import InputError, config_value
from prefsweep.eval.pair_accuracy import GROUP_TABLE_COLUMNS
from prefsweep.eval.table_io import DIFF_COLUMNS, GROUP_COLUMNS, WIN_RATE_COLUMNS, read_table
from prefsweep.eval.welfare import WELFARE_COLUMNS
from prefsweep.io import load_config_json
from prefsweep.plots import registry
from prefsweep.plots.inputs import FigureInputs
from prefsweep.plots.options import PlotOptions
from prefsweep.plots.save import save_result, write_done
from prefsweep.tracking import table_wandb_dir

log = logging.getLogger("plots")


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--config-json", required=True, help="the plots job's config slice: JSON text or a JSON file")
    p.add_argument("--win-rates", required=True, type=Path, help="eval/win_rates.csv")
    p.add_argument("--groups", required=True, type=Path, help="eval/win_rates_groups.csv")
    p.add_argument("--diffs", required=True, type=Path, help="eval/arm_differences.csv (panel b of figure 1)")
    p.add_argument("--pair-accuracy-groups", type=Path, default=None,
                   help="eval/pair_accuracy_groups.csv: the groups figure when the judge has no voter groups")
    p.add_argument("--evolution", type=Path, default=None,
                   help="eval/evolution.csv: checkpoints and final DPO models (when checkpoints are evaluated)")
    p.add_argument("--welfare", type=Path, default=None,
                   help="eval/welfare.csv (electorate judge): draws the welfare and distortion figures")
    p.add_argument("--out-dir", required=True, type=Path, help="directory of the figures, e.g. results/<exp>/plots")
    p.add_argument("--only", nargs="+", choices=registry.NAMES, default=None,
                   help="build only these figures (default: all, the welfare figures when --welfare is given): "
                   + "; ".join(f"{f.name}: {f.shows}" for f in registry.REGISTRY))
    p.add_argument("--no-wandb", action="store_true", help="do not log to wandb")
    p.add_argument("--wandb-dir", type=Path, default=None, help="wandb directory (default: $WANDB_DIR)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    only = args.only or list(registry.plotted(welfare=args.welfare is not None))
    needs_welfare = sorted(n for n in only if registry.figure(n).welfare)
    if args.welfare is None and needs_welfare:
        parser.error(f"--only {' '.join(needs_welfare)} needs --welfare (eval/welfare.csv)")
    # INFO from this script and the package only (matplotlib's font subsetting logs at INFO too).
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in (log.name, "prefsweep"):
        logging.getLogger(name).setLevel(logging.INFO)
    config = load_config_json(args.config_json)
    wandb_dir = table_wandb_dir(args.wandb_dir, args.no_wandb, "plots")
    try:
        opts = PlotOptions.from_config(config)
        reference_arm = config_value(config, "data.reference_arm")
        win_rates = read_table(args.win_rates, WIN_RATE_COLUMNS)
        groups = read_table(args.groups, GROUP_COLUMNS)
        diffs = read_table(args.diffs, DIFF_COLUMNS)
        evolution = read_table(args.evolution, WIN_RATE_COLUMNS) if args.evolution is not None else None
        welfare = read_table(args.welfare, WELFARE_COLUMNS) if args.welfare is not None else None
        accuracy_groups = (read_table(args.pair_accuracy_groups, GROUP_TABLE_COLUMNS)
                           if args.pair_accuracy_groups is not None else None)
    except (ConfigError, InputError) as exc:
        raise SystemExit(f"plots: {exc}") from None
    log.info("read %d win-rate rows, %d group rows, %d difference rows, %s evolution rows", len(win_rates),
             len(groups), len(diffs), "no" if evolution is None else len(evolution))

    inputs = FigureInputs.prepare(win_rates, groups, diffs, reference_arm, evolution=evolution, welfare=welfare,
                                  accuracy_groups=accuracy_groups)
    results = registry.build(inputs, opts, only=only)
    files: dict[str, list[Path]] = {}
    for result in results:
        files[result.name] = save_result(result, args.out_dir, opts)
        if result.placeholder:
            log.warning("%s: placeholder figure (%s)", result.name, result.placeholder)
        for note in result.notes:
            log.info("%s: %s", result.name, note)
        for missing in result.missing:
            log.warning("%s: %s", result.name, missing)
        log.info("wrote %s", ", ".join(str(p) for p in files[result.name]))

    if not args.no_wandb:
        from prefsweep.tracking import log_plots_to_wandb

        pngs = {n: next((p for p in ps if p.suffix == ".png"), ps[0]) for n, ps in files.items()}
        tables = {"win_rates": win_rates, "arm_differences": diffs}
        if welfare is not None:
            tables["welfare"] = welfare
        run_dir = log_plots_to_wandb(config, pngs, tables, wandb_dir)
        log.info("wandb: %s", run_dir or "disabled")

    done = write_done(args.out_dir, results, files, {
        "win_rates": str(args.win_rates), "groups": str(args.groups), "diffs": str(args.diffs),
        "evolution": args.evolution and str(args.evolution),
        **({"welfare": str(args.welfare)} if args.welfare is not None else {}),
        **({"pair_accuracy_groups": str(args.pair_accuracy_groups)} if args.pair_accuracy_groups is not None else {}),
    })
    log.info("wrote %s", done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
