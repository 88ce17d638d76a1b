# Helpers, not rules: config checks, wildcard constraints and named input/param functions.
# Every path comes from prefsweep/paths.py (Layout); the logic behind these functions is in the
# prefsweep package so pytest can test it.
import atexit
import functools
import gc
import json
import os
import sys

sys.path.insert(0, workflow.basedir)

from prefsweep import paths as P
from prefsweep.config import checkpoint_eval, job_config_json, runtime_env_value
from prefsweep.cost.plan import planned_comparisons
from prefsweep.cost.resources import judge_runtime as judge_job_runtime, resource_function
from prefsweep.data.sft_data import sft_local_copy, sft_user_file
from prefsweep.data.sources import source_local_copy, source_user_file
from prefsweep.eval.judges import judge_of
from prefsweep.experiment import check_experiment, check_secrets
from prefsweep.shellquote import exports, option, pythonpath_export

check_experiment(config)

# Planning speed: `snakemake -n` of the paper config took a median 5.2 s without these two lines
# and 4.4-4.8 s with them, in interleaved runs here (benchmarks/bench_dag.py times it).
# What exists by now (Snakemake's modules, ours, the config) lives until this process exits, so
# the cyclic garbage collector need not scan it again at every collection while the DAG is
# built: gc.freeze(). At exit, freezing again skips the final full collection over the DAG's
# objects, memory the process is handing back anyway. Garbage made later is collected as usual.
gc.freeze()
atexit.register(gc.freeze)


onstart:
    # Before the first job, not when planning (-n, --dag, --report): see check_secrets.
    check_secrets(config)

L = P.layout(config)
REF_ARM = config["data"]["reference_arm"]
ARMS = P.arm_names(config)
#: The init wildcard of the DPO paths: "{init}" when dpo.init is a list, else no init segment.
INIT_W = "{init}" if P.multi_init(config) else None
#: The comparison baseline under eval.baseline zero: the (first) init model.
ZERO = P.zero_point_id(config)
JUDGE = config["eval"]["judge"]["type"]
#: The judge's registered implementation (prefsweep/eval/judges): what it measures and needs.
JUDGE_IMPL = judge_of(config)
# A judge that knows every voter's utility of any text (the electorate): welfare and distortion
# tables and figures exist only then.
WELFARE = JUDGE_IMPL.measures_welfare
# Cluster group of the final models' judgments and the win-rate tables over them (ignored by
# local runs): only when judging is quick (the electorate's seconds per model). A kept
# checkpoint's judgment is a group job of its own, the evolution tables a plain job (tables.smk).
# See profiles/slurm/config.yaml, groups.
EVAL_GROUP = "evaluate" if JUDGE_IMPL.quick else None
# eval.checkpoints: which kept checkpoints are evaluated, and on how many questions.
CK = checkpoint_eval(config)
#: DPO runs whose kept checkpoints are evaluated (the sizes eval.checkpoints names).
CHECKPOINT_CELLS = [c for c in P.dpo_cells(config) if CK.sizes is None or c.size in CK.sizes]


wildcard_constraints:
    arm="|".join(ARMS),
    init="|".join(P.INITS),
    matching="|".join((*P.MATCHINGS, P.SHARED)),
    size=r"\d+",
    seed=r"\d+",
    step=r"\d+",
    model_id=r"[A-Za-z0-9_.-]+",
    name=r"[A-Za-z0-9_.-]+",


def script_path(name):
    """A script of scripts/, as an input: editing it reruns the jobs that ran it."""
    return os.path.join(workflow.basedir, "scripts", name)


def job_resource(rule, key):
    """mem_mb or runtime of a job of ``rule``, scaled with the model and its pairs (a cluster
    needs them; see prefsweep/cost/resources.py)."""
    return resource_function(config, rule, key)


def cfg(step, arm=None):
    """The config slice a step reads, as canonical JSON (a job reruns when it changes)."""
    return job_config_json(config, step, arm)


