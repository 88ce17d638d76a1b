"""Measured peak memory of real training steps vs the memory model, for Pythia-shaped models on CPU.

    python benchmarks/memory_model.py [--cases NAME ...] [--out benchmarks/results/memory.csv]

Each case trains a Pythia-shaped model (tests/scale/pythia.py: GPT-NeoX, ``rotary_pct`` 0.25,
parallel residual, untied ``embed_out``; here with Pythia's padded vocabulary of 50304 rows, so
the LM head is as large as the real suite's) for a few steps in fp32 through the workflow's own
training code: :func:`prefsweep.train.training.load_model_and_tokenizer` (``dtype=TRAIN_DTYPE``),
``build_sft_config`` / ``build_dpo_config`` from a schema-filled section, and
``prefsweep.train.trl_adapter.make_sft_trainer`` / ``make_dpo_trainer`` (TRL's SFTTrainer /
DPOTrainer, transformers' default AdamW). Every micro-batch is 4 sequences of 128 tokens
(SFT: batch 4; DPO: batch 2 pairs, chosen + rejected).

Each case runs in a fresh process. ``measured_mb`` = the process's peak RSS over the training
steps (``ru_maxrss`` at the end of each step; checkpoint saving is off) minus its peak RSS
right after the imports, before the model is loaded. ``predicted_mb`` =
:func:`prefsweep.cost.plan.training_memory` with ``dtype="float32"``, ``overhead_bytes=0`` (no
CUDA context on a CPU) and ``device="cpu"`` (TRL's fused LM head runs its torch fallback, which
holds several fp32 tiles: the ``logits`` term), with its components. Prints the table and writes it as CSV to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: Pythia's embedding rows (50277 tokens padded to a multiple of 128).
PYTHIA_VOCAB = 50304
BATCH_SEQUENCES = 4
SEQ_LEN = 128
STEPS = 3
LORA = {"enabled": True, "r": 64, "lora_alpha": 128, "lora_dropout": 0.05,
        "target_modules": ["query_key_value", "dense"]}  # config/paper/base.yaml's dpo.lora

#: size -> (hidden, layers, heads); case -> (size, step, LoRA, gradient checkpointing)
SIZES = {"s": (256, 6, 4), "m": (512, 6, 8)}  # m: pythia-70m's shape
CASES = {
    "s-sft-full": ("s", "sft", False, False),
    "m-sft-full": ("m", "sft", False, False),
    "m-sft-full-ckpt": ("m", "sft", False, True),
    "m-dpo-full": ("m", "dpo", False, False),
    "m-dpo-lora": ("m", "dpo", True, False),
}
COMPONENTS = ("weights", "grads", "optimizer", "activations", "logits")


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def texts(n: int, words: int, seed: int) -> list[str]:
    import random

    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 7))) for _ in range(3000)]
    return [" ".join(rng.choice(vocab) for _ in range(words)) for _ in range(n)]


def write_model(out: Path, size: str) -> None:
    """The Pythia-shaped directory of ``size``, in its own process (so no case's peak includes it)."""
    from tests.scale.pythia import write_pythia_dir

    hidden, layers, heads = SIZES[size]
    write_pythia_dir(out, texts(200, 200, seed=1), hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=heads, vocab_size=PYTHIA_VOCAB)


def run_case(name: str, model_dir: Path, work: Path) -> dict:
    """One case in this process (the child): train, measure, return the row."""
    import datasets
    import torch
    import transformers
    from transformers import TrainerCallback

    import trl  # noqa: F401  (the training stack's imports belong to the baseline)
    import peft  # noqa: F401
    from prefsweep.config import job_config, validate_config
    from prefsweep.train.training import (TRAIN_DTYPE, build_dpo_config, build_lora_config, build_sft_config,
                                    configure_runtime, load_model_and_tokenizer, n_parameters)
    from prefsweep.train.trl_adapter import make_dpo_trainer, make_sft_trainer

    configure_runtime(threads=int(os.environ.get("BENCH_THREADS", "2")))
    base_mb = peak_rss_mb()
    size, step, lora, ckpt = CASES[name]
    model, tok = load_model_and_tokenizer(model_dir, dtype=TRAIN_DTYPE)
    loaded_mb = peak_rss_mb()
    n_params = n_parameters(model)
    n_ex = STEPS * (BATCH_SEQUENCES if step == "sft" else BATCH_SEQUENCES // 2)
    body = texts(3 * n_ex, 300, seed=2)  # far over SEQ_LEN tokens: every sequence is cut to exactly SEQ_LEN
    prompts = [t[:60] for t in texts(n_ex, 20, seed=3)]
    section = job_config(validate_config({"experiment": "bench", step: {
        "bf16": False, "learning_rate": 1e-5, "num_train_epochs": 1, "gradient_accumulation_steps": 1,
        "per_device_train_batch_size": BATCH_SEQUENCES if step == "sft" else BATCH_SEQUENCES // 2,
        "max_length": SEQ_LEN, "save_steps": 10**6, "logging_steps": 1, "gradient_checkpointing": ckpt,
        "lora": LORA if lora else {"enabled": False}, "warmup_ratio": 0.0}}), step)[step]
    common = dict(output_dir=work / "out", run_name=name, report_to="none")
    if step == "sft":
        data = datasets.Dataset.from_dict({"prompt": prompts, "completion": body[:n_ex]})
        args = build_sft_config(section, **common)
        make = make_sft_trainer
    else:
        data = datasets.Dataset.from_dict({"prompt": prompts, "chosen": body[:n_ex], "rejected": body[n_ex:2 * n_ex],
                                           "ref_chosen_logps": [-300.0] * n_ex, "ref_rejected_logps": [-300.0] * n_ex})
        args = build_dpo_config(section, seed=1, **common)
        make = make_dpo_trainer
    args.save_strategy = "no"  # a checkpoint write is no training step

    peaks: list[float] = []
    shapes: list[tuple[int, ...]] = []

    class Probe(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            peaks.append(peak_rss_mb())

    trainer = make(model, tok, data, args, peft_config=build_lora_config(section["lora"], f"{step}.lora"),
                   callbacks=[Probe()])
    original = trainer.compute_loss

    def compute_loss(model, inputs, *a, **kw):
        shapes.append(tuple(inputs["input_ids"].shape))
        return original(model, inputs, *a, **kw)

    trainer.compute_loss = compute_loss
    built_mb = peak_rss_mb()
    t0 = time.perf_counter()
    trainer.train()
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    return {"case": name, "step": step, "lora": lora, "grad_ckpt": ckpt, "n_params": n_params,
            "trainable_params": trainable, "batch_shapes": sorted(set(shapes)), "base_rss_mb": base_mb,
            "loaded_mb": loaded_mb - base_mb, "built_mb": built_mb - base_mb,
            "step_peaks_mb": [p - base_mb for p in peaks], "measured_mb": max(peaks) - base_mb,
            "train_s": time.perf_counter() - t0, "optim": str(args.optim),
            "attention": model.config._attn_implementation, "torch": torch.__version__,
            "transformers": transformers.__version__, "hidden": SIZES[size][0], "layers": SIZES[size][1],
            "heads": SIZES[size][2], "vocab": PYTHIA_VOCAB}


def predict(row: dict) -> dict:
    from prefsweep.cost.memory import lora_params, training_memory

    h, layers = row["hidden"], row["layers"]
    trainable = lora_params(hidden=h, layers=layers, r=LORA["r"], target_modules=LORA["target_modules"])
    est = training_memory(row["n_params"], batch=BATCH_SEQUENCES, seq_len=SEQ_LEN, hidden=h, layers=layers,
                          vocab=row["vocab"], heads=row["heads"], lora=row["lora"],
                          trainable_params=trainable if row["lora"] else None, grad_checkpointing=row["grad_ckpt"],
                          dtype="float32", overhead_bytes=0, device="cpu")
    out = {f"{c}_mb": getattr(est, c) / 2**20 for c in COMPONENTS}
    out["predicted_mb"] = est.total / 2**20
    out["lora_params_model"] = trainable if row["lora"] else None
    return out


def child(argv: list[str]) -> None:
    name, model_dir, work = argv
    print("RESULT " + json.dumps(run_case(name, Path(model_dir), Path(work))))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--out", default=str(REPO / "benchmarks/results/memory.csv"))
    args = p.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false"}
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        for size in dict.fromkeys(CASES[c][0] for c in args.cases):
            subprocess.run([sys.executable, __file__, "--write-model", size, f"{tmp}/{size}"], check=True, env=env)
        for name in args.cases:
            proc = subprocess.run([sys.executable, __file__, "--child", name, f"{tmp}/{CASES[name][0]}",
                                   f"{tmp}/work-{name}"], env=env, capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"case {name} failed:\n{proc.stderr[-4000:]}")
            row = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
            row.update(predict(row))
            row["ratio"] = row["measured_mb"] / row["predicted_mb"]
            print(f"{name}: {row['train_s']:.0f} s, batches {row['batch_shapes']}, step peaks (MB over base) "
                  + ", ".join(f"{x:.0f}" for x in row["step_peaks_mb"]), file=sys.stderr)
            rows.append(row)
    cols = ["case", "n_params", "trainable_params", *(f"{c}_mb" for c in COMPONENTS), "predicted_mb",
            "measured_mb", "ratio", "base_rss_mb", "train_s"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols + ["optim", "attention", "torch", "transformers"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    print(f"fp32, {BATCH_SEQUENCES} x {SEQ_LEN} tokens per micro-batch, {STEPS} steps; MB = 2^20 bytes; "
          f"optimizer {rows[0]['optim']}, attention {rows[0]['attention']}; total {time.perf_counter() - t0:.0f} s")
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(f"{r[c]:.2f}" if c == "ratio" else f"{r[c]:.0f}" if isinstance(r[c], float) else str(r[c])
                         for c in cols))
    print(f"written to {args.out}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
    elif sys.argv[1:2] == ["--write-model"]:
        write_model(Path(sys.argv[3]), sys.argv[2])
    else:
        main()
