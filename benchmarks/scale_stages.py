"""Peak memory and throughput per stage of the paper-scale code path, at two model widths, on CPU.

    python benchmarks/scale_stages.py [--widths 64 256] [--out benchmarks/results/scale.csv] [--keep DIR]

Runs the scale experiment of tests/scale/ (config/paper/{base,shp}.yaml at toy sizes, a
Pythia-shaped model from tests/scale/pythia.py, SHP-format data, the LLM judge on the loopback
server) with Snakemake up to one DPO cell's answers (base copy, full SFT, reference log-probs,
DPO with LoRA on [query_key_value, dense], merge, answers), then once more with full DPO for
that cell. Each job's peak RSS comes from its Snakemake ``benchmark:`` file (``max_rss``, MB);
tokens/s of SFT and DPO from the trainer's own ``num_tokens`` / ``train_runtime`` (the training
loop only), of ref_logps and answers from the tokens scored or generated over the job's wall
time (import and load included). ``base_rss_mb`` is the peak RSS of a process that only imports
what the training scripts import: ``max_rss - base_rss_mb`` is what the model and data cost,
the figure to compare with a memory model (``prefsweep.cost.plan.training_memory`` with
``overhead_bytes=0`` and the CPU's dtype, where that module exists: column ``predicted_mb``).

Prints the table and writes it as CSV to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from prefsweep.paths import Layout, dpo_model_id  # noqa: E402
from tests.fixtures.judge_server import JudgeServer  # noqa: E402
from tests.scale.run import CONFIGS, WIDTHS, prepare  # noqa: E402
from tests.test_dag import snakemake  # noqa: E402

L = Layout("scale")
CELL = ("maj", "shared", 24, 1)
MODEL_ID = dpo_model_id(*CELL)


def base_rss_mb() -> float:
    """Peak RSS (MB) of a process that imports the training stack and nothing else."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, "-c", "import torch, transformers, trl, peft, datasets; import prefsweep.train.jobs"],
                   check=True, cwd=REPO)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(before, after) / 1024  # ru_maxrss is in KiB on Linux


def bench_row(path: Path) -> dict[str, float]:
    header, last = path.read_text().strip().splitlines()[0].split("\t"), path.read_text().strip().splitlines()[-1]
    values = dict(zip(header, last.split("\t")))
    return {"wall_s": float(values["s"]), "max_rss_mb": float(values["max_rss"]), "cpu_s": float(values["cpu_time"])}


def count_tokens(tokenizer, texts) -> int:
    return sum(len(ids) for ids in tokenizer(list(texts)).input_ids)


def predicted_mb(stage: str, config: dict, n_params: int, seq_len: int, lora_params: int) -> float | None:
    """Memory model's peak bytes (MB) for a training stage on CPU, if prefsweep.cost.plan has one."""
    try:
        from prefsweep.cost.memory import training_memory_bytes
    except ImportError:
        return None
    section = config["dpo" if stage.startswith("dpo") else "sft"]
    batch = section["per_device_train_batch_size"] * (2 if stage.startswith("dpo") else 1)
    lora = stage == "dpo-lora"
    return training_memory_bytes(
        n_params, batch=batch, seq_len=seq_len, hidden=config["hidden_size"], layers=config["num_hidden_layers"],
        vocab=config["vocab_size"], lora=lora, trainable_params=lora_params if lora else None,
        dtype="bfloat16" if section["bf16"] else "float32", overhead_bytes=0, device="cpu") / 2**20


