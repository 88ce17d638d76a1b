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

from prefsweep import plotting as P  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SEEDS = (1, 2)
#: (arm, matching) -> {size: (n_pairs, [win rate per seed])}; prompt-matched sc has fewer pairs.
FINALS = {
    ("maj", "shared"): {64: (64, [0.45, 0.49]), 256: (256, [0.52, 0.58])},
    ("sc", "prompt"): {64: (11, [0.42, 0.44]), 256: (43, [0.47, 0.51])},
    ("sc", "size"): {64: (64, [0.50, 0.54]), 256: (256, [0.60, 0.62])},
}
#: The zero point is the SFT model (dpo.init: sft), judged against the reference answers.
ZERO_WIN = 0.40
STEPS = {64: (4, 8), 256: (16, 32)}
REFERENCE_WORDS = 45.0


def _row(model_id, kind, arm="", matching="", size=None, n_pairs=None, seed=None, step=None, win=0.5,
         flip=0.1, words=40.0):
    return dict(model_id=model_id, kind=kind, arm=arm, matching=matching, size=size, n_pairs=n_pairs, seed=seed,
                step=step, zero_point=model_id == "sft", baseline="reference", judge="electorate",
                judge_prompt="utility", wins=0, ties=0, losses=0, errors=0, n=48, win_rate=win, ci_low=win - 0.07,
                ci_high=win + 0.07, flip_rate=flip, mean_words=words, baseline_mean_words=REFERENCE_WORDS)


def win_rate_table() -> pd.DataFrame:
    """In the win-rate step's format (prefsweep.winrate): the zero point (sft) only on the lines."""
    rows = [
        _row("base", "base", win=0.05, flip=0.2, words=30.0),
        _row("baseline-pythia", "baseline", win=0.55, flip=0.05, words=50.0),
    ]
    for (arm, matching), cells in FINALS.items():
        rows.append(_row("sft", "sft", arm, matching, 0, 0, None, win=ZERO_WIN, words=40.0))
        for size, (n_pairs, wins) in cells.items():
            for seed, win in zip(SEEDS, wins):
                mid = f"dpo-{arm}-{matching}-n{size}-seed{seed}"
                rows.append(_row(mid, "dpo", arm, matching, size, n_pairs, seed, win=win,
                                 flip=0.1 + 0.01 * seed, words=40.0 + size / 16 + seed))
                for k, step in enumerate(STEPS[size]):
                    # Checkpoints climb towards the final win rate; the last equals it.
                    w = win - 0.02 * (len(STEPS[size]) - 1 - k)
                    rows.append(_row(f"{mid}-step{step}", "checkpoint", arm, matching, size, n_pairs, seed,
                                     step, win=round(w, 4)))
    return P.normalize_table(pd.DataFrame(rows), P.WIN_RATE_COLUMNS, "win_rates")


GROUP_OFFSET = {"concise": -0.1, "thorough": 0.1}


