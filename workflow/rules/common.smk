# Helpers, not rules: config checks, wildcard constraints and named input/param functions.
# The logic behind them is in prefsweep/ (paths.py, config.py) so pytest can test it.
import os
import sys

sys.path.insert(0, workflow.basedir)

from prefsweep import paths as P
from prefsweep.config import check_config, job_config_json
from prefsweep.training import complete_checkpoint_steps

check_config(config)

EXP = config["experiment"]
R = f"results/{EXP}"
L = f"logs/{EXP}"
B = f"{R}/benchmarks"
REF_ARM = config["data"]["reference_arm"]
OTHER_ARM = "sc" if REF_ARM == "maj" else "maj"
INIT = config["dpo"]["init"]
ZERO = P.zero_point_id(config)
JUDGE = config["eval"]["judge"]["type"]


wildcard_constraints:
    arm="maj|sc",
    matching="prompt|size|shared",
    size=r"\d+",
    seed=r"\d+",
    step=r"\d+",
    model_id=r"[A-Za-z0-9_.-]+",
    name=r"[A-Za-z0-9_.-]+",


def script_path(name):
    """A script of scripts/, as an input: editing it reruns the jobs that ran it."""
    return os.path.join(workflow.basedir, "scripts", name)


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
    out = [f"{R}/eval/win_rates.csv", f"{R}/eval/pair_accuracy.csv"]
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


# Every job: strict shell and the workflow's own package importable (also in a conda env or on
# a Slurm node). Snakemake itself sets OMP_NUM_THREADS & co. to the job's threads.
shell.prefix(
    f"set -euo pipefail; export PYTHONPATH={workflow.basedir}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; "
    # wandb settings reach jobs through the environment: they change logging, not results,
    # so changing them must not rerun training (a params change would).
    f"export WANDB_MODE={config['wandb']['mode']} WANDB_PROJECT={config['wandb']['project']} "
    f"WANDB_DIR={R}/wandb WANDB_SILENT=true; "
)


def base_model_input(wildcards):
    # The tiny preset trains its tokenizer on the experiment's SFT corpus.
    return {"corpus": f"{R}/data/sft.jsonl"} if config["model"]["preset"] == "tiny" else {}


def base_model_corpus(wildcards, input):
    return input.get("corpus", "")


def ref_logps_pairs(wildcards):
    """The arm's largest series under every matching: their union is every pair the arm's
    DPO jobs can see, because series are nested."""
    return [f"{series_dir(wildcards.arm, m, max_size())}/pairs.parquet" for m in arm_matchings(wildcards.arm)]


def convert_input(wildcards):
    """Source directory of a model id, plus what must exist before it (see prefsweep.paths)."""
    cell = P.parse_model_id(wildcards.model_id)
    if cell.kind in ("base", "sft"):
        return {"source": f"{R}/models/{cell.kind}"}
    if cell.kind == "baseline":
        spec = baseline_spec(cell.baseline)
        return {"source": f"{R}/models/{cell.model_id}"} if spec.get("sft_on") else {}
    run = f"{R}/dpo/{cell.arm}/{cell.matching}/n{cell.size}/seed{cell.seed}"
    inputs = {"final": f"{run}/final", "base": init_model_dir()}
    if cell.kind == "checkpoint":
        inputs["source"] = f"{run}/checkpoints/checkpoint-{cell.step}"
    else:
        inputs["source"] = f"{run}/final"
    return inputs


def convert_source(wildcards, input):
    """Path the converter reads: an input, or a baseline's hub id used as it is."""
    if "source" in input.keys():
        return input.source
    return baseline_spec(P.parse_model_id(wildcards.model_id).baseline)["name_or_path"]


def convert_base(wildcards, input):
    return f"--base {input.base}" if "base" in input.keys() else ""


def baseline_answers():
    if config["eval"]["baseline"] == "reference":
        return f"{R}/eval/reference_answer/reference.jsonl"
    return f"{R}/eval/model_answer/{ZERO}.jsonl"


def answer_path(model_id):
    return f"{R}/eval/model_answer/{model_id}.jsonl"


def judgment_path(model_id):
    return f"{R}/eval/model_judgment/{JUDGE}_pair/{model_id}.jsonl"


def judged_model_ids():
    """Final models judged against the baseline; the zero point is the baseline itself when
    eval.baseline is zero, and gets win rate 0.5 by definition rather than a self-match."""
    ids = P.final_model_ids(config)
    if config["eval"]["baseline"] == "zero":
        ids = [m for m in ids if m != ZERO]
    return ids


def checkpoint_model_ids(wildcards):
    """Kept checkpoints of every DPO run: known once the runs have finished."""
    ids = []
    for arm, m, size in P.series_cells(config):
        for seed in config["dpo"]["seeds"]:
            final = checkpoints.dpo.get(arm=arm, matching=m, size=size, seed=seed).output[0]
            steps = complete_checkpoint_steps(os.path.join(os.path.dirname(final), "checkpoints"))
            ids += [P.dpo_model_id(arm, m, size, seed, step) for step in steps]
    return ids


def manifests():
    return [f"{series_dir(arm, m, size)}/manifest.json" for arm, m, size in P.series_cells(config)]


def evolution_model_ids(wildcards):
    """Every kept checkpoint and every final DPO model, for training-evolution curves."""
    finals = [m for m in judged_model_ids() if P.parse_model_id(m).kind == "dpo"]
    return checkpoint_model_ids(wildcards) + finals


def evolution_judgments(wildcards):
    return [judgment_path(m) for m in evolution_model_ids(wildcards)]


def evolution_answers(wildcards):
    return [answer_path(m) for m in evolution_model_ids(wildcards)]


def plot_inputs(wildcards):
    inputs = {
        "win_rates": f"{R}/eval/win_rates.csv",
        "groups": f"{R}/eval/win_rates_groups.csv",
        "diffs": f"{R}/eval/arm_differences.csv",
    }
    if config["eval"]["checkpoints"]:
        inputs["evolution"] = f"{R}/eval/evolution.csv"
    return inputs


def plot_evolution_arg(wildcards, input):
    return f"--evolution {input.evolution}" if "evolution" in input.keys() else ""


def plots_out_dir(wildcards, output):
    return os.path.dirname(output.done)


def answers_dir(wildcards, input):
    """eval/model_answer/, inferred from an input so it also holds without a shared FS."""
    return os.path.dirname(input.answers[0])


def manifests_dir(wildcards, input):
    """The experiment's data/ dir: manifests live at data/{arm}/{matching}/n{size}/."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(input.manifests[0]))))
