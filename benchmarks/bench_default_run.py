"""The default experiment end to end, as `make run` runs it, with Snakemake's per-job benchmarks.

    python benchmarks/bench_default_run.py [--cores 2] [--json OUT] [--keep DIR]
    python benchmarks/bench_default_run.py --reuse DIR     # figures of a finished run in DIR

Runs ``snakemake --profile profiles/local --cores 2`` with config/config.yaml in a fresh
working directory (a clean ``results/``), then the report, as `make run` does; the wall time
is the workflow's (target: < 10 min on 2 cores, evaluation included). The jobs of the long
rules write Snakemake ``benchmark:`` files (``results/default/benchmarks/**.tsv``: wall
seconds ``s``, ``cpu_time``, ``max_rss``); they are summed by stage (pretraining, SFT,
reference log-probs, DPO, answers) and compared with the run's wall time (their sum over the
wall time is how many jobs ran side by side).

``--reuse DIR`` measures nothing: it reads the benchmark files under ``DIR/results/default``
and the run's wall time from the newest complete Snakemake log in ``DIR/.snakemake/log``
(from the start in its header to its last write) -- e.g. ``--reuse .`` after `make run` on a clean ``results/``
(a run resumed over several invocations is not one wall time). ``--reuse-if-done DIR`` (what
`make bench` passes, with the clone itself) reuses DIR only when :func:`reusable_run` finds
that its run started from a clean ``results/`` and is current, else runs afresh. One run
(about 9 min here).
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Figure, emit, fmt_s, job_counts, parser, run_job, snakemake_argv, snakemake_env, target

FIGURES = ("default_run.wall", "default_run.stages")
TARGET_S = 600.0
EXPERIMENT = "default"
#: benchmark path prefix (under results/default/benchmarks/) -> stage
STAGES = (("train/base.", "pretraining"), ("train/sft.", "SFT"), ("train/baseline-", "SFT baselines"),
          ("ref_logps/", "reference log-probs"), ("train/dpo/", "DPO"), ("eval/model_answer/", "answers"))


def stage_sums(root: Path) -> dict[str, tuple[int, float, float]]:
    """stage -> (jobs, summed wall s, summed CPU s) of the benchmark files under ``root``."""
    found = sorted((root / "results").glob("*/benchmarks"))
    bench = root / "results" / EXPERIMENT / "benchmarks"
    if not bench.is_dir() and len(found) == 1:  # another experiment's finished run
        bench = found[0]
    sums: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for tsv in sorted(bench.rglob("*.tsv")):
        rel = tsv.relative_to(bench).as_posix()
        stage = next((s for prefix, s in STAGES if rel.startswith(prefix)), rel.split("/")[0])
        with open(tsv) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                sums[stage][0] += 1
                sums[stage][1] += float(row["s"])
                sums[stage][2] += float(row.get("cpu_time") or 0)
    if not sums:
        raise SystemExit(f"no benchmark files under {bench}: not a finished run of the default experiment")
    return {k: (int(v[0]), v[1], v[2]) for k, v in sums.items()}


STARTED = re.compile(r"^\s*Date: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$", re.MULTILINE)


DONE = re.compile(r"(\d+) of (\d+) steps \(100%\) done")


def newest_complete_log(root: Path) -> Path | None:
    """The newest Snakemake log in ``root`` with a start date and a run to 100%, or None."""
    for log in sorted((root / ".snakemake" / "log").glob("*.snakemake.log"), reverse=True):
        text = log.read_text()
        if STARTED.search(text) and DONE.search(text):
            return log
    return None


def logged_wall(root: Path) -> tuple[float, int]:
    """Wall seconds and jobs of the newest complete Snakemake log in ``root``: from the start
    its header records (``Date:``) to the log file's last write (Snakemake 9 logs carry no
    per-job timestamps)."""
    log = newest_complete_log(root)
    if log is None:
        raise SystemExit(f"no complete Snakemake log in {root / '.snakemake' / 'log'}")
    text = log.read_text()
    began = datetime.strptime(STARTED.search(text)[1], "%Y-%m-%d %H:%M:%S")
    ended = datetime.fromtimestamp(log.stat().st_mtime)
    return (ended - began).total_seconds(), int(DONE.search(text)[2])


def reusable_run(root: Path) -> str | None:
    """Why the default experiment's run in ``root`` (e.g. a clone after `make run`) can stand for
    a fresh one, or None when it cannot: its newest complete Snakemake log planned every job a
    clean ``results/`` plans (it started from nothing and ran in one invocation), and a dry-run
    there finds nothing to do (its outputs are those of this code and config)."""
    log = newest_complete_log(root)
    if log is None:
        return None
    env = snakemake_env()
    with tempfile.TemporaryDirectory(prefix="bench_plan.") as empty:
        clean = subprocess.run(snakemake_argv("-n", "--quiet", "rules", cwd=empty), capture_output=True,
                               text=True, env=env)
    now = subprocess.run(snakemake_argv("-n", "--quiet", "rules", cwd=root), capture_output=True, text=True, env=env)
    planned = job_counts(log.read_text())
    if clean.returncode or now.returncode or not planned or planned != job_counts(clean.stdout):
        return None
    if job_counts(now.stdout):
        return None
    return f"{log.name}: {sum(planned.values())} jobs planned from a clean results/, nothing to do now"


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--keep", help="work in this directory (kept) instead of a temporary one")
    p.add_argument("--reuse", help="read the figures of a finished run in this working directory")
    p.add_argument("--reuse-if-done", metavar="DIR",
                   help="--reuse DIR when DIR holds a complete run from a clean results/ (reusable_run), else run")
    args = p.parse_args(argv)
    tmp = None
    if args.reuse_if_done:
        why = reusable_run(Path(args.reuse_if_done))
        print(f"[bench]   {args.reuse_if_done}: " + (f"reused ({why})" if why else "no complete clean run: a fresh one"),
              flush=True)
        if why:
            args.reuse = args.reuse_if_done
    if args.reuse:
        work = Path(args.reuse)
        wall, n_jobs = logged_wall(work)
        how = f"reused run in {work.resolve()}"
        report = None
    else:
        tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="bench_run.")
        work = Path(args.keep or tmp.name)  # type: ignore[union-attr]
        work.mkdir(parents=True, exist_ok=True)
        env = snakemake_env()
        run = run_job(snakemake_argv("--cores", str(args.cores), cwd=work), log=work / "run.log", env=env)
        wall, n_jobs = run.wall, logged_wall(work)[1]
        report = run_job(snakemake_argv("--cores", str(args.cores), "--report",
                                        f"results/{EXPERIMENT}/report.html", cwd=work),
                         log=work / "report.log", env=env).wall
        how = "fresh working directory"
    sums = stage_sums(work)
    if tmp is not None:
        tmp.cleanup()
    summed = sum(v[1] for v in sums.values())
    stages = "; ".join(f"{k} {v[0]} jobs {fmt_s(v[1])} ({fmt_s(v[2])} CPU)" for k, v in sums.items())
    figures = [
        Figure(name="default_run.wall",
               label=(f"default experiment end to end (config/config.yaml, {n_jobs} jobs, {args.cores} cores, "
                      f"{how})" + (f"; then the report {fmt_s(report)}" if report is not None else "")),
               value=fmt_s(wall), comparison=f"target {fmt_s(TARGET_S)}", ratio=f"{wall / TARGET_S:.2f} of the target",
               spread="1 run", target=target(wall < TARGET_S, f"< {fmt_s(TARGET_S)}")),
        Figure(name="default_run.stages",
               label=f"per-job benchmark files summed by stage: {stages}",
               value=f"{fmt_s(summed)} of benchmarked jobs", comparison=f"run wall {fmt_s(wall)}",
               ratio=f"{summed / wall:.2f} jobs side by side on average", spread="1 run"),
    ]
    emit(figures, FIGURES, args.json)


if __name__ == "__main__":
    main()
