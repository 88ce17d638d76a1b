"""The measures registry: every eval table's columns come from it, each with a description, and a
measure registered in one module joins the win-rate tables with its values."""

from __future__ import annotations

import ast
from collections.abc import Iterator

import pytest

from prefsweep.config import job_config
from prefsweep.eval import measures
from prefsweep.eval.inputs import FinalRun, ModelInputs
from prefsweep.eval.judgments import judgment_frames
from prefsweep.eval.table_io import DIFF_COLUMNS, GROUP_COLUMNS, WIN_RATE_COLUMNS, read_table, write_table
from prefsweep.eval.tables import arm_differences, win_rate_tables
from tests.conftest import REPO, load_config

#: The tables' columns as the CSV files have them (what users, plots and old results rely on):
#: the registry must keep exactly these, in this order.
FILE_COLUMNS = {
    measures.WIN_RATES: (
        "model_id", "kind", "init", "arm", "matching", "size", "n_pairs", "seed", "step", "zero_point", "baseline",
        "judge", "judge_prompt", "wins", "ties", "losses", "errors", "n", "win_rate", "ci_low", "ci_high",
        "flip_rate", "lc_win_rate", "lc_ci_low", "lc_ci_high", "mean_words", "baseline_mean_words", "well_formed",
        "baseline_well_formed"),
    measures.GROUPS: (
        "model_id", "kind", "init", "arm", "matching", "size", "n_pairs", "seed", "step", "zero_point", "baseline",
        "judge", "judge_prompt", "group", "wins", "ties", "losses", "errors", "n", "win_rate", "ci_low", "ci_high",
        "flip_rate"),
    measures.DIFFERENCES: (
        "judge", "baseline", "init", "arm", "matching", "ref_arm", "size", "seeds", "n_seeds", "n_questions",
        "win_rate", "ref_win_rate", "diff", "ci_low", "ci_high", "seed_sd"),
    measures.PAIR_ACCURACY: (
        "model_id", "pairs", "n_pairs", "accuracy", "mean_logp_margin", "kind", "arm", "matching", "size", "seed"),
    measures.PAIR_ACCURACY_GROUPS: (
        "model_id", "group", "n_pairs", "n_prompts", "accuracy", "ci_low", "ci_high", "kind", "arm", "matching",
        "size", "seed"),
    measures.WELFARE: (
        "model_id", "kind", "init", "arm", "matching", "size", "n_pairs", "seed", "step", "zero_point", "measure",
        "group", "n_questions", "value", "ci_low", "ci_high", "vs_zero", "vs_zero_ci_low", "vs_zero_ci_high"),
}


@pytest.mark.parametrize("table", measures.TABLES)
def test_the_registry_keeps_every_file_s_columns(table):
    assert measures.columns(table) == FILE_COLUMNS[table]


def test_the_tables_column_tuples_are_the_registry_s():
    from prefsweep.eval import pair_accuracy, welfare

    assert (WIN_RATE_COLUMNS, GROUP_COLUMNS, DIFF_COLUMNS) == tuple(
        measures.columns(t) for t in (measures.WIN_RATES, measures.GROUPS, measures.DIFFERENCES))
    assert pair_accuracy.TABLE_COLUMNS == measures.columns(measures.PAIR_ACCURACY)
    assert pair_accuracy.GROUP_TABLE_COLUMNS == measures.columns(measures.PAIR_ACCURACY_GROUPS)
    # welfare.py still spells its columns out: they must not drift from the registry's.
    assert welfare.WELFARE_COLUMNS == measures.columns(measures.WELFARE)


#: Names the tables' column tuples had when each module spelled its own out.
SCHEMA_NAMES = {"WIN_RATE_COLUMNS", "GROUP_COLUMNS", "DIFF_COLUMNS", "META_COLUMNS", "STAT_COLUMNS", "LC_COLUMNS",
                "INT_COLUMNS", "TEXT_COLUMNS", "BOOL_COLUMNS", "RESULT_KEYS", "CELL_COLUMNS", "TABLE_COLUMNS",
                "GROUP_KEYS", "GROUP_TABLE_COLUMNS", "MODEL_COLUMNS", "WELFARE_COLUMNS"}
