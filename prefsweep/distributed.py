"""Several processes of one job (``accelerate launch``, :mod:`prefsweep.launch`): who writes, who waits.

A training or reference log-prob job started with N > 1 processes runs the same script in each
(ranks 0..N-1, one GPU each; on a machine without CUDA, CPU processes over gloo). The trainer's
data-parallel part is TRL's / transformers' own (DDP or FSDP through accelerate): each process
takes ``per_device_train_batch_size`` examples of every optimizer step, so one step sees
``N x per_device_train_batch_size x gradient_accumulation_steps`` examples. What is ours:

- **rank 0 alone writes** the job's outputs (the final model, ``run_info.json``, the reference
  log-prob table, the checkpoints directory's fingerprint and its pruning); the others wait at
  a barrier (:func:`wait_for_everyone`) or receive rank 0's result (:func:`run_on_main`).
  Checkpoints are the Trainer's: rank 0 writes the weights, optimizer and trainer state, and
  each rank its own ``rng_state_{rank}.pth``.
- **shards** for work that is not training (:func:`shard_bounds`, :func:`gather`): contiguous
  slices in rank order, so gathering them gives the rows in their original order.

With one process (``WORLD_SIZE`` unset or 1, the local default) every function here is a no-op
that never imports accelerate or torch.distributed: such jobs run exactly as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def world_size() -> int:
    """Processes of this job (torchrun's ``WORLD_SIZE``; 1 when not launched by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank (``RANK``; 0 when not launched by torchrun)."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def use_cpu() -> bool:
    """Whether the processes run on CPU (gloo): ``ACCELERATE_USE_CPU`` set (by
    :func:`setup_processes` where there is no CUDA; the Trainer reads the same flag)."""
    return os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")


def setup_processes() -> None:
    """Called first by every job script: with several processes and no CUDA device, run them on
    CPU over gloo (``ACCELERATE_USE_CPU=true``, read by accelerate's and the Trainer's state);
    with CUDA, one GPU per process (accelerate's default). Nothing with one process."""
    if world_size() > 1 and "ACCELERATE_USE_CPU" not in os.environ:
        import torch

        if not torch.cuda.is_available():
            os.environ["ACCELERATE_USE_CPU"] = "true"


def state():
    """accelerate's ``PartialState`` of this job (initializes the process group on first use).

    A ``PartialState`` is a shared singleton that ``TrainingArguments`` resets and rebuilds;
    the process group itself survives, so this is called afresh rather than kept.
    """
    from accelerate import PartialState

    return PartialState(cpu=use_cpu())


def device():
    """The device of this process: ``cuda:{local_rank}`` or ``cpu`` (only for ``world_size() > 1``)."""
    return state().device


def wait_for_everyone() -> None:
    """Barrier over all processes of the job; nothing with one process."""
    if world_size() > 1:
        state().wait_for_everyone()


def broadcast(value: T) -> T:
    """Rank 0's ``value`` on every rank (a picklable object); ``value`` itself with one process."""
    if world_size() == 1:
        return value
    from accelerate.utils import broadcast_object_list

    state()  # the process group
    box = [value if is_main() else None]
    broadcast_object_list(box, from_process=0)
    return box[0]


def run_on_main(fn: Callable[[], T]) -> T:
    """``fn()`` on rank 0 only; every rank gets its result once it is done.

    An exception on rank 0 is raised there; the other ranks wait in the broadcast until the
    launcher (torchrun, under ``accelerate launch``) sees rank 0 exit and stops them, so the job
    fails with rank 0's message in the log.
    """
    if world_size() == 1:
        return fn()
    result = fn() if is_main() else None
    return broadcast(result)


def shard_bounds(n: int) -> tuple[int, int]:
    """``(start, stop)`` of this rank's contiguous share of ``n`` items (the first ``n % N`` ranks
    get one more), as ``accelerate``'s ``split_between_processes`` splits a list."""
    size, r = world_size(), rank()
    per, extra = divmod(n, size)
    start = r * per + min(r, extra)
    return start, start + per + (1 if r < extra else 0)


def gather(items: list[Any]) -> list[Any]:
    """The concatenation of every rank's ``items`` in rank order, on every rank."""
    if world_size() == 1:
        return list(items)
    from accelerate.utils import gather_object

    state()
    return list(gather_object(list(items)))
