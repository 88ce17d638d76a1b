"""Set up and run the scale experiment (tests/scale/config.yaml) in a working directory.

    with JudgeServer() as server:
        config = prepare(run_dir, server.api_base, width=64)   # Pythia dir + SHP data + config file
        snakemake("--cores", "2", "--configfile", *CONFIGS, config, cwd=run_dir)

Shared by tests/scale/test_pythia_path.py and benchmarks/scale_stages.py (the same code path at a
larger width, measured).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.conftest import REPO
from tests.scale.pythia import write_pythia_dir
from tests.scale.shp_fixture import write_shp_dir

#: The experiment: the paper's config, then the toy sizes (one --configfile option takes all).
CONFIGS = tuple(str(REPO / f) for f in ("config/paper/base.yaml", "config/paper/shp.yaml", "tests/scale/config.yaml"))
#: Model shapes: (hidden_size, num_hidden_layers, num_attention_heads). 2.8B: 2560, 32, 32.
WIDTHS = {64: (64, 2, 4), 256: (256, 4, 4)}


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


#: The judge's API key in the scale run's environment (the paper config's ``api_key_env``,
#: OPENAI_API_KEY): a canary that tests/reliability checks reaches no file and no output.
CANARY_KEY = "sk-canary-5f1d0c9e7b2a4e61"


def run_env() -> dict[str, str]:
    """The environment of a scale run: the tests' snakemake environment without proxies (the
    judge server is on the loopback) and the canary API key."""
    from tests.test_dag import snakemake_env

    env = {k: v for k, v in snakemake_env().items() if "proxy" not in k.lower()}
    return {**env, "NO_PROXY": "127.0.0.1,localhost", "OPENAI_API_KEY": CANARY_KEY}


@dataclass
class ScaleRun:
    dir: Path
    config: str  # the run's own config file (after CONFIGS)
    requests: list  # what the judge server received (tests.fixtures.judge_server.Received)
    output: str  # snakemake's stdout and stderr


def run(run_dir: Path) -> ScaleRun:
    """One run of the scale experiment in ``run_dir`` (width 64), the LLM judge on a loopback
    server: the session fixture ``scale_run`` (tests/conftest.py)."""
    from tests.fixtures.judge_server import JudgeServer
    from tests.test_dag import snakemake

    with JudgeServer() as server:
        config = prepare(run_dir, server.api_base)
        t0 = time.perf_counter()
        proc = snakemake("--cores", "2", "--configfile", *CONFIGS, config, cwd=run_dir, env=run_env())
        print(f"scale run: {time.perf_counter() - t0:.0f} s")
        return ScaleRun(run_dir, config, list(server.requests), proc.stdout + proc.stderr)
