"""The reduced experiment through a real (one-node) Slurm with the shipped profile, as a user
on a cluster runs it:

    PREFSWEEP_CPU_PARTITION=cpu PREFSWEEP_GPU_PARTITION=gpu ... \\
      snakemake --profile profiles/slurm --profile tests/slurm/profile --configfile tests/slurm/config.yaml

Only environment variables adapt profiles/slurm to this cluster (its partitions, and jobs
sized to its one 2-CPU node); tests/slurm/profile only shortens the status polling. The same
config runs locally (profiles/local) at the same time, and the two runs must give the same
tables, while every job of the Slurm run must have gone through sbatch: sacct lists each
submission COMPLETED, GPU rules on partition gpu with a gres/gpu, the others on cpu without.
Both runs start with the session and are checked at its end (see ``runs``).

The local run is also the whole-DAG case of shell quoting and shared results (issue 22): it runs
from a copy of the checkout in a folder whose name holds a space, a quote and parentheses, in a
working directory whose name holds ``$( )``, with wandb strings holding command substitutions,
backticks and quotes (tests/hostile.py), under umask 0002: every job must succeed, nothing may be
executed, every file it writes is group-writable, and its tables equal the Slurm run's.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

import yaml

from tests.conftest import BIN, REPO
from tests.hostile import CLONE_NAME, WANDB, WORKDIR_NAME, copy_checkout, modes, pwned_files
from tests.slurm.cluster import SUMMARY
from tests.slurm.plan import profile_args

pytestmark = pytest.mark.slurm

CONFIG = REPO / "tests" / "slurm" / "config.yaml"
SLURM_PROFILE = REPO / "profiles" / "slurm"
TEST_PROFILE = REPO / "tests" / "slurm" / "profile"
EXPERIMENT = "slurm"
TIMEOUT_S = 20 * 60

# "... submitted with SLURM jobid 3 (log: .../slurm_logs/rule_sft/3.log)", or group_<name>_<rules>
SUBMITTED_RE = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/(rule|group)_([^/]+)/")
FINISHED_RE = re.compile(r"Finished jobid: \S+ \(Rule: (\w+)\)")


def gpu_rules() -> set[str]:
    """Rules the shipped profile sends to the GPU partition."""
    entries = profile_args(SLURM_PROFILE / "config.yaml")["set-resources"]
    return {e.split(":", 1)[0] for e in entries if e.split(":", 1)[1].startswith("slurm_partition=")}


def grouped_rules() -> dict[str, str]:
    """Rule -> group: the profile's groups, and the workflow's own with the electorate judge
    (workflow/rules/common.smk: EVAL_GROUP)."""
    groups = dict(e.split("=", 1) for e in profile_args(SLURM_PROFILE / "config.yaml")["groups"])
    return {**groups, "judge": "evaluate", "win_rates": "evaluate"}


def site_env(cluster) -> dict[str, str]:
    """The variables a user of this cluster sets (see the header of profiles/slurm/config.yaml)."""
    return {
        "PREFSWEEP_CPU_PARTITION": "cpu",
        "PREFSWEEP_GPU_PARTITION": "gpu",
        # one thread per GPU job (the tiny model trains fastest so): two side by side on the node
        "PREFSWEEP_GPU_CPUS": "1",
        # the node's size: no job may ask for more
        "PREFSWEEP_JOB_MAX_CPUS": str(cluster.cpus),
        "PREFSWEEP_JOB_MAX_MEM_MB": str(cluster.memory_mb),
    }


#: umask of the local run: a lab's shared group (its files must come out 0664, folders 0775)
LOCAL_UMASK = 0o002


def start(args: list[str], cwd: Path, env: dict[str, str], repo: Path = REPO,
          umask: int | None = None) -> tuple[subprocess.Popen, float]:
    cwd.mkdir(parents=True, exist_ok=True)
    log = open(cwd / "snakemake.log", "w")
    cmd = [str(BIN / "snakemake"), "--snakefile", str(repo / "Snakefile"), "--directory", str(cwd), *args]
    preexec = None if umask is None else (lambda: os.umask(umask))
    return (subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec),
            time.monotonic())


def finish(proc: subprocess.Popen, started: float, cwd: Path) -> tuple[int, str, float]:
    """Wait for snakemake; one that hangs gets SIGINT (it cancels its Slurm jobs), then a kill."""
    try:
        rc = proc.wait(timeout=max(1, TIMEOUT_S - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    log = (cwd / "snakemake.log").read_text(errors="replace")
    return rc, log, run_seconds(log, time.monotonic() - started)


ELAPSED_RE = re.compile(r"^Elapsed time: (\d+):(\d\d):(\d\d(?:\.\d+)?)$", re.M)


def run_seconds(log: str, waited: float) -> float:
    """The run's own wall time, from the "Elapsed time" Snakemake logs at its end (the runs are
    waited for at the session's end, long after they finished); else how long it was waited for."""
    m = ELAPSED_RE.search(log)
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else waited


