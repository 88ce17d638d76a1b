"""Memory and runtime requests of the jobs whose cost grows with the model and the data.

Slurm needs ``mem_mb`` (host memory, MiB) and ``runtime`` (minutes) per job before it runs.
:func:`job_resources` derives them from the validated experiment config, so a paper-scale run
(Pythia-2.8B, 64k pairs) asks for hours and tens of GB while the tiny default asks for the
minimum, and a site never has to guess them per rule. The numbers are upper bounds, not
predictions: a job that asks too little is killed (TIMEOUT, OUT_OF_MEMORY), one that asks too
much only waits longer in the queue.

Model size N (parameters), in this order (:func:`model_params`):

1. ``model.n_params`` when set (the explicit override, for any model);
2. the ``tiny`` preset: counted from ``model.tiny`` (GPT-NeoX layout);
3. a size in the model's name: ``EleutherAI/pythia-2.8b`` -> 2.8e9, ``pythia-410m`` -> 4.1e8;
4. ``config.json`` of a local model directory (decoder-only transformer layout).

Memory: ``HOST_BASE_MB`` + copies of the fp32 weights the job holds on the host at once (load
+ model, 2; convert merges into a copy and serializes it, 3) + the tokenized data.

Runtime: ``SAFETY`` x (compute + weight I/O) + ``STARTUP_MIN``, rounded up to
``RUNTIME_STEP_MIN``. Compute uses the usual transformer FLOP counts (Kaplan et al. 2020,
"Scaling laws for neural language models", sec. 2.1): 6 N per trained token (forward and
backward; DPO's reference log-probs are precomputed, so no reference forward), 2 N per scored
token; generation is bound by reading the weights once per decoding step. Hardware constants
below describe one data-centre GPU conservatively.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Callable

from prefsweep.cost.hardware import DEFAULT_GPU, GPUS
from prefsweep.data.sources.registry import get_source

# --- hardware assumptions (not config: they describe the machine, not the experiment) ---
#: A job's ``runtime`` request assumes about half the FLOP utilization the plan expects
#: (:attr:`prefsweep.cost.hardware.GPU.mfu`): a request too short kills the job at its limit.
RUNTIME_MFU = 0.16
#: Sustained mixed-precision FLOP/s of one GPU in training, for runtime requests.
GPU_FLOPS = GPUS[DEFAULT_GPU].bf16_flops * RUNTIME_MFU
#: Bytes per second one decoding step reads the weights at, for runtime requests.
GPU_BYTES_PER_S = GPUS[DEFAULT_GPU].hbm_bytes_per_s * GPUS[DEFAULT_GPU].decode_efficiency
#: Bytes per second weights and checkpoints are read and written (network file system).
DISK_BYTES_PER_S = 2e8
#: Host memory of a job before the model: Python, torch, CUDA libraries, tokenizer (MiB).
HOST_BASE_MB = 4000
#: Host bytes per parameter: weights are loaded and saved in fp32 at most.
BYTES_PER_PARAM = 4
#: Checkpoint bytes per trained parameter: fp32 weights + Adam's two moments.
CHECKPOINT_BYTES_PER_PARAM = 12
#: Host bytes per token of tokenized data (input ids, attention mask, labels as int64, + a copy).
BYTES_PER_TOKEN = 32
#: Eval pairs per held-out prompt where the data do not say (SHP posts average ~10 comparisons;
#: 45 = C(10, 2) bounds almost all).
EVAL_PAIRS_PER_PROMPT = 45
SAFETY = 2.0
STARTUP_MIN = 10
RUNTIME_STEP_MIN = 15
MEM_STEP_MB = 1000

#: Copies of the weights a job holds in host memory at its peak.
WEIGHT_COPIES = {
    "base_model": 2,
    "sft": 2,
    "sft_baseline": 2,
    "ref_logps": 2,
    "dpo": 2,
    "convert": 3,
    "answers": 2,
    "pair_accuracy": 2,
}
RULES = tuple(WEIGHT_COPIES)

_SIZE_RE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)([bBmMkK])(?![A-Za-z])")
_UNIT = {"b": 1e9, "m": 1e6, "k": 1e3}


def params_from_name(name: str) -> int | None:
    """Parameter count written in a model name (the last size in it), or None.

    ``"EleutherAI/pythia-2.8b"`` -> 2_800_000_000, ``"pythia-410m-deduped"`` -> 410_000_000,
    ``"Qwen2.5-0.5B-Instruct"`` -> 500_000_000, ``"gpt2"`` -> None.
    """
    found = _SIZE_RE.findall(name)
    if not found:
        return None
    value, unit = found[-1]
    return int(float(value) * _UNIT[unit.lower()])


def decoder_params(vocab_size: int, hidden_size: int, num_hidden_layers: int, intermediate_size: int, tied_embeddings: bool) -> int:
    """Parameters of a decoder-only transformer (biases and norms included for GPT-NeoX).

    Per layer: attention q, k, v and output projections (4 h^2 + 4 h), the MLP (2 h i + i + h)
    and two layer norms (4 h); embeddings V h, untied unembedding V h, final norm 2 h.
    """
    h, i = hidden_size, intermediate_size
    layer = 4 * h * h + 4 * h + 2 * h * i + i + h + 4 * h
    embed = vocab_size * h * (1 if tied_embeddings else 2)
    return embed + num_hidden_layers * layer + 2 * h


def model_params(config: dict, name_or_path: str | None = None) -> int:
    """Parameters of the experiment's model, or of ``name_or_path`` (e.g. a baseline's hub id).

    Raises ``ValueError`` naming ``model.n_params`` when the size cannot be told.
    """
    model = config["model"]
    if name_or_path is None:
        if model["n_params"] is not None:
            return int(model["n_params"])
        if model["preset"] == "tiny":
            t = model["tiny"]
            return decoder_params(t["vocab_size"], t["hidden_size"], t["num_hidden_layers"], t["intermediate_size"], tied_embeddings=False)
        name_or_path = model["name_or_path"]
    n = params_from_name(Path(str(name_or_path)).name)
    if n is not None:
        return n
    cfg_file = Path(str(name_or_path)) / "config.json"
    if cfg_file.is_file():
        c = json.loads(cfg_file.read_text())
        return decoder_params(
            c["vocab_size"], c["hidden_size"], c["num_hidden_layers"],
            c.get("intermediate_size", 4 * c["hidden_size"]), bool(c.get("tie_word_embeddings", False)),
        )
    raise ValueError(
        f"model {name_or_path!r}: cannot tell its parameter count from its name or a local "
        "config.json; set model.n_params (e.g. 2.8e9) so jobs can ask for enough memory and time"
    )


def _train_examples(config: dict) -> int:
    """Upper bound on SFT examples (one per training prompt) when the caller does not know: the
    data source's bound (:attr:`prefsweep.data.sources.registry.Source.train_prompts`), else the
    largest series size."""
    data = config["data"]
    bound = get_source(data["source"]).train_prompts(data)
    return max(data["sizes"]) if bound is None else bound


def _eval_pairs(config: dict) -> int:
    """Held-out pairs: the held-out prompts times the pairs a prompt gives
    (:attr:`prefsweep.data.sources.registry.Source.pairs_per_prompt`, else :data:`EVAL_PAIRS_PER_PROMPT`)."""
    data = config["data"]
    per_prompt = get_source(data["source"]).pairs_per_prompt(data)
    return data["n_eval_prompts"] * (EVAL_PAIRS_PER_PROMPT if per_prompt is None else per_prompt)


def ballots_resources(config: dict) -> dict[str, int]:
    """``{"mem_mb": MiB, "runtime": minutes}`` of the ballots job: its data source's request
    (:attr:`prefsweep.data.sources.registry.Source.ballots_job`)."""
    return dict(get_source(config["data"]["source"]).ballots_job)


def default_n_pairs(config: dict, rule: str) -> int:
    """Examples a job handles when the caller cannot say (an upper bound from the config).

    dpo: the largest series; ref_logps: the arm's largest series under every matching (their
    union, series being nested); sft: the training prompts; sft_baseline: the largest series;
    pair_accuracy: the held-out pairs; answers: the held-out questions.
    """
    data = config["data"]
    if rule in ("dpo", "sft_baseline"):
        return max(data["sizes"])
    if rule == "ref_logps":
        return max(data["sizes"]) * len(data["matchings"])
    if rule == "sft":
        return _train_examples(config)
    if rule == "pair_accuracy":
        return _eval_pairs(config)
    if rule == "answers":
        return data["n_eval_prompts"]
    return 0


def _round_up(value: float, step: int) -> int:
    return max(step, int(math.ceil(value / step)) * step)


def job_resources(config: dict, rule: str, n_pairs: int | None = None, name_or_path: str | None = None) -> dict[str, int]:
    """``{"mem_mb": MiB, "runtime": minutes}`` for one job of ``rule``.

    ``config``: the validated experiment config. ``rule``: one of :data:`RULES`. ``n_pairs``:
    what the job trains on or scores (pairs for dpo / ref_logps / pair_accuracy, examples for
    sft / sft_baseline, questions for answers); None takes :func:`default_n_pairs`.
    ``name_or_path``: the model when it is not the experiment's (a baseline's hub id).
    """
    if rule not in WEIGHT_COPIES:
        raise ValueError(f"job_resources: no estimate for rule {rule!r}; expected one of {', '.join(RULES)}")
    n = model_params(config, name_or_path)
    examples = default_n_pairs(config, rule) if n_pairs is None else n_pairs
    weight_bytes = BYTES_PER_PARAM * n

    train = config["sft"] if rule in ("sft", "sft_baseline") else config["dpo"]
    tokens = 0  # held in host memory
    compute_s = 0.0
    io_bytes = 2 * weight_bytes  # load the model once, save (or export) it once
    if rule in ("sft", "sft_baseline", "dpo"):
        seqs = 2 if rule == "dpo" else 1  # chosen and rejected
        tokens = examples * seqs * train["max_length"]
        compute_s = 6 * n * tokens * train["num_train_epochs"] / GPU_FLOPS
        batch = train["per_device_train_batch_size"] * train["gradient_accumulation_steps"]
        steps = math.ceil(examples * train["num_train_epochs"] / batch)
        trained = n / 100 if train["lora"]["enabled"] else n  # adapters are a small share
        io_bytes += (steps // train["save_steps"]) * CHECKPOINT_BYTES_PER_PARAM * trained
    elif rule in ("ref_logps", "pair_accuracy"):
        tokens = examples * 2 * config["dpo"]["max_length"]
        compute_s = 2 * n * tokens / GPU_FLOPS
    elif rule == "answers":
        gen = config["eval"]["generation"]
        decode_steps = math.ceil(examples / gen["batch_size"]) * gen["max_new_tokens"]
        compute_s = decode_steps * weight_bytes / GPU_BYTES_PER_S
        tokens = examples * (config["dpo"]["max_length"] + gen["max_new_tokens"])
    elif rule == "convert":
        io_bytes = 3 * weight_bytes  # base + adapter in, merged model out

    seconds = compute_s + io_bytes / DISK_BYTES_PER_S
    mem = HOST_BASE_MB + (WEIGHT_COPIES[rule] * weight_bytes + BYTES_PER_TOKEN * tokens) / 2**20
    return {
        "mem_mb": _round_up(mem, MEM_STEP_MB),
        "runtime": _round_up(SAFETY * seconds / 60 + STARTUP_MIN, RUNTIME_STEP_MIN),
    }


def _baseline_name_or_path(config: dict, name: str) -> str:
    for spec in config["eval"]["baselines"]:
        if spec["name"] == name:
            return spec["name_or_path"]
    raise ValueError(f"eval.baselines: no baseline named {name!r}")


def resource_function(config: dict, rule: str, key: str) -> Callable[[Any], int]:
    """A Snakemake resource callable ``f(wildcards) -> int`` giving ``job_resources(...)[key]``.

    What the job handles is read from its wildcards: ``size`` (dpo: the series size, an upper
    bound on its pairs), ``model_id`` naming a baseline (convert / answers / pair_accuracy of
    ``baseline-<name>``: that baseline's model), ``name`` (sft_baseline: the baseline's model).
    ``rule`` ``ballots``: :func:`ballots_resources`. In a rule:
    ``resources: mem_mb=resource_function(config, "dpo", "mem_mb")``.
    """
    from prefsweep.paths import parse_model_id

    if key not in ("mem_mb", "runtime"):
        raise ValueError(f"resource_function: key {key!r}; expected mem_mb or runtime")
    if rule == "ballots":  # sized by its data source, not by the model
        value = ballots_resources(config)[key]

        def ballots(wildcards) -> int:
            return value

        ballots.__name__ = f"ballots_{key}"
        return ballots

    def resource(wildcards) -> int:
        w = dict(wildcards.items())
        n_pairs = int(w["size"]) if "size" in w else None
        name_or_path = None
        if "name" in w:
            name_or_path = _baseline_name_or_path(config, w["name"])
        elif "model_id" in w:
            cell = parse_model_id(w["model_id"])
            if cell.kind == "baseline":
                name_or_path = _baseline_name_or_path(config, cell.baseline)
        return job_resources(config, rule, n_pairs, name_or_path)[key]

    resource.__name__ = f"{rule}_{key}"
    return resource


def judge_runtime(config: dict, checkpoint: bool = False) -> int:
    """``runtime`` (minutes) of one judge job, from the judge's own runtime model
    (:meth:`prefsweep.eval.judges.Judge.runtime_minutes`) over its questions (a checkpoint's on
    ``eval.checkpoints.n_questions`` questions when set). A cluster group job of judgments asks
    for the sum over the judge jobs it runs one after another, so an overestimate here multiplies."""
    from prefsweep.config import checkpoint_eval
    from prefsweep.eval.judges import judge_of

    questions = int(config["data"]["n_eval_prompts"])
    n_ck = checkpoint_eval(config).n_questions
    if checkpoint and n_ck is not None:
        questions = min(questions, int(n_ck))
    return judge_of(config).runtime_minutes(config, questions)