def group_table(wr: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in wr[(wr["kind"].isin(["dpo", "sft"])) & (wr["arm"] != "")].iterrows():
        for group, off in GROUP_OFFSET.items():
            w = r["win_rate"] + off
            rows.append(dict(model_id=r["model_id"], kind=r["kind"], arm=r["arm"], matching=r["matching"],
                             size=r["size"], n_pairs=r["n_pairs"], seed=r["seed"], judge="electorate", group=group,
                             win_rate=w, ci_low=w - 0.1, ci_high=w + 0.1))
    return P.normalize_table(pd.DataFrame(rows), P.GROUP_COLUMNS, "groups")


def diff_table() -> pd.DataFrame:
    """As prefsweep.winrate.arm_differences writes it: sizes > 0 only."""
    rows = [dict(judge="electorate", baseline="reference", arm="sc", matching=m, ref_arm="maj", size=s,
                 seeds="1;2", n_seeds=2, n_questions=48, diff=d, ci_low=d - 0.05, ci_high=d + 0.05)
            for m, vals in {"prompt": (-0.04, -0.06), "size": (0.05, 0.06)}.items()
            for s, d in zip((64, 256), vals)]
    return P.normalize_table(pd.DataFrame(rows), P.DIFF_COLUMNS, "diffs")


def t_interval(values, ci=95.0):
    v = np.asarray(values, float)
    half = stats.t.ppf(0.5 + ci / 200, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return v.mean() - half, v.mean() + half


@pytest.fixture(scope="module")
def tables():
    wr = win_rate_table()
    return wr, group_table(wr), diff_table()


def _line(ax, gid):
    found = [ln for ln in ax.lines if ln.get_gid() == gid]
    assert len(found) == 1, (gid, [ln.get_gid() for ln in ax.lines])
    return found[0]


# --------------------------------------------------------------------------------------------


def test_seed_interval_is_student_t():
    mean, lo, hi, k = P.seed_interval([0.45, 0.49, 0.52], ci=95)
    assert k == 3 and mean == pytest.approx(0.48666, abs=1e-4)
    assert (lo, hi) == pytest.approx(t_interval([0.45, 0.49, 0.52]))
    assert math.isnan(P.seed_interval([0.4])[1]) and P.seed_interval([])[3] == 0


def test_win_rate_vs_pairs_values(tables):
    wr, _, diffs = tables
    res = P.win_rate_vs_pairs(wr, diffs, P.PlotOptions(), reference_arm="maj")
    data = res.data
    ax = res.figure.axes[0]
    lines = data[(data["panel"] == "a") & (data["element"] == "line")]
    axis_zero = min(ax.get_xticks())
    # One line per arm x matching; the reference arm once, as "maj (shared)".
    assert sorted(lines["label"].unique()) == ["maj (shared)", "sc (prompt)", "sc (size)"]
    for (arm, matching), cells in FINALS.items():
        label = P.series_label(arm, matching)
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
    # Horizontal lines: SFT and the configured baseline at their win rates; base is not drawn.
    hl = data[data["element"] == "hline"].set_index("label")["y"]
    assert hl["SFT (0.40)"] == pytest.approx(0.40) and hl["pythia (0.55)"] == pytest.approx(0.55)
    assert hl["tie with reference answers (0.5)"] == 0.5
    assert np.asarray(_line(ax, "hline:sft").get_ydata(), float) == pytest.approx([0.40, 0.40])
    assert np.asarray(_line(ax, "hline:baseline-pythia").get_ydata(), float) == pytest.approx([0.55, 0.55])
    assert not [ln for ln in ax.lines if ln.get_gid() == "hline:base"]
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


def test_zero_point_of_shared_arm_is_folded(tables):
    """A zero point written once per matching for the reference arm still gives one line."""
    wr = tables[0]
    extra = wr[(wr["arm"] == "maj") & (wr["size"] == 0)].assign(matching="prompt")
    wr2 = P.normalize_table(pd.concat([wr, extra]), P.WIN_RATE_COLUMNS, "win_rates")
    lines = P.series_rows(wr2)
    assert set(lines.loc[lines["arm"] == "maj", "matching"]) == {"shared"}
    agg = P.aggregate_over_seeds(lines, ["arm", "matching", "size"], "win_rate", 95.0, x="n_pairs")
    maj = agg[agg["arm"] == "maj"]
    assert list(maj["x"]) == [0, 64, 256] and list(maj["n_models"]) == [1, 2, 2]


def test_evolution_values(tables):
    wr = tables[0]
    res = P.evolution(wr[wr["kind"] != "checkpoint"], wr[wr["kind"].isin(["checkpoint", "dpo"])])
    data = res.data
    assert set(data["panel"]) == {"maj (shared)", "sc (prompt)", "sc (size)"}
    for (arm, matching), cells in FINALS.items():
        label = P.series_label(arm, matching)
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


def test_groups_values(cli_out):
    d = pd.read_csv(cli_out / "groups.csv", keep_default_na=False, na_values=[""])
    bars = d[d["element"] == "bar"]
    assert set(bars["size"]) == {256}  # the largest size
    assert len(bars) == len(FINALS) * len(GROUP_OFFSET)
    for (arm, matching), cells in FINALS.items():
        for group, off in GROUP_OFFSET.items():
            r = bars[(bars["label"] == P.series_label(arm, matching)) & (bars["group"] == group)]
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
    assert sorted(hl["y"]) == pytest.approx([0.05, 0.1])  # baseline, SFT; base is not drawn
    hl_a = d[(d["panel"] == "a") & (d["element"] == "hline")].set_index("label")["y"]
    assert hl_a.to_dict() == {"SFT (40)": 40.0, "pythia (50)": 50.0, "reference answers (baseline)": REFERENCE_WORDS}


def test_empty_inputs_give_placeholders(tmp_path):
    empty = P.read_table(tmp_path / "missing.csv", P.WIN_RATE_COLUMNS, "win_rates")
    (tmp_path / "empty.csv").write_text("")
    groups = P.read_table(tmp_path / "empty.csv", P.GROUP_COLUMNS, "groups")
    # The win-rate step writes a header-only groups table for judges without voter groups.
    (tmp_path / "header.csv").write_text(",".join(P.GROUP_COLUMNS) + "\n")
    assert P.read_table(tmp_path / "header.csv", P.GROUP_COLUMNS, "groups").empty
    results = P.build_all(empty, groups, None, None, P.PlotOptions(formats=("png",)))
    assert [r.name for r in results] == list(P.FIGURES)
    for r in results:
        assert r.placeholder and r.data.empty
        texts = [t.get_text() for ax in r.figure.axes for t in ax.texts if t.get_gid() == "placeholder"]
        assert texts and texts[0] == r.placeholder
    P.save_result(results[1], tmp_path / "out", P.PlotOptions(formats=("png", "pdf"), dpi=50))
    assert (tmp_path / "out" / "evolution.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "out" / "evolution.pdf").read_bytes()[:5] == b"%PDF-"
    assert list(pd.read_csv(tmp_path / "out" / "evolution.csv").columns) == list(P.PLOT_COLUMNS)


def test_no_checkpoints_placeholder(tables):
    wr = tables[0]
    res = P.evolution(wr[wr["kind"] != "checkpoint"])
    assert res.placeholder and "checkpoint" in res.placeholder


@pytest.fixture(scope="module")
def cli_out(tables, tmp_path_factory):
    """All four figures written by the CLI, config given as JSON text (as the workflow does)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("plots_cli", REPO / "scripts" / "plots.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    wr, groups, diffs = tables
    tmp = tmp_path_factory.mktemp("cli")
    paths = {}
    for name, df in {"win_rates": wr[wr["kind"] != "checkpoint"], "groups": groups, "diffs": diffs,
                     "evolution": wr[wr["kind"] == "checkpoint"]}.items():
        paths[name] = tmp / f"{name}.csv"
        df.to_csv(paths[name], index=False)
    config = {"experiment": "t", "data": {"reference_arm": "maj"}, "eval": {"baseline": "reference"},
              "plots": {"formats": ["png"], "dpi": 50, "width_in": 6.8, "ci": 95}}  # PDF: placeholder test
    out = tmp / "plots"
    rc = cli.main(["--config-json", json.dumps(config), "--win-rates", str(paths["win_rates"]),
                   "--groups", str(paths["groups"]), "--diffs", str(paths["diffs"]),
                   "--evolution", str(paths["evolution"]), "--out-dir", str(out), "--no-wandb"])
    assert rc == 0
    return out


def test_cli_writes_every_file(cli_out):
    for name in P.FIGURES:
        assert (cli_out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert list(pd.read_csv(cli_out / f"{name}.csv").columns) == list(P.PLOT_COLUMNS)
    assert not list(cli_out.glob(".*tmp*"))  # atomic writes leave no temporaries
    done = json.loads((cli_out / "done.json").read_text())
    assert set(done["figures"]) == set(P.FIGURES) and done["placeholders"] == {}
    assert all(done["inputs"].values())  # hashes of the four inputs
    # The CSV on disk is the plotted table: prompt-matched sc at its real pair counts.
    back = pd.read_csv(cli_out / "win_rate_vs_pairs.csv")
    sc = back[(back["label"] == "sc (prompt)") & (back["panel"] == "a")].sort_values("x")
    assert list(sc["x"]) == [0, 11, 43]
    assert list(sc["y"]) == pytest.approx([ZERO_WIN, 0.43, 0.49])
    ev = pd.read_csv(cli_out / "evolution.csv")  # checkpoints came from --evolution
    assert set(ev["element"]) == {"line", "final", "hline"}


def test_columns_match_the_win_rate_step():
    """The columns read here are the ones prefsweep.winrate writes."""
    winrate = pytest.importorskip("prefsweep.winrate")
    read = {"mean_words", "baseline_mean_words", "flip_rate", "ci_low", "ci_high", "judge", "baseline", "seed", "step"}
    assert set(P._REQUIRED["win_rates"]) | read <= set(winrate.WIN_RATE_COLUMNS)
    assert set(P._REQUIRED["groups"]) <= set(winrate.GROUP_COLUMNS)
    assert set(P._REQUIRED["diffs"]) | {"arm", "ref_arm", "judge", "n_seeds", "ci_low", "ci_high"} <= set(
        winrate.DIFF_COLUMNS)


def test_options_reject_unknown_keys():
    with pytest.raises(ValueError, match="unknown key"):
        P.PlotOptions.from_config({"dpi": 100, "colour": "red"})
    with pytest.raises(ValueError, match="formats"):
        P.PlotOptions.from_config({"formats": ["jpg"]})
    assert P.PlotOptions.from_config({"formats": ["png"], "ci": 90}).interval_name == "t90 over seeds"


def test_mixed_comparisons_fail(tables):
    wr = tables[0].copy()
    wr.loc[wr.index[:2], "baseline"] = "sft"
    with pytest.raises(ValueError, match="mixes judges/baselines"):
        P.win_rate_vs_pairs(wr)


def test_secrets_not_logged(monkeypatch):
    cfg = {"eval": {"judge": {"api_key": "sk-x", "model": "gpt-4"}}, "wandb": {"mode": "disabled"}}
    assert P.scrub_secrets(cfg)["eval"]["judge"] == {"api_key": "<redacted>", "model": "gpt-4"}
    assert P.log_to_wandb(cfg, {}, {}, "unused") is None
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert P.wandb_settings({}, "d")["mode"] == "offline"


def test_options_from_the_workflow_slice(default_config):
    """The plots job's config slice (what the rule passes as --config-json) gives valid options."""
    from prefsweep.config import job_config_json

    config = P.parse_config_arg(job_config_json(default_config, "plots"))
    assert P.PlotOptions.from_config(config["plots"]) == P.PlotOptions.from_config(default_config["plots"])
    assert config["data"]["reference_arm"] == default_config["data"]["reference_arm"]


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
