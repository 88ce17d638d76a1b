"""What an experiment will cost before anything runs: jobs, GPU memory, GPU-hours, judge calls, disk.

``python scripts/plan.py --configfile config/paper/base.yaml config/paper/shp.yaml`` (``make plan CONFIG=...``)
prints :func:`make_plan`'s figures. Everything here is arithmetic on the validated config (and
on what already exists under ``results/<experiment>/``: finished models and cached judge
responses are not counted again); nothing trains or calls an API.

Memory model (:func:`training_memory`), per GPU, for one training job:

* weights: ``param_bytes`` per parameter (training loads fp32 master weights,
  :data:`prefsweep.train.training.TRAIN_DTYPE`; ``bf16: true`` is autocast), plus, under bf16
  autocast, torch's cached bf16 copy of every trainable weight (autocast caches casts of leaf
  tensors that require grad for the length of a forward);
* gradients: ``param_bytes`` per *trainable* parameter; AdamW state: two fp32 moments,
  8 bytes per trainable parameter (LoRA: only the adapters train, :func:`lora_params`);
* activations, after Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
  Transformer Models" (sec. 4.1, eq. 1: ``s b h (34 + 5 a s / h)`` bytes per layer with 16-bit
  activations and dropout). Per token and layer, with ``e`` bytes per activation (2 bf16, 4
  fp32): attention ``5 e h`` (QKV input, Q, K, V, output-projection input), MLP ``e (h + 2 i)``
  (input, GELU input and output; ``i = 4h`` gives Korthikanti's 19 h less the dropout mask),
  two layer norms ``2 * 4 h`` (under autocast layer norm runs in fp32 on the fp32 residual
  stream), and with eager attention the softmax output ``e a s``; SDPA/flash attention (the
  transformers default) stores no ``s x s`` matrix. Pythia has no dropout, so no masks.
  Gradient checkpointing keeps only each layer's fp32 input (``4 h``) and recomputes one layer
  at a time (plus that layer's full set);
* logits (the LM head and its loss): TRL 1.16 scores tokens through its fused log-prob head
  (``trl.trainer.utils.add_fused_lm_head``, used by SFTTrainer, DPOTrainer and
  :func:`prefsweep.train.trl_adapter.completion_logps`), which never builds the ``tokens x vocab``
  logits: it projects tiles of at most :data:`HEAD_TOKEN_CHUNK` tokens x
  :data:`HEAD_VOCAB_CHUNK` vocabulary columns into one buffer, forward and (recomputed)
  backward. On CUDA (its Triton kernels work in that buffer) that is one tile of ``e`` bytes;
  without Triton (CPU) its torch fallback holds :data:`CPU_HEAD_TILES` fp32 tiles at once in
  the backward. Plus ``tokens x hidden x (e + 4)``: the hidden states it saves and their fp32
  gradient. (The weight gradient of a trained head is the ``grads`` term.)
* ``overhead_bytes``: CUDA context, cuBLAS workspaces and allocator slack, which torch's own
  counters do not see (default :data:`CUDA_OVERHEAD_BYTES`).

A DPO micro-batch holds chosen and rejected sequences: ``2 x per_device_train_batch_size``
sequences of ``max_length`` tokens (an upper bound: batches are padded to their longest pair,
not to ``max_length``).

GPU-hours use the FLOP counts of :mod:`prefsweep.cost.resources` (6 N per trained token; LoRA 4 N:
no weight gradients; +2 N with gradient checkpointing; 2 N per scored token) at
``mfu x peak`` FLOP/s of :data:`GPUS`, and memory-bound decoding (one read of the weights per
generated token of a batch) for answers.
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
from prefsweep.cost.resources import EVAL_PAIRS_PER_PROMPT, default_n_pairs, model_params
from prefsweep.eval.judges import judge_of
from prefsweep.train.checkpoints import evaluated_steps

GiB = 2**30

#: CUDA context + cuBLAS/cuDNN workspaces + caching-allocator slack, not in torch's counters.
CUDA_OVERHEAD_BYTES = 2 * GiB
#: TRL 1.16's fused log-prob head: tokens per tile (``trl.kernels.chunked_logprob.TOKEN_CHUNK_SIZE``)
#: and vocabulary columns per tile (``trl.trainer.utils._CHUNKED_LOGPROB_CHUNK_SIZE``).
HEAD_TOKEN_CHUNK = 4096
HEAD_VOCAB_CHUNK = 32768
#: fp32 tile-sized temporaries the head's torch fallback (no Triton: CPU) holds at once in its
#: backward (``_backward_tile``: the upcast, logits, log-probs, probs, gradient and the one-hot
#: products): measured 10-11 (peak RSS of one forward + backward of
#: ``ChunkedLogProbFunction`` at 508 and 1016 tokens, vocab 50304), see benchmarks/memory_model.py.
CPU_HEAD_TILES = 11
#: AdamW keeps two fp32 moments per trained parameter.
ADAM_BYTES_PER_PARAM = 8
#: Bytes of the weights as training holds and saves them (prefsweep.train.training.TRAIN_DTYPE float32).
PARAM_BYTES = 4
#: Characters per token of English text (OpenAI's rule of thumb), for answers and judge prompts.
CHARS_PER_TOKEN = 4
#: Tokens of a judgment (GPT-4 pairwise explanations run ~100-300 tokens; max_tokens bounds it).
JUDGMENT_TOKENS = 250
#: Tokens of a question when question.jsonl does not exist yet.
QUESTION_TOKENS = 200
#: Bytes of JSON around each answer / judgment record besides its texts.
RECORD_BYTES = 300


@dataclass(frozen=True)
class GPU:
    """One GPU type: memory, dense bf16 peak, HBM bandwidth, and the share of peak reached."""

    name: str
    memory_gib: float
    bf16_flops: float
    hbm_bytes_per_s: float
    #: Model FLOPs utilization of HF/TRL training (padded, unpacked batches). GPT-NeoX-20B
    #: reached 117 TFLOP/s per A100 (37.5% of peak) with Megatron-style kernels (Black et al.
    #: 2022, "GPT-NeoX-20B", sec. 3); a Trainer on padded preference pairs gets less: 30%.
    mfu: float = 0.30
    #: Share of HBM bandwidth a decoding step reaches (weights read once per step).
    decode_efficiency: float = 0.5


#: Peaks from the vendors' datasheets (NVIDIA A100 and H100/H200 datasheets: dense bf16 tensor
#: FLOP/s, without sparsity; HBM bandwidth of the SXM parts).
GPUS: dict[str, GPU] = {g.name: g for g in (
    GPU("a100-40gb", 40, 312e12, 1.555e12),
    GPU("a100-80gb", 80, 312e12, 2.039e12),
    GPU("h100-80gb", 80, 989e12, 3.35e12),
    GPU("h200", 141, 989e12, 4.8e12),
    GPU("l40s", 48, 362e12, 0.864e12),
)}
#: The GPU assumed when neither --gpu nor PREFSWEEP_GPU_MODEL (the Slurm profile's) names one.
DEFAULT_GPU = "a100-80gb"


# --- the memory model -------------------------------------------------------------------------
@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per GPU of one training job, by component (:func:`training_memory`)."""

    weights: int
    grads: int
    optimizer: int
    activations: int
    logits: int
    overhead: int

    @property
    def total(self) -> int:
        return self.weights + self.grads + self.optimizer + self.activations + self.logits + self.overhead