def dpo_cfg(wildcards):
    """The DPO slice of one job: dpo.init is the job's own init (a list dpo.init shapes the DAG)."""
    return job_config_json(config, "dpo", init=job_init(wildcards))


def arm_cfg(wildcards):
    """The data slice of a job of one arm: that arm's rule only (adding a rule reruns nothing)."""
    return job_config_json(config, "data", wildcards.arm)


# Every job: strict shell and the workflow's own package importable (also in a conda env or on
# a Slurm node). Snakemake itself sets OMP_NUM_THREADS & co. to the job's threads.
# Settings that change how a job logs or talks to an API, never its result, reach jobs through
# the environment: a params change would rerun them (wandb; the judge's client settings).
def job_environment():
    """What every job finds in its environment: wandb settings, the runtime-only training keys and
    what the judge exports (the LLM judge's client settings and budget guard): values that never
    change a result."""
    env = {
        "WANDB_MODE": config["wandb"]["mode"],
        "WANDB_PROJECT": config["wandb"]["project"],
        "WANDB_DIR": L.wandb_dir(),
        "WANDB_SILENT": "true",
        "WANDB_ENTITY": config["wandb"]["entity"] or None,
        "PREFSWEEP_RUNTIME": runtime_env_value(config),
    }
    # The experiment's planned judge requests (prefsweep/cost/plan.py), computed only if asked.
    env.update(JUDGE_IMPL.job_environment(config, functools.partial(planned_comparisons, config)))
    return env


shell.prefix(f"set -euo pipefail; {pythonpath_export(workflow.basedir)}{exports(job_environment())}")


# -- targets ---------------------------------------------------------------------------------
def data_targets():
    out = [L.sft_corpus(), L.questions(), L.reference_answers(), L.eval_group_pairs()]
    return out + [L.series_manifest(*cell) for cell in P.series_cells(config)]


def train_targets():
    out = [L.model("sft")] + [L.dpo_model(*cell) for cell in P.dpo_cells(config)]
    return out + ([L.evaluated_checkpoints()] if CK.enabled else [])


def eval_targets():
    out = [L.table("win_rates"), L.table("pair_accuracy")]
    if CK.enabled:
        out.append(L.table("evolution"))
    return out


def plot_targets():
    return [L.plots_done()]


def all_targets():
    return data_targets() + train_targets() + eval_targets() + plot_targets()


# -- data ------------------------------------------------------------------------------------
def user_ballots(wildcards):
    """A user's ballots file (the source's, e.g. data.jsonl.path) is an input: editing it
    reruns the data stage."""
    path = source_user_file(config)
    return {} if path is None else {"source": path}


def ballots_source_arg(wildcards, input):
    return option("--source-file", input.source) if "source" in input.keys() else ""


def dataset_fingerprint(wildcards):
    """A local copy of a dataset source (data.<source>.path a directory) is fingerprinted:
    replacing it reruns."""
    path = source_local_copy(config)
    return None if path is None else P.local_fingerprint(path)


def sft_data_input(wildcards):
    """The lab's SFT file (sft.data.path, source jsonl) is an input: editing it reruns SFT."""
    path = sft_user_file(config)
    return {"sft_data": path} if path else {}


def sft_data_arg(wildcards, input):
    return option("--sft-data", input.sft_data) if "sft_data" in input.keys() else ""


def sft_data_fingerprint(wildcards):
    """A local dataset copy named by sft.data.path (source hh) is fingerprinted: replacing it reruns."""
    return P.local_fingerprint(sft_local_copy(config))


def largest_series(arm):
    """The arm's largest series under every matching: their union is every pair the arm's
    DPO jobs can see, because series are nested."""
    size = max(P.sizes(config))
    return [L.series_pairs(arm, m, size) for m in P.arm_matchings(config, arm)]


def ref_logps_pairs(wildcards):
    return largest_series(wildcards.arm)


