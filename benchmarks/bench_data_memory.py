"""Peak memory of the data stage at 100k and at 1M prompts (6 candidates, 9 voters).

    python benchmarks/bench_data_memory.py [--scale full|small] [--json OUT]

Runs every data job as the workflow does, each its own process with its rule's command
(``scripts/*.py``; see ``bench_data.data_jobs``), two at a time where the DAG allows: ballots, split, both pools, the largest
series cell of each matching (64000 pairs: smaller cells read the same pools and keep less),
and at the smaller size also the SFT and pretraining corpora and the eval questions (their peaks
sit below the pools'; at 1M they would add about 3 min to the run). A job's peak is the kernel's
``ru_maxrss`` of its process; the stage's peak is the largest job's, since the workflow holds
one job's data per process. The comparison is the ballots file each job reads (its size on
disk) and, at 1M, the peak at 100k: memory that grows like the data is 10x for 10x the prompts.
One run per size (the peak of a deterministic job barely moves between runs).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import run_data_stage
from harness import Figure, emit, parser

FIGURES = ("data_memory.100k", "data_memory.1m")
SCALES = {"full": (100_000, 1_000_000), "small": (2_000, 20_000)}


def peak(n_prompts: int, extras: bool) -> tuple[str, float, float, float]:
    """(job with the largest peak, its peak MiB, ballots.jsonl MiB, the stage's wall s)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_mem.") as tmp:
        usage = run_data_stage(Path(tmp), n_prompts, largest_only=True, extras=extras)
        ballots_mib = (Path(tmp) / "data" / "ballots.jsonl").stat().st_size / 2**20
    job = max(usage, key=lambda k: usage[k].peak_mib)
    return job, usage[job].peak_mib, ballots_mib, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__).parse_args(argv)
    small, large = SCALES[args.scale]
    results = {small: peak(small, extras=True), large: peak(large, extras=False)}
    figures = []
    for name, n in zip(FIGURES, (small, large)):
        job, mib, ballots_mib, wall = results[n]
        jobs = "all data jobs" if n == small else "ballots, split, pools, largest series"
        fig = Figure(name=name, label=f"data stage peak memory, {n:,} prompts ({jobs}; largest: {job}; "
                                      f"stage {wall:.0f} s, 2 jobs at a time)",
                     value=f"{mib:,.0f} MiB", comparison=f"ballots.jsonl {ballots_mib:,.0f} MiB",
                     ratio=f"{mib / ballots_mib:.1f}x the ballots file", spread="1 run")
        if n == large:
            base = results[small][1]
            fig.comparison += f"; {small:,} prompts {base:,.0f} MiB"
            fig.ratio += f"; {mib / base:.1f}x the peak at {large // small}x the prompts"
        figures.append(fig)
    emit(figures, FIGURES, args.json)


if __name__ == "__main__":
    main()