#: Modules that still spell out columns, and why (remove the entry when fixed).
PENDING = {"prefsweep/eval/welfare.py": "its owner builds WELFARE_COLUMNS from measures.columns('welfare')"}


def _literals(tree: ast.AST) -> Iterator[ast.AST]:
    """Tuple or list literals of 3+ strings in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) >= 3 and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            yield node


def test_no_module_outside_the_registry_spells_out_columns():
    """A schema name bound to literal strings, or a literal equal to a measure's columns, is a
    second home of a table's columns."""
    declared = {m.names for t in measures.TABLES for m in measures.measures(t) if len(m.names) >= 3}
    known = set().union(*map(measures.columns, measures.TABLES))
    found = []
    for path in sorted((REPO / "prefsweep").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith("prefsweep/eval/measures/") or rel in PENDING:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in SCHEMA_NAMES
                                                    for t in node.targets):
                if any(len(known & {e.value for e in lit.elts}) >= 2 for lit in _literals(node.value)):
                    found.append(f"{rel}:{node.lineno}: {ast.unparse(node)[:80]}")
        for node in _literals(tree):
            if tuple(e.value for e in node.elts) in declared:
                found.append(f"{rel}:{node.lineno}: {ast.unparse(node)[:80]} repeats a measure's columns")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("table", measures.TABLES)
def test_every_column_has_a_one_line_description(table):
    described = measures.descriptions(table)
    assert tuple(described) == measures.columns(table)
    assert all(text.strip() and "\n" not in text and len(text) <= 160 for text in described.values()), described
    body = measures.caption(table)
    assert all(f"``{c}``: " in body for c in measures.columns(table))


def test_a_column_has_one_kind_in_every_table():
    kinds = {k: measures.columns_of_kind(k) for k in measures.KINDS}
    assert sum(len(v) for v in kinds.values()) == len(set().union(*kinds.values()))
    assert {"model_id", "judge", "group", "measure", "seeds"} <= kinds["text"]
    assert {"size", "n_pairs", "wins", "n", "n_questions"} <= kinds["int"] and kinds["bool"] == {"zero_point"}


# --------------------------------------------------------------------------------------------
# A measure of one's own

A, B = "dpo-maj-shared-n4-seed1", "dpo-sc-prompt-n4-seed1"
W, L, T = ("model_1", "model_1"), ("model_2", "model_2"), ("tie", "tie")


def _records(model: str, verdicts, groups=None) -> list[dict]:
    out = []
    for i, (g1, g2) in enumerate(verdicts):
        r = {"question_id": f"q{i}", "model_1": model, "model_2": "sft", "g1_winner": g1, "g2_winner": g2,
             "judge": ["electorate", "weighted-majority"]}
        if groups:
            r["g1_group_winners"], r["g2_group_winners"] = groups
        out.append(r)
    return out


def _inputs(models: list[str], words: dict[str, int]) -> ModelInputs:
    lengths = {m: {f"q{i}": words.get(m, 1) for i in range(4)} for m in [*models, "sft"]}
    n_pairs = {("maj", "shared", 4): 4, ("sc", "prompt", 4): 2}
    finals = {m: FinalRun(m, 10, None, "run_info.json") for m in models}
    return ModelInputs({m: float(words.get(m, 1)) for m in lengths}, n_pairs, finals, lengths,
                       dict.fromkeys(lengths, 1.0))


def _wins_per_word(sample: measures.Sample) -> dict[str, float]:
    """A toy measure: wins per word of the model's answers (the ties and errors ignored)."""
    wins = int((sample.outcomes["outcome"] == "win").sum())
    return {"wins_per_word": wins / sample.inputs.answer_words[sample.model]}


