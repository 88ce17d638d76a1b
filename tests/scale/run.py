"""Set up and run the scale experiment (tests/scale/config.yaml) in a working directory.

    with JudgeServer() as server:
        config = prepare(run_dir, server.api_base, width=64)   # Pythia dir + SHP data + config file
        snakemake("--cores", "2", "--configfile", *CONFIGS, config, cwd=run_dir)

Shared by tests/scale/test_pythia_path.py and benchmarks/scale_stages.py (the same code path at a
larger width, measured).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import REPO
from tests.scale.pythia import write_pythia_dir
from tests.scale.shp_fixture import write_shp_dir

#: The experiment: the paper's config, then the toy sizes (one --configfile option takes all).
CONFIGS = (str(REPO / "config/pythia-2.8b-shp.yaml"), str(REPO / "tests/scale/config.yaml"))
#: Model shapes: (hidden_size, num_hidden_layers, num_attention_heads). 2.8B: 2560, 32, 32.
WIDTHS = {64: (64, 2, 4), 512: (512, 4, 8)}


def prepare(run_dir: str | Path, api_base: str, width: int = 64, n_posts: int = 60, baseline: bool = False) -> str:
    """Write ``pythia/`` (the model), ``shp/`` (the data) and ``scale.yaml`` (paths, judge URL)
    under ``run_dir``; returns the path of ``scale.yaml`` (the last config file of the run).
    ``baseline``: also the paper's ``sft_on: maj`` baseline, SFT straight from the Pythia files."""
    run_dir = Path(run_dir)
    shp = write_shp_dir(run_dir / "shp", n_posts=n_posts)
    rows = [json.loads(line) for line in open(shp / "train.jsonl", encoding="utf-8")]
    texts = [r["history"] for r in rows] + [r[k] for r in rows for k in ("human_ref_A", "human_ref_B")]
    hidden, layers, heads = WIDTHS[width]
    model = write_pythia_dir(run_dir / "pythia", texts, hidden_size=hidden, num_hidden_layers=layers,
                             num_attention_heads=heads)
    override = {
        "model": {"name_or_path": str(model)},
        "data": {"shp": {"path": str(shp)}},
        "eval": {"judge": {"api_base": api_base}},
    }
    if baseline:
        override["eval"]["baselines"] = [{"name": "pythia-sft-maj", "name_or_path": str(model), "sft_on": "maj"}]
    path = run_dir / "scale.yaml"
    path.write_text(yaml.safe_dump(override, sort_keys=False))
    return str(path)
