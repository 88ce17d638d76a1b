"""Benchmark of the dataset stage at scale: 100k prompts, 6 candidates, 9 voters.

    .venv/bin/python benchmarks/bench_data.py [--n-prompts 100000] [--keep DIR]

Runs the data scripts in-process, in workflow order, on the synthetic source (default config
with ``n_prompts`` prompts and 5 + 2 + 2 voters): ballots (generate, validate, write) -> split ->
pool of both arms -> every series cell (sizes 1000, 2000, ..., 64000; maj shared, sc prompt-
and size-matched) -> SFT corpus and eval questions. Prints wall and CPU seconds per phase and
the totals; the target is under 60 s for ballots -> pools -> series on 2 cores. In the workflow
each step is its own process, which adds the interpreter start and imports (about 1-2 s) per job.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SIZES = [1000 * 2**i for i in range(7)]  # 1000 .. 64000


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def bench_config(n_prompts: int) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config = copy.deepcopy(config)
    syn = config["data"]["synthetic"]
    syn["n_prompts"] = n_prompts
    syn["n_candidates"] = 6
    for group, size in zip(syn["voter_groups"], (5, 2, 2)):
        group["size"] = size
    config["data"]["sizes"] = [0, *SIZES]
    config["data"]["matchings"] = ["prompt", "size"]
    return config


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-prompts", type=int, default=100_000)
    p.add_argument("--keep", help="work in this directory (kept) instead of a temporary one")
    args = p.parse_args(argv)

    scripts = {n: load_script(n) for n in ("ballots", "split", "pool", "series", "sft_corpus", "eval_questions")}
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="bench_data.")
    work = Path(args.keep or tmp.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "config.resolved.json"
    cfg.write_text(json.dumps(bench_config(args.n_prompts)))
    d = work / "data"
    ballots, split = str(d / "ballots.jsonl"), str(d / "split.json")
    pools = {arm: str(d / "pool" / f"{arm}.parquet") for arm in ("maj", "sc")}
    c = ["--config-json", str(cfg)]

    times: dict[str, tuple[float, float]] = {}

    def phase(name: str, fn) -> None:
        w, t = time.perf_counter(), time.process_time()
        fn()
        times[name] = (time.perf_counter() - w, time.process_time() - t)
        print(f"[bench] {name}: {times[name][0]:.1f} s wall, {times[name][1]:.1f} s CPU", flush=True)

    def cell_outputs(cell) -> list[str]:
        return ["--pairs-out", str(cell / "pairs.parquet"), "--manifest-out", str(cell / "manifest.json")]

    def all_series() -> None:
        for size in SIZES:
            scripts["series"].main([*c, "--ref-pool", pools["maj"], "--pool", pools["maj"], "--arm", "maj",
                                    "--matching", "shared", "--size", str(size),
                                    *cell_outputs(d / "maj" / "shared" / f"n{size}")])
            for matching in ("prompt", "size"):
                scripts["series"].main([*c, "--ref-pool", pools["maj"], "--pool", pools["sc"], "--arm", "sc",
                                        "--matching", matching, "--size", str(size),
                                        *cell_outputs(d / "sc" / matching / f"n{size}")])

    phase("ballots (generate + validate + write)", lambda: scripts["ballots"].main([*c, "--out", ballots]))
    phase("split", lambda: scripts["split"].main([*c, "--ballots", ballots, "--out", split]))
    for arm in ("maj", "sc"):
        phase(f"pool {arm}", lambda arm=arm: scripts["pool"].main(
            [*c, "--ballots", ballots, "--split", split, "--arm", arm, "--out", pools[arm]]))
    phase(f"series ({3 * len(SIZES)} cells)", all_series)
    phase("sft corpus", lambda: scripts["sft_corpus"].main(
        [*c, "--ballots", ballots, "--split", split, "--out", str(d / "sft.jsonl")]))
    phase("eval questions", lambda: scripts["eval_questions"].main(
        [*c, "--ballots", ballots, "--split", split, "--questions", str(work / "eval" / "question.jsonl"),
         "--reference", str(work / "eval" / "reference_answer" / "reference.jsonl")]))

    core = [k for k in times if not k.startswith(("sft", "eval"))]
    after_ballots = [k for k in core if not k.startswith("ballots")]
    for label, keys in (("ballots -> pools -> series", core), ("split -> pools -> series", after_ballots),
                        ("everything", list(times))):
        wall = sum(times[k][0] for k in keys)
        cpu = sum(times[k][1] for k in keys)
        print(f"[bench] TOTAL {label}: {wall:.1f} s wall, {cpu:.1f} s CPU")
    if tmp is not None:
        tmp.cleanup()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
