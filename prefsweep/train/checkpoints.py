"""Training checkpoints on disk: run fingerprints, complete checkpoints, resume and pruning.

A job keeps ``checkpoint-{step}`` directories (every ``save_steps``, none deleted) in its
checkpoints directory, together with ``fingerprint.json``: a hash of everything the run's
result depends on (its config section, its job wildcards, the sha256 of its input files and
data, library versions). A restarted job resumes from its last *complete* checkpoint only when
the stored fingerprint equals its own; otherwise the directory is emptied and training starts
over. Trainer writes ``trainer_state.json`` last, so a checkpoint without a readable one was
cut off mid-save and is removed. Older checkpoints keep their weights (for the
training-evolution evaluation) but lose optimizer/scheduler/RNG states once a newer one is
complete. The resume itself restores every tensor exactly or fails
(:class:`prefsweep.train.trl_adapter.ExactResumeMixin`), so a resumed run ends with the same weights
as an uninterrupted one (bit-identical on CPU; ``tests/reliability/test_training_faults.py``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefsweep.io import atomic_write_json, library_versions, sha256_file, sha256_json, share_modes

log = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
FINGERPRINT_FILE = "fingerprint.json"


def sha256_dir(path: str | os.PathLike) -> str:
    """Hash of a directory's files: relative paths and contents (sorted, recursive)."""
    root = Path(path)
    entries = [[p.relative_to(root).as_posix(), sha256_file(p)] for p in sorted(root.rglob("*")) if p.is_file()]
    if not entries:
        raise FileNotFoundError(f"{root}: no files to hash")
    return sha256_json(entries)


def run_fingerprint(config_parts: Mapping[str, Any], job: Mapping[str, Any],
                    inputs: Mapping[str, str | os.PathLike]) -> dict[str, Any]:
    """What a run's result depends on, and its hash (``record["sha256"]``).

    ``config_parts``: the config sections the run reads; ``job``: its wildcards (arm, seed...);
    ``inputs``: name -> file or directory, hashed by content.
    """
    hashes = {}
    for name, p in sorted(inputs.items()):
        p = Path(p)
        hashes[name] = sha256_dir(p) if p.is_dir() else sha256_file(p)
    versions = library_versions()
    record = {
        "config": dict(config_parts),
        "job": dict(job),
        "inputs": hashes,
        "versions": {k: versions.get(k) for k in ("torch", "transformers", "trl", "peft", "accelerate")},
    }
    record["sha256"] = sha256_json(record)
    return record


def _checkpoint_step(path: Path) -> int | None:
    m = CHECKPOINT_RE.match(path.name)
    return int(m.group(1)) if m and path.is_dir() else None


def is_complete_checkpoint(path: str | os.PathLike) -> bool:
    """Trainer writes ``trainer_state.json`` last: a readable one with this step means complete."""
    path = Path(path)
    try:
        state = json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return state.get("global_step") == _checkpoint_step(path)


