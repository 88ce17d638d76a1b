"""Write docs/results.md and the README's figure from a finished experiment's tables.

    python scripts/results_page.py                                   # after `make run`
    python scripts/results_page.py --configfile config/study.yaml --out study.md --figure study.png

Run it in the workflow's working directory (the clone, after `make run`). It reads the
experiment's ``eval/win_rates.csv``, ``eval/pair_accuracy.csv``, ``eval/arm_differences.csv``,
``eval/welfare.csv`` (electorate judge only) and the ballots job's log (paths from
:class:`prefsweep.paths.Layout`), writes the results page (Markdown, ``--out``, default
``docs/results.md`` of this repository) and copies ``plots/win_rate_vs_pairs.png`` to
``--figure`` (default ``docs/figures/win_rate_vs_pairs.png``, the README's figure). Every number
on the page is a value of those files, rounded; the page names the file of each table.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd

from prefsweep.config import load_config
from prefsweep.eval.table_io import WIN_RATE_COLUMNS, read_table
from prefsweep.paths import SHARED, arm_rules, layout, zero_point_id

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "results.md"
FIGURE = REPO / "docs" / "figures" / "win_rate_vs_pairs.png"
#: The README's figure: a plot of every run (prefsweep.plots.registry.FIGURES).
FIGURE_NAME = "win_rate_vs_pairs"


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configfile", nargs="*", default=[], help="config files merged over config/config.yaml")
    p.add_argument("--out", type=Path, default=PAGE, help="the page to write (default: docs/results.md)")
    p.add_argument("--figure", type=Path, default=FIGURE,
                   help="where to copy plots/win_rate_vs_pairs.png (default: docs/figures/win_rate_vs_pairs.png)")
    return p


def _ci(value: float, low: float, high: float, digits: int = 2) -> str:
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _arm_name(config: dict, init: str, arm: str, matching: str) -> str:
    """``sc (borda), size-matched``; ``maj (shared by both matchings)``; ``… from base`` with several inits."""
    rules = arm_rules(config)
    name = arm if arm == "maj" or rules.get(arm) == arm else f"{arm} ({rules.get(arm, arm)})"
    name += f" from {init}" if isinstance(config["dpo"]["init"], list) else ""
    return name + (" (shared by both matchings)" if matching == SHARED else f", {matching}-matched")


def _largest(table: pd.DataFrame, config: dict) -> pd.DataFrame:
    """The DPO rows of the largest series size, in (init, arm, matching, seed) order."""
    dpo = table[(table["kind"] == "dpo") & (table["size"] == max(config["data"]["sizes"]))]
    return dpo.sort_values(["init", "arm", "matching", "seed"])


def results_table(win_rates: pd.DataFrame, accuracy: pd.Series, config: dict) -> str:
    """One row for the zero point and one per (init, arm, matching) at the largest size: pairs,
    each seed's win rate with its bootstrap CI, each seed's held-out pair accuracy."""
    zero = zero_point_id(config)
    size = max(config["data"]["sizes"])
    lines = [
        f"| model (N = {size}) | training pairs | win rate vs {zero} (seeds "
        + " / ".join(str(s) for s in config["dpo"]["seeds"]) + ") | held-out pair accuracy |",
        "| --- | --- | --- | --- |",
        f"| zero point ({zero}) | 0 | 0.50 | {accuracy[zero]:.3f} |",
    ]
    for (init, arm, matching), rows in _largest(win_rates, config).groupby(["init", "arm", "matching"], sort=True):
        pairs = " / ".join(sorted({str(int(n)) for n in rows["n_pairs"]}))
        rates = " / ".join(_ci(r["win_rate"], r["ci_low"], r["ci_high"]) for _, r in rows.iterrows())
        accs = " / ".join(f"{accuracy[m]:.3f}" for m in rows["model_id"])
        lines.append(f"| {_arm_name(config, init, arm, matching)} | {pairs} | {rates} | {accs} |")
    return "\n".join(lines)


def differences_table(diffs: pd.DataFrame, config: dict) -> str:
    """Every rule arm minus the reference arm, per size and matching (``eval/arm_differences.csv``)."""
    lines = ["| rule arm minus reference arm | N | win-rate difference [95% CI] | seeds |", "| --- | --- | --- | --- |"]
    for _, r in diffs.sort_values(["init", "arm", "matching", "size"]).iterrows():
        name = _arm_name(config, r["init"], r["arm"], r["matching"])
        lines.append(f"| {name} − {r['ref_arm']} | {int(r['size'])} | {_ci(r['diff'], r['ci_low'], r['ci_high'])} "
                     f"| {r['n_seeds']} |")
    return "\n".join(lines)


def length_table(win_rates: pd.DataFrame, config: dict) -> str:
    """Raw and length-controlled win rate, mean words and well-formed share of the base model and
    every DPO model of the largest size (``eval/win_rates.csv``)."""
    lines = ["| model | win rate | length-controlled win rate | mean words (baseline) | well-formed share (baseline) |",
             "| --- | --- | --- | --- | --- |"]
    rows = pd.concat([win_rates[win_rates["kind"] == "base"], _largest(win_rates, config)])
    for _, r in rows.iterrows():
        lc = _ci(r["lc_win_rate"], r["lc_ci_low"], r["lc_ci_high"])
        lines.append(f"| `{r['model_id']}` | {r['win_rate']:.2f} | {lc} "
                     f"| {r['mean_words']:.1f} ({r['baseline_mean_words']:.1f}) "
                     f"| {r['well_formed']:.3f} ({r['baseline_well_formed']:.3f}) |")
    return "\n".join(lines)


def welfare_table(welfare: pd.DataFrame, config: dict) -> str:
    """Welfare of every DPO model of the largest size relative to the zero point: mean utility
    over voters and questions (``utilitarian``) and the worst group's mean (``egalitarian``),
    each minus the zero point's, from ``eval/welfare.csv``."""
    lines = ["| model | mean utility, minus the zero point's [95% CI] "
             "| worst group's mean utility, minus the zero point's [95% CI] |",
             "| --- | --- | --- |"]
    dpo = _largest(welfare, config)
    gains = {(r["model_id"], r["measure"]): r for _, r in dpo.iterrows()}
    for model_id in dpo["model_id"].drop_duplicates():
        cells = [gains[(model_id, m)] for m in ("utilitarian", "egalitarian")]
        lines.append(f"| `{model_id}` | " + " | ".join(_ci(c["vs_zero"], c["vs_zero_ci_low"], c["vs_zero_ci_high"])
                                                       for c in cells) + " |")
    return "\n".join(lines)


