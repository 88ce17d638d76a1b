"""Figures from a small fixed win-rate table: the drawn values are the table's values.

Every check reads back either the CSV written next to a figure (the plotted values) or the
matplotlib artists themselves, and compares them with means computed here from the fixture.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from conftest_eval import EvalRun, load_script  # noqa: E402

from prefsweep.plots import registry  # noqa: E402
from prefsweep.plots.distortion import distortion_vs_pairs  # noqa: E402
from prefsweep.plots.evolution import evolution  # noqa: E402
from prefsweep.plots.inputs import FigureInputs  # noqa: E402
from prefsweep.plots.options import PlotOptions  # noqa: E402
from prefsweep.plots.result import PLOT_COLUMNS  # noqa: E402
from prefsweep.plots.rule_comparison import rule_comparison  # noqa: E402
from prefsweep.plots.save import save_result  # noqa: E402
from prefsweep.plots.seeds import seed_interval  # noqa: E402
from prefsweep.plots.style import series_color, series_label  # noqa: E402
from prefsweep.plots.welfare import welfare_vs_pairs  # noqa: E402
from prefsweep.plots.win_rate_vs_pairs import win_rate_vs_pairs  # noqa: E402
from prefsweep.config import ConfigError, job_config  # noqa: E402
from prefsweep.eval.welfare import WELFARE_COLUMNS  # noqa: E402
from prefsweep.eval.inputs import InputError  # noqa: E402
from prefsweep.eval.table_io import DIFF_COLUMNS, GROUP_COLUMNS, WIN_RATE_COLUMNS, read_table  # noqa: E402
from tests.conftest import REPO, load_config  # noqa: E402

SEEDS = (1, 2)
#: (arm, matching) -> {size: (n_pairs, [win rate per seed])}; prompt-matched sc has fewer pairs.
FINALS = {
    ("maj", "shared"): {64: (64, [0.45, 0.49]), 256: (256, [0.52, 0.58])},
    ("sc", "prompt"): {64: (11, [0.42, 0.44]), 256: (43, [0.47, 0.51])},
    ("sc", "size"): {64: (64, [0.50, 0.54]), 256: (256, [0.60, 0.62])},
}
#: The zero point is the SFT model (dpo.init: sft), judged against the reference answers.
ZERO_WIN = 0.40
#: Evaluated checkpoint steps, then the final model's step (its run_info global_step).
STEPS = {64: (4, 8), 256: (16, 32)}
REFERENCE_WORDS = 45.0


def options(**over) -> PlotOptions:
    """Options from the plots job's config slice of the default config (as the workflow passes it)."""
    cfg = job_config(load_config(), "plots")
    cfg["plots"].update(over)
    return PlotOptions.from_config(cfg)


OPTS = options()


def build_all(win_rates, groups, diffs, evolution_table, opts, reference_arm, only=registry.FIGURES,
              accuracy_groups=None):
    """The figures of the win-rate tables named in ``only``, prepared and built as the plots job does."""
    inputs = FigureInputs.prepare(win_rates, groups, diffs, reference_arm, evolution=evolution_table,
                                  accuracy_groups=accuracy_groups)
    return registry.build(inputs, opts, only=only)


def as_read(rows: list[dict], columns, tmp: Path, name: str) -> pd.DataFrame:
    """``rows`` as the plots step sees them: written with the table's columns, read back with
    prefsweep.eval.table_io.read_table."""
    path = tmp / f"{name}.csv"
    pd.DataFrame(rows).reindex(columns=list(columns)).to_csv(path, index=False)
    return read_table(path, columns)


def _row(model_id, kind, arm="", matching="", size=None, n_pairs=None, seed=None, step=None, win=0.5,
         flip=0.1, words=40.0):
    return dict(model_id=model_id, kind=kind, arm=arm, matching=matching, size=size, n_pairs=n_pairs, seed=seed,
                step=step, zero_point=model_id == "sft", baseline="reference", judge="electorate",
                judge_prompt="utility", wins=0, ties=0, losses=0, errors=0, n=48, win_rate=win, ci_low=win - 0.07,
                ci_high=win + 0.07, flip_rate=flip, mean_words=words, baseline_mean_words=REFERENCE_WORDS)


def win_rate_rows() -> list[dict]:
    """In the win-rate step's format (prefsweep.eval.tables): the zero point (sft) only on the lines;
    final models at their last step, checkpoints before it."""
    rows = [
        _row("base", "base", win=0.05, flip=0.2, words=30.0),
        _row("baseline-pythia", "baseline", win=0.55, flip=0.05, words=50.0),
    ]
    for (arm, matching), cells in FINALS.items():
        rows.append(_row("sft", "sft", arm, matching, 0, 0, None, win=ZERO_WIN, words=40.0))
        for size, (n_pairs, wins) in cells.items():
            for seed, win in zip(SEEDS, wins):
                mid = f"dpo-{arm}-{matching}-n{size}-seed{seed}"
                rows.append(_row(mid, "dpo", arm, matching, size, n_pairs, seed, STEPS[size][-1], win=win,
                                 flip=0.1 + 0.01 * seed, words=40.0 + size / 16 + seed))
                for k, step in enumerate(STEPS[size][:-1]):
                    # Checkpoints climb towards the final win rate.
                    w = win - 0.02 * (len(STEPS[size]) - 1 - k)
                    rows.append(_row(f"{mid}-step{step}", "checkpoint", arm, matching, size, n_pairs, seed,
                                     step, win=round(w, 4)))
    return rows


