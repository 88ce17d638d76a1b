"""Small contracts of the scripts' inputs: config slices and SFT corpora."""

import importlib.util
import json

import pandas as pd

from prefsweep.io import atomic_write_jsonl, load_config_json
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


def test_sft_corpus_from_jsonl_or_an_arms_pairs(tmp_path):
    read_corpus = load_script("sft").read_corpus
    atomic_write_jsonl(tmp_path / "sft.jsonl", [{"prompt": "P", "completion": " a", "prompt_id": "p1"}])
    assert read_corpus(str(tmp_path / "sft.jsonl"))[0]["completion"] == " a"
    pairs = pd.DataFrame({"prompt": ["P", "P", "Q"], "chosen": [" a", " a", " b"], "rejected": [" x", " y", " z"]})
    pairs.to_parquet(tmp_path / "pairs.parquet")
    assert read_corpus(str(tmp_path / "pairs.parquet")) == [
        {"prompt": "P", "completion": " a"}, {"prompt": "Q", "completion": " b"}]
