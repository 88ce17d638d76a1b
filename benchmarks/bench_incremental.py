"""Incremental reruns: after a complete small run, what ``snakemake -n`` plans for each change.

    python benchmarks/bench_incremental.py [--scale full|small] [--json OUT] [--keep DIR]

Runs the e2e experiment (tests/e2e/config.yaml: the smallest full experiment) to the end, with
the LLM judge pointed at the loopback server (tests/fixtures/judge_server.py) and a
``judge_prompts.jsonl`` of its own (a copy of prefsweep's), then dry-runs (the local profile,
as `make run`) after each change a user makes next:

* nothing changed: 0 jobs;
* one seed added (``dpo.seeds``), one size added (``data.sizes``): only the new cells' data,
  training and evaluation, and the tables and plots over them;
* the judge prompt edited (the file's system prompt): only the judgments and what reads them;
* the judge's ``parallel`` changed (a client setting): 0 jobs;
* a plot option changed (``plots.dpi``): only the plots.

Each figure is the number of jobs planned (per rule in the label) against the jobs of the
complete run, and whether only the dependent jobs are planned: a rule outside the change's
dependents (for example ``ballots`` after a seed is added) fails the check. The counts are
exact (no spread); one run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO, Figure, emit, fmt_s, job_counts, parser, run_job, snakemake_argv, snakemake_env, target

sys.path.insert(0, str(REPO))
from tests.fixtures.judge_server import JudgeServer

E2E = REPO / "tests" / "e2e" / "config.yaml"
DATA = {"ballots", "split", "pool", "sft_corpus", "pretrain_corpus", "eval_questions", "eval_pairs"}
TRAIN = {"base_model", "sft", "ref_logps"}
EVAL_AFTER_JUDGE = {"win_rates", "evolution", "plots", "all"}
#: name -> (what changes, --config overrides, rules that may run, rules that must run)
SCENARIOS = {
    "nothing": ("nothing changed", [], set(), set()),
    "seed": ("one seed added (dpo.seeds [1] -> [1, 2])", ["dpo={seeds: [1, 2]}"],
             {"dpo", "evaluated_checkpoints", "convert", "answers", "judge", "pair_accuracy", "pair_accuracy_table"}
             | EVAL_AFTER_JUDGE, {"dpo", "judge"}),
    "size": ("one size added (data.sizes [0, 24, 48] -> [0, 24, 36, 48])", ["data={sizes: [0, 24, 36, 48]}"],
             {"series", "dpo", "evaluated_checkpoints", "convert", "answers", "judge", "pair_accuracy",
              "pair_accuracy_table"} | EVAL_AFTER_JUDGE, {"series", "dpo", "judge"}),
    "judge_parallel": ("judge parallel changed (a client setting)", ["eval={judge: {parallel: 8}}"], set(), set()),
    "plot_option": ("plot option changed (plots.dpi 120)", ["plots={dpi: 120}"], {"plots", "all"}, {"plots"}),
    # last: it edits the prompts file
    "judge_prompt": ("judge prompt edited (judge_prompts.jsonl system prompt)", [], {"judge"} | EVAL_AFTER_JUDGE,
                     {"judge"}),
}
FIGURES = ("incremental.nothing", "incremental.seed", "incremental.size", "incremental.judge_parallel",
           "incremental.plot_option", "incremental.judge_prompt")


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument("--keep", help="work in this directory (kept) instead of a temporary one")
    p.add_argument("--cores", type=int, default=2)
    args = p.parse_args(argv)
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="bench_incr.")
    work = Path(args.keep or tmp.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    prompts = work / "judge_prompts.jsonl"
    prompts.write_text((REPO / "prefsweep" / "eval" / "judges" / "llm" / "judge_prompts.jsonl").read_text())
    env = snakemake_env()
    env.pop("OPENAI_API_KEY", None)
    figures = []
    with JudgeServer() as server:
        overlay = work / "llm.yaml"
        overlay.write_text(f"eval:\n  judge:\n    type: llm\n    api_base: {server.api_base}\n    api_key_env: null\n"
                           f"    judge_prompts: {prompts}\n")
        configs = ["--configfile", str(E2E), str(overlay)]  # one --configfile: a second would replace the first
        usage = run_job(snakemake_argv("--cores", str(args.cores), *configs, cwd=work), log=work / "run.log", env=env)
        # the jobs the run ran, checkpoint expansion included (its first 'Job stats' has fewer)
        done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", (work / "run.log").read_text())
        n_full = int(done[-1][1]) if done else sum(job_counts((work / "run.log").read_text()).values())
        print(f"[bench]   complete run: {n_full} jobs, {fmt_s(usage.wall)}; {server.n_requests} judge requests",
              flush=True)

        def dry_run(overrides: list[str]) -> dict[str, int]:
            cmd = ["-n", "--quiet", "rules", *configs] + (["--config", *overrides] if overrides else [])
            proc = subprocess.run(snakemake_argv(*cmd, cwd=work), capture_output=True, text=True, env=env)
            if proc.returncode:
                raise SystemExit(f"snakemake {' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            return job_counts(proc.stdout)

        for name, (what, overrides, allowed, required) in SCENARIOS.items():
            if name == "judge_prompt":
                stat = prompts.stat()
                original = prompts.read_text()
                prompts.write_text(original.replace("You are a careful, neutral referee.",
                                                    "You are a careful, neutral and patient referee.", 1))
            counts = dry_run(overrides)
            if name == "judge_prompt":
                prompts.write_text(original)
                os.utime(prompts, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            n = sum(counts.values())
            ok = set(counts) <= allowed and required <= set(counts)
            stray = sorted(set(counts) - allowed)
            per_rule = ", ".join(f"{r} {c}" for r, c in sorted(counts.items())) or "none"
            figures.append(Figure(
                name=f"incremental.{name}",
                label=f"rerun after: {what}; planned per rule: {per_rule}"
                      + (f"; NOT dependent: {', '.join(stray)}" if stray else ""),
                value=f"{n} jobs", comparison=f"complete run {n_full} jobs", ratio=f"{n / n_full:.0%} of the jobs",
                spread="exact count (1 run)",
                target=target(ok, "0 jobs" if not allowed else "only the dependent jobs")))
    if tmp is not None:
        tmp.cleanup()
    emit(figures, FIGURES, args.json)


if __name__ == "__main__":
    main()