def activation_bytes_per_token_layer(hidden: int, intermediate: int, *, dtype: str = "bfloat16",
                                     heads: int | None = None, seq_len: int | None = None,
                                     attention: str = "sdpa") -> int:
    """Bytes a layer keeps per token for its backward (module docstring)."""
    e = _dtype_bytes(dtype)
    h, i = hidden, intermediate
    per = 5 * e * h + e * (h + 2 * i) + 2 * 4 * h
    if attention == "eager":
        if heads is None or seq_len is None:
            raise ValueError("eager attention: heads and seq_len are needed for the softmax output")
        per += e * heads * seq_len
    elif attention != "sdpa":
        raise ValueError(f"attention: {attention!r}; expected sdpa or eager")
    return per


def _dtype_bytes(dtype: str) -> int:
    try:
        return {"bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "float32": 4, "fp32": 4}[dtype]
    except KeyError:
        raise ValueError(f"dtype {dtype!r}; expected bfloat16 or float32") from None


def training_memory(n_params: int, *, batch: int, seq_len: int, hidden: int, layers: int, vocab: int,
                    intermediate: int | None = None, lora: bool = False, trainable_params: int | None = None,
                    grad_checkpointing: bool = False, dtype: str = "bfloat16", heads: int | None = None,
                    attention: str = "sdpa", param_bytes: int = PARAM_BYTES,
                    overhead_bytes: int = CUDA_OVERHEAD_BYTES, device: str = "cuda") -> MemoryEstimate:
    """Peak GPU bytes of one training process (module docstring for every term).

    ``n_params``: the model's parameters (without adapters). ``batch``: sequences per micro-batch
    on this device (DPO: 2 x per_device_train_batch_size). ``seq_len``: tokens per sequence.
    ``lora``: only ``trainable_params`` (the adapters, required then) train; else all do.
    ``dtype``: the compute dtype (``bfloat16`` under bf16 autocast, ``float32`` without).
    ``device``: ``cuda`` (TRL's Triton head) or ``cpu`` (its torch fallback), for the head term.
    """
    if lora and trainable_params is None:
        raise ValueError("lora=True needs trainable_params (the adapter parameters, see lora_params)")
    if device not in ("cuda", "cpu"):
        raise ValueError(f"device: {device!r}; expected cuda or cpu")
    intermediate = 4 * hidden if intermediate is None else intermediate
    trainable = trainable_params if lora else n_params
    e = _dtype_bytes(dtype)
    weights = param_bytes * (n_params + (trainable if lora else 0))
    if e < param_bytes:
        weights += e * trainable  # autocast's cached low-precision copy of the trained weights
    tokens = batch * seq_len
    per_layer = activation_bytes_per_token_layer(hidden, intermediate, dtype=dtype, heads=heads,
                                                 seq_len=seq_len, attention=attention)
    if grad_checkpointing:
        # each layer's fp32 input is kept; one layer at a time is recomputed with its full set
        acts = tokens * (layers * 4 * hidden + per_layer)
    else:
        acts = tokens * layers * per_layer
    acts += tokens * (4 * hidden + e * hidden)  # final layer norm input and output
    return MemoryEstimate(
        weights=int(weights),
        grads=int(param_bytes * trainable),
        optimizer=int(ADAM_BYTES_PER_PARAM * trainable),
        activations=int(acts),
        logits=int(head_bytes(tokens, vocab=vocab, hidden=hidden, dtype=dtype, device=device)),
        overhead=int(overhead_bytes),
    )


def head_bytes(tokens: int, *, vocab: int, hidden: int, dtype: str = "bfloat16", device: str = "cuda") -> int:
    """Peak bytes of TRL's fused log-prob head over ``tokens`` tokens (module docstring, logits)."""
    e = _dtype_bytes(dtype)
    tile = min(tokens, HEAD_TOKEN_CHUNK) * min(vocab, HEAD_VOCAB_CHUNK)
    tiles = tile * e if device == "cuda" else CPU_HEAD_TILES * tile * 4
    return tiles + tokens * hidden * (e + 4)


def training_memory_bytes(n_params: int, **kwargs: Any) -> int:
    """:func:`training_memory`'s total in bytes (same arguments)."""
    return training_memory(n_params, **kwargs).total


def inference_memory_bytes(n_params: int, *, batch: int, seq_len: int, hidden: int, layers: int, vocab: int,
                           dtype: str = "float32", overhead_bytes: int = CUDA_OVERHEAD_BYTES) -> int:
    """Scoring or generation: the weights, a KV cache (2 x layers x hidden per token) and one
    batch's logits. Exports are fp32 (what training saved) and load in their own dtype."""
    e = _dtype_bytes(dtype)
    tokens = batch * seq_len
    return int(e * n_params + tokens * 2 * layers * hidden * e + tokens * vocab * 4 + overhead_bytes)


#: (in, out) features of the linear modules LoRA can target, by module name, for a hidden size
#: h and MLP width i: GPT-NeoX (Pythia) and LLaMA-style names. PEFT matches a target name
#: against the end of a module's dotted name, so GPT-NeoX's "dense" is the attention output
#: only (the MLP's are dense_h_to_4h and dense_4h_to_h).
LORA_MODULES = {
    "query_key_value": lambda h, i: (h, 3 * h),
    "dense": lambda h, i: (h, h),
    "dense_h_to_4h": lambda h, i: (h, i),
    "dense_4h_to_h": lambda h, i: (i, h),
    "q_proj": lambda h, i: (h, h), "k_proj": lambda h, i: (h, h), "v_proj": lambda h, i: (h, h),
    "o_proj": lambda h, i: (h, h), "gate_proj": lambda h, i: (h, i), "up_proj": lambda h, i: (h, i),
    "down_proj": lambda h, i: (i, h),
}


def lora_params(*, hidden: int, layers: int, r: int, target_modules: list[str], intermediate: int | None = None,
                key: str = "dpo.lora.target_modules") -> int:
    """Adapter parameters: ``r (in + out)`` per targeted linear module per layer (A: in x r, B: r x out)."""
    i = 4 * hidden if intermediate is None else intermediate
    unknown = [m for m in target_modules if m not in LORA_MODULES]
    if unknown:
        raise ValueError(f"{key}: cannot size module(s) {unknown}; the memory model knows {sorted(LORA_MODULES)}")
    return layers * sum(r * sum(LORA_MODULES[m](hidden, i)) for m in target_modules)


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
