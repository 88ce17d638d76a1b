"""The workflow under faults, as a hostile user or a failing node would have it: snakemake and its
jobs killed mid-training, then rerun; an API key in the environment of a full run.

The reference is the uninterrupted e2e run (session fixture ``e2e_run``, tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from prefsweep.paths import Layout
from tests.conftest import E2E_CONFIG
from tests.test_dag import job_counts, snakemake, snakemake_argv, snakemake_env

pytestmark = [pytest.mark.reliability, pytest.mark.e2e]

CONFIG = str(E2E_CONFIG)
E2E = Layout("e2e")


def _comparable(path: Path) -> bytes:
    """A file's content, less what legitimately differs between two runs (wall-clock stamps)."""
    data = path.read_bytes()
    if path.suffix == ".jsonl" and "eval" in path.parts:
        records = [json.loads(line) for line in data.decode().splitlines()]
        for r in records:
            r.pop("tstamp", None)
        return json.dumps(records, sort_keys=True).encode()
    return data


def _outputs(root: Path) -> dict[str, bytes]:
    res = root / E2E.root
    keep = re.compile(r"^(data/.*\.(jsonl|json|parquet)|ref_logps/.*|train/.*/final/.*\.safetensors|"
                      r"eval/model_answer/.*|eval/model_judgment/.*|eval/.*\.csv)$")
    return {str(p.relative_to(res)): _comparable(p) for p in sorted(res.rglob("*"))
            if p.is_file() and keep.match(str(p.relative_to(res)))}


#: The killed run's target: data, SFT, reference log-probs and every DPO model (``train_all``).
#: The jobs after training read only these files, and the e2e run checks them; stopping here
#: halves the run.
TARGET = "train_all"


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e-killed")
    proc = subprocess.Popen(snakemake_argv(TARGET, "--cores", "2", "--configfile", CONFIG, cwd=d), cwd=d,
                            env=snakemake_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    # Kill everything (snakemake and its jobs, as a node failure would) once a DPO run has
    # left a checkpoint: mid-training, with finished jobs behind it.
    deadline = time.monotonic() + 600
    while not list((d / E2E.root / "train/dpo").glob("*/*/*/*/checkpoints/checkpoint-*/trainer_state.json")):
        assert proc.poll() is None, "the run ended before any DPO checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    snakemake("--unlock", "--configfile", CONFIG, cwd=d)
    pending = job_counts(snakemake(TARGET, "-n", "--quiet", "rules", "--configfile", CONFIG, cwd=d).stdout)
    snakemake(TARGET, "--cores", "2", "--configfile", CONFIG, cwd=d)
    return d, pending


def test_killed_run_reruns_only_unfinished_jobs(killed_and_resumed, case):
    case.expect("after SIGKILL of snakemake and its jobs mid-DPO, --unlock then -n lists only unfinished jobs")
    _, pending = killed_and_resumed
    case.observe(f"pending after the kill: {pending}")
    assert {"ballots", "split", "pool", "series", "sft_corpus", "pretrain_corpus", "base_model", "sft"}.isdisjoint(pending)
    assert pending["dpo"] >= 1


def test_killed_and_resumed_run_equals_the_uninterrupted_one(e2e_run, killed_and_resumed, case):
    """Same config and seeds: byte-identical datasets, reference log-probs and models (every DPO
    model, the killed one included)."""
    case.expect("killed + resumed run: byte-identical datasets, reference log-probs and trained models")
    a, b = _outputs(e2e_run), _outputs(killed_and_resumed[0])
    trained = {k for k in a if k.startswith(("train/", "ref_logps/"))}
    assert any(k.startswith("train/dpo/") and k.endswith(".safetensors") for k in trained)
    assert trained <= b.keys() <= a.keys(), (sorted(trained - b.keys()), sorted(b.keys() - a.keys()))
    differ = [k for k in b if a[k] != b[k]]
    case.observe(f"{len(b)} files compared, {len(differ)} differ {differ[:5]}")
    assert not differ, f"differ between the two runs: {differ}"


# -- secrets: a canary API key reaches no file ---------------------------------------------------

def test_api_key_reaches_no_file(scale_run, case):
    """The scale run (tests/scale/: the paper config's code path, the LLM judge on a loopback
    server) had a canary key in OPENAI_API_KEY: every request carried it, and it appears in no
    file under results/, logs/, .snakemake/ or wandb/, nor in snakemake's output."""
    from tests.scale.run import CANARY_KEY

    case.expect("a canary API key in the environment of a full LLM-judge run is in no file and no output")
    run = scale_run.dir
    assert scale_run.requests
    assert all(r.headers.get("Authorization") == f"Bearer {CANARY_KEY}" for r in scale_run.requests)
    assert (run / "results/scale/eval/win_rates.csv").exists()
    files = [p for p in run.rglob("*") if p.is_file()]
    leaks = [str(p.relative_to(run)) for p in files if CANARY_KEY.encode() in p.read_bytes()]
    case.observe(f"{len(scale_run.requests)} requests with the key; {len(files)} files searched, key in {leaks or 'none'}")
    assert not leaks, f"API key written to {leaks}"
    assert CANARY_KEY not in scale_run.output
