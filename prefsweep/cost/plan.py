"""What an experiment will cost before anything runs: jobs, GPU memory, GPU-hours, judge calls, disk.

``python scripts/plan.py --configfile config/paper/base.yaml config/paper/shp.yaml`` (``make plan CONFIG=...``)
prints :func:`make_plan`'s figures. Everything here is arithmetic on the validated config (and
on what already exists under ``results/<experiment>/``: finished models and cached judge
responses are not counted again); nothing trains or calls an API.

GPU-hours use the FLOP counts of :mod:`prefsweep.cost.resources` (6 N per trained token; LoRA 4 N:
no weight gradients; +2 N with gradient checkpointing; 2 N per scored token) at
``mfu x peak`` FLOP/s of :data:`GPUS`, and memory-bound decoding (one read of the weights per
generated token of a batch) for answers.

The memory model: :mod:`prefsweep.cost.memory`; the GPUs: :mod:`prefsweep.cost.hardware`.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prefsweep import paths as P
from prefsweep.config import checkpoint_eval
from prefsweep.cost.hardware import DEFAULT_GPU, GPU, GPUS
from prefsweep.cost.memory import (
    ADAM_BYTES_PER_PARAM, PARAM_BYTES, GiB, inference_memory_bytes, lora_params, training_memory,
)
from prefsweep.cost.resources import EVAL_PAIRS_PER_PROMPT, default_n_pairs, model_params
from prefsweep.eval.judges import judge_of
from prefsweep.train.checkpoints import evaluated_steps

#: Characters per token of English text (OpenAI's rule of thumb), for answers and judge prompts.
CHARS_PER_TOKEN = 4
#: Tokens of a judgment (GPT-4 pairwise explanations run ~100-300 tokens; max_tokens bounds it).
JUDGMENT_TOKENS = 250
#: Tokens of a question when question.jsonl does not exist yet.
QUESTION_TOKENS = 200
#: Bytes of JSON around each answer / judgment record besides its texts.
RECORD_BYTES = 300


# --- model shape --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    heads: int
    vocab: int
    intermediate: int


#: Shapes of the Pythia suite (config.json of EleutherAI/pythia-* on the hub; vocab padded).
PYTHIA_SHAPES = {
    "pythia-70m": Shape(512, 6, 8, 50304, 2048),
    "pythia-160m": Shape(768, 12, 12, 50304, 3072),
    "pythia-410m": Shape(1024, 24, 16, 50304, 4096),
    "pythia-1b": Shape(2048, 16, 8, 50304, 8192),
    "pythia-1.4b": Shape(2048, 24, 16, 50304, 8192),
    "pythia-2.8b": Shape(2560, 32, 32, 50304, 10240),
    "pythia-6.9b": Shape(4096, 32, 32, 50432, 16384),
    "pythia-12b": Shape(5120, 36, 40, 50688, 20480),
}


def model_shape(config: dict, name_or_path: str | None = None) -> Shape | None:
    """Shape of the experiment's model (or of ``name_or_path``): the tiny preset's config, a
    local config.json, or a Pythia name; None when it cannot be told."""
    model = config["model"]
    if name_or_path is None and model["preset"] == "tiny":
        t = model["tiny"]
        return Shape(t["hidden_size"], t["num_hidden_layers"], t["num_attention_heads"], t["vocab_size"],
                     t["intermediate_size"])
    name = str(name_or_path or model["name_or_path"])
    cfg_file = Path(name) / "config.json"
    if cfg_file.is_file():
        c = json.loads(cfg_file.read_text())
        return Shape(c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"], c["vocab_size"],
                     c.get("intermediate_size", 4 * c["hidden_size"]))
    base = re.sub(r"-deduped$", "", Path(name).name.lower())
    return PYTHIA_SHAPES.get(base)


# --- steps and checkpoints ----------------------------------------------------------------------
def train_steps(examples: int, section: dict, processes: int = 1) -> int:
    """Optimizer steps of a run, as ``transformers.Trainer`` counts them: ceil(epochs x
    ceil(batches per epoch / gradient_accumulation_steps))."""
    per_device = section["per_device_train_batch_size"] * processes
    per_epoch = max(1, math.ceil(math.ceil(examples / per_device) / section["gradient_accumulation_steps"]))
    return math.ceil(section["num_train_epochs"] * per_epoch)


def saved_checkpoint_steps(steps: int, save_steps: int) -> list[int]:
    """Steps Trainer saves at (every ``save_steps`` and the last; prefsweep keeps them all)."""
    out = list(range(save_steps, steps + 1, save_steps))
    return out if out and out[-1] == steps else out + [steps]


def planned_checkpoint_steps(steps: int, save_steps: int) -> list[int]:
    """Kept checkpoints of a run of ``steps`` steps that get their own model id
    (:func:`prefsweep.train.checkpoints.evaluated_steps`)."""
    return evaluated_steps(saved_checkpoint_steps(steps, save_steps), steps)


def planned_checkpoint_ids(config: dict) -> list[str]:
    """Checkpoint model ids the evolution table will judge (eval.checkpoints), computed from the
    sizes, batch, epochs and save_steps (:func:`prefsweep.train.checkpoints.evaluated_checkpoint_steps`
    reads the same from a finished run). An upper bound: every series is taken at its nominal
    size, while a prompt-matched series of the other arm can hold fewer pairs (the e2e run's sc
    winner-loser series at n48 trains 2 steps, not 12, and keeps no evaluated checkpoint)."""
    ck = checkpoint_eval(config)
    if not ck.enabled:
        return []
    dpo = config["dpo"]
    ids = []
    for arm, m, size, seed, init in P.dpo_cells(config):
        if ck.sizes is not None and size not in ck.sizes:
            continue
        for step in planned_checkpoint_steps(train_steps(size, dpo), dpo["save_steps"]):
            ids.append(P.dpo_model_id(arm, m, size, seed, step, init))
    return ids


# --- judge calls --------------------------------------------------------------------------------
def n_questions(config: dict, layout: P.Layout | None = None) -> int:
    """Eval questions: question.jsonl's lines when it exists, else data.n_eval_prompts."""
    path = Path((layout or P.layout(config)).questions())
    if path.is_file():
        return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return int(config["data"]["n_eval_prompts"])


