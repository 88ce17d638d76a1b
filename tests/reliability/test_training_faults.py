"""Faults during training: a killed job resumes to the same weights; broken checkpoints stop it.

A user's job is killed (SIGKILL: OOM killer, preempted node, Slurm timeout) at any point after a
complete checkpoint; Snakemake runs the same command again. The resumed run must give the same
model as a run that was never interrupted, tensor for tensor (bit-identical on CPU), for SFT and
DPO, full fine-tuning and LoRA. A checkpoint that does not load completely is an error naming it.

The killed run is a real subprocess (``python scripts/{sft,dpo}.py ...``) whose training steps
are slowed down (0.15 s each, by a wrapper that patches ``Trainer.training_step``) so that the
kill lands mid-training, after the first complete checkpoint, without a race. The rerun is the
same command line, run in this process (``main(argv)``) to save the interpreter start-up.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from prefsweep.config import job_config
from prefsweep.train.checkpoints import complete_checkpoint_steps, is_complete_checkpoint
from tests.conftest import load_config
from tests.unit.train_helpers import (
    REPO, build_tiny_dir, dpo_argv, load_script, make_pairs, sft_argv, write_pairs_and_manifest, write_sft_corpus,
)

pytestmark = pytest.mark.reliability

#: Tiny enough that 12 optimizer steps take well under a second.
FAULT_TINY = {"vocab_size": 400, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 128}
LORA = {"enabled": True, "r": 4, "lora_alpha": 8, "lora_dropout": 0.1, "target_modules": ["query_key_value"]}
#: 8 examples, batch 2, 3 epochs: 12 steps, a checkpoint every 2.
TRAIN = {"num_train_epochs": 3, "per_device_train_batch_size": 2, "save_steps": 2, "max_length": 64,
         "logging_steps": 100}

SLOW_WRAPPER = """
import runpy, sys, time
from transformers import Trainer
step = Trainer.training_step
def slow_step(self, *args, **kwargs):
    time.sleep(0.15)
    return step(self, *args, **kwargs)
Trainer.training_step = slow_step
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_dir(tmp_path_factory.mktemp("fault_tiny"), FAULT_TINY, n_prompts=8)


def config_file(path: Path, step: str, lora: bool, **overrides) -> Path:
    """The job's config slice (config/config.yaml with the schema's defaults), made tiny."""
    config = job_config(load_config(), step)
    config[step].update(TRAIN, lora={**config[step]["lora"], **(LORA if lora else {"enabled": False})},
                        learning_rate=3e-3 if step == "dpo" else 1e-2, **overrides)
    path.write_text(json.dumps(config))
    return path


def sft_job(root: Path, model: Path, lora: bool, name: str = "run", **overrides) -> list[str]:
    corpus = root / "sft.jsonl"
    if not corpus.exists():
        write_sft_corpus(corpus, 8)
    return sft_argv(config=config_file(root / f"{name}.json", "sft", lora, **overrides), model=model,
                    corpus=corpus, out=root / name / "out", checkpoints=root / name / "checkpoints")


def dpo_job(root: Path, model: Path, lora: bool, name: str = "run") -> list[str]:
    config = config_file(root / f"{name}.json", "dpo", lora)
    pairs, manifest = write_pairs_and_manifest(root, make_pairs(8))
    ref = root / "ref.parquet"
    if not ref.exists():
        load_script("ref_logps").main(["--config-json", str(config), "--model", str(model), "--pairs", str(pairs),
                                       "--out", str(ref), "--threads", "1"])
    return dpo_argv(root, config=config, model=model, pairs=pairs, manifest=manifest, ref_logps=ref, n_pairs=8,
                    out=root / name / "out", checkpoints=root / name / "checkpoints")


def option(argv: list[str], name: str) -> Path:
    return Path(argv[argv.index(name) + 1])


