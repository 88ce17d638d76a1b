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


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e-killed")
    proc = subprocess.Popen(snakemake_argv("--cores", "2", "--configfile", CONFIG, cwd=d), cwd=d,
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
    pending = job_counts(snakemake("-n", "--quiet", "rules", "--configfile", CONFIG, cwd=d).stdout)
    snakemake("--cores", "2", "--configfile", CONFIG, cwd=d)
    return d, pending


def test_killed_run_reruns_only_unfinished_jobs(killed_and_resumed, case):
    case.expect("after SIGKILL of snakemake and its jobs mid-DPO, --unlock then -n lists only unfinished jobs")
    _, pending = killed_and_resumed
    case.observe(f"pending after the kill: {pending}")
    assert {"ballots", "split", "pool", "series", "sft_corpus", "pretrain_corpus", "base_model", "sft"}.isdisjoint(pending)
    assert pending["dpo"] >= 1


def test_killed_and_resumed_run_equals_the_uninterrupted_one(e2e_run, killed_and_resumed, case):
    """Same config and seeds: byte-identical datasets, models, answers, judgments and tables."""
    case.expect("killed + resumed run: byte-identical datasets, models, answers, judgments, tables")
    a, b = _outputs(e2e_run), _outputs(killed_and_resumed[0])
    assert sorted(a) == sorted(b)
    assert any(k.endswith(".safetensors") for k in a) and any(k.startswith("eval/model_answer") for k in a)
    differ = [k for k in a if a[k] != b[k]]
    case.observe(f"{len(a)} files compared, {len(differ)} differ {differ[:5]}")
    assert not differ, f"differ between the two runs: {differ}"


# -- secrets: a canary API key reaches no file ---------------------------------------------------

def test_api_key_reaches_no_file(tmp_path, case):
    """A full run with the LLM judge on a loopback server: the key in the environment appears in
    no file under results/, logs/, .snakemake/ or wandb/, nor in snakemake's output."""
    from tests.fixtures.judge_server import JudgeServer

    case.expect("a canary API key in the environment of a full LLM-judge run is in no file and no output")
    canary = "sk-canary-5f1d0c9e7b2a4e61"
    with JudgeServer() as server:
        override = tmp_path / "llm.yaml"
        override.write_text(
            "data: {sizes: [0, 24], matchings: [size]}\n"
            "eval:\n  checkpoints: false\n"
            f"  judge: {{type: llm, api_base: '{server.api_base}', api_key_env: PREFSWEEP_CANARY_KEY,"
            " max_retries: 1, timeout: 20}\n"
        )
        run = tmp_path / "run"
        run.mkdir()
        os.environ["PREFSWEEP_CANARY_KEY"] = canary
        try:
            proc = snakemake("--cores", "2", "--configfile", CONFIG, str(override), cwd=run)
        finally:
            del os.environ["PREFSWEEP_CANARY_KEY"]
        server_requests = server.n_requests
        assert server_requests > 0
        assert all(r.headers.get("Authorization") == f"Bearer {canary}" for r in server.requests)
    assert (run / "results/e2e/eval/win_rates.csv").exists()
    files = [p for p in run.rglob("*") if p.is_file()]
    leaks = [str(p.relative_to(run)) for p in files if canary.encode() in p.read_bytes()]
    case.observe(f"{server_requests} requests with the key; {len(files)} files searched, key in {leaks or 'none'}")
    assert not leaks, f"API key written to {leaks}"
    assert canary not in proc.stdout + proc.stderr
