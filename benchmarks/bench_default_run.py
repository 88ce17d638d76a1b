"""Wall time of the embedded default experiment on this machine, stage by stage.

    .venv/bin/python benchmarks/bench_default_run.py [--cores 2] [--keep DIR]

Runs the workflow with config/config.yaml in a fresh working directory, as `make run` does:
first `train_all` (data + base + SFT + reference log-probs + every DPO run), then the rest
(conversion, answers, judgments, tables, plots). Prints both wall times; the target for data +
training is under 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def snakemake(work: Path, cores: int, *targets: str) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    t0 = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "snakemake"), *targets, "--snakefile", str(REPO / "Snakefile"),
                    "--directory", str(work), "--cores", str(cores), "--quiet", "all"],
                   check=True, env=env)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--keep", help="work in this directory (kept) instead of a temporary one")
    args = p.parse_args(argv)
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="bench_run.")
    work = Path(args.keep or tmp.name)  # type: ignore[union-attr]
    train = snakemake(work, args.cores, "train_all")
    print(f"[bench] default experiment, data + training (train_all): {train / 60:.1f} min", flush=True)
    rest = snakemake(work, args.cores)
    print(f"[bench] default experiment, evaluation + plots: {rest / 60:.1f} min")
    print(f"[bench] default experiment, total: {(train + rest) / 60:.1f} min")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