def kill_after_first_checkpoint(script: str, argv: list[str]) -> int:
    """Run ``python scripts/{script}.py argv`` (slowed), SIGKILL it once a checkpoint is complete.

    Returns the newest complete checkpoint step at the time of the kill.
    """
    ckpts = option(argv, "--checkpoints")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRAPPER, str(REPO / "scripts" / f"{script}.py"), *argv],
                            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    try:
        while not (ckpts.is_dir() and any(is_complete_checkpoint(p) for p in ckpts.glob("checkpoint-*"))):
            if proc.poll() is not None:
                pytest.fail(f"{script}.py ended (rc {proc.returncode}) before its first checkpoint:\n"
                            + proc.stderr.read().decode()[-3000:])
            assert time.monotonic() < deadline, "no complete checkpoint within 180 s"
            time.sleep(0.01)
        assert proc.poll() is None, f"{script}.py finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not option(argv, "--out").exists(), "a killed job left an output"
    steps = complete_checkpoint_steps(ckpts)
    assert steps and steps[-1] < 12, f"killed too late to resume anything: checkpoints {steps}"
    return steps[-1]


def model_tensors(out: Path) -> dict[str, torch.Tensor]:
    """Every tensor of every safetensors file of a saved model (full or adapter), by file and name."""
    files = sorted(out.glob("*.safetensors"))
    assert files, f"{out}: no safetensors weights"
    return {f"{f.name}:{k}": v for f in files for k, v in load_file(f).items()}


def compare(resumed: Path, uninterrupted: Path) -> list[str]:
    a, b = model_tensors(resumed), model_tensors(uninterrupted)
    assert a.keys() == b.keys()
    return [f"{k} (max |diff| {float((a[k].double() - b[k].double()).abs().max()):.2e})"
            for k in a if not torch.equal(a[k], b[k])]


@pytest.mark.parametrize("step, lora", [("sft", False), ("sft", True), ("dpo", False), ("dpo", True)],
                         ids=["sft-full", "sft-lora", "dpo-full", "dpo-lora"])
def test_killed_job_resumes_to_the_uninterrupted_weights(case, tiny_model, tmp_path, step, lora):
    case.expect(f"{step} {'LoRA' if lora else 'full'} job SIGKILLed after a checkpoint, rerun with the same "
                "command: resumes from that checkpoint and ends with every tensor equal to an uninterrupted run's")
    make = sft_job if step == "sft" else dpo_job
    killed = make(tmp_path, tiny_model, lora, "killed")
    clean = make(tmp_path, tiny_model, lora, "clean")
    script = load_script(step)
    script.main(clean)

    at = kill_after_first_checkpoint(step, killed)
    resume_dir = option(killed, "--checkpoints") / f"checkpoint-{at}"
    weights = next(resume_dir.glob("*.safetensors"))
    before = (weights.stat().st_ino, weights.stat().st_mtime_ns)
    script.main(killed)

    info = json.loads((option(killed, "--out") / "run_info.json").read_text())
    assert info["resumed_from"] == f"checkpoint-{at}" and info["global_step"] == 12
    assert (weights.stat().st_ino, weights.stat().st_mtime_ns) == before  # read, not rewritten
    differ = compare(option(killed, "--out"), option(clean, "--out"))
    n = len(model_tensors(option(clean, "--out")))
    case.observe(f"killed after checkpoint-{at}, resumed: "
                 + (f"{len(differ)} of {n} tensors differ: {', '.join(differ[:3])}" if differ
                    else f"all {n} tensors bit-identical"))
    assert not differ, differ
    # Only the newest checkpoint keeps what a resume needs; all keep their weights.
    ckpts = option(killed, "--checkpoints")
    steps = complete_checkpoint_steps(ckpts)
    assert steps == list(range(2, 13, 2))
    assert [s for s in steps if (ckpts / f"checkpoint-{s}" / "optimizer.pt").exists()] == [12]


def finished_sft_run(root: Path, model: Path) -> tuple[list[str], Path]:
    """An SFT run that finished; its output removed, so a rerun resumes from the last checkpoint."""
    argv = sft_job(root, model, lora=False)
    load_script("sft").main(argv)
    import shutil

    shutil.rmtree(option(argv, "--out"))
    last = option(argv, "--checkpoints") / "checkpoint-12"
    assert is_complete_checkpoint(last)
    return argv, last