GROUP_OFFSET = {"concise": -0.1, "thorough": 0.1}


def group_rows(wr: pd.DataFrame) -> list[dict]:
    rows = []
    for _, r in wr[(wr["kind"].isin(["dpo", "sft"])) & (wr["arm"] != "")].iterrows():
        for group, off in GROUP_OFFSET.items():
            w = r["win_rate"] + off
            rows.append({**r.to_dict(), "group": group, "win_rate": w, "ci_low": w - 0.1, "ci_high": w + 0.1})
    return rows


def diff_rows() -> list[dict]:
    """As prefsweep.eval.tables.arm_differences writes it: sizes > 0 only."""
    return [dict(judge="electorate", baseline="reference", arm="sc", matching=m, ref_arm="maj", size=s,
                 seeds="1;2", n_seeds=2, n_questions=48, win_rate=0.5 + d, ref_win_rate=0.5, diff=d,
                 ci_low=d - 0.05, ci_high=d + 0.05, seed_sd=0.01)
            for m, vals in {"prompt": (-0.04, -0.06), "size": (0.05, 0.06)}.items()
            for s, d in zip((64, 256), vals)]


#: Welfare table: utilitarian welfare = win rate * 10 - 2 (any function of the fixture will do),
#: per group with an offset, egalitarian the lowest group, distortion 2 - win rate.
WELFARE_GROUPS = {"concise": -0.5, "thorough": 0.3}


def welfare_rows(wr: pd.DataFrame) -> list[dict]:
    """As prefsweep.eval.welfare writes it: every row of the win-rate table (no checkpoints) x measure."""
    rows = []
    for _, r in wr[wr["kind"] != "checkpoint"].iterrows():
        meta = {c: r[c] for c in WELFARE_COLUMNS[:10]}
        w = r["win_rate"] * 10 - 2
        values = [("utilitarian", "", w), ("egalitarian", "", w + min(WELFARE_GROUPS.values()))]
        values += [("group", g, w + off) for g, off in WELFARE_GROUPS.items()]
        values.append(("distortion", "", 2 - r["win_rate"]))
        for measure, group, v in values:
            rows.append({**meta, "measure": measure, "group": group, "n_questions": 48, "value": v,
                         "ci_low": v - 0.3, "ci_high": v + 0.3, "vs_zero": 0.0, "vs_zero_ci_low": 0.0,
                         "vs_zero_ci_high": 0.0})
    return rows


