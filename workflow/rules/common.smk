# Helpers, not rules: config checks, wildcard constraints and named input/param functions.
# The logic behind them is in prefsweep/ (paths.py, config.py) so pytest can test it.
import os
import sys

sys.path.insert(0, workflow.basedir)

from prefsweep import paths as P
from prefsweep.config import check_config, job_config_json

check_config(config)

EXP = config["experiment"]
R = f"results/{EXP}"
L = f"logs/{EXP}"
B = f"{R}/benchmarks"
SCRIPTS = os.path.join(workflow.basedir, "scripts")
REF_ARM = config["data"]["reference_arm"]
OTHER_ARM = "sc" if REF_ARM == "maj" else "maj"
INIT = config["dpo"]["init"]
ZERO = P.zero_point_id(config)
JUDGE = config["eval"]["judge"]["type"]
# wandb settings reach jobs through the environment: they change logging, not results,
# so changing them must not rerun training (params would).
WANDB_ENV = (
    f"WANDB_MODE={config['wandb']['mode']} WANDB_PROJECT={config['wandb']['project']} "
    f"WANDB_DIR={R}/wandb WANDB_SILENT=true"
)


wildcard_constraints:
    arm="maj|sc",
    matching="prompt|size|shared",
    size=r"\d+",
    seed=r"\d+",
    step=r"\d+",
    model_id=r"[A-Za-z0-9_.-]+",
    name=r"[A-Za-z0-9_.]+",


def cfg(step):
    """The config slice a step reads, as canonical JSON (a job reruns when it changes)."""
    return job_config_json(config, step)


def series_dir(arm, matching, size):
    return f"{R}/data/{arm}/{matching}/n{size}"


def max_size():
    return max(config["data"]["sizes"])


def arm_matchings(arm):
    """Data matchings under which an arm's series are stored."""
    return sorted({P.data_matching(arm, m, REF_ARM) for m in config["data"]["matchings"]})


def init_model_dir():
    return f"{R}/models/{INIT}"


def dpo_dir(w):
    return f"{R}/dpo/{w.arm}/{w.matching}/n{w.size}/seed{w.seed}"


def data_targets():
    out = [f"{R}/data/sft.jsonl", f"{R}/eval/question.jsonl", f"{R}/eval/reference_answer/reference.jsonl"]
    for arm, m, size in P.series_cells(config):
        out.append(f"{series_dir(arm, m, size)}/manifest.json")
    return out


def train_targets():
    out = [f"{R}/models/sft"]
    for arm, m, size in P.series_cells(config):
        for seed in config["dpo"]["seeds"]:
            out.append(f"{R}/dpo/{arm}/{m}/n{size}/seed{seed}/final")
    return out


def eval_targets():
    out = [f"{R}/eval/win_rates.csv"]
    if config["eval"]["checkpoints"]:
        out.append(f"{R}/eval/evolution.csv")
    return out


def plot_targets():
    return [f"{R}/plots/done.json"]


def all_targets():
    return data_targets() + train_targets() + eval_targets() + plot_targets()


def series_out_dir(wildcards):
    return series_dir(wildcards.arm, wildcards.matching, wildcards.size)


def dpo_checkpoints_dir(wildcards):
    return f"{dpo_dir(wildcards)}/checkpoints"


def baseline_spec(name):
    for spec in config["eval"]["baselines"]:
        if spec["name"] == name:
            return spec
    raise ValueError(f"eval.baselines: no baseline named {name!r}")


def baseline_name_or_path(wildcards):
    return baseline_spec(wildcards.name)["name_or_path"]


def baseline_sft_corpus(wildcards):
    arm = baseline_spec(wildcards.name)["sft_on"]
    m = arm_matchings(arm)[-1]
    return f"{series_dir(arm, m, max_size())}/pairs.parquet"


# Every job: strict shell, the workflow's own package importable (also in a conda env or on
# a Slurm node), and torch/BLAS threads bounded by the job's threads.
shell.prefix(
    f"set -euo pipefail; export PYTHONPATH={workflow.basedir}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    "export OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads}; "
)
