"""Faults in the judgments: malformed verdicts, empty files, tables with nothing to draw.

Issue 9, finding 6: with every verdict malformed the eval ended rc=0 and the plots then crashed
with ``IndexError: single positional indexer is out-of-bounds``. Now the win-rate step stops
with a message naming each model without a valid verdict and its judgment file; partially
malformed judgments give tables and figures of what exists, and the log says what is left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prefsweep.config import job_config
from prefsweep.io import atomic_write_jsonl, read_jsonl
from prefsweep.eval.table_io import GROUP_COLUMNS, WIN_RATE_COLUMNS, read_table, write_table
from tests.unit.conftest_eval import EvalRun, load_script

pytestmark = pytest.mark.reliability


def _malform(path: Path, n: int | None = None) -> int:
    """Make the first ``n`` (all) judgments of a file malformed, as an LLM judge whose text has
    no verdict writes them (``error`` in both orders); returns how many records the file has."""
    records = read_jsonl(path)
    for r in records[:n]:
        r["g1_winner"] = r["g2_winner"] = "error"
        r["g1_judgment"] = r["g2_judgment"] = "I cannot decide."
    atomic_write_jsonl(path, records)
    return len(records)


def _plots_argv(run: EvalRun, ev: Path, out: Path) -> list[str]:
    config = job_config(run.config, "plots")
    config["plots"].update(formats=["png"], dpi=50)
    return ["--config-json", json.dumps(config), "--win-rates", str(ev / "win_rates.csv"),
            "--groups", str(ev / "win_rates_groups.csv"), "--diffs", str(ev / "arm_differences.csv"),
            "--out-dir", str(out), "--no-wandb"]


@pytest.fixture
def run(tmp_path) -> EvalRun:
    return EvalRun(tmp_path / "run")


def test_all_verdicts_malformed_fails_naming_every_model(run, tmp_path, case):
    case.expect("win_rates fails: 'no valid verdicts for model X in FILE: N of N judgments malformed' for every "
                "model; no table written")
    sizes = {m: _malform(run.judgments[m]) for m in run.finals}
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as err:
        load_script("win_rates").main(run.argv(run.finals, out))
    msg = str(err.value)
    case.observe(msg.splitlines()[0] + " " + msg.splitlines()[1])
    for model, n in sizes.items():
        assert f"no valid verdicts for model {model} in {run.judgments[model]}: {n} of {n} judgments malformed" in msg
    assert not (out / "win_rates.csv").exists()


def test_one_model_malformed_names_only_that_model(run, tmp_path, case):
    bad = run.finals[3]
    case.expect(f"win_rates fails naming {bad} and its file only")
    n = _malform(run.judgments[bad])
    with pytest.raises(SystemExit) as err:
        load_script("win_rates").main(run.argv(run.finals, tmp_path / "eval"))
    msg = str(err.value)
    case.observe(msg)
    assert f"no valid verdicts for model {bad} in {run.judgments[bad]}: {n} of {n} judgments malformed" in msg
    assert [m for m in run.finals if m != bad and m in msg] == []


def test_empty_judgment_file_names_file_and_model(run, tmp_path, case):
    bad = run.finals[0]
    case.expect(f"win_rates fails: no valid verdicts for model {bad} in its (empty) judgment file")
    run.judgments[bad].write_text("")
    with pytest.raises(SystemExit) as err:
        load_script("win_rates").main(run.argv(run.finals, tmp_path / "eval"))
    msg = str(err.value)
    case.observe(msg)
    assert f"no valid verdicts for model {bad} in {run.judgments[bad]}: the file holds no judgments" in msg


def test_some_malformed_verdicts_give_tables_and_figures_and_a_log_line(run, tmp_path, case, caplog):
    bad = run.finals[1]
    case.expect(f"tables and figures made; {bad}'s errors counted and named in the win_rates log")
    n = _malform(run.judgments[bad], 3)
    ev = tmp_path / "eval"
    load_script("win_rates").main(run.argv(run.finals, ev))
    line = next(r.getMessage() for r in caplog.records if bad in r.getMessage())
    case.observe(line)
    assert f"model {bad} (judge electorate): 3 of {n} judgments malformed in {run.judgments[bad]}" in line
    row = read_table(ev / "win_rates.csv", WIN_RATE_COLUMNS).set_index("model_id").loc[bad]
    assert (row["errors"], row["n"]) == (3, n - 3) and np.isfinite(row["win_rate"])
    load_script("win_rates").main(run.argv(run.checkpoints + run.finals, ev, name="evolution"))
    out = tmp_path / "plots"
    assert load_script("plots").main([*_plots_argv(run, ev, out), "--evolution", str(ev / "evolution.csv")]) == 0
    assert json.loads((out / "done.json").read_text())["placeholders"] == {}


def _drop_win_rates(path: Path, columns, kinds=("dpo",)) -> None:
    """Blank the win rates of the final DPO models of a table, as the old code wrote them when
    every verdict of those models was malformed (n = 0, win rate NaN)."""
    table = read_table(path, columns)
    rows = table["kind"].isin(kinds)
    for c in ("win_rate", "ci_low", "ci_high", "flip_rate"):
        table.loc[rows, c] = np.nan
    table.loc[rows, ["wins", "ties", "losses", "n"]] = 0
    write_table(path, table, columns)


def test_table_without_win_rates_gives_figures_not_a_crash(run, tmp_path, case, caplog):
    """Tables whose final DPO models have no win rate (the old code's output for all-malformed
    verdicts, which crashed the evolution figure with IndexError): the plots step ends normally,
    draws what exists (zero point, checkpoints) and names what it left out."""
    case.expect("plots rc 0; figures of what exists; done.json and the log name the models left out")
    ev = tmp_path / "eval"
    load_script("win_rates").main(run.argv(run.finals, ev))
    load_script("win_rates").main(run.argv(run.checkpoints + run.finals, ev, name="evolution"))
    for name, columns in (("win_rates", WIN_RATE_COLUMNS), ("evolution", WIN_RATE_COLUMNS),
                          ("win_rates_groups", GROUP_COLUMNS)):
        _drop_win_rates(ev / f"{name}.csv", columns)
    out = tmp_path / "plots"
    assert load_script("plots").main([*_plots_argv(run, ev, out), "--evolution", str(ev / "evolution.csv")]) == 0
    done = json.loads((out / "done.json").read_text())
    case.observe(f"placeholders: {sorted(done['placeholders'])}; missing: {done['missing']['evolution']}")
    assert done["placeholders"] == {}
    dpo = next(m for m in run.finals if m.startswith("dpo-"))  # the base model is judged too
    for figure in ("win_rate_vs_pairs", "evolution", "groups"):
        assert any(dpo in m and "left out" in m for m in done["missing"][figure]), figure
    evolution = pd.read_csv(out / "evolution.csv")
    assert "final" not in set(evolution["element"]) and (evolution["element"] == "line").any()
    assert any(dpo in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_no_win_rate_at_all_gives_placeholders(run, tmp_path, case):
    case.expect("plots rc 0; every win-rate figure a placeholder that says why")
    ev = tmp_path / "eval"
    load_script("win_rates").main(run.argv(run.checkpoints + run.finals, ev, name="evolution"))
    load_script("win_rates").main(run.argv(run.finals, ev))
    kinds = ("dpo", "checkpoint", "sft")
    for name, columns in (("win_rates", WIN_RATE_COLUMNS), ("evolution", WIN_RATE_COLUMNS),
                          ("win_rates_groups", GROUP_COLUMNS)):
        _drop_win_rates(ev / f"{name}.csv", columns, kinds)
    out = tmp_path / "plots"
    assert load_script("plots").main([*_plots_argv(run, ev, out), "--evolution", str(ev / "evolution.csv")]) == 0
    done = json.loads((out / "done.json").read_text())
    case.observe("; ".join(f"{k}: {v}" for k, v in sorted(done["placeholders"].items())))
    assert set(done["placeholders"]) == {"win_rate_vs_pairs", "evolution", "groups"}
    assert all("win rate" in reason for reason in done["placeholders"].values())