def planned_comparisons(config: dict, questions: int | None = None) -> int:
    """Judge requests of the whole experiment: 2 orders x questions x judged model (checkpoints
    on eval.checkpoints.n_questions questions when set)."""
    q = n_questions(config) if questions is None else questions
    ck = checkpoint_eval(config)
    q_ck = q if ck.n_questions is None else min(q, ck.n_questions)
    return 2 * (q * len(P.judged_model_ids(config)) + q_ck * len(planned_checkpoint_ids(config)))


def cached_responses(cache_dir: str | os.PathLike) -> int:
    """Responses in a judge cache directory (``{key[:2]}/{key}.json``, prefsweep.eval.judges.llm.cache)."""
    d = Path(cache_dir)
    if not d.is_dir():
        return 0
    return sum(1 for sub in d.iterdir() if sub.is_dir() for f in sub.iterdir() if f.suffix == ".json")


def remaining_calls(planned: int, cached: int) -> int:
    """API calls still to make: planned requests less the responses already cached. An entry
    cached for answers that have changed since still counts, so this can be low by that many."""
    return max(0, planned - cached)


# --- the plan -----------------------------------------------------------------------------------
@dataclass
class Plan:
    experiment: str
    gpu: str
    jobs: dict[str, int]
    checkpoint_models: int
    memory: dict[str, dict[str, Any]]
    gpu_hours: dict[str, float]
    judge: dict[str, Any]
    disk: dict[str, float]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def _gib(b: float) -> float:
    return round(b / GiB, 1)


def _training_jobs_memory(config: dict, shape: Shape, n: int, gpu: GPU) -> dict[str, dict[str, Any]]:
    out = {}
    for rule, section_name, seqs in (("sft", "sft", 1), ("dpo", "dpo", 2)):
        s = config[section_name]
        lora = s["lora"]["enabled"]
        trainable = lora_params(hidden=shape.hidden, layers=shape.layers, r=s["lora"]["r"],
                                target_modules=s["lora"]["target_modules"], intermediate=shape.intermediate,
                                key=f"{section_name}.lora.target_modules") if lora else None
        est = training_memory(n, batch=seqs * s["per_device_train_batch_size"], seq_len=s["max_length"],
                              hidden=shape.hidden, layers=shape.layers, vocab=shape.vocab,
                              intermediate=shape.intermediate, heads=shape.heads, lora=lora,
                              trainable_params=trainable, grad_checkpointing=s["gradient_checkpointing"],
                              dtype="bfloat16" if s["bf16"] else "float32")
        alt = training_memory(n, batch=seqs * s["per_device_train_batch_size"], seq_len=s["max_length"],
                              hidden=shape.hidden, layers=shape.layers, vocab=shape.vocab,
                              intermediate=shape.intermediate, heads=shape.heads, lora=lora,
                              trainable_params=trainable, grad_checkpointing=not s["gradient_checkpointing"],
                              dtype="bfloat16" if s["bf16"] else "float32")
        out[rule] = {**{k: _gib(v) for k, v in asdict(est).items()}, "total_gib": _gib(est.total),
                     "lora": lora, "trainable_params": trainable if lora else n,
                     "gradient_checkpointing": s["gradient_checkpointing"],
                     "fits": est.total <= gpu.memory_gib * GiB,
                     "total_gib_other_checkpointing": _gib(alt.total)}
    gen = config["eval"]["generation"]
    inf = inference_memory_bytes(n, batch=gen["batch_size"], seq_len=config["dpo"]["max_length"] + gen["max_new_tokens"],
                                 hidden=shape.hidden, layers=shape.layers, vocab=shape.vocab)
    out["answers"] = {"total_gib": _gib(inf), "fits": inf <= gpu.memory_gib * GiB}
    return out


