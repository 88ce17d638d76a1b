"""Planning the paper-scale DAG: ``snakemake -n`` of config/paper/base.yaml + config/paper/shp.yaml
with the checkpoint models in it.

    python benchmarks/bench_dag.py [--scale full|small] [--repeats 5] [--json OUT]

The kept training checkpoints (each one a model to convert, answer and judge for the evolution
curves) are known only once the runs have finished (the Snakemake checkpoint
``evaluated_checkpoints``). To plan the DAG a finished sweep has, the benchmark simulates one:
every output of ``train_all`` (from ``snakemake --summary``) is created empty, each DPO run with
the ``run_info.json`` and the complete ``checkpoint-{step}`` directories its training would
leave (steps from the pairs of its size, ``per_device_train_batch_size`` x
``gradient_accumulation_steps``, epochs and ``save_steps``), and ``evaluated_checkpoints.json``
written by the rule's own script from them, all with one mtime. Then ``snakemake -n`` (the local profile, as `make run`)
plans everything after training with the checkpoints expanded; the comparison is the same
dry-run in an empty directory (checkpoints unknown, fewer jobs). Whole-process wall time, the
interpreter start and the workflow's imports included, repeated. Target < 5 s. Also timed, as
the floor no workflow can go under: ``snakemake -n`` of a one-rule Snakefile (Snakemake's own
imports, start and exit). Small scale: the default config instead.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (
    REPO,
    Figure,
    emit,
    fmt_s,
    job_counts,
    median,
    parser,
    run_job,
    snakemake_argv,
    snakemake_env,
    spread,
    target,
)

FIGURES = ("dag.paper",)
TARGET_S = 5.0
#: Config files of each scale, after one --configfile (merged in order).
CONFIGS = {"full": (REPO / "config" / "paper" / "base.yaml", REPO / "config" / "paper" / "shp.yaml"),
           "small": (REPO / "config" / "config.yaml",)}


def simulate_finished_training(work: Path, configfiles: tuple[Path, ...]) -> int:
    """Create every output of ``train_all`` as a finished run leaves it; returns the number of
    kept checkpoints that get their own model id."""
    import subprocess

    from prefsweep.config import load_config
    from prefsweep.paths import layout

    config = load_config(*configfiles, check=False)
    dpo = config["dpo"]
    per_step = dpo["per_device_train_batch_size"] * dpo["gradient_accumulation_steps"]
    proc = subprocess.run(snakemake_argv("train_all", "--summary", "--configfile", *map(str, configfiles), cwd=work),
                          capture_output=True, text=True, env=snakemake_env(), check=True)
    rows = [line.split("\t") for line in proc.stdout.splitlines()[1:] if "\t" in line]
    stamp = time.time() - 60
    n_checkpoints = 0
    made: list[Path] = []
    runs: list[str] = []  # DPO runs, for evaluated_checkpoints.json
    train = work / layout(config).run_dir("")  # results/<experiment>/train/
    index = None
    for row in rows:
        path, rule = work / row[0], row[2]
        if rule == "evaluated_checkpoints":
            index = path
            continue
        if rule in ("base_model", "sft", "sft_baseline", "dpo"):
            path.mkdir(parents=True, exist_ok=True)
            last = 1
            if rule == "dpo":
                size = int(path.parts[-3][1:])  # .../n{size}/seed{seed}/final
                last = math.ceil(size / per_step) * dpo["num_train_epochs"]
                ckpts = path.parent / "checkpoints"
                for step in [*range(dpo["save_steps"], last, dpo["save_steps"]), last]:
                    d = ckpts / f"checkpoint-{step}"
                    d.mkdir(parents=True, exist_ok=True)
                    (d / "trainer_state.json").write_text(json.dumps({"global_step": step}))
                    made += [d / "trainer_state.json", d]
                runs.append(str(path.parent.relative_to(train)))
            (path / "run_info.json").write_text(json.dumps({"global_step": last}))
            made.append(path / "run_info.json")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        made.append(path)
    if index is not None:  # written as the rule does, once the runs exist
        sys.path.insert(0, str(REPO / "scripts"))
        from evaluated_checkpoints import main as write_index

        write_index(["--runs", *runs, "--models", *(str(train / r / "final") for r in runs),
                     "--checkpoints", *(str(train / r / "checkpoints") for r in runs), "--out", str(index)])
        n_checkpoints = sum(len(json.loads(index.read_text())[r]) for r in runs)
        made.append(index)
    for p in made:
        os.utime(p, (stamp, stamp))
    return n_checkpoints


def dry_run(work: Path, configfiles: tuple[Path, ...]) -> tuple[float, float, dict[str, int]]:
    """Wall and CPU seconds of ``snakemake -n`` in ``work``, and its jobs per rule."""
    log = work / "dry-run.log"
    usage = run_job(snakemake_argv("-n", "--quiet", "rules", "--configfile", *map(str, configfiles), cwd=work),
                    log=log, env=snakemake_env())
    return usage.wall, usage.cpu, job_counts(log.read_text())


ONE_RULE = 'rule one:\n    output: "one.txt"\n    shell: "touch {output}"\n'


def floor_run(work: Path) -> float:
    """Wall seconds of ``snakemake -n`` of a one-rule workflow in ``work``: Snakemake's fixed cost."""
    snakefile = work / "Snakefile"
    snakefile.write_text(ONE_RULE)
    argv = snakemake_argv("-n", "--quiet", "rules", "--cores", "1", cwd=work, profile=None, snakefile=snakefile)
    return run_job(argv, log=work / "dry-run.log", env=snakemake_env()).wall


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__).parse_args(argv)
    repeats = args.repeats or 5  # the machine is noisy and the target close
    from prefsweep.config import load_config

    configfiles = CONFIGS[args.scale]
    name = load_config(*configfiles, check=False)["experiment"]
    files = " + ".join(f.name for f in configfiles)
    env_key = os.environ.pop("OPENAI_API_KEY", None)  # planning needs no key (checked when jobs start)
    try:
        with tempfile.TemporaryDirectory(prefix="bench_dag.") as tmp:
            clean, finished, one = Path(tmp) / "clean", Path(tmp) / "finished", Path(tmp) / "one-rule"
            for d in (clean, finished, one):
                d.mkdir()
            n_ckpt = simulate_finished_training(finished, configfiles)
            t_clean, t_done, cpu_done, t_floor = [], [], [], []
            for _ in range(repeats):
                t_floor.append(floor_run(one))
                t, _, clean_counts = dry_run(clean, configfiles)
                t_clean.append(t)
                t, cpu, done_counts = dry_run(finished, configfiles)
                t_done.append(t)
                cpu_done.append(cpu)
            print(f"[bench]   jobs after simulated training: {done_counts}", flush=True)
    finally:
        if env_key is not None:
            os.environ["OPENAI_API_KEY"] = env_key
    n_done, n_clean = sum(done_counts.values()), sum(clean_counts.values())
    fig = Figure(
        name="dag.paper",
        label=(f"snakemake -n, {name} ({files}), training finished (simulated): {n_done} jobs to plan "
               f"after training, {n_ckpt} checkpoint models expanded ({done_counts.get('convert', 0)} conversions)"),
        value=f"{fmt_s(median(t_done))} ({fmt_s(median(cpu_done))} CPU)",
        comparison=(f"empty directory, checkpoints unknown, {n_clean} jobs: {fmt_s(median(t_clean))}; "
                    f"a one-rule workflow (Snakemake's own start and exit): {fmt_s(median(t_floor))}"),
        ratio=f"{median(t_done) / median(t_clean):.2f}x the empty-directory plan",
        spread=spread(t_done, fmt_s),
        target=target(median(t_done) < TARGET_S, f"< {TARGET_S:g} s"))
    emit([fig], FIGURES, args.json)


if __name__ == "__main__":
    main()
