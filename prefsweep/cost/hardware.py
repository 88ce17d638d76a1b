"""GPU types a plan and a job's cluster request assume: memory, peak FLOP/s, bandwidth, and the
share of them HF/TRL code reaches (the one table of GPU figures)."""

from __future__ import annotations

from dataclasses import dataclass

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
