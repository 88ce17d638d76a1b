"""Run the e2e experiment on a CUDA GPU and compare its tables with a CPU run's shape.

    make gpu-check                                   # both runs, in gpu-check/ (scratch)
    python scripts/gpu_check.py --workdir gpu-check [--cpu-results DIR] [--cores 8]

The GPU run is tests/e2e/config.yaml with bf16 training (``pretrain``, ``sft`` and ``dpo``
``bf16: true``) and answers on the GPU (scripts/answers.py ``--device auto``, the workflow's
default, picks CUDA when one is visible). The CPU run is the same experiment with
``CUDA_VISIBLE_DEVICES=""`` and fp32, unless ``--cpu-results`` names the ``results/e2e``
directory of a CPU run already made. Numbers differ between the two (bf16, other kernels); the
check is that every table of ``eval/`` exists in both with the same columns, the same number of
rows and the same model ids, and it prints the GPU run's win rates. It stops at once, before
running anything, when torch sees no CUDA device. Exit status 0: same shape; 1: a difference
(listed); 2: no CUDA.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
E2E = REPO / "tests" / "e2e" / "config.yaml"
BF16 = ["pretrain={bf16: true}", "sft={bf16: true}", "dpo={bf16: true}"]


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="gpu-check", help="scratch directory of both runs (gpu/ and cpu/ under it)")
    p.add_argument("--cpu-results", default=None, help="results/e2e of a CPU run already made (skips the CPU run)")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 2, help="snakemake --cores")
    return p


def require_cuda() -> str:
    """The CUDA device's name, or SystemExit(2) saying why there is none."""
    import torch

    if not torch.cuda.is_available():
        print(f"gpu-check: no CUDA device visible (torch {torch.__version__}, built for CUDA "
              f"{torch.version.cuda or 'none: a CPU-only build'}; CUDA_VISIBLE_DEVICES="
              f"{os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')!r}). Run it on a GPU node with a CUDA "
              "build of torch.", file=sys.stderr)
        raise SystemExit(2)
    return torch.cuda.get_device_name(0)


def run_e2e(workdir: Path, cores: int, config: list[str], env: dict[str, str]) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--profile", str(REPO / "profiles" / "local"), "--cores", str(cores),
           "--configfile", str(E2E)] + (["--config", *config] if config else [])
    print("gpu-check:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(REPO), **env})
    return workdir / "results" / "e2e"


def table_shapes(results: Path) -> dict[str, tuple[tuple[str, ...], int, tuple[str, ...]]]:
    """``{table: (columns, rows, sorted model ids)}`` of every ``eval/*.csv``."""
    import pandas as pd

    out = {}
    for path in sorted((results / "eval").glob("*.csv")):
        t = pd.read_csv(path)
        ids = tuple(sorted(map(str, t["model_id"].unique()))) if "model_id" in t else ()
        out[path.stem] = (tuple(t.columns), len(t), ids)
    return out


def shape_differences(cpu: dict, gpu: dict) -> list[str]:
    diffs = [f"{name}: only in the {'CPU' if name in cpu else 'GPU'} run" for name in sorted(set(cpu) ^ set(gpu))]
    for name in sorted(set(cpu) & set(gpu)):
        (c_cols, c_rows, c_ids), (g_cols, g_rows, g_ids) = cpu[name], gpu[name]
        if c_cols != g_cols:
            diffs.append(f"{name}: columns differ: CPU {list(c_cols)}, GPU {list(g_cols)}")
        if c_rows != g_rows:
            diffs.append(f"{name}: {c_rows} rows on CPU, {g_rows} on GPU")
        if c_ids != g_ids:
            diffs.append(f"{name}: model ids differ: {sorted(set(c_ids) ^ set(g_ids))}")
    return diffs


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    device = require_cuda()
    work = Path(args.workdir).resolve()
    print(f"gpu-check: CUDA device {device}", flush=True)
    gpu = run_e2e(work / "gpu", args.cores, BF16, {})
    cpu = Path(args.cpu_results) if args.cpu_results else run_e2e(work / "cpu", args.cores, [], {"CUDA_VISIBLE_DEVICES": ""})
    diffs = shape_differences(table_shapes(cpu), table_shapes(gpu))
    import pandas as pd

    print(pd.read_csv(gpu / "eval" / "win_rates.csv")[["model_id", "win_rate", "ci_low", "ci_high"]].to_string(index=False))
    if diffs:
        print("gpu-check: the GPU run's tables differ in shape from the CPU run's:\n  " + "\n  ".join(diffs), file=sys.stderr)
        raise SystemExit(1)
    print(f"gpu-check: {len(table_shapes(gpu))} tables, same shape on {device} (bf16) as on CPU")


if __name__ == "__main__":
    main()