def sacct(cluster) -> dict[str, dict[str, str]]:
    fields = ("state", "partition", "tres", "submit", "start", "end", "comment")
    out = cluster._client(
        "sacct", "-X", "-P", "-n", "-S", "2000-01-01",
        "-o", "JobID,State,Partition,AllocTRES%300,Submit,Start,End,Comment%300",
    ).stdout
    return {line.split("|", 1)[0]: dict(zip(fields, line.split("|", 7)[1:])) for line in out.splitlines()}


def tables(run_dir: Path) -> dict[str, bytes]:
    base = run_dir / "results" / EXPERIMENT
    files = sorted((base / "eval").glob("*.csv")) + sorted((base / "plots").glob("*.csv"))
    return {str(f.relative_to(base)): f.read_bytes() for f in files}


class Runs:
    """The local and the Slurm run of the reduced experiment, started side by side in the
    background (:func:`runs`); :meth:`wait` ends both and keeps their results."""

    def __init__(self, cluster, root: Path):
        self.root = root
        env = {
            **os.environ,
            "PATH": os.pathsep.join([str(cluster.root / "bin"), str(BIN), os.environ["PATH"]]),
            "SLURM_CONF": cluster.env["SLURM_CONF"],
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        self.t0 = time.monotonic()
        self.clone = copy_checkout(root / CLONE_NAME)
        self.local_dir = root / "local" / WORKDIR_NAME
        self.local_dir.mkdir(parents=True)
        hostile = self.local_dir / "hostile strings.yaml"
        hostile.write_text(yaml.safe_dump({"wandb": {**WANDB, "mode": "disabled"}}), encoding="utf-8")
        self.local = start(["--profile", str(self.clone / "profiles" / "local"), "--cores", "2",
                            "--configfile", str(CONFIG), str(hostile)],
                           self.local_dir, env, repo=self.clone, umask=LOCAL_UMASK)
        self.slurm = start(["--profile", str(SLURM_PROFILE), "--profile", str(TEST_PROFILE), "--configfile", str(CONFIG)],
                           root / "slurm", {**env, **site_env(cluster)})
        self.results = None

    def wait(self):
        """((rc, log, seconds) of the local run, the same of the Slurm run, wall of both)."""
        if self.results is None:
            local = finish(*self.local, self.local_dir)  # the shorter one
            slurm = finish(*self.slurm, self.root / "slurm")
            self.results = local, slurm, max(local[2], slurm[2])
        return self.results


@pytest.fixture(scope="session")
def runs(slurm_cluster, tmp_path_factory):
    """Both runs, started when the session starts: tests/conftest.py puts
    :func:`test_runs_start` first and the test that checks them last, so that the Slurm run's
    waiting (submission, scheduling, status polling: most of its 7 minutes) overlaps the rest of
    the suite instead of adding to it."""
    r = Runs(slurm_cluster, tmp_path_factory.mktemp("slurm-runs"))
    yield r
    r.wait()  # never leave them running (a session stopped early)


def test_runs_start(runs):
    """The two runs are under way (they are checked by the last test of the session)."""
    for proc, _ in (runs.local, runs.slurm):
        assert proc.poll() in (None, 0), (runs.root / "slurm" / "snakemake.log").read_text(errors="replace")[-4000:]


def test_reduced_experiment_through_slurm_equals_local_run(slurm_cluster, runs):
    tmp_path = runs.root
    (local_rc, local_log, local_s), (slurm_rc, slurm_log, slurm_s), wall = runs.wait()
    jobs = sacct(slurm_cluster)
    summary = collections.Counter((j["state"], j["partition"], "gres/gpu" in j["tres"]) for j in jobs.values())
    SUMMARY.append(f"slurm run {slurm_s:.0f} s, local run {local_s:.0f} s (side by side, with the rest of the "
                   f"session); sacct (state, partition, gres/gpu): jobs "
                   + ", ".join(f"{s} {p} {'gpu' if g else 'no gpu'}: {n}" for (s, p, g), n in sorted(summary.items())))
    print(f"\nSlurm test: {SUMMARY[-1]}")
    for jobid, j in jobs.items():  # shown with pytest -s: where the time went
        print(f"  {jobid:>3} {j['submit'][11:]} {j['start'][11:]} {j['end'][11:]} {j['state']:9} {j['partition']:4} {j['comment'][:60]}")
    assert local_rc == 0, f"local run failed:\n{local_log[-6000:]}"
    assert slurm_rc == 0, f"Slurm run failed:\n{slurm_log[-8000:]}\n{slurm_cluster.logs()}"

    # Every job went through sbatch, one Slurm job per job or per group job, all COMPLETED.
    groups = grouped_rules()
    submitted = {}
    for m in SUBMITTED_RE.finditer(slurm_log):
        submitted[m[1]] = m[3] if m[2] == "rule" else next(g for g in set(groups.values()) if m[3].startswith(g))
    assert submitted, slurm_log[-4000:]
    assert set(jobs) == set(submitted), (jobs, submitted)
    assert {j["state"] for j in jobs.values()} == {"COMPLETED"}, jobs
    local_jobs = set(re.findall(r"^local(?:rule|checkpoint) (\w+):", slurm_log, re.M))
    # evaluated_checkpoints lists directories (workflow/rules/dpo.smk: localrules)
    assert local_jobs == {"all", "evaluated_checkpoints"}, f"jobs run on the submit host: {local_jobs}"
    finished = collections.Counter(FINISHED_RE.findall(slurm_log))
    assert finished == collections.Counter(FINISHED_RE.findall(local_log)), "the two runs ran different jobs"
    per_name = collections.Counter(submitted.values())
    for rule, n in finished.items():
        if rule in local_jobs:
            continue
        if rule in groups:
            assert per_name[groups[rule]] >= 1, f"{rule} ran, but no group job {groups[rule]} was submitted"
        else:
            assert per_name[rule] == n, f"{rule}: {n} jobs ran, {per_name[rule]} went through sbatch"

    # The final models' judgments with the win-rate tables as one job, each kept checkpoint's
    # judgment a group job of its own (it joins the DAG at its update); the accuracy table with
    # the plots.
    group_jobs = [m[3] for m in SUBMITTED_RE.finditer(slurm_log) if m[2] == "group"]
    evaluate = [g for g in group_jobs if g.startswith("evaluate")]
    assert sum("win_rates" in g for g in evaluate) == 1, evaluate
    assert sorted(g for g in evaluate if "win_rates" not in g) == ["evaluate_judge"] * (len(evaluate) - 1), evaluate
    assert len(evaluate) - 1 == 2, f"one job per kept checkpoint's judgment (2 in this config): {evaluate}"
    assert finished["evolution"] == per_name["evolution"] == 1, per_name
    assert per_name["tables"] == 1, per_name

    # GPU rules on the GPU partition with a GPU; everything else on the CPU partition without.
    gpu = gpu_rules()
    assert gpu & set(finished) >= {"sft", "ref_logps", "dpo", "answers", "pair_accuracy"}
    for jobid, name in submitted.items():
        j = jobs[jobid]
        if name in gpu:
            assert (j["partition"], "gres/gpu=1" in j["tres"]) == ("gpu", True), (name, j)
        else:
            assert (j["partition"], "gres/gpu" in j["tres"]) == ("cpu", False), (name, j)

    # The local run, from hostile paths with hostile strings: nothing executed, files shared.
    assert not pwned_files(tmp_path, Path.home()), "a config value or path was run by a shell"
    written = modes(runs.local_dir / "results" / EXPERIMENT)
    assert written["files"] == {0o666 & ~LOCAL_UMASK} and written["dirs"] == {0o777 & ~LOCAL_UMASK}, written

    # Same tables as the local run, byte for byte.
    local_tables, slurm_tables = tables(runs.local_dir), tables(tmp_path / "slurm")
    assert {"eval/win_rates.csv", "eval/pair_accuracy.csv", "eval/evolution.csv"} <= local_tables.keys()
    assert slurm_tables.keys() == local_tables.keys()
    different = [name for name in local_tables if slurm_tables[name] != local_tables[name]]
    assert not different, f"tables differ between the Slurm and the local run: {different}"
