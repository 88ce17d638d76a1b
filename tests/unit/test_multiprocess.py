"""Jobs on several processes: ``python -m prefsweep.launch --processes 2`` (accelerate launch, gloo on CPU).

What a multi-GPU job must do, checked with 2 CPU processes on the tiny model:

- DPO with 2 processes x batch b gives the loss trajectory of 1 process x batch 2b (the same
  examples in every step, gradients averaged), within :data:`LOSS_RTOL`;
- rank 0 alone writes (the final model, run_info.json, the checkpoints; rank 1 only its own
  ``rng_state_1.pth``), seen by an audit hook in every process;
- a 2-process DPO run killed (SIGKILL of the whole job) after a checkpoint resumes to the weights
  of an uninterrupted 2-process run;
- reference log-probs scored by 2 processes equal those of 1 (within :data:`LOGP_ATOL`).

Each 2-process job is a real ``accelerate launch`` (torchrun) of the script the rule runs,
through the launcher the rule runs; the 1-process runs are in this process (``main(argv)``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from prefsweep import distributed
from prefsweep.config import job_config
from prefsweep.io import read_parquet
from prefsweep.launch import accelerate_config, launch_command
from prefsweep.train.checkpoints import complete_checkpoint_steps, is_complete_checkpoint, last_complete_checkpoint
from tests.conftest import load_config
from tests.unit.train_helpers import REPO, build_tiny_dir, dpo_argv, load_script, make_pairs, write_pairs_and_manifest

pytestmark = pytest.mark.multiprocess

#: 2-process vs 1-process DPO losses, per logged step (float32 sums in another order and
#: another padding per process: measured max relative difference ~1e-7).
LOSS_RTOL = 1e-5
#: 2-process vs 1-process reference log-probs (summed over ~20 tokens; another batch padding).
LOGP_ATOL = 1e-5

TINY = {"vocab_size": 400, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 128}
N_PAIRS = 8
#: batch b per process; 8 pairs, global batch 4: 2 steps an epoch, 6 steps, a checkpoint every 2.
#: The DPO loss alone: with the default's NLL term on the chosen responses (loss_type [sigmoid,
#: sft]) each process averages over its own completion tokens, so 2 x b and 1 x 2b weigh tokens
#: differently (measured ~4e-4 relative) and the trajectories are not the same by construction.
TRAIN = {"num_train_epochs": 3, "save_steps": 2, "max_length": 64, "logging_steps": 1, "learning_rate": 3e-3,
         "warmup_ratio": 0.0, "loss_type": "sigmoid", "loss_weights": None}
B = 2

#: Run as the launched script: records every write of this process under $AUDIT_ROOT (Python's
#: audit events: open for writing, mkdir, rename/replace, remove, rmtree) into writes.rank{RANK}
#: and, with $STEP_SLEEP, slows each training step so a kill lands mid-training; then runs the
#: real script (argv[1]) as __main__.
WRAPPER = r'''
import os, runpy, sys, time
root, rank = os.environ["AUDIT_ROOT"], os.environ.get("RANK", "0")
log = os.open(os.path.join(root, f"writes.rank{rank}"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
def hook(event, args):
    if event == "open":
        path, mode, flags = args
        if not (isinstance(mode, str) and any(c in mode for c in "wax+")) and not (flags or 0) & WRITE:
            return
    elif event == "os.rename":  # also os.replace: the destination is what gets written
        path = args[1]
    elif event in ("os.mkdir", "os.remove", "shutil.rmtree"):
        path = args[0]
    else:
        return
    record(event, path)
def record(event, path):
    path = os.path.abspath(os.fsdecode(path)) if isinstance(path, (str, bytes, os.PathLike)) else ""
    if path.startswith(root) and not path.startswith(os.path.join(root, "writes.rank")):
        os.write(log, f"{event} {os.path.relpath(path, root)}\n".encode())
sys.addaudithook(hook)
# torch.save and safetensors write natively (no audit event): log their destination. Patched
# before transformers imports safetensors' save_file under its own name.
import torch, safetensors.torch
def logged(save):
    def inner(obj, f, *args, **kwargs):
        record("save", f)
        return save(obj, f, *args, **kwargs)
    return inner
torch.save = logged(torch.save)
safetensors.torch.save_file = logged(safetensors.torch.save_file)
if os.environ.get("STEP_SLEEP"):
    from transformers import Trainer
    step = Trainer.training_step
    def slow_step(self, *args, **kwargs):
        time.sleep(float(os.environ["STEP_SLEEP"]))
        return step(self, *args, **kwargs)
    Trainer.training_step = slow_step
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
runpy.run_path(sys.argv[0], run_name="__main__")
'''


# ---------------------------------------------------------------------------------------------
# Pure parts: the launcher's command, shards, resumable checkpoints of N processes
# ---------------------------------------------------------------------------------------------


def test_one_process_runs_the_script_directly_several_go_through_accelerate():
    assert launch_command(1, "scripts/dpo.py", ["--seed", "1"]) == (None, {})
    assert launch_command(0, "scripts/dpo.py", []) == (None, {})
    argv, env = launch_command(4, "scripts/dpo.py", ["--seed", "1"], "fsdp")
    assert argv[:3] == [sys.executable, "-m", "accelerate.commands.launch"] and argv[-3:] == ["scripts/dpo.py",
                                                                                           "--seed", "1"]
    assert argv[argv.index("--num_processes") + 1] == "4" and env == {}
    assert Path(argv[argv.index("--config_file") + 1]) == REPO / "config" / "accelerate" / "fsdp.yaml"
    with pytest.raises(SystemExit, match="ddp"):
        accelerate_config("no-such-config")


def test_shipped_accelerate_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {name: load_config_from_file(str(accelerate_config(name))).distributed_type.value
             for name in ("ddp", "fsdp")}
    assert kinds == {"ddp": "MULTI_GPU", "fsdp": "FSDP"}, kinds


def test_shards_are_contiguous_and_cover_everything(monkeypatch):
    for n, size in [(9, 2), (8, 2), (3, 4), (0, 2), (10, 3)]:
        monkeypatch.setenv("WORLD_SIZE", str(size))
        bounds = []
        for r in range(size):
            monkeypatch.setenv("RANK", str(r))
            bounds.append(distributed.shard_bounds(n))
        assert [i for a, b in bounds for i in range(a, b)] == list(range(n)), (n, size, bounds)
        assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


def test_resume_passes_over_a_checkpoint_without_every_ranks_rng_state(tmp_path):
    for step, ranks in [(2, (0, 1)), (4, (0,))]:  # checkpoint-4: cut off while rank 1 saved
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        for r in ranks:
            (d / f"rng_state_{r}.pth").write_bytes(b"")
    assert last_complete_checkpoint(tmp_path, processes=2) == tmp_path / "checkpoint-2"
    assert last_complete_checkpoint(tmp_path, processes=1) == tmp_path / "checkpoint-4"
    assert complete_checkpoint_steps(tmp_path) == [2, 4]  # both stay, for the evaluation


# ---------------------------------------------------------------------------------------------
# Real 2-process jobs
# ---------------------------------------------------------------------------------------------


def config_file(path: Path, batch: int) -> Path:
    config = job_config(load_config(), "dpo")
    config["dpo"].update(TRAIN, per_device_train_batch_size=batch,
                         lora={**config["dpo"]["lora"], "enabled": False})
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiprocess")
    model = build_tiny_dir(root / "model", TINY, n_prompts=N_PAIRS)
    pairs, manifest = write_pairs_and_manifest(root, make_pairs(N_PAIRS))
    ref = root / "ref.parquet"
    load_script("ref_logps").main(["--config-json", str(config_file(root / "ref.json", B)), "--model", str(model),
                                   "--pairs", str(pairs), "--out", str(ref), "--threads", "1"])
    return {"root": root, "model": model, "pairs": pairs, "manifest": manifest, "ref": ref}


def dpo_job(setup, name: str, batch: int) -> list[str]:
    root = setup["root"]
    return dpo_argv(root, config=config_file(root / f"{name}.json", batch), model=setup["model"],
                    pairs=setup["pairs"], manifest=setup["manifest"], ref_logps=setup["ref"], n_pairs=N_PAIRS,
                    out=root / name / "out", checkpoints=root / name / "checkpoints")


def launch(script: str, argv: list[str], root: Path, *, step_sleep: float | None = None) -> subprocess.Popen:
    """``python -m prefsweep.launch --processes 2 <WRAPPER> scripts/{script}.py argv`` (new session)."""
    wrapper = root / "wrapper.py"
    wrapper.write_text(WRAPPER)
    for f in root.glob("writes.rank*"):
        f.unlink()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "AUDIT_ROOT": str(root)}
    env.pop("STEP_SLEEP", None)
    if step_sleep:
        env["STEP_SLEEP"] = str(step_sleep)
    return subprocess.Popen([sys.executable, "-m", "prefsweep.launch", "--processes", "2", str(wrapper),
                             str(REPO / "scripts" / f"{script}.py"), *argv],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def run_launched(script: str, argv: list[str], root: Path) -> str:
    proc = launch(script, argv, root)
    out, _ = proc.communicate(timeout=300)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, f"2-process {script}.py failed (rc {proc.returncode}):\n{text[-4000:]}"
    return text


def writes(root: Path) -> dict[int, list[str]]:
    return {r: (root / f"writes.rank{r}").read_text().splitlines() for r in (0, 1)}


def option(argv: list[str], name: str) -> Path:
    return Path(argv[argv.index(name) + 1])


def losses(argv: list[str]) -> list[float]:
    """The logged training loss of every step (the last checkpoint's trainer state)."""
    ckpts = option(argv, "--checkpoints")
    state = json.loads((ckpts / f"checkpoint-{complete_checkpoint_steps(ckpts)[-1]}" / "trainer_state.json").read_text())
    return [e["loss"] for e in state["log_history"] if "loss" in e]


def weights(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {k: v for f in sorted(out.glob("*.safetensors")) for k, v in load_file(f).items()}


@pytest.fixture(scope="module")
def two_process_dpo(setup):
    """An uninterrupted 2-process DPO run (batch b per process), with every process's writes."""
    argv = dpo_job(setup, "two", B)
    run_launched("dpo", argv, setup["root"])
    return argv, writes(setup["root"])


def test_two_processes_give_the_loss_trajectory_of_one_with_twice_the_batch(setup, two_process_dpo):
    argv2, _ = two_process_dpo
    argv1 = dpo_job(setup, "one", 2 * B)
    load_script("dpo").main(argv1)
    one, two = losses(argv1), losses(argv2)
    info1 = json.loads((option(argv1, "--out") / "run_info.json").read_text())
    info2 = json.loads((option(argv2, "--out") / "run_info.json").read_text())
    assert info1["global_step"] == info2["global_step"] == 6 and len(one) == len(two) == 6
    assert info2["job"]["processes"] == 2 and "processes" not in info1["job"]
    rel = np.abs(np.array(one) - np.array(two)) / np.abs(np.array(one))
    print(f"losses 1x{2 * B}: {one}\nlosses 2x{B}: {two}\nmax relative difference {rel.max():.2e}")
    assert rel.max() <= LOSS_RTOL, (one, two)
    assert one[-1] < one[0] - 0.05  # it trained: a trajectory, not a constant
    w1, w2 = weights(option(argv1, "--out")), weights(option(argv2, "--out"))
    assert w1.keys() == w2.keys()
    diff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    print(f"final weights: max |diff| {diff:.2e}")
    assert diff < 1e-4


def test_rank_zero_alone_writes_the_outputs(setup, two_process_dpo):
    argv, seen = two_process_dpo
    out = option(argv, "--out").relative_to(setup["root"])
    ckpts = option(argv, "--checkpoints").relative_to(setup["root"])
    rank0, rank1 = seen[0], seen[1]
    # Rank 0: the checkpoints' fingerprint, weights, optimizer and trainer state; the final
    # model with its run_info.json, renamed to --out.
    assert f"os.rename {ckpts}/fingerprint.json" in rank0, rank0
    for s in (2, 4, 6):
        assert {f"save {ckpts}/checkpoint-{s}/model.safetensors", f"save {ckpts}/checkpoint-{s}/optimizer.pt",
                f"save {ckpts}/checkpoint-{s}/rng_state_0.pth",
                f"open {ckpts}/checkpoint-{s}/trainer_state.json"} <= set(rank0), rank0
    assert any(line.startswith(f"save {out.parent}/.out.") and line.endswith(".tmp/model.safetensors")
               for line in rank0), rank0
    assert any(line.startswith(f"os.rename {out.parent}/.out.") and line.endswith(".tmp/run_info.json")
               for line in rank0), rank0
    assert f"os.rename {out}" in rank0, rank0
    # Rank 1: nothing but its own RNG state in each checkpoint (and the Trainer's makedirs of it).
    own = {f"save {ckpts}/checkpoint-{s}/rng_state_1.pth" for s in (2, 4, 6)}
    allowed = own | {f"os.mkdir {ckpts}"} | {f"os.mkdir {ckpts}/checkpoint-{s}" for s in (2, 4, 6)}
    assert set(rank1) - allowed == set(), sorted(set(rank1) - allowed)
    assert own <= set(rank1), rank1


def test_killed_two_process_run_resumes_to_the_uninterrupted_weights(setup, two_process_dpo):
    clean, _ = two_process_dpo
    argv = dpo_job(setup, "killed", B)
    ckpts = option(argv, "--checkpoints")
    proc = launch("dpo", argv, setup["root"], step_sleep=0.4)
    deadline = time.monotonic() + 240
    try:
        while not (ckpts.is_dir() and any(is_complete_checkpoint(p) for p in ckpts.glob("checkpoint-*"))):
            if proc.poll() is not None:
                pytest.fail(f"ended (rc {proc.returncode}) before a checkpoint:\n{proc.stdout.read().decode()[-3000:]}")
            assert time.monotonic() < deadline, "no complete checkpoint within 240 s"
            time.sleep(0.02)
        assert proc.poll() is None, "finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # the whole job: launcher, torchrun, both ranks
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert not option(argv, "--out").exists(), "a killed job left an output"
    at = last_complete_checkpoint(ckpts, remove_incomplete=False, processes=2)
    assert at is not None and at.name != "checkpoint-6", complete_checkpoint_steps(ckpts)

    log = run_launched("dpo", argv, setup["root"])
    info = json.loads((option(argv, "--out") / "run_info.json").read_text())
    assert info["resumed_from"] == at.name and info["global_step"] == 6, (info["resumed_from"], log[-2000:])
    a, b = weights(option(argv, "--out")), weights(option(clean, "--out"))
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    print(f"killed after {at.name}, resumed with 2 processes: {len(differ)} of {len(a)} tensors differ")
    assert not differ, differ
    assert losses(argv) == losses(clean)


def test_reference_logps_of_two_processes_equal_one(setup, tmp_path):
    root = setup["root"]
    pairs = make_pairs(N_PAIRS + 1, seed=3)  # 9 pairs: shares of 5 and 4
    pairs_path, _ = write_pairs_and_manifest(tmp_path, pairs)
    argv = ["--config-json", str(root / "ref.json"), "--model", str(setup["model"]), "--pairs", str(pairs_path),
            "--batch-size", "2", "--threads", "1"]
    load_script("ref_logps").main([*argv, "--out", str(tmp_path / "one.parquet")])
    run_launched("ref_logps", [*argv, "--out", str(tmp_path / "two.parquet")], root)
    one, two = read_parquet(tmp_path / "one.parquet"), read_parquet(tmp_path / "two.parquet")
    assert one["pair_id"].tolist() == two["pair_id"].tolist() == pairs["pair_id"].tolist()
    cols = ["ref_chosen_logps", "ref_rejected_logps"]
    diff = float(np.abs(one[cols].to_numpy() - two[cols].to_numpy()).max())
    print(f"reference log-probs, 2 processes vs 1: max |diff| {diff:.2e}")
    assert diff <= LOGP_ATOL
    assert writes(root)[1] == []  # rank 1 wrote nothing