# -- training --------------------------------------------------------------------------------
def job_init(wildcards):
    """The init model of a DPO job: its {init} wildcard, or dpo.init when that is a string."""
    return wildcards.init if INIT_W else config["dpo"]["init"]


def init_model(wildcards):
    return L.model(job_init(wildcards))


def dpo_ref_logps(wildcards):
    return L.ref_logps(wildcards.arm, wildcards.init if INIT_W else None)


def dpo_init_arg(wildcards):
    """--init INIT when the init is in the run's id (dpo.init a list)."""
    return option("--init", wildcards.init) if INIT_W else ""


def base_model_input(wildcards):
    # The tiny preset builds its tokenizer and pretrains on the experiment's own text.
    return {"corpus": L.pretrain_corpus()} if config["model"]["preset"] == "tiny" else {}


def base_model_args(wildcards, input):
    if "corpus" not in input.keys():
        return ""
    return f"{option('--pretrain-corpus', input.corpus)} {option('--checkpoints', L.checkpoints('base'))}"


def hf_model_fingerprint(wildcards):
    """A local model directory (model.name_or_path) is fingerprinted: replacing it reruns."""
    return P.local_fingerprint(config["model"]["name_or_path"]) if config["model"]["preset"] == "hf" else None


def dpo_run(wildcards):
    return L.dpo_run(wildcards.arm, wildcards.matching, wildcards.size, wildcards.seed,
                     wildcards.init if INIT_W else None)


def dpo_checkpoints_dir(wildcards):
    return L.checkpoints(dpo_run(wildcards))


def baseline_spec(name):
    for spec in config["eval"]["baselines"]:
        if spec["name"] == name:
            return spec
    raise ValueError(f"eval.baselines: no baseline named {name!r}")


def baseline_name_or_path(wildcards):
    return baseline_spec(wildcards.name)["name_or_path"]


def baseline_fingerprint(wildcards):
    return P.local_fingerprint(baseline_name_or_path(wildcards))


def baseline_sft_corpus(wildcards):
    return largest_series(baseline_spec(wildcards.name)["sft_on"])[-1]


def baseline_checkpoints_dir(wildcards):
    return L.checkpoints(f"baseline-{wildcards.name}")


# -- conversion ------------------------------------------------------------------------------
def convert_input(wildcards):
    """What a model id is exported from (see prefsweep.paths): the run's final model (and its
    run_info.json), for a checkpoint also the init model an adapter is merged into."""
    cell = P.parse_model_id(wildcards.model_id)
    if cell.kind == "baseline" and not baseline_spec(cell.baseline)["sft_on"]:
        return {}  # a hub model used as it is
    inputs = {"final": L.model(cell.run)}
    if cell.kind in ("dpo", "checkpoint"):
        inputs["base"] = L.model(P.model_init(config, cell))
    return inputs


def convert_source(wildcards, input):
    """--source DIR for a workflow model or checkpoint, --hub-id NAME for a hub baseline."""
    cell = P.parse_model_id(wildcards.model_id)
    if "final" not in input.keys():
        return option("--hub-id", baseline_spec(cell.baseline)["name_or_path"])
    # run_info.json lies inside the declared input directory (a directory output's files
    # cannot be inputs of their own).
    run_info = f"{input.final}/run_info.json"
    if cell.kind == "checkpoint":
        return f"{option('--source', L.checkpoint(cell.run, cell.step))} {option('--run-info', run_info)}"
    return f"{option('--source', input.final)} {option('--run-info', run_info)}"


def convert_base(wildcards, input):
    return option("--base", input.base) if "base" in input.keys() else ""


# -- evaluation ------------------------------------------------------------------------------
def answers_input(wildcards):
    """An export for a final model; for a kept checkpoint its run (the declared output that
    holds it) and the init model: it is answered from base + adapter, no merged copy on disk."""
    cell = P.parse_model_id(wildcards.model_id)
    if cell.kind == "checkpoint":
        return {"final": L.model(cell.run), "base": L.model(P.model_init(config, cell))}
    return {"model": L.export(wildcards.model_id)}