def complete_checkpoint_steps(ckpt_dir: str | os.PathLike) -> list[int]:
    """Steps of the complete ``checkpoint-{step}`` directories in ``ckpt_dir``, ascending
    (what the workflow evaluates for training-evolution curves; none if the dir is missing)."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    return sorted(s for p in ckpt_dir.iterdir() if (s := _checkpoint_step(p)) is not None and is_complete_checkpoint(p))


def missing_rng_states(path: str | os.PathLike, processes: int) -> list[str]:
    """``rng_state_{rank}.pth`` files a checkpoint of an N-process run lacks (none for N = 1).

    With N > 1 processes rank 0 writes ``trainer_state.json`` while the other ranks write their
    RNG states, so a job killed then leaves a checkpoint complete by :func:`is_complete_checkpoint`
    but not resumable by every rank.
    """
    if processes <= 1:
        return []
    return [f"rng_state_{r}.pth" for r in range(processes) if not (Path(path) / f"rng_state_{r}.pth").is_file()]


def last_complete_checkpoint(ckpt_dir: str | os.PathLike, remove_incomplete: bool = True,
                             processes: int = 1) -> Path | None:
    """Newest complete ``checkpoint-{step}`` in ``ckpt_dir``; newer, incomplete ones are removed.

    ``processes`` > 1: also every rank's RNG state (:func:`missing_rng_states`); a complete
    checkpoint without them is kept (its weights serve the evaluation) but passed over. The
    checkpoint before it still has its resume state: pruning waits for every rank
    (:func:`prune_resume_state_callback`).
    """
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return None
    found = sorted(((s, p) for p in ckpt_dir.iterdir() if (s := _checkpoint_step(p)) is not None), reverse=True)
    for _, path in found:
        if is_complete_checkpoint(path):
            missing = missing_rng_states(path, processes)
            if not missing:
                return path
            log.warning("passing over %s: complete, but without %s (cut off while the other ranks saved)",
                        path, missing)
            continue
        log.warning("removing incomplete checkpoint %s (cut off while saving)", path)
        if remove_incomplete:
            shutil.rmtree(path)
    return None


#: Files only a resume needs; dropped from every checkpoint but the newest (see below).
RESUME_STATE_PATTERNS = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth")


def prune_resume_state(ckpt_dir: str | os.PathLike, keep: str | os.PathLike) -> list[Path]:
    """Delete optimizer/scheduler/RNG states from every checkpoint in ``ckpt_dir`` except ``keep``.

    Kept checkpoints serve the training-evolution evaluation, which needs only the weights; the
    optimizer state is twice the model (Adam) and only the newest checkpoint is ever resumed from.
    Returns the deleted files.
    """
    keep = Path(keep).resolve()
    removed = []
    for path in Path(ckpt_dir).iterdir():
        if _checkpoint_step(path) is None or path.resolve() == keep:
            continue
        for pattern in RESUME_STATE_PATTERNS:
            for f in path.glob(pattern):
                f.unlink()
                removed.append(f)
    return removed


def prune_resume_state_callback():
    """``TrainerCallback``: after each complete checkpoint save, prune the older checkpoints.

    It runs after ``trainer_state.json`` of the new checkpoint is written, so a job killed at any
    time keeps one complete checkpoint with its optimizer state to resume from. With several
    processes it first waits until every rank has written its part (its RNG state), then rank 0
    prunes.
    """
    from transformers import TrainerCallback

    from prefsweep import distributed

    class PruneResumeState(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            distributed.wait_for_everyone()
            if state.is_world_process_zero:
                newest = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if is_complete_checkpoint(newest):
                    prune_resume_state(args.output_dir, newest)
                    share_modes(newest)  # a lab mate can read it (the Trainer writes some files 0o600)

    return PruneResumeState()


def prepare_checkpoint_dir(ckpt_dir: str | os.PathLike, fingerprint: Mapping[str, Any],
                           processes: int = 1) -> Path | None:
    """Make ``ckpt_dir`` ready for a run with ``fingerprint``; return the checkpoint to resume from.

    Same fingerprint: the last complete checkpoint (or ``None`` if there is none yet). Otherwise
    (different config/data, or no fingerprint file): the directory is emptied, the new fingerprint
    written, and ``None`` returned - the run starts over. ``processes``: the job's process count
    (only rank 0 calls this; see :func:`last_complete_checkpoint`).
    """
    ckpt_dir = Path(ckpt_dir)
    fp_path = ckpt_dir / FINGERPRINT_FILE
    stored = None
    if fp_path.is_file():
        with contextlib.suppress(OSError, ValueError):
            stored = json.loads(fp_path.read_text()).get("sha256")
    if stored == fingerprint["sha256"]:
        resume = last_complete_checkpoint(ckpt_dir, processes=processes)
        log.info("%s: same config and data; %s", ckpt_dir,
                 f"resuming from {resume.name}" if resume else "no complete checkpoint yet, starting")
        return resume
    if ckpt_dir.exists() and any(ckpt_dir.iterdir()):
        log.warning("%s: made by a different config or data (or unknown): starting over", ckpt_dir)
        shutil.rmtree(ckpt_dir)
    else:
        log.info("%s: new run", ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(fp_path, dict(fingerprint))
    return None


def evaluated_steps(kept: list[int], last: int) -> list[int]:
    """Kept checkpoint steps that get their own model id: all but the run's last step, whose
    weights are the final model's (the final model stands for it)."""
    return [step for step in kept if step != last]


def evaluated_checkpoint_steps(checkpoints_dir: str | os.PathLike, run_info: str | os.PathLike) -> list[int]:
    """:func:`evaluated_steps` of a finished run: its complete kept checkpoints on disk, less the
    last step of its ``run_info.json`` (``global_step``)."""
    with open(run_info, encoding="utf-8") as fh:
        last = json.load(fh)["global_step"]
    return evaluated_steps(complete_checkpoint_steps(checkpoints_dir), last)
