"""The dataset stage at scale: 100k prompts (6 candidates, 9 voters) to every series.

    python benchmarks/bench_data.py [--scale full|small] [--repeats 3] [--json OUT] [--keep DIR]

Runs the data jobs of the workflow (``scripts/*.py``' ``main`` with the arguments its rule
passes, in one process: the interpreter start of a job process, about 1 s, is not counted), on the synthetic source (default config
with ``n_prompts`` prompts and 5 + 2 + 2 voters): ballots (generate, validate, write) -> split
-> pool of both arms -> every series cell (sizes 1000, 2000, ..., 64000; maj shared, sc prompt-
and size-matched: 21 cells). Jobs run one after another, so the wall times add up; the workflow
would run the two pools side by side on 2 cores. Target: ballots -> series under 60 s.

The comparison is the naive way to build the arms: a loop over prompts that parses each ballot
record, builds its ``pref_voting`` profile and asks ``pref_voting`` for the Borda winner, the
Borda loser (reversed profile) and the pairwise majority margins -- the work of the two pool
jobs. It runs on a sample of the same ballots (``--sample`` prompts, repeated) and is scaled up
to every training prompt; its ratio to the two pool jobs (process start, reading ballots and
writing the pools included) is the speed-up of the batched arms.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO, Figure, JobUsage, emit, fmt_s, median, parser, run_job, spread, target, timed

FIGURES = ("data.ballots_to_series", "data.arms_vs_pref_voting")
TARGET_S = 60.0
SIZES = [1000 * 2**i for i in range(7)]  # 1000 .. 64000
SCALES = {"full": {"n_prompts": 100_000, "sample": 1000}, "small": {"n_prompts": 2000, "sample": 100}}


def load_script(name: str):
    """A script of scripts/ as a module (for in-process use)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def bench_config(n_prompts: int, sizes: list[int] = SIZES) -> dict:
    """config/config.yaml with ``n_prompts`` synthetic prompts, 6 candidates, 5 + 2 + 2 voters and
    the paper config's held-out prompts (500), so bench_ref_sharing.py can reuse the data."""
    from prefsweep.config import load_config

    config = load_config(check=False)  # config/config.yaml over the schema's defaults
    paper = load_config(REPO / "config" / "paper" / "base.yaml", REPO / "config" / "paper" / "shp.yaml", check=False)
    config["data"]["n_eval_prompts"] = min(paper["data"]["n_eval_prompts"], n_prompts // 10)
    syn = config["data"]["synthetic"]
    syn["n_prompts"] = n_prompts
    syn["n_candidates"] = 6
    for group, size in zip(syn["voter_groups"], (5, 2, 2)):
        group["size"] = size
    config["data"]["sizes"] = [0, *sizes]
    config["data"]["matchings"] = ["prompt", "size"]
    return config


def sizes_for(n_prompts: int) -> list[int]:
    """The paper's sizes at 100k prompts and more; a scaled-down ladder below (small scale)."""
    return SIZES if n_prompts >= 100_000 else [max(1, n_prompts * s // 100_000) for s in SIZES]


def data_jobs(work: Path, n_prompts: int | None, *, largest_only: bool = False, extras: bool = False,
              config: dict | None = None) -> list[tuple[str, list[str]]]:
    """(name, argv) of the data jobs, in workflow order, writing under ``work``. ``largest_only``:
    only the largest series cell of each matching (the others read the same pools and write
    less). ``extras``: also the SFT corpus, the pretraining corpus and the eval questions.
    ``config``: a resolved config to use instead of :func:`bench_config` of ``n_prompts``."""
    if config is None:
        config = bench_config(n_prompts, sizes_for(n_prompts))
    sizes = [s for s in config["data"]["sizes"] if s > 0]
    cfg = work / "config.json"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(json.dumps(config))
    py, s = sys.executable, REPO / "scripts"
    c = ["--config-json", str(cfg)]
    d = work / "data"
    ballots, split = str(d / "ballots.jsonl"), str(d / "split.json")
    pools = {arm: str(d / "pool" / f"{arm}.parquet") for arm in ("maj", "sc")}
    jobs = [("ballots", [py, str(s / "ballots.py"), *c, "--out", ballots]),
            ("split", [py, str(s / "split.py"), *c, "--ballots", ballots, "--out", split])]
    for arm in pools:
        jobs.append((f"pool {arm}", [py, str(s / "pool.py"), *c, "--ballots", ballots, "--split", split,
                                     "--arm", arm, "--out", pools[arm]]))
    for size in sizes[-1:] if largest_only else sizes:
        for arm, matching in (("maj", "shared"), ("sc", "prompt"), ("sc", "size")):
            cell = d / arm / matching / f"n{size}"
            jobs.append((f"series {arm}/{matching}/n{size}", [
                py, str(s / "series.py"), *c, "--ref-pool", pools["maj"], "--pool", pools[arm], "--arm", arm,
                "--matching", matching, "--size", str(size), "--pairs-out", str(cell / "pairs.parquet"),
                "--manifest-out", str(cell / "manifest.json")]))
    if extras:
        jobs += [("sft corpus", [py, str(s / "sft_corpus.py"), *c, "--ballots", ballots, "--split", split,
                                 "--out", str(d / "sft.jsonl")]),
                 ("pretrain corpus", [py, str(s / "sft_corpus.py"), *c, "--ballots", ballots, "--split", split,
                                      "--all-candidates", "--out", str(d / "pretrain.jsonl")]),
                 ("eval questions", [py, str(s / "eval_questions.py"), *c, "--ballots", ballots, "--split", split,
                                     "--questions", str(work / "eval" / "question.jsonl"),
                                     "--reference", str(work / "eval" / "reference_answer" / "reference.jsonl")])]
    return jobs


def run_data_stage(work: Path, n_prompts: int, workers: int = 2, **kw) -> dict[str, JobUsage]:
    """Run :func:`data_jobs`, each as its own process, ``workers`` at a time within a step (the
    two pools side by side, then the series cells, then the corpora and questions, as the
    workflow on 2 cores would); usage per job (logs under ``work/logs``)."""
    from concurrent.futures import ThreadPoolExecutor
    from itertools import groupby

    def step(name: str) -> str:
        first = name.split()[0]
        return first if first in ("ballots", "split", "pool", "series") else "after split"

    usage = {}
    jobs = data_jobs(work, n_prompts, **kw)
    with ThreadPoolExecutor(workers) as pool:
        for _, group in groupby(jobs, key=lambda job: step(job[0])):
            group = list(group)
            done = pool.map(lambda job: run_job(job[1], log=work / "logs" / (
                job[0].replace(" ", "_").replace("/", "_") + ".log")), group)
            for (name, _), u in zip(group, done):
                usage[name] = u
                print(f"[bench]   {name}: {u.wall:.1f} s wall, {u.cpu:.1f} s CPU, peak {u.peak_mib:.0f} MiB",
                      flush=True)
    return usage


def run_in_process(work: Path, n_prompts: int | None, config: dict | None = None) -> dict[str, tuple[float, float]]:
    """Run :func:`data_jobs` in this process (each script's ``main``, output discarded): wall and
    CPU seconds per job, without the interpreter start and imports a job process pays (about
    1 s each; the workflow runs the series jobs side by side)."""
    import contextlib
    import io
    import time

    scripts: dict[str, object] = {}
    usage = {}
    for name, argv in data_jobs(work, n_prompts, config=config):
        script = Path(argv[1]).stem
        module = scripts.setdefault(script, load_script(script))
        w, t = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            module.main(argv[2:])  # type: ignore[attr-defined]
        usage[name] = (time.perf_counter() - w, time.process_time() - t)
    return usage


def naive_arms(ballots_path: Path, n: int) -> int:
    """The per-profile ``pref_voting`` loop over the first ``n`` records: Borda winner and loser
    and the majority pairs of each prompt. Returns the number of pairs (maj + sc)."""
    from prefsweep.data.rules import pref_voting_profile, pref_voting_winners

    pairs = 0
    with open(ballots_path) as f:
        for _, line in zip(range(n), f):
            record = json.loads(line)
            winners = pref_voting_winners("borda", record)
            losers = pref_voting_winners("borda", record, reverse=True)
            prof = pref_voting_profile(record)
            k = len(record["candidates"])
            pairs += sum(prof.margin(i, j) > 0 for i in range(k) for j in range(k) if i != j)
            pairs += int(winners[0] != losers[0])
    return pairs


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument("--n-prompts", type=int, default=None, help="prompts (default: the scale's)")
    p.add_argument("--sample", type=int, default=None, help="prompts of the naive loop (default: the scale's)")
    p.add_argument("--keep", help="work in this directory (kept) instead of a temporary one")
    args = p.parse_args(argv)
    n_prompts = args.n_prompts or SCALES[args.scale]["n_prompts"]
    sample = args.sample or SCALES[args.scale]["sample"]
    repeats = args.repeats or 3
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="bench_data.")
    work = Path(args.keep or tmp.name)  # type: ignore[union-attr]

    usage = run_in_process(work, n_prompts)
    core = list(usage)
    wall = sum(usage[k][0] for k in core)
    cpu = sum(usage[k][1] for k in core)
    pools = [k for k in core if k.startswith("pool")]
    pool_wall = sum(usage[k][0] for k in pools)
    n_train = len(json.loads((work / "data" / "split.json").read_text())["train_order"])
    ballots = work / "data" / "ballots.jsonl"
    naive_arms(ballots, 5)  # warm-up: imports and numba compilation are not the loop's cost
    naive = [timed(lambda: naive_arms(ballots, sample))[0] * n_train / sample for _ in range(repeats)]
    phases = ", ".join(f"{k} {usage[k][0]:.1f} s" for k in ("ballots", "split", *pools))
    n_series = sum(k.startswith("series") for k in core)
    series_wall = sum(usage[k][0] for k in core if k.startswith("series"))
    figures = [
        Figure(name="data.ballots_to_series",
               label=(f"datasets: {n_prompts:,} prompts (6 candidates, 9 voters) -> ballots -> split -> pools -> "
                      f"{n_series} series cells, the jobs' code one after another in one process ({phases}, "
                      f"series {series_wall:.1f} s)"),
               value=f"{fmt_s(wall)} wall ({fmt_s(cpu)} CPU)",
               comparison=f"target {TARGET_S:g} s",
               ratio=f"{wall / TARGET_S:.2f} of the target",
               spread="1 run (each job once)",
               target=target(wall < TARGET_S, f"< {TARGET_S:g} s")),
        Figure(name="data.arms_vs_pref_voting",
               label=(f"arms: both pool jobs over {n_train:,} training prompts vs the per-profile pref_voting loop "
                      f"(Borda winner + loser + majority margins), timed on {sample:,} prompts and scaled up"),
               value=f"pools {fmt_s(pool_wall)}",
               comparison=f"pref_voting loop {fmt_s(median(naive))} (scaled)",
               ratio=f"{median(naive) / pool_wall:.1f}x faster",
               spread=spread(naive, fmt_s, "loop") + "; pools 1 run",
               target=""),
    ]
    if tmp is not None:
        tmp.cleanup()
    emit(figures, FIGURES, args.json)


if __name__ == "__main__":
    main()