def ballots_lines(log: str) -> list[str]:
    """The ballots job's majority-vs-rule lines (``... Condorcet winner in ...``)."""
    with open(log, encoding="utf-8") as fh:
        return [line.strip() for line in fh if re.search(r"Condorcet winner in", line)]


def code_version(directory: Path) -> str:
    """``commit abc1234`` of the git checkout the run was made in (``+ uncommitted changes`` when
    tracked files differ), or ``code version unknown`` outside git."""
    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "code version unknown (not a git checkout)"
    return f"commit {head}" + (" + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def electorate_sentence(config: dict) -> str:
    """Who votes, from the config: the synthetic electorate's groups, or the dataset source."""
    data = config["data"]
    section = data.get(data["source"]) or {}
    if "voter_groups" not in section:  # real voters: the source's own
        return f"Ballots come from the `{data['source']}` source (see [ballots.md](ballots.md))."
    groups = section["voter_groups"]
    total = sum(g["size"] for g in groups)
    listed = ", ".join(f"{g['name']} {g['size']}" for g in groups)
    return (f"The synthetic electorate has {total} voters in {len(groups)} groups ({listed}), who all value "
            "well-formed answers to the question and differ on length and style "
            "(see [judges.md](judges.md)).")


def page(config: dict, tables: dict[str, pd.DataFrame], ballots: list[str], version: str) -> str:
    """The results page (Markdown)."""
    paths = layout(config)
    win_rates = tables["win_rates"]
    accuracy = tables["pair_accuracy"].set_index("model_id")["accuracy"]
    zero = zero_point_id(config)
    n_questions = int(win_rates["n"].max())
    judge = config["eval"]["judge"]["type"]
    out = [
        f"# Results of the `{config['experiment']}` experiment",
        "",
        "<!-- Written by `python scripts/results_page.py` from the run's tables; do not edit by hand. -->",
        "",
        f"What the run of `{config['experiment']}` in `{paths.root}/` gives ({version}). To see your own "
        "numbers, run `make run`, then `python scripts/results_page.py`: it rewrites this page and "
        "the README's figure from your run. " + electorate_sentence(config),
        "",
        "## Win rates",
        "",
        f"Win rate of greedy answers against `{zero}` (the zero point) on {n_questions} held-out questions, "
        f"judged by the `{judge}` judge: wins plus half the ties, with a bootstrap 95% CI over questions, "
        "one figure per seed; held-out pair accuracy is how often the model ranks the chosen response "
        f"of a held-out majority pair first (`{paths.table('win_rates')}`, `{paths.table('pair_accuracy')}`).",
        "",
        results_table(win_rates, accuracy, config),
        "",
    ]
    if ballots:
        out += ["How often the rule's winner differs from the majority's, from the ballots job's log "
                f"(`{paths.log(paths.ballots())}`):", "", *(f"    {line}" for line in ballots), ""]
    out += [
        "## Rule arm minus majority arm",
        "",
        "The same difference of win rates, paired over questions and seeds, with a bootstrap 95% CI "
        f"(`{paths.table('arm_differences')}`). Prompt-matched: the rule's pairs from exactly the "
        "prompts of the majority series (fewer pairs); size-matched: as many pairs as the majority series.",
        "",
        differences_table(tables["arm_differences"], config),
        "",
        "## Length and form",
        "",
        "A judge that likes shorter (or longer) answers rewards a model for length alone. The "
        "length-controlled win rate (AlpacaEval 2's logistic model at zero length difference) and the "
        "mean length show how much of a win rate is length; the well-formed share is the share of "
        f"the answers' text made of well-formed phrases (`{paths.table('win_rates')}`).",
        "",
        length_table(win_rates, config),
        "",
    ]
    if "welfare" in tables:
        out += [
            "## Welfare",
            "",
            "The electorate judge knows every voter's utility of any text, so it also measures what "
            f"each model's answers are worth to the voters, relative to `{zero}` "
            f"(`{paths.table('welfare')}`, which also holds each group and the distortion).",
            "",
            welfare_table(tables["welfare"], config),
            "",
        ]
    out += [
        "## Figures",
        "",
        f"`{paths.plot(FIGURE_NAME, 'png')}` is the README's figure; the other figures of "
        f"`{paths.root}/plots/` and the Snakemake report (`{paths.report()}`) show the training "
        "evolution, the voter groups, answer length and each rule against the reference arm "
        "([outputs.md](outputs.md)).",
        "",
        "Rerunning on the same machine gives the same files byte for byte "
        "(`tests/reliability/test_workflow_faults.py` compares a killed and resumed run with an "
        "uninterrupted one); other machines or library builds may differ in training's last digits, "
        "and so in the answers.",
        "",
    ]
    return "\n".join(out)


def read_tables(config: dict) -> dict[str, pd.DataFrame]:
    """The run's tables that the page shows; welfare only where the electorate judged."""
    paths = layout(config)
    tables = {"win_rates": read_table(paths.table("win_rates"), WIN_RATE_COLUMNS)}
    for name in ("pair_accuracy", "arm_differences", "welfare"):
        if name != "welfare" or Path(paths.table(name)).exists():
            tables[name] = pd.read_csv(paths.table(name))
    return tables


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    config = load_config(*args.configfile, check=False)
    paths = layout(config)
    figure = Path(paths.plot(FIGURE_NAME, "png"))
    if not figure.exists():
        raise SystemExit(f"{figure}: no such figure; the run must be finished with png in plots.formats "
                         f"(now {config['plots']['formats']})")
    text = page(config, read_tables(config), ballots_lines(paths.log(paths.ballots())), code_version(Path.cwd()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(figure, args.figure)
    print(f"wrote {args.out} and {args.figure}")


if __name__ == "__main__":
    main()