def _flops_hours(flops: float, gpu: GPU) -> float:
    return flops / (gpu.mfu * gpu.bf16_flops) / 3600


def _answered_questions(config: dict, q: int) -> int:
    """Questions answered over the experiment: q per final model, fewer per checkpoint with
    eval.checkpoints.n_questions."""
    n_q = checkpoint_eval(config).n_questions
    return q * len(P.final_model_ids(config)) + min(q, n_q or q) * len(planned_checkpoint_ids(config))


def _gpu_hours(config: dict, n: int, gpu: GPU, answered: int) -> dict[str, float]:
    sft, dpo, gen = config["sft"], config["dpo"], config["eval"]["generation"]

    def per_token(section) -> float:
        f = 4 if section["lora"]["enabled"] else 6  # LoRA: no weight gradients
        return (f + (2 if section["gradient_checkpointing"] else 0)) * n

    hours = {"sft": _flops_hours(per_token(sft) * default_n_pairs(config, "sft") * sft["max_length"]
                                 * sft["num_train_epochs"], gpu)}
    for spec in config["eval"]["baselines"]:
        if spec["sft_on"]:
            nb = model_params(config, spec["name_or_path"])
            hours["sft_baseline"] = hours.get("sft_baseline", 0.0) + _flops_hours(
                per_token(sft) / n * nb * default_n_pairs(config, "sft_baseline") * sft["max_length"]
                * sft["num_train_epochs"], gpu)
    ref_pairs = len(P.arm_names(config)) * len(P.init_models(config)) * default_n_pairs(config, "ref_logps")
    hours["ref_logps"] = _flops_hours(2 * n * ref_pairs * 2 * dpo["max_length"], gpu)
    dpo_tokens = sum(size * 2 * dpo["max_length"] * dpo["num_train_epochs"] for _, _, size, _, _ in P.dpo_cells(config))
    hours["dpo"] = _flops_hours(per_token(dpo) * dpo_tokens, gpu)
    # one read of the fp32 weights per generated token of a batch
    step_s = PARAM_BYTES * n / (gpu.hbm_bytes_per_s * gpu.decode_efficiency)
    hours["answers"] = answered / gen["batch_size"] * gen["max_new_tokens"] * step_s / 3600
    eval_pairs = config["data"]["n_eval_prompts"] * EVAL_PAIRS_PER_PROMPT
    hours["pair_accuracy"] = len(P.final_model_ids(config)) * _flops_hours(2 * n * eval_pairs * 2 * dpo["max_length"], gpu)
    hours = {k: round(v, 1) for k, v in hours.items()}
    hours["total"] = round(sum(hours.values()), 1)
    return hours


def _judge(config: dict, layout: P.Layout, q: int) -> dict[str, Any]:
    judge = judge_of(config)
    if not judge.calls_api:
        return {"type": judge.name, "api_calls": 0}
    section = config["eval"]["judge"]
    planned = planned_comparisons(config, q)
    cached = cached_responses(layout.judge_cache())
    remaining = remaining_calls(planned, cached)
    usage = judge.api_usage(config)
    template = usage.prompt_chars
    qpath = Path(layout.questions())
    if qpath.is_file():
        lines = [json.loads(x) for x in qpath.read_text(encoding="utf-8").splitlines() if x.strip()]
        q_tokens = sum(len(x["turns"][0]) for x in lines) / max(1, len(lines)) / CHARS_PER_TOKEN
    else:
        q_tokens = QUESTION_TOKENS
    prompt_tokens = template / CHARS_PER_TOKEN + q_tokens + 2 * config["eval"]["generation"]["max_new_tokens"]
    completion_tokens = min(usage.max_tokens, JUDGMENT_TOKENS)
    out = {"type": judge.name, "model": usage.model, "planned_calls": planned, "cached": cached,
           "api_calls": remaining, "prompt_tokens": int(remaining * prompt_tokens),
           "completion_tokens": int(remaining * completion_tokens), "max_api_calls": section["max_api_calls"]}
    prices = (section["price_prompt_per_1k"], section["price_completion_per_1k"])
    if None not in prices:
        out["cost"] = round(out["prompt_tokens"] / 1000 * prices[0] + out["completion_tokens"] / 1000 * prices[1], 2)
    else:
        out["cost"] = None
    if section["max_api_calls"] is not None and remaining > section["max_api_calls"]:
        out["refused"] = True
    return out