def test_checkpoint_missing_a_tensor_is_an_error(case, tiny_model, tmp_path):
    case.expect("resume from a checkpoint whose weights lack a tensor: error naming the checkpoint and the key; "
                "no model written")
    argv, last = finished_sft_run(tmp_path, tiny_model)
    weights = load_file(last / "model.safetensors")
    dropped = "gpt_neox.final_layer_norm.weight"  # a name no renaming touches: the message can quote it
    del weights[dropped]
    save_file(weights, last / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(SystemExit) as exc:
        load_script("sft").main(argv)
    message = str(exc.value)
    case.observe(message)
    assert str(last) in message and dropped in message and "missing" in message
    assert not option(argv, "--out").exists()


def test_truncated_checkpoint_is_an_error(case, tiny_model, tmp_path):
    case.expect("resume from a checkpoint whose weights file was cut short: error naming the file, saying "
                "it cannot be read and what to do; no model written")
    argv, last = finished_sft_run(tmp_path, tiny_model)
    weights = last / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(SystemExit) as exc:
        load_script("sft").main(argv)
    message = str(exc.value)
    case.observe(message)
    assert str(last) in message and "cannot be read" in message and "delete" in message
    assert not option(argv, "--out").exists()


# ---------------------------------------------------------------------------------------------
# Disk full, safe loading, determinism
# ---------------------------------------------------------------------------------------------


def test_disk_full_while_saving_leaves_no_model(case, tiny_model, tmp_path, monkeypatch):
    case.expect("disk full (ENOSPC) while the final model is written: error saying disk full and naming the "
                "output path; nothing at the path, no temporary directory left")
    import safetensors
    import transformers.modeling_utils as mu

    from prefsweep.train.jobs import DiskFullError, save_atomically

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    out = tmp_path / "models" / "sft"

    def full_disk(state_dict, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 100)  # a partial file, then the disk is full
        raise safetensors.SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(mu, "safe_save_file", full_disk)
    with pytest.raises(DiskFullError) as exc:
        save_atomically(out, model.save_pretrained)
    case.observe(exc.value)
    assert "disk full" in str(exc.value) and str(out) in str(exc.value)
    assert not out.exists() and list(out.parent.iterdir()) == []

    def enospc(state_dict, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

    monkeypatch.setattr(mu, "safe_save_file", enospc)
    with pytest.raises(DiskFullError, match="disk full"):
        save_atomically(out, model.save_pretrained)
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_disk_full_while_writing_a_checkpoint(case, tiny_model, tmp_path, monkeypatch):
    case.expect("disk full while a checkpoint is written: error saying disk full and naming the checkpoints "
                "directory; the rerun drops the cut-off checkpoint and resumes from the last complete one")
    import safetensors
    import transformers.modeling_utils as mu

    argv = sft_job(tmp_path, tiny_model, lora=False)
    original, calls = mu.safe_save_file, []

    def full_on_third(state_dict, filename, metadata=None):
        calls.append(filename)
        if len(calls) == 3:  # checkpoint-6
            Path(filename).write_bytes(b"\0" * 100)
            raise safetensors.SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return original(state_dict, filename, metadata=metadata)

    monkeypatch.setattr(mu, "safe_save_file", full_on_third)
    with pytest.raises(SystemExit) as exc:
        load_script("sft").main(argv)
    case.observe(exc.value)
    assert "disk full" in str(exc.value) and str(option(argv, "--checkpoints")) in str(exc.value)
    assert not option(argv, "--out").exists()
    assert complete_checkpoint_steps(option(argv, "--checkpoints")) == [2, 4]
    monkeypatch.setattr(mu, "safe_save_file", original)
    load_script("sft").main(argv)
    info = json.loads((option(argv, "--out") / "run_info.json").read_text())
    assert info["resumed_from"] == "checkpoint-4" and info["global_step"] == 12


def test_loaders_use_safetensors_and_no_remote_code(case, tiny_model, tmp_path, monkeypatch):
    case.expect("our loaders never turn on trust_remote_code and read weights from safetensors only; "
                "every torch.load during a resume is weights_only=True")
    import transformers

    from prefsweep.train.training import load_model_and_tokenizer

    seen: list[dict] = []
    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, **kwargs):
            seen.append({"class": klass.__name__, **kwargs})
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    load_model_and_tokenizer(tiny_model)
    assert seen and all(s.get("trust_remote_code") is False for s in seen), seen
    assert [s.get("use_safetensors") for s in seen if s["class"] == "AutoModelForCausalLM"] == [True]

    pickled = tmp_path / "pickled"
    import shutil

    shutil.copytree(tiny_model, pickled)
    weights = load_file(pickled / "model.safetensors")
    (pickled / "model.safetensors").unlink()
    torch.save(weights, pickled / "pytorch_model.bin")
    with pytest.raises(Exception, match="safetensors|model.safetensors"):
        load_model_and_tokenizer(pickled)

    loads: list[dict] = []
    original_load = torch.load

    def spy_load(*args, **kwargs):
        loads.append(kwargs)
        return original_load(*args, **kwargs)

    argv = sft_job(tmp_path, tiny_model, lora=False)
    load_script("sft").main(argv)
    shutil.rmtree(option(argv, "--out"))
    monkeypatch.setattr(torch, "load", spy_load)
    load_script("sft").main(argv)  # resumes from checkpoint-12: optimizer, scheduler, RNG states
    remote = sorted({str(s.get("trust_remote_code")) for s in seen})
    weights_only = sorted({str(k.get("weights_only")) for k in loads})
    case.observe(f"trust_remote_code={remote}; {len(loads)} torch.load calls on resume, weights_only={weights_only}")
    assert loads and all(k.get("weights_only") is True for k in loads)


def first_epoch_order(tiny_model: Path, argv: list[str]) -> list[tuple[int, ...]]:
    """The token rows in the order the job's trainer feeds them (first epoch, its seed)."""
    from datasets import Dataset

    from prefsweep.io import read_jsonl
    from prefsweep.train.training import build_sft_config, load_model_and_tokenizer
    from prefsweep.train.trl_adapter import make_sft_trainer

    section = json.loads(option(argv, "--config-json").read_text())["sft"]
    records = read_jsonl(option(argv, "--corpus"))
    data = Dataset.from_dict({"prompt": [r["prompt"] for r in records],
                              "completion": [r["completion"] for r in records]})
    model, tok = load_model_and_tokenizer(tiny_model)
    args = build_sft_config(section, output_dir=option(argv, "--checkpoints").parent / "order", run_name="sft",
                            report_to="none")
    trainer = make_sft_trainer(model, tok, data, args)
    return [tuple(row[mask == 1].tolist()) for batch in trainer.get_train_dataloader()
            for row, mask in zip(batch["input_ids"], batch["attention_mask"])]


def test_same_seed_same_weights_other_seed_other_order(case, tiny_model, tmp_path):
    case.expect("same config and seed twice: byte-identical model files; another seed: another data order "
                "and other weights")
    runs, orders = {}, {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        argv = sft_job(tmp_path, tiny_model, lora=False, name=name, seed=seed, save_steps=100)
        load_script("sft").main(argv)
        runs[name] = (option(argv, "--out") / "model.safetensors").read_bytes()
        if name != "b":
            orders[seed] = first_epoch_order(tiny_model, argv)
    case.observe(f"seed 0 twice: {'identical' if runs['a'] == runs['b'] else 'DIFFERENT'} bytes; seed 1: "
                 f"{'different' if runs['c'] != runs['a'] else 'SAME'} weights, "
                 f"{'another' if orders[0] != orders[1] else 'the SAME'} data order")
    assert runs["a"] == runs["b"]
    assert runs["c"] != runs["a"]
    assert orders[0] != orders[1] and sorted(orders[0]) == sorted(orders[1])