def measure(width: int, work: Path) -> list[dict]:
    import pandas as pd
    import yaml
    from transformers import AutoConfig, AutoTokenizer

    from transformers import AutoModelForCausalLM

    from tests.scale.run import run_env

    work.mkdir(parents=True, exist_ok=True)
    env = run_env()
    rows = []
    with JudgeServer() as server:
        config_path = prepare(work, server.api_base, width=width)
        full = work / "full.yaml"
        full.write_text(yaml.safe_dump({"dpo": {"lora": {"enabled": False}}}))
        for variant, extra in (("lora", ()), ("full", (str(full),))):
            t0 = time.perf_counter()
            snakemake(L.answers(MODEL_ID), "--cores", "2", "--configfile", *CONFIGS, config_path, *extra,
                      cwd=work, env=env)
            print(f"width {width}, DPO {variant}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            rows += stage_rows(width, variant, work)
    model_config = AutoConfig.from_pretrained(work / "pythia").to_dict()
    model = AutoModelForCausalLM.from_pretrained(work / "pythia")
    n_params = sum(p.numel() for p in model.parameters())
    run_config = json.loads((work / L.model("sft") / "run_info.json").read_text())["config"]
    tok = AutoTokenizer.from_pretrained(work / L.model("sft"))
    pairs = pd.read_parquet(work / L.series_pairs(*CELL[:3]))
    seq_len = max(count_tokens(tok, [p + c]) for p, c in zip(pairs["prompt"], pairs["chosen"]))
    h = model_config["hidden_size"]
    lora = run_config.get("dpo", {}).get("lora") or {"r": 64}
    lora_params = model_config["num_hidden_layers"] * lora["r"] * ((h + 3 * h) + (h + h))
    for row in rows:
        row["n_params"] = n_params
        if row["stage"] in ("sft", "dpo-lora", "dpo-full"):
            cfg = {**model_config, "sft": run_config.get("sft", {"per_device_train_batch_size": 8, "bf16": True}),
                   "dpo": run_config.get("dpo", {"per_device_train_batch_size": 8, "bf16": True})}
            row["predicted_mb"] = predicted_mb(row["stage"], cfg, n_params, seq_len, lora_params)
    return rows


def stage_rows(width: int, variant: str, work: Path) -> list[dict]:
    import pandas as pd
    from transformers import AutoTokenizer

    run = L.dpo_run(*CELL)
    out = []
    stages = {"dpo-" + variant: L.benchmark(L.dpo_model(*CELL)), "answers-" + variant: L.benchmark(L.answers(MODEL_ID))}
    if variant == "lora":
        stages = {"base_model": L.benchmark(L.model("base")), "sft": L.benchmark(L.model("sft")),
                  "ref_logps": L.benchmark(L.ref_logps("maj")), **stages}
    tok = AutoTokenizer.from_pretrained(work / L.model("sft"))
    for stage, bench in stages.items():
        row = {"width": width, "stage": stage, **bench_row(work / bench)}
        tokens = None
        if stage == "sft" or stage.startswith("dpo"):
            info = json.loads((work / (L.model("sft") if stage == "sft" else L.model(run)) / "run_info.json").read_text())
            m = info["train_metrics"]
            if "num_tokens" in m:
                row["tokens"], row["tokens_per_s"] = float(m["num_tokens"]), float(m["num_tokens"]) / float(m["train_runtime"])
        elif stage == "ref_logps":
            pairs = pd.read_parquet(work / L.series_pairs(*CELL[:3]))
            tokens = count_tokens(tok, list(pairs["prompt"] + pairs["chosen"]) + list(pairs["prompt"] + pairs["rejected"]))
        elif stage.startswith("answers"):
            answers = [json.loads(line)["choices"][0]["turns"][0] for line in open(work / L.answers(MODEL_ID))]
            tokens = count_tokens(tok, answers)
        if tokens is not None:
            row["tokens"], row["tokens_per_s"] = tokens, tokens / row["wall_s"]
        out.append(row)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", type=int, nargs="+", default=sorted(WIDTHS), choices=sorted(WIDTHS))
    p.add_argument("--out", default=str(REPO / "benchmarks/results/scale.csv"))
    p.add_argument("--keep", default=None, help="working directory to keep (default: a temporary one)")
    args = p.parse_args(argv)
    base = base_rss_mb()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(args.keep or tmp)
        for width in args.widths:
            rows += measure(width, root / f"w{width}")
    cols = ["width", "n_params", "stage", "wall_s", "cpu_s", "max_rss_mb", "model_rss_mb", "predicted_mb", "tokens",
            "tokens_per_s"]
    for r in rows:
        r["base_rss_mb"] = base
        r["model_rss_mb"] = r["max_rss_mb"] - base
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols + ["base_rss_mb"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    print(f"base RSS (imports only): {base:.0f} MB")
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join("" if r.get(c) is None else (f"{r[c]:.1f}" if isinstance(r[c], float) else str(r[c]))
                         for c in cols))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