def _disk(config: dict, n: int, shape: Shape | None, answered: int, judge_calls: int) -> dict[str, float]:
    dpo, sft = config["dpo"], config["sft"]
    lora = dpo["lora"]["enabled"]
    trainable = n
    if lora and shape is not None:
        trainable = lora_params(hidden=shape.hidden, layers=shape.layers, r=dpo["lora"]["r"],
                                target_modules=dpo["lora"]["target_modules"], intermediate=shape.intermediate)
    model_b = PARAM_BYTES * n
    ck = checkpoint_eval(config)
    ckpt = 0.0
    for _, _, size, _, _ in P.dpo_cells(config):
        saved = saved_checkpoint_steps(train_steps(size, dpo), dpo["save_steps"])
        # weights of every kept checkpoint; the newest also keeps its AdamW state to resume from
        ckpt += len(saved) * PARAM_BYTES * trainable + ADAM_BYTES_PER_PARAM * trainable
    sft_saved = saved_checkpoint_steps(train_steps(default_n_pairs(config, "sft"), sft), sft["save_steps"])
    ckpt += len(sft_saved) * model_b + ADAM_BYTES_PER_PARAM * n
    n_eval_ckpt = len(planned_checkpoint_ids(config)) if ck.enabled else 0
    finals = P.final_model_ids(config)
    n_dpo = len(P.dpo_cells(config))
    train_final = 2 * model_b + n_dpo * PARAM_BYTES * trainable  # base copy, sft, DPO finals
    exports = len(finals) * model_b  # every final model keeps a merged export (baselines counted at N)
    gen = config["eval"]["generation"]
    answers = answered * (gen["max_new_tokens"] * CHARS_PER_TOKEN + RECORD_BYTES)
    judging = 2 * judge_calls * ((2 * gen["max_new_tokens"] + QUESTION_TOKENS + JUDGMENT_TOKENS) * CHARS_PER_TOKEN
                                 + RECORD_BYTES)
    base = ckpt + train_final + exports + answers + judging
    return {"checkpoints_gib": _gib(ckpt), "final_models_gib": _gib(train_final), "exports_gib": _gib(exports),
            "answers_gib": _gib(answers), "judgments_gib": _gib(judging), "total_gib": _gib(base),
            "checkpoint_exports_if_merged_gib": _gib(n_eval_ckpt * model_b),
            "total_if_checkpoints_merged_gib": _gib(base + n_eval_ckpt * model_b)}


def dry_run_jobs(configfiles: list[str], cwd: str | os.PathLike = ".", extra: list[str] | None = None) -> dict[str, int]:
    """Jobs per rule that Snakemake would run now (``snakemake -n --quiet rules``, its own count)."""
    snakemake = Path(sys.executable).with_name("snakemake")
    cmd = [str(snakemake) if snakemake.exists() else "snakemake", "-n", "--quiet", "rules",
           "--snakefile", str(Path(__file__).resolve().parents[2] / "Snakefile")]
    if configfiles:
        cmd += ["--configfile", *configfiles]
    cmd += extra or []
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake -n failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return parse_job_stats(proc.stdout)


def parse_job_stats(output: str) -> dict[str, int]:
    """``{rule: jobs}`` of the 'Job stats' table of a Snakemake dry-run (empty: nothing to do)."""
    if "Job stats:" not in output:
        return {}
    counts = {}
    for line in output.split("Job stats:")[1].splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m[1] != "total":
            counts[m[1]] = int(m[2])
    return counts