@pytest.fixture
def toy_measure():
    m = measures.register(measures.Measure("wins_per_word", (measures.WIN_RATES, measures.GROUPS), (
        measures.Column("wins_per_word", "float", "wins divided by the mean answer length in words"),
    ), compute=_wins_per_word))
    yield m
    measures.unregister(m.name)


def test_a_registered_measure_joins_the_win_rate_tables(toy_measure, tmp_path):
    g = ({"concise": "model_1"}, {"concise": "model_1"})
    records = _records(A, [W, W, L, T], groups=g) + _records(B, [W, W, W, W], groups=g)
    q, gf = judgment_frames(records)
    table, groups = win_rate_tables(q, gf, job_config(load_config(), "win_rates"), _inputs([A, B], {A: 2, B: 4}))
    assert tuple(table.columns) == FILE_COLUMNS[measures.WIN_RATES] + ("wins_per_word",)
    assert tuple(groups.columns) == FILE_COLUMNS[measures.GROUPS] + ("wins_per_word",)
    per_model = table.set_index("model_id")["wins_per_word"]
    assert (per_model[A], per_model[B]) == (2 / 2, 4 / 4)
    # The zero point is the baseline itself: the measure sees every question a tie.
    assert (table[table.zero_point]["wins_per_word"] == 0).all()
    assert groups.set_index("model_id").loc[A, "wins_per_word"] == 4 / 2
    assert measures.descriptions(measures.WIN_RATES)["wins_per_word"].startswith("wins divided")
    path = tmp_path / "win_rates.csv"
    write_table(path, table, measures.columns(measures.WIN_RATES))
    assert read_table(path, measures.columns(measures.WIN_RATES))["wins_per_word"].tolist() == \
        table["wins_per_word"].tolist()


def test_the_registry_forgets_an_unregistered_measure(toy_measure):
    measures.unregister(toy_measure.name)
    assert measures.columns(measures.WIN_RATES) == FILE_COLUMNS[measures.WIN_RATES]
    measures.register(toy_measure)  # for the fixture to remove


def _toy(name="toy", tables=(measures.WIN_RATES,), columns=None, compute=_wins_per_word):
    return measures.Measure(name, tables, columns or (measures.Column("toy", "float", "a toy column"),), compute)


@pytest.mark.parametrize("measure, message", [
    (_toy(name="win_rate"), "already registered"),
    (_toy(columns=(measures.Column("win_rate", "float", "again"),)), r"columns \['win_rate'\] already in table"),
    (_toy(columns=(measures.Column("size", "float", "size as a float"),)), "'size' is float, but int"),
    (_toy(columns=(measures.Column("toy", "float", ""),)), "needs a one-line description"),
    (_toy(columns=(measures.Column("toy", "number", "x"),)), "kind 'number'"),
    (_toy(tables=(measures.DIFFERENCES,)), "table 'arm_differences' takes only measures with compute"),
    (_toy(compute=None), "table 'win_rates' takes only measures with compute"),
    (_toy(tables=("leaderboard",)), "expected some of"),
])
def test_a_measure_that_breaks_the_contract_is_refused(measure, message):
    with pytest.raises(ValueError, match=message):
        measures.register(measure)
    assert "toy" not in measures.columns(measures.WIN_RATES)


def test_a_measure_must_fill_exactly_its_columns():
    measures.register(_toy(name="bad", compute=lambda s: {"other": 1.0}))
    try:
        q, g = judgment_frames(_records(A, [W, W, W, W]))
        with pytest.raises(ValueError, match=r"measure 'bad' returned \['other'\]; expected its columns \['toy'\]"):
            win_rate_tables(q, g, job_config(load_config(), "win_rates"), _inputs([A], {}))
    finally:
        measures.unregister("bad")


def test_differences_table_has_the_registry_columns():
    records = _records(A, [W, W, L, T]) + _records(B, [W, W, W, L])
    q, _ = judgment_frames(records)
    diffs = arm_differences(q, job_config(load_config(), "win_rates"))
    assert tuple(diffs.columns) == measures.columns(measures.DIFFERENCES) and len(diffs) == 1
