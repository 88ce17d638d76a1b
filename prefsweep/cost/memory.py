"""The memory model of a training job, per GPU (:func:`training_memory`).

Memory model, per GPU, for one training job:

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