def make_plan(config: dict, jobs: dict[str, int], gpu_name: str = DEFAULT_GPU) -> Plan:
    """The figures for ``config`` (validated) given Snakemake's dry-run ``jobs`` per rule.

    The dry-run cannot see the checkpoint models (they exist once training has run): their
    answers and judge jobs are added from :func:`planned_checkpoint_ids` for runs not yet done.
    """
    if gpu_name not in GPUS:
        raise ValueError(f"--gpu {gpu_name!r}: unknown GPU; expected one of {', '.join(GPUS)}")
    gpu = GPUS[gpu_name]
    layout = P.layout(config)
    n = model_params(config)
    shape = model_shape(config)
    jobs = dict(jobs)
    ck_ids = planned_checkpoint_ids(config)
    pending_ck = [m for m in ck_ids if not Path(layout.model(P.parse_model_id(m).run)).exists()]
    if pending_ck:
        jobs["answers (checkpoints)"] = len(pending_ck)
        jobs["judge (checkpoints)"] = len(pending_ck)
    q = n_questions(config, layout)
    answered = _answered_questions(config, q)
    notes = []
    memory = {}
    if shape is None:
        notes.append(f"memory: the shape of {config['model']['name_or_path']} is unknown (not a Pythia name, no "
                     "local config.json): no memory estimate")
    else:
        memory = _training_jobs_memory(config, shape, n, gpu)
    judge = _judge(config, layout, q)
    if judge.get("refused"):
        notes.append(f"judge: {judge['api_calls']} API calls exceed eval.judge.max_api_calls = {judge['max_api_calls']}: "
                     "judge jobs will stop before sending anything")
    return Plan(experiment=config["experiment"], gpu=gpu_name, jobs=jobs, checkpoint_models=len(ck_ids),
                memory=memory, gpu_hours=_gpu_hours(config, n, gpu, answered), judge=judge,
                disk=_disk(config, n, shape, answered, judge.get("planned_calls", 0)), notes=notes)


def format_plan(plan: Plan) -> str:
    """The plan as the text ``scripts/plan.py`` prints."""
    lines = [f"plan of experiment {plan.experiment} (GPU {plan.gpu}; nothing has run)", "", "jobs to run (snakemake -n):"]
    lines += [f"  {rule:<24}{n:>7}" for rule, n in plan.jobs.items()]
    lines.append(f"  {'total':<24}{sum(plan.jobs.values()):>7}")
    lines.append(f"checkpoint models evaluated: {plan.checkpoint_models}")
    if plan.memory:
        lines += ["", "GPU memory per job (GiB):"]
        for rule, m in plan.memory.items():
            if "weights" in m:
                what = "LoRA" if m["lora"] else "full"
                gc = "with" if m["gradient_checkpointing"] else "without"
                lines.append(
                    f"  {rule:<8} {m['total_gib']:>7} ({what}, {gc} gradient checkpointing: weights {m['weights']}, "
                    f"grads {m['grads']}, optimizer {m['optimizer']}, activations {m['activations']}, logits "
                    f"{m['logits']}, overhead {m['overhead']}) {'fits' if m['fits'] else 'DOES NOT FIT'} "
                    f"{plan.gpu}; {'without' if m['gradient_checkpointing'] else 'with'} checkpointing: "
                    f"{m['total_gib_other_checkpointing']}")
            else:
                lines.append(f"  {rule:<8} {m['total_gib']:>7} {'fits' if m['fits'] else 'DOES NOT FIT'} {plan.gpu}")
    lines += ["", "GPU-hours:"] + [f"  {k:<16}{v:>10}" for k, v in plan.gpu_hours.items()]
    j = plan.judge
    lines += ["", "judge:"]
    if "planned_calls" not in j:  # a judge that calls no API
        lines.append(f"  {j['type']}: no API calls")
    else:
        cost = "set eval.judge.price_prompt_per_1k and price_completion_per_1k" if j["cost"] is None else f"${j['cost']:,}"
        lines += [f"  {j['model']}: {j['planned_calls']} requests (both orders), {j['cached']} cached, "
                  f"{j['api_calls']} API calls",
                  f"  tokens: {j['prompt_tokens']:,} prompt, {j['completion_tokens']:,} completion; cost {cost}",
                  f"  eval.judge.max_api_calls: {j['max_api_calls']}"]
    d = plan.disk
    lines += ["", "disk (GiB):",
              f"  checkpoints {d['checkpoints_gib']}, final models {d['final_models_gib']}, exports {d['exports_gib']}, "
              f"answers {d['answers_gib']}, judgments {d['judgments_gib']}",
              f"  total {d['total_gib']} (checkpoints answered from base + adapter); with a merged export of every "
              f"evaluated checkpoint: {d['total_if_checkpoints_merged_gib']} (+{d['checkpoint_exports_if_merged_gib']})"]
    if plan.notes:
        lines += [""] + [f"note: {x}" for x in plan.notes]
    return "\n".join(lines)