def t_interval(values, ci=95.0):
    v = np.asarray(values, float)
    half = stats.t.ppf(0.5 + ci / 200, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return v.mean() - half, v.mean() + half


@pytest.fixture(scope="module")
def welfare(tables, tmp_path_factory):
    return as_read(welfare_rows(tables[0]), WELFARE_COLUMNS, tmp_path_factory.mktemp("welfare"), "welfare")


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tables")
    wr = as_read(win_rate_rows(), WIN_RATE_COLUMNS, tmp, "win_rates")
    return wr, as_read(group_rows(wr), GROUP_COLUMNS, tmp, "groups"), as_read(diff_rows(), DIFF_COLUMNS, tmp, "diffs")


def _line(ax, gid):
    found = [ln for ln in ax.lines if ln.get_gid() == gid]
    assert len(found) == 1, (gid, [ln.get_gid() for ln in ax.lines])
    return found[0]


# --------------------------------------------------------------------------------------------


def test_seed_interval_is_student_t():
    mean, lo, hi, k = seed_interval([0.45, 0.49, 0.52], ci=95)
    assert k == 3 and mean == pytest.approx(0.48666, abs=1e-4)
    assert (lo, hi) == pytest.approx(t_interval([0.45, 0.49, 0.52]))
    assert math.isnan(seed_interval([0.4], 95)[1]) and seed_interval([], 95)[3] == 0


def test_win_rate_vs_pairs_values(tables):
    wr, _, diffs = tables
    res = win_rate_vs_pairs(wr, diffs, OPTS, reference_arm="maj")
    data = res.data
    ax = res.figure.axes[0]
    lines = data[(data["panel"] == "a") & (data["element"] == "line")]
    axis_zero = min(ax.get_xticks())
    # One line per arm x matching; the reference arm once, as "maj (shared)".
    assert sorted(lines["label"].unique()) == ["maj (shared)", "sc (prompt)", "sc (size)"]
    for (arm, matching), cells in FINALS.items():
        label = series_label(arm, matching)
        s = lines[lines["label"] == label].sort_values("x")
        # x = actual pairs (prompt-matched sc at 11 and 43, not 64 and 256), zero point first.
        assert list(s["x"]) == [0, *[n for n, _ in cells.values()]]
        assert list(s["y"]) == pytest.approx([ZERO_WIN, *[np.mean(w) for _, w in cells.values()]])
        assert list(s["n_models"]) == [1, 2, 2]
        for (_, r), (_, wins) in zip(s.iloc[1:].iterrows(), cells.values()):
            assert (r["y_low"], r["y_high"]) == pytest.approx(t_interval(wins))
            assert r["interval"] == "t95 over seeds"
        assert (s.iloc[0]["y_low"], s.iloc[0]["interval"]) == (pytest.approx(ZERO_WIN - 0.07), "model CI")
        # The artist: starts at the zero point's position, left of every positive x.
        line = _line(ax, f"series:{label}")
        xd, yd = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        assert xd[0] == pytest.approx(axis_zero) and xd[0] < xd[1:].min()
        assert list(xd[1:]) == [n for n, _ in cells.values()]
        assert list(yd) == pytest.approx(list(s["y"]))
    assert ax.xaxis.get_major_formatter()(axis_zero, 0) == "0"
    # Horizontal lines: SFT, base (always evaluated) and the configured baseline at their win rates.
    hl = data[data["element"] == "hline"].set_index("label")["y"]
    assert hl["SFT (0.40)"] == pytest.approx(0.40) and hl["pythia (0.55)"] == pytest.approx(0.55)
    assert hl["tie with reference answers (0.5)"] == 0.5
    assert np.asarray(_line(ax, "hline:sft").get_ydata(), float) == pytest.approx([0.40, 0.40])
    assert np.asarray(_line(ax, "hline:baseline-pythia").get_ydata(), float) == pytest.approx([0.55, 0.55])
    assert hl["base model (0.05)"] == pytest.approx(0.05)
    assert np.asarray(_line(ax, "hline:base").get_ydata(), float) == pytest.approx([0.05, 0.05])
    assert ax.get_ylabel() == "win rate vs reference answers"
    assert ax.get_xlabel() == "training pairs (log scale)"
    # Panel b: the difference table as drawn.
    b = data[(data["panel"] == "b") & (data["element"] == "line")]
    exp = diffs.set_index(["matching", "size"])["diff"]
    assert len(b) == len(exp)
    for _, r in b.iterrows():
        assert r["y"] == pytest.approx(exp[(r["matching"], r["size"])])
        assert (r["y_low"], r["y_high"], r["n_models"]) == pytest.approx((r["y"] - 0.05, r["y"] + 0.05, 2))
    ax_b = res.figure.axes[1]
    assert ax_b.get_ylabel() == "win-rate difference" and ax_b.get_title(loc="left") == "b   sc − maj at matched size"
    # No size-0 rows in the difference table: a plain log axis, no "0" tick.
    assert min(ax_b.get_xticks()) >= 10


def test_evolution_values(tables):
    wr = tables[0]
    res = evolution(wr[wr["kind"] != "checkpoint"], wr[wr["kind"].isin(["checkpoint", "dpo"])], OPTS)
    data = res.data
    assert set(data["panel"]) == {"maj (shared)", "sc (prompt)", "sc (size)"}
    for (arm, matching), cells in FINALS.items():
        label = series_label(arm, matching)
        for size, (_, wins) in cells.items():
            s = data[(data["panel"] == label) & (data["element"] == "line") & (data["size"] == size)]
            steps = STEPS[size]
            assert list(s["x"]) == [0, *steps]
            exp = [ZERO_WIN] + [np.mean([w - 0.02 * (len(steps) - 1 - k) for w in wins]) for k in range(len(steps))]
            assert list(s["y"]) == pytest.approx(exp, abs=1e-4)
            fin = data[(data["panel"] == label) & (data["element"] == "final") & (data["size"] == size)]
            assert fin[["x", "y"]].values.tolist() == [pytest.approx([steps[-1], np.mean(wins)])]
            ax = next(a for a in res.figure.axes if a.get_title(loc="left") == label)
            xd = np.asarray(_line(ax, f"evolution:{label}:n{size}").get_xdata(), float)
            # Step 0 (the zero point) at the "0" tick of the broken log axis, then the steps.
            assert xd[0] == pytest.approx(min(ax.get_xticks())) and list(xd[1:]) == pytest.approx(steps)


def test_welfare_values(welfare):
    res = welfare_vs_pairs(welfare, OPTS)
    assert res.placeholder is None and not res.missing
    d = res.data
    panels = ["a:utilitarian", "b:egalitarian", "c:group:concise", "d:group:thorough"]
    assert list(dict.fromkeys(d["panel"])) == panels
    offsets = [0.0, min(WELFARE_GROUPS.values()), *WELFARE_GROUPS.values()]
    for panel, off in zip(panels, offsets):
        for (arm, matching), cells in FINALS.items():
            s = d[(d["panel"] == panel) & (d["label"] == series_label(arm, matching))].sort_values("x")
            assert list(s["x"]) == [0, *[n for n, _ in cells.values()]]
            exp = [ZERO_WIN * 10 - 2 + off, *[np.mean(w) * 10 - 2 + off for _, w in cells.values()]]
            assert list(s["y"]) == pytest.approx(exp)
            lo, hi = t_interval(np.asarray(cells[256][1]) * 10 - 2 + off)
            assert (s.iloc[-1]["y_low"], s.iloc[-1]["y_high"]) == pytest.approx((lo, hi))  # not clipped to [0, 1]
            assert (s.iloc[0]["y_low"], s.iloc[0]["interval"]) == (pytest.approx(exp[0] - 0.3), "model CI")
    assert [ax.get_title(loc="left") for ax in res.figure.axes[:4]] == [
        "a   all voters (utilitarian)", "b   worst-off group (egalitarian)", "c   group concise", "d   group thorough"]
    # SFT is the zero point here: on the lines, not a horizontal line; the base model is off the lines.
    assert set(d.loc[d["element"] == "hline", "label"]) == {"pythia", "base model"}


def test_distortion_values(welfare):
    res = distortion_vs_pairs(welfare, OPTS)
    d = res.data
    lines = d[d["element"] == "line"]
    for (arm, matching), cells in FINALS.items():
        s = lines[lines["label"] == series_label(arm, matching)].sort_values("x")
        assert list(s["y"]) == pytest.approx([2 - ZERO_WIN, *[2 - np.mean(w) for _, w in cells.values()]])
    assert d.loc[d["label"] == "best achievable (1)", "y"].tolist() == [1.0]
    # An infinite distortion (answers at the bottom of every voter's scale) is left out and named.
    inf = welfare.copy()
    inf.loc[(inf["model_id"] == "dpo-sc-size-n256-seed1") & (inf["measure"] == "distortion"), "value"] = np.inf
    res = distortion_vs_pairs(inf, OPTS)
    assert any("dpo-sc-size-n256-seed1" in m for m in res.missing)
    s = res.data[(res.data["label"] == "sc (size)") & (res.data["size"] == 256)]
    assert s["y"].item() == pytest.approx(2 - 0.62) and s["n_models"].item() == 1


def test_welfare_placeholders(tables, tmp_path):
    empty = _empty_table(tmp_path / "welfare.csv", WELFARE_COLUMNS)
    inputs = FigureInputs.prepare(*tables, "maj", welfare=empty)
    results = registry.build(inputs, OPTS, only=registry.WELFARE_FIGURES)
    assert [r.name for r in results] == list(registry.WELFARE_FIGURES)
    for r in results:
        assert r.placeholder and r.data.empty


def test_cli_draws_the_welfare_figures_when_given(tables, welfare, tmp_path):
    wr, groups, diffs = tables
    paths = {name: _write(df, tmp_path / f"{name}.csv") for name, df in {
        "win_rates": wr[wr["kind"] != "checkpoint"], "groups": groups, "diffs": diffs, "welfare": welfare}.items()}
    config = job_config(load_config(), "plots")
    config["plots"].update(formats=["png"], dpi=50)
    argv = ["--config-json", json.dumps(config), "--win-rates", str(paths["win_rates"]), "--groups",
            str(paths["groups"]), "--diffs", str(paths["diffs"]), "--out-dir", str(tmp_path / "out"), "--no-wandb"]
    with pytest.raises(SystemExit):  # a welfare figure without the welfare table
        load_script("plots").main([*argv, "--only", "welfare"])
    assert load_script("plots").main([*argv, "--welfare", str(paths["welfare"]), "--only", "length", *registry.WELFARE_FIGURES]) == 0
    done = json.loads((tmp_path / "out" / "done.json").read_text())
    assert set(done["figures"]) == {"length", *registry.WELFARE_FIGURES} and done["inputs"]["welfare"]
    for name in registry.WELFARE_FIGURES:
        assert (tmp_path / "out" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert list(pd.read_csv(tmp_path / "out" / f"{name}.csv").columns) == list(PLOT_COLUMNS)


def test_groups_values(cli_out):
    d = pd.read_csv(cli_out / "groups.csv", keep_default_na=False, na_values=[""])
    bars = d[d["element"] == "bar"]
    assert set(bars["size"]) == {256}  # the largest size
    assert len(bars) == len(FINALS) * len(GROUP_OFFSET)
    for (arm, matching), cells in FINALS.items():
        for group, off in GROUP_OFFSET.items():
            r = bars[(bars["label"] == series_label(arm, matching)) & (bars["group"] == group)]
            assert r["y"].item() == pytest.approx(np.mean(cells[256][1]) + off)
            lo, hi = t_interval(np.asarray(cells[256][1]) + off)
            assert (r["y_low"].item(), r["y_high"].item()) == pytest.approx((max(lo, 0), min(hi, 1)))  # clipped
    per_group = d[d["panel"] == "b:concise"]
    sc = per_group[per_group["label"] == "sc (prompt)"].sort_values("x")
    assert list(sc["x"]) == [0, 11, 43]
    assert list(sc["y"]) == pytest.approx([ZERO_WIN - 0.1, 0.43 - 0.1, 0.49 - 0.1])


def test_length_and_flip_values(cli_out, tables):
    wr = tables[0]
    d = pd.read_csv(cli_out / "length.csv", keep_default_na=False, na_values=[""])
    a = d[(d["panel"] == "a") & (d["element"] == "line") & (d["label"] == "maj (shared)")].sort_values("x")
    assert list(a["y"]) == pytest.approx([40.0, 40 + 64 / 16 + 1.5, 40 + 256 / 16 + 1.5])
    pts = d[(d["panel"] == "b") & (d["element"] == "point")]
    assert len(pts) == len(wr[(wr["kind"] == "dpo") & (wr["size"] > 0)]) + 3  # + one zero point per line
    mean_flip = d[(d["panel"] == "b") & (d["element"] == "line") & (d["label"] == "sc (size)")].sort_values("x")
    assert list(mean_flip["y"]) == pytest.approx([0.1, 0.115, 0.115])
    hl = d[(d["panel"] == "b") & (d["element"] == "hline")]
    assert sorted(hl["y"]) == pytest.approx([0.05, 0.1, 0.2])  # baseline, SFT, base
    hl_a = d[(d["panel"] == "a") & (d["element"] == "hline")].set_index("label")["y"]
    assert hl_a.to_dict() == {"SFT (40)": 40.0, "base model (30)": 30.0, "pythia (50)": 50.0,
                              "reference answers (baseline)": REFERENCE_WORDS}


def _empty_table(path: Path, columns) -> pd.DataFrame:
    """A table with nothing in it, as prefsweep.eval.table_io writes it: the header line only."""
    path.write_text(",".join(columns) + "\n")
    return read_table(path, columns)


def test_empty_inputs_give_placeholders(tmp_path):
    empty = _empty_table(tmp_path / "win_rates.csv", WIN_RATE_COLUMNS)
    groups = _empty_table(tmp_path / "groups.csv", GROUP_COLUMNS)
    diffs = _empty_table(tmp_path / "diffs.csv", DIFF_COLUMNS)
    results = build_all(empty, groups, diffs, None, options(formats=["png"]), "maj")
    assert [r.name for r in results] == list(registry.FIGURES)
    for r in results:
        assert r.placeholder and r.data.empty
        texts = [t.get_text() for ax in r.figure.axes for t in ax.texts if t.get_gid() == "placeholder"]
        assert texts and texts[0] == r.placeholder
    save_result(results[1], tmp_path / "out", options(formats=["png", "pdf"], dpi=50))
    assert (tmp_path / "out" / "evolution.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "out" / "evolution.pdf").read_bytes()[:5] == b"%PDF-"
    assert list(pd.read_csv(tmp_path / "out" / "evolution.csv").columns) == list(PLOT_COLUMNS)


def test_tables_that_are_not_the_writers_are_errors(tmp_path):
    with pytest.raises(InputError, match="missing.csv: table not found"):
        read_table(tmp_path / "missing.csv", WIN_RATE_COLUMNS)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty.csv: empty file, no header"):
        read_table(tmp_path / "empty.csv", GROUP_COLUMNS)
    (tmp_path / "old.csv").write_text(",".join(c for c in WIN_RATE_COLUMNS if c != "zero_point") + ",mean_length\n")
    with pytest.raises(InputError, match=r"old.csv: columns differ .*missing \['zero_point'\], unexpected \['mean_length'\]"):
        read_table(tmp_path / "old.csv", WIN_RATE_COLUMNS)


def test_rows_without_values_are_left_out_not_a_crash(tables):
    """Every model without a win rate (no valid verdict): placeholders naming what is missing."""
    wr, groups, diffs = tables
    nan = wr.assign(win_rate=np.where(wr["kind"].isin(["dpo", "checkpoint"]), np.nan, wr["win_rate"]),
                    flip_rate=np.nan, ci_low=np.nan, ci_high=np.nan)
    results = {r.name: r for r in build_all(nan, groups.assign(win_rate=np.nan), diffs.assign(diff=np.nan),
                                               nan, OPTS, "maj")}
    assert results["groups"].placeholder and results["evolution"].placeholder
    assert any("dpo-maj-shared-n64-seed1" in m for m in results["win_rate_vs_pairs"].missing)
    # Only the zero point is left on the lines: drawn, at x = 0.
    lines = results["win_rate_vs_pairs"].data
    assert set(lines.loc[lines["element"] == "line", "x"]) == {0.0}
    assert results["length"].placeholder is None and results["length"].missing


def test_no_checkpoints_placeholder(tables):
    wr = tables[0]
    res = evolution(wr[wr["kind"] != "checkpoint"], None, OPTS)
    assert res.placeholder and "checkpoint" in res.placeholder


def _write(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def cli_out(tables, tmp_path_factory):
    """All four figures written by the CLI, config given as JSON text (as the workflow does)."""
    wr, groups, diffs = tables
    tmp = tmp_path_factory.mktemp("cli")
    paths = {name: _write(df, tmp / f"{name}.csv") for name, df in {
        "win_rates": wr[wr["kind"] != "checkpoint"], "groups": groups, "diffs": diffs,
        "evolution": wr[wr["kind"].isin(["checkpoint", "dpo"])]}.items()}
    config = job_config(load_config(), "plots")
    config["plots"].update(formats=["png"], dpi=50)  # PDF: placeholder test
    out = tmp / "plots"
    rc = load_script("plots").main([
        "--config-json", json.dumps(config), "--win-rates", str(paths["win_rates"]), "--groups", str(paths["groups"]),
        "--diffs", str(paths["diffs"]), "--evolution", str(paths["evolution"]), "--out-dir", str(out), "--no-wandb"])
    assert rc == 0
    return out


def test_cli_writes_every_file(cli_out):
    for name in registry.FIGURES:
        assert (cli_out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert list(pd.read_csv(cli_out / f"{name}.csv").columns) == list(PLOT_COLUMNS)
    assert not list(cli_out.glob(".*tmp*"))  # atomic writes leave no temporaries
    done = json.loads((cli_out / "done.json").read_text())
    assert set(done["figures"]) == set(registry.FIGURES) and done["placeholders"] == {}
    assert all(done["inputs"].values())  # hashes of the four inputs
    # The CSV on disk is the plotted table: prompt-matched sc at its real pair counts.
    back = pd.read_csv(cli_out / "win_rate_vs_pairs.csv")
    sc = back[(back["label"] == "sc (prompt)") & (back["panel"] == "a")].sort_values("x")
    assert list(sc["x"]) == [0, 11, 43]
    assert list(sc["y"]) == pytest.approx([ZERO_WIN, 0.43, 0.49])
    ev = pd.read_csv(cli_out / "evolution.csv")  # checkpoints came from --evolution
    assert set(ev["element"]) == {"line", "final", "hline"}


def test_real_run_tables_to_figures(tmp_path):
    """A real small run: the electorate's judgments -> scripts/win_rates.py main() (win rates and
    evolution tables) -> scripts/plots.py main() -> figures whose values are the tables'."""
    run = EvalRun(tmp_path / "run")
    ev = tmp_path / "eval"
    win_rates = load_script("win_rates")
    win_rates.main(run.argv(run.finals, ev))
    win_rates.main(run.argv(run.checkpoints + run.finals, ev, name="evolution"))
    out = tmp_path / "plots"
    config = job_config(run.config, "plots")
    config["plots"].update(formats=["png"], dpi=50)
    rc = load_script("plots").main([
        "--config-json", json.dumps(config), "--win-rates", str(ev / "win_rates.csv"),
        "--groups", str(ev / "win_rates_groups.csv"), "--diffs", str(ev / "arm_differences.csv"),
        "--evolution", str(ev / "evolution.csv"), "--out-dir", str(out), "--no-wandb"])
    assert rc == 0
    done = json.loads((out / "done.json").read_text())
    assert done["placeholders"] == {} and not done.get("missing")
    table = read_table(ev / "win_rates.csv", WIN_RATE_COLUMNS)
    evo = read_table(ev / "evolution.csv", WIN_RATE_COLUMNS)
    # Figure 1: each point is the mean over seeds of the table's rows of that cell.
    fig1 = pd.read_csv(out / "win_rate_vs_pairs.csv", keep_default_na=False, na_values=[""])
    a = fig1[(fig1["panel"] == "a") & (fig1["element"] == "line")]
    expected = table[table.arm != ""].groupby(["arm", "matching", "size"])[["n_pairs", "win_rate"]].mean()
    assert len(a) == len(expected)
    for _, r in a.iterrows():
        cell = expected.loc[(r["arm"], r["matching"], r["size"])]
        assert (r["x"], r["y"]) == pytest.approx((cell["n_pairs"], cell["win_rate"]))
    b = fig1[(fig1["panel"] == "b") & (fig1["element"] == "line")]
    diffs = read_table(ev / "arm_differences.csv", DIFF_COLUMNS)
    assert sorted(b["y"]) == pytest.approx(sorted(diffs["diff"]))
    # Figure 2: every curve ends at the final models' real step, with their mean win rate.
    fig2 = pd.read_csv(out / "evolution.csv", keep_default_na=False, na_values=[""])
    finals = evo[evo.kind == "dpo"].groupby(["arm", "matching", "size"]).agg(step=("step", "mean"),
                                                                             y=("win_rate", "mean"))
    for (arm, matching, size), f in finals.iterrows():
        cell = fig2[(fig2["arm"] == arm) & (fig2["matching"] == matching) & (fig2["size"] == size)]
        line = cell[cell["element"] == "line"].sort_values("x")
        star = cell[cell["element"] == "final"]
        assert line["x"].iloc[-1] == f["step"] == star["x"].item()
        assert line["y"].iloc[-1] == pytest.approx(f["y"]) == star["y"].item()
        assert line["x"].iloc[0] == 0 and len(line) == 3  # zero point, the kept checkpoint, the final
    # Figure 3 and 4 draw the groups table and the answer lengths.
    fig3 = pd.read_csv(out / "groups.csv", keep_default_na=False, na_values=[""])
    groups = read_table(ev / "win_rates_groups.csv", GROUP_COLUMNS)
    assert set(fig3.loc[fig3["element"] == "bar", "group"]) == set(groups.group)
    fig4 = pd.read_csv(out / "length.csv", keep_default_na=False, na_values=[""])
    la = fig4[(fig4["panel"] == "a") & (fig4["element"] == "line")]
    words = table[table.arm != ""].groupby(["arm", "matching", "size"])["mean_words"].mean()
    assert sorted(la["y"]) == pytest.approx(sorted(words))


def test_options_come_from_the_config_slice():
    cfg = job_config(load_config(), "plots")
    opts = PlotOptions.from_config(cfg)
    assert list(PlotOptions.__dataclass_fields__) == list(cfg["plots"])  # the schema's keys, no others
    assert opts.formats == tuple(cfg["plots"]["formats"]) and opts.interval_name == f"t{cfg['plots']['ci']:g} over seeds"
    for key in cfg["plots"]:
        broken = json.loads(json.dumps(cfg))
        del broken["plots"][key]
        with pytest.raises(ConfigError, match=f"config key plots.{key}: missing"):
            PlotOptions.from_config(broken)
    broken = json.loads(json.dumps(cfg))
    broken["plots"]["colour"] = "red"
    with pytest.raises(ConfigError, match=r"plots: unknown key\(s\) \['colour'\]"):
        PlotOptions.from_config(broken)
    with pytest.raises(ConfigError, match="config key plots: missing"):
        PlotOptions.from_config({})


def test_no_default_options():
    """Options are passed explicitly: no PlotOptions() default, no field defaults."""
    import dataclasses
    import importlib
    import inspect
    import pkgutil

    import prefsweep.plots

    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(PlotOptions))
    functions = [(f"{info.name}.{name}", fn) for info in pkgutil.iter_modules(prefsweep.plots.__path__)
                 for name, fn in inspect.getmembers(importlib.import_module(f"prefsweep.plots.{info.name}"),
                                                    inspect.isfunction)]
    assert len(functions) > 50  # every module of the package, not only one
    for name, fn in functions:
        for param in inspect.signature(fn).parameters.values():
            assert not isinstance(param.default, PlotOptions), (name, param.name)
        assert "ci" not in inspect.signature(fn).parameters or \
            inspect.signature(fn).parameters["ci"].default is inspect.Parameter.empty, name


def test_mixed_comparisons_fail(tables):
    wr = tables[0].copy()
    wr.loc[wr.index[:2], "baseline"] = "sft"
    with pytest.raises(ValueError, match="mixes judges/baselines"):
        win_rate_vs_pairs(wr, None, OPTS, "maj")


def test_plots_wandb_disabled_imports_nothing(monkeypatch):
    import sys

    from prefsweep.tracking import log_plots_to_wandb

    monkeypatch.delitem(sys.modules, "wandb", raising=False)
    assert log_plots_to_wandb({"experiment": "t", "wandb": {"mode": "disabled"}}, {}, {}, "unused") is None
    assert "wandb" not in sys.modules


@pytest.mark.parametrize("caption", sorted((REPO / "workflow" / "report").glob("*.rst")), ids=lambda p: p.name)
def test_report_captions_render(caption, default_config):
    """Each caption is valid reStructuredText after Snakemake's Jinja2 pass, for both baselines."""
    import copy

    jinja2 = pytest.importorskip("jinja2")
    from docutils.core import publish_parts

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    for baseline in ("zero", "reference"):
        config = copy.deepcopy(default_config)
        config["eval"]["baseline"] = baseline

        class Snakemake:
            pass

        Snakemake.config = config
        text = env.from_string(caption.read_text()).render(snakemake=Snakemake, categories={}, files={})
        assert "{{" not in text and "{%" not in text
        publish_parts(text, writer="html", settings_overrides={"halt_level": 2, "report_level": 5})


def test_groups_figure_falls_back_to_per_group_accuracy(tables, tmp_path):
    """An LLM judge gives no per-group verdicts: the groups figure shows each group's held-out
    pair accuracy (eval/pair_accuracy_groups.csv) at the models' training pairs instead."""
    from prefsweep.eval.pair_accuracy import GROUP_TABLE_COLUMNS

    wr = tables[0]
    no_groups = _empty_table(tmp_path / "groups.csv", GROUP_COLUMNS)
    finals = wr[(wr["kind"] == "dpo") | wr["zero_point"]].drop_duplicates("model_id")
    rows = [{"model_id": m, "group": g, "n_pairs": 10, "n_prompts": 4, "accuracy": acc, "ci_low": 0.0, "ci_high": 1.0,
             "kind": k, "arm": a, "matching": mt, "size": s, "seed": sd}
            for m, k, a, mt, s, sd in zip(finals["model_id"], finals["kind"], finals["arm"], finals["matching"],
                                          finals["size"], finals["seed"])
            for g, acc in (("normal", 0.6), ("expert", 0.3))]
    acc = as_read(rows, GROUP_TABLE_COLUMNS, tmp_path, "pair_accuracy_groups")
    (result,) = build_all(wr, no_groups, tables[2], None, OPTS, "maj", only=["groups"], accuracy_groups=acc)
    assert not result.placeholder and "held-out pair accuracy" in result.notes[0]
    bars = result.data[result.data["element"] == "bar"]
    assert set(bars["group"]) == {"normal", "expert"}
    assert bars.groupby("group")["y"].mean().to_dict() == pytest.approx({"normal": 0.6, "expert": 0.3})
    assert result.figure.axes[0].get_ylabel() == "held-out pair accuracy"
    # with per-group verdicts the judge's win rates stay the figure
    (judged,) = build_all(wr, tables[1], tables[2], None, OPTS, "maj", only=["groups"], accuracy_groups=acc)
    assert not judged.notes and set(judged.data["group"].dropna()) - {""} != {"normal", "expert"}
    empty = _empty_table(tmp_path / "pag.csv", GROUP_TABLE_COLUMNS)
    (none,) = build_all(wr, no_groups, tables[2], None, OPTS, "maj", only=["groups"], accuracy_groups=empty)
    assert none.placeholder


# -- several inits and rules ---------------------------------------------------------------------

RULE_DIFFS = {"borda": 0.04, "copeland": -0.02, "maximal_lottery": 0.01}


def study_tables(tmp: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Win rates and arm differences of a study: dpo.init [sft, base] x maj + 3 rules, one seed;
    every model judged against SFT (the first init), base's lines start at base's win rate."""
    zero = {"sft": 0.5, "base": 0.2}
    rows = [_row("sft", "sft", win=0.5), _row("base", "base", win=0.2)]  # off-line copies are not written
    rows = []
    diffs = []
    for init, z in zero.items():
        for arm, matchings in [("maj", ["shared"])] + [(r, ["prompt", "size"]) for r in RULE_DIFFS]:
            for m in matchings:
                rows.append({**_row(init, init, arm, m, 0, 0, win=z), "init": init, "zero_point": True,
                             "baseline": "sft"})
                for size in (64, 256):
                    win = z + 0.1 + RULE_DIFFS.get(arm, 0.0) + (0.05 if init == "base" else 0.0)
                    rows.append({**_row(f"dpo-{init}-{arm}-{m}-n{size}-seed1", "dpo", arm, m, size, size, 1,
                                        size // 8, win=win), "init": init, "zero_point": False, "baseline": "sft"})
                    if arm != "maj":
                        d = RULE_DIFFS[arm] + (0.01 if m == "size" else 0.0)
                        diffs.append(dict(judge="electorate", baseline="sft", init=init, arm=arm, matching=m,
                                          ref_arm="maj", size=size, seeds="1", n_seeds=1, n_questions=48,
                                          win_rate=win, ref_win_rate=win - d, diff=d, ci_low=d - 0.03,
                                          ci_high=d + 0.03, seed_sd=float("nan")))
    return as_read(rows, WIN_RATE_COLUMNS, tmp, "wr"), as_read(diffs, DIFF_COLUMNS, tmp, "diffs")


def test_inits_are_lines_of_their_own_and_rules_are_compared(tmp_path):
    wr, diffs = study_tables(tmp_path)
    res = build_all(wr, wr.iloc[0:0].assign(group="")[list(GROUP_COLUMNS)], diffs, None, OPTS, "maj",
                      only=["win_rate_vs_pairs", "rule_comparison"])
    fig1, rules = res
    a = fig1.data[(fig1.data["panel"] == "a") & (fig1.data["element"] == "line")]
    # a line per init x arm x matching, each starting at its own init model
    assert a["label"].nunique() == 2 * 7
    for init, z in (("sft", 0.5), ("base", 0.2)):
        start = a[(a["label"] == f"borda (prompt), from {init}") & (a["x"] == 0)]
        assert list(start["y"]) == pytest.approx([z])
    ax = fig1.figure.axes[0]
    dashed = {ln.get_gid(): ln.get_linestyle() for ln in ax.lines if str(ln.get_gid()).startswith("series:")}
    assert dashed["series:borda (prompt), from sft"] == "-" and dashed["series:borda (prompt), from base"] == "--"
    assert series_color("copeland|base", "prompt") == series_color("copeland", "prompt")
    assert series_color("borda", "prompt") != series_color("copeland", "prompt")
    # panel b: every rule, matching and init against maj
    b = fig1.data[(fig1.data["panel"] == "b") & (fig1.data["element"] == "line")]
    assert b["label"].nunique() == 3 * 2 * 2
    # the rule comparison: a panel per size, a point per rule x matching x init at its difference
    pts = rules.data[rules.data["element"] == "point"]
    assert set(pts["panel"]) == {"N=64", "N=256"} and len(pts) == 2 * 3 * 2 * 2
    got = pts.set_index(["panel", "arm", "matching"])["y"]
    assert got[("N=64", "copeland|base", "prompt")] == pytest.approx(-0.02)
    assert got[("N=256", "maximal_lottery|sft", "size")] == pytest.approx(0.02)
    assert set(pts["x"]) == {0.0, 1.0, 2.0}  # borda, copeland, maximal_lottery in RULE_ORDER
    assert [t.get_text() for t in rules.figure.axes[0].get_xticklabels()] == list(RULE_DIFFS)
    assert (pts["y_low"] < pts["y"]).all() and rules.placeholder is None


def test_registry_names_the_figures_without_importing_plotting_libraries():
    """The Snakefile names the plots job's outputs from the registry on every dry-run: naming them
    imports no matplotlib, seaborn or scipy (seconds per dry-run); every figure has a builder and a
    report caption, and the welfare figures are named only with the welfare table."""
    import subprocess
    import sys

    code = ("import sys; from prefsweep.plots import registry as r; print(list(r.plotted(welfare=True))); "
            "print(sorted(m for m in ('matplotlib', 'seaborn', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    names, heavy = out.stdout.splitlines()
    assert heavy == "[]" and names == str(list(registry.NAMES))
    assert registry.plotted(welfare=False) == registry.FIGURES
    assert not set(registry.FIGURES) & set(registry.WELFARE_FIGURES)
    for spec in registry.REGISTRY:
        assert (REPO / "workflow" / "report" / spec.caption).is_file(), spec.caption
        assert callable(spec.builder())
    with pytest.raises(ValueError, match=r"unknown figure\(s\) \['nope'\]"):
        build_all(*[pd.DataFrame(columns=list(WIN_RATE_COLUMNS))] * 3, None, OPTS, "maj", only=["nope"])


def test_rule_comparison_without_differences_is_a_placeholder():
    res = rule_comparison(None, OPTS, "maj")
    assert res.placeholder and "arm_differences" in res.placeholder
