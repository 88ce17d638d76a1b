"""Small contracts of the scripts' inputs: config slices, SFT corpora, and the checked readers of
prefsweep.io (Parquet, JSON, JSON lines) that name a bad file, line and column."""

import importlib.util
import json

import pandas as pd

from prefsweep.io import load_config_json
from tests.conftest import REPO


def load_script(name):
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_json_inline_or_file_and_logged(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"dpo": {"beta": 0.1}}))
    assert load_config_json(str(path)) == load_config_json('{"dpo": {"beta": 0.1}}') == {"dpo": {"beta": 0.1}}
    assert 'prefsweep config: {"dpo": {"beta": 0.1}}' in capsys.readouterr().err


def test_read_parquet_is_pandas_read_parquet_with_named_errors(tmp_path):
    import pyarrow as pa
    import pytest

    from prefsweep.io import DataFileError, read_parquet, read_parquet_table
    from prefsweep.data.series import write_table

    df = pd.DataFrame({"order": range(40), "prompt": [f"q{i}" for i in range(40)]})
    path = tmp_path / "pairs.parquet"
    write_table(path, pa.Table.from_pandas(df, preserve_index=False), row_group_size=16)
    pd.testing.assert_frame_equal(read_parquet(path), pd.read_parquet(path))
    pd.testing.assert_frame_equal(read_parquet(path, ["prompt"]), pd.read_parquet(path, columns=["prompt"]))
    assert read_parquet_table(path, ["order"], max_rows=17).num_rows == 32  # two leading row groups
    with pytest.raises(DataFileError, match=rf"{path}: no column 'chosen' \(it has order, prompt\)"):
        read_parquet(path, ["chosen"])
    path.write_bytes(path.read_bytes()[:-9])
    with pytest.raises(DataFileError, match=rf"{path}: corrupt or truncated Parquet file .*snakemake {path}"):
        read_parquet(path)
    with pytest.raises(DataFileError, match=r"missing.parquet: no such file"):
        read_parquet_table(tmp_path / "missing.parquet")


def test_text_readers_name_file_line_and_column(tmp_path):
    import pytest

    from prefsweep.io import DataFileError, fail_clearly, naming, read_json, read_jsonl

    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n{"b": "\xff"}\n')
    with pytest.raises(DataFileError, match=r"a.jsonl: line 3: not valid UTF-8 \(byte 0xff at column 8\)"):
        read_jsonl(path)
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n{"b": 2\n')
    with pytest.raises(DataFileError, match=r"a.jsonl:3: not valid JSON"):
        read_jsonl(path)
    path.write_bytes(b'{"a": 1}\n')
    assert read_jsonl(path) == [{"a": 1}] and read_json(path) == {"a": 1}
    path.write_bytes(b'{"a": ')
    with pytest.raises(DataFileError, match=r"a.jsonl: not valid JSON .* line 1 column 7\); delete it"):
        read_json(path)
    with pytest.raises(SystemExit, match=r"^f.txt: record 2: bad$"):
        with fail_clearly(ValueError), naming("f.txt", ValueError):
            raise ValueError("record 2: bad")


def test_evaluated_checkpoints_lists_complete_ones_but_the_last_step(tmp_path):
    """The workflow's one Snakemake checkpoint: which kept checkpoints get a model id."""
    runs = {"dpo/maj/shared/n48/seed1": [4, 8, 12], "dpo/sc/prompt/n48/seed1": [4]}
    for run, steps in runs.items():
        final = tmp_path / run / "final"
        final.mkdir(parents=True)
        (final / "run_info.json").write_text(json.dumps({"global_step": steps[-1]}))
        for step in steps:
            d = tmp_path / run / "checkpoints" / f"checkpoint-{step}"
            d.mkdir(parents=True)
            (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    # a checkpoint a killed job left half-written (no trainer_state.json): not a model
    (tmp_path / "dpo/maj/shared/n48/seed1/checkpoints/checkpoint-10").mkdir()
    out = tmp_path / "evaluated_checkpoints.json"
    load_script("evaluated_checkpoints").main(
        ["--runs", *runs, "--models", *(str(tmp_path / r / "final") for r in runs),
         "--checkpoints", *(str(tmp_path / r / "checkpoints") for r in runs), "--out", str(out)])
    assert json.loads(out.read_text()) == {"dpo/maj/shared/n48/seed1": [4, 8], "dpo/sc/prompt/n48/seed1": []}