def answers_model_args(wildcards, input):
    cell = P.parse_model_id(wildcards.model_id)
    if cell.kind == "checkpoint":
        return (f"{option('--model', L.checkpoint(cell.run, cell.step))} {option('--base', input.base)}"
                f"{checkpoint_questions_arg(wildcards)}")
    return option("--model", input.model)


def checkpoint_questions_arg(wildcards):
    """--max-questions k for a checkpoint's answers and judgment (eval.checkpoints.n_questions)."""
    if CK.n_questions is not None and P.parse_model_id(wildcards.model_id).kind == "checkpoint":
        return f" {option('--max-questions', CK.n_questions)}"
    return ""


def evolution_questions_arg(wildcards):
    return option("--max-questions", CK.n_questions) if CK.n_questions is not None else ""


def baseline_answers():
    if config["eval"]["baseline"] == "reference":
        return L.reference_answers()
    return L.answers(ZERO)


def judge_inputs(wildcards):
    """The user files the judge reads (the LLM judge's judge_prompts.jsonl): editing one reruns
    the judgments."""
    return JUDGE_IMPL.input_files(config)


def judge_runtime(wildcards):
    return judge_job_runtime(config, P.parse_model_id(wildcards.model_id).kind == "checkpoint")


def dpo_models():
    return [L.dpo_model(*cell) for cell in P.dpo_cells(config)]


def run_infos(wildcards, input):
    """The run_info.json of every DPO model: inside the declared model directories."""
    return [f"{d}/run_info.json" for d in input.models]


def evaluated_checkpoint_ids(wildcards):
    """Kept checkpoints of those runs but their last step: known once the runs have finished
    (rule evaluated_checkpoints)."""
    with open(checkpoints.evaluated_checkpoints.get().output[0], encoding="utf-8") as fh:
        steps = json.load(fh)
    return [P.dpo_model_id(c.arm, c.matching, c.size, c.seed, step, c.init)
            for c in CHECKPOINT_CELLS for step in steps.get(L.dpo_run(*c), [])]


def manifests():
    return [L.series_manifest(*cell) for cell in P.series_cells(config)]


def table_answers(model_ids):
    return list(dict.fromkeys([L.answers(m) for m in model_ids] + [baseline_answers()]))


def evolution_model_ids(wildcards):
    """Every evaluated checkpoint and every final DPO model, for training-evolution curves."""
    finals = [m for m in P.judged_model_ids(config) if P.parse_model_id(m).kind == "dpo"]
    return evaluated_checkpoint_ids(wildcards) + finals


def evolution_judgments(wildcards):
    return [L.judgment(JUDGE, m) for m in evolution_model_ids(wildcards)]


def evolution_answers(wildcards):
    return table_answers(evolution_model_ids(wildcards))


def welfare_inputs(wildcards):
    return {"ballots": L.ballots()} if WELFARE else {}


def welfare_args(wildcards, input, output):
    return f"{option('--welfare-out', output.welfare)} {option('--ballots', input.ballots)}" if WELFARE else ""


def plot_inputs(wildcards):
    inputs = {
        "win_rates": L.table("win_rates"),
        "groups": L.table("win_rates_groups"),
        "diffs": L.table("arm_differences"),
        # the groups figure when the judge gives no per-group verdicts
        "pair_accuracy_groups": L.table("pair_accuracy_groups"),
    }
    if CK.enabled:
        inputs["evolution"] = L.table("evolution")
    if WELFARE:
        inputs["welfare"] = L.table("welfare")
    return inputs


def plot_extra_args(wildcards, input):
    args = [option("--evolution", input.evolution)] if "evolution" in input.keys() else []
    args += [option("--pair-accuracy-groups", input.pair_accuracy_groups)]
    args += [option("--welfare", input.welfare)] if "welfare" in input.keys() else []
    return " ".join(args)


def plots_out_dir(wildcards, output):
    return os.path.dirname(output.done)
