"""The training-job skeleton shared by ``scripts/sft.py`` and ``scripts/dpo.py``.

One SFT or DPO job, start to finish (:func:`run_training_job`)::

    config slice -> section (schema keys)         prefsweep.train.training.resolve_section
    init model + tokenizer -> data checks          max_length vs context; prompts that fill max_length
    fingerprint -> checkpoints dir                 resume (same fingerprint) or start over
    wandb run                                      prefsweep.tracking
    TRL trainer -> train(resume_from_checkpoint)   prefsweep.train.trl_adapter (exact resume)
    final model -> --out, atomically               merged full model (SFT) / policy or adapter (DPO)
    run_info.json                                  config, versions, fingerprint, inputs, metrics

Several processes (``python -m prefsweep.launch --processes N``, N > 1: ``accelerate launch``)
run this same function in each; see :mod:`prefsweep.distributed`. Rank 0 alone prepares the
checkpoints directory (its choice of checkpoint is broadcast), starts the wandb run and writes
``--out`` and ``run_info.json``; the Trainer splits each step's batches over the processes. N
is part of the job (``job.processes`` in the fingerprint and run_info, only when N > 1), since
a step then sees N x ``per_device_train_batch_size`` examples: checkpoints of a run with
another N are not resumed. With ``fsdp`` (``config/accelerate/fsdp.yaml``) every rank joins the
gather of the full weights when the model is saved; LoRA is refused there (use ``ddp``).

The scripts only read their inputs into a :class:`TrainingJob` (:func:`read_sft_corpus`,
:func:`read_dpo_data`) and call :func:`run_training_job` inside :func:`user_errors`, which turns
every error a user can fix (config, data, checkpoint, disk full, a hub model it cannot have) into a
one-line ``SystemExit``. A full disk (the error names the directory and its free space) while a
checkpoint is written leaves a checkpoint without ``trainer_state.json`` (removed by the rerun,
which resumes from the last complete one); while the final model is written, nothing at
``--out`` (:func:`save_atomically`).

``run_info.json`` of a training output (besides ``config`` and ``versions``)::

    step, job, seed, init_model, fingerprint (sha256), inputs {name: sha256}, resumed_from
    (checkpoint name | null), global_step, train_metrics, n_examples, n_examples_trained,
    adapter (bool: --out holds a PEFT adapter), lora_merged (bool), wandb_run_id (str | null),
    and the script's own fields (DPO: manifest_sha256, pairs_sha256, ref_logps_sha256, n_pairs).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefsweep import distributed as dist
from prefsweep.config import ConfigError
from prefsweep.hub import HubError
from prefsweep.io import DataFileError, atomic_dir, read_jsonl, read_parquet, save_run_info, sha256_file, sha256_json
from prefsweep.tracking import finish_wandb, scrub_secrets, start_wandb, wandb_dir, wandb_setup
from prefsweep.train.checkpoints import prepare_checkpoint_dir, prune_resume_state_callback, run_fingerprint
from prefsweep.train.training import (
    TRAIN_DTYPE, DataError, build_dpo_config, build_lora_config, build_sft_config, check_max_length,
    check_prompt_lengths, load_model_and_tokenizer, resolve_section,
)
from prefsweep.train.trl_adapter import CheckpointLoadError, make_dpo_trainer, make_sft_trainer

log = logging.getLogger(__name__)

#: pretrain: the tiny preset's base model (language modelling on every candidate response),
#: sft: the common SFT model, dpo: one DPO run. pretrain and sft share everything but the loss.
STEPS = ("pretrain", "sft", "dpo")


class DiskFullError(RuntimeError):
    """The disk (or quota) filled up while the final model was written; nothing was left at --out."""


#: Errors a user can act on: scripts print their message (it names the file, record, key or hub id).
USER_ERRORS = (ConfigError, DataError, DataFileError, CheckpointLoadError, DiskFullError, HubError)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn :data:`USER_ERRORS` into ``SystemExit(message)``: one clear line, no traceback."""
    try:
        yield
    except USER_ERRORS as exc:
        raise SystemExit(str(exc)) from None


@dataclass(frozen=True)
class TrainingJob:
    """Everything one SFT or DPO job needs; see the module doc for what it does with it."""

    step: str  # "sft" | "dpo": the config section, the TRL trainer, the export
    config: Mapping[str, Any]  # the job's config slice (--config-json)
    init_model: Path  # HF directory training starts from
    dataset: Any  # datasets.Dataset: prompt, completion (sft) | prompt, chosen, rejected, ref_* (dpo)
    record_ids: Sequence[str]  # one per dataset row, named in data errors
    id_name: str  # what record_ids are ("prompt_id", "pair_id")
    data_source: str  # the file(s) the rows come from, named in data errors
    inputs: Mapping[str, Path]  # files hashed into the fingerprint and run_info (the init model is added)
    job: Mapping[str, Any]  # the job's wildcards: fingerprint, wandb config, run_info
    seed: int | None  # DPO: the run's seed; SFT: None, the section's ``seed``
    run_name: str  # the model id: wandb run name, TRL run_name
    wandb_group: str
    out: Path
    checkpoints: Path
    run_info: Mapping[str, Any] = field(default_factory=dict)  # extra run_info.json fields


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def read_sft_corpus(path: str | Path) -> tuple[list[dict[str, str]], str]:
    """SFT examples ``{prompt, completion, prompt_id}`` and the name of their ids.

    ``data/sft.jsonl`` (records ``{prompt, completion, prompt_id}``, rendered), or a series
    ``pairs.parquet`` (a baseline's SFT on an arm's data, ``eval.baselines[].sft_on``): each
    distinct (prompt, chosen) pair once, in file order. Raises :class:`DataError` naming the file
    and line for a bad record, or for an empty corpus.
    """
    path = Path(path)
    if path.suffix == ".parquet":
        pairs = read_parquet(path, columns=["prompt_id", "prompt", "chosen"]).drop_duplicates(["prompt", "chosen"])
        records = [{"prompt": p, "completion": c, "prompt_id": str(i)}
                   for i, p, c in zip(pairs["prompt_id"], pairs["prompt"], pairs["chosen"])]
    else:
        try:
            raw = read_jsonl(path)
        except ValueError as exc:  # names the file and line
            raise DataError(str(exc)) from None
        records = []
        for line, r in enumerate(raw, 1):
            bad = [k for k in ("prompt", "completion") if not isinstance(r.get(k), str)]
            if bad:
                raise DataError(f"{path}: record {line}: {bad} missing or not a string; expected "
                                "{prompt, completion, prompt_id} with rendered strings")
            records.append({"prompt": r["prompt"], "completion": r["completion"],
                            "prompt_id": str(r.get("prompt_id", f"record {line}"))})
    if not records:
        raise DataError(f"{path}: empty SFT corpus; expected at least one {{prompt, completion}} record")
    return records, "prompt_id"


def check_manifest(manifest: Mapping[str, Any], pairs_path: str | Path, n_pairs: int, cell: Mapping[str, Any]) -> None:
    """The manifest must describe this pairs file (sha256) and this cell (arm, matching, size)."""
    actual = sha256_file(pairs_path)
    if manifest.get("sha256") != actual:
        raise DataError(f"{pairs_path}: sha256 {actual} differs from its manifest's {manifest.get('sha256')}; "
                        "rebuild the series (its manifest is written with it)")
    expected = {"arm": cell["arm"], "matching": cell["matching"], "size": cell["size"], "n_pairs": n_pairs}
    wrong = {k: (manifest.get(k), v) for k, v in expected.items() if manifest.get(k) != v}
    if wrong:
        raise DataError(f"{pairs_path}: its manifest does not match this job (manifest value, job value): {wrong}")


def read_dpo_data(pairs_path: str | Path, manifest_path: str | Path, ref_logps_path: str | Path,
                  cell: Mapping[str, Any]):
    """The DPO dataset of a series: its pairs with their reference log-probs joined by pair_id.

    Returns ``(pairs, dataset)``: the pairs table and the training ``datasets.Dataset`` (columns
    of :func:`prefsweep.train.reflogps.dpo_columns`, same row order). Every pair needs its reference
    values: a missing one is a :class:`DataError` naming the file.
    """
    from datasets import Dataset

    from prefsweep.train.reflogps import attach_ref_logps, dpo_columns

    pairs = read_parquet(pairs_path)
    with open(manifest_path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    check_manifest(manifest, pairs_path, len(pairs), cell)
    try:
        data = attach_ref_logps(pairs, read_parquet(ref_logps_path))[dpo_columns()]
    except (KeyError, ValueError) as exc:
        raise DataError(f"{ref_logps_path}: {exc.args[0]}") from None
    return pairs, Dataset.from_pandas(data, preserve_index=False)


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------

#: How a full disk or quota shows in an exception: OSError's errno; the Rust error text of
#: safetensors (``SafetensorError: ... No space left on device (os error 28)``), which is no OSError;
#: and torch's zip writer (``torch.save`` of ``optimizer.pt``...), whose failed write says only
#: ``[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598`` (or ``... file write
#: failed``), errno lost: what ``torch.save`` to a full disk (``/dev/full``) raises.
_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXT = re.compile(r"No space left on device|Disk quota exceeded|os error (28|122)\b"
                             r"|inline_container\.cc:\d+\].*(unexpected pos|file write failed)")


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the disk or quota is full."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
            return True
        if _DISK_FULL_TEXT.search(str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def free_space(path: str | Path) -> str:
    """Free space on the disk of ``path`` (its nearest existing ancestor), e.g. ``"12.3 MiB free"``."""
    where = Path(path).absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        size = float(shutil.disk_usage(where).free)
    except OSError as exc:
        return f"free space unknown ({exc.strerror or exc})"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            break
        size /= 1024
    return f"{size:.1f} {unit} free"


def disk_full_error(directory: str | Path, doing: str, exc: BaseException, after: str) -> DiskFullError:
    """The one-line :class:`DiskFullError` of a write into ``directory`` that failed on a full disk:
    names the directory, its disk's free space now, what was being written and the original error."""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DiskFullError(f"{directory}: disk full (or quota exceeded) while {doing}: {free_space(directory)} on "
                         f"its disk ({type(exc).__name__}: {first}). {after}")


def save_atomically(out: str | Path, write: Callable[[Path], Any]) -> None:
    """Run ``write(tmp)`` on a temporary sibling directory of ``out`` and rename it to ``out``.

    On any error nothing is left at ``out`` (an older complete output stays untouched) and the
    temporary directory is removed; a full disk is a :class:`DiskFullError` naming ``out``.
    """
    out = Path(out)
    try:
        with atomic_dir(out) as tmp:
            write(tmp)
    except Exception as exc:
        if is_disk_full(exc):
            raise disk_full_error(out, "saving the model", exc, f"Nothing was written there. Free space on "
                                  f"{out.parent} and rerun: training resumes from its last checkpoint") from exc
        raise


# --------------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------------


def _trainer_args(step: str, section: dict[str, Any], *, output_dir: Path, seed: int, run_name: str, report_to: str):
    if step in ("pretrain", "sft"):
        return build_sft_config(section, output_dir=output_dir, run_name=run_name, report_to=report_to, name=step)
    return build_dpo_config(section, output_dir=output_dir, seed=seed, run_name=run_name, report_to=report_to)


def _export(step: str, trainer, tokenizer, adapter: bool, tmp: Path) -> None:
    """SFT: always a full model (a LoRA adapter is merged: it is the next stage's init model).
    DPO: the trained policy, a PEFT adapter directory with LoRA; tokenizer included."""
    if step in ("pretrain", "sft"):
        final = trainer.model.merge_and_unload() if adapter else trainer.model
        final.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    else:
        trainer.save_model(tmp)


def run_training_job(spec: TrainingJob) -> dict[str, Any]:
    """Run one SFT or DPO job (module doc); returns its ``run_info`` record.

    Raises :data:`USER_ERRORS` for what a user can fix (wrap calls in :func:`user_errors`).
    """
    if spec.step not in STEPS:
        raise ValueError(f"step must be one of {STEPS}, got {spec.step!r}")
    t0 = time.perf_counter()
    step = spec.step
    if step not in spec.config:
        raise ConfigError(f"--config-json: no section {step!r} (expected the slice of step {step}: "
                          f"python -m prefsweep.config {step})")
    section = resolve_section(spec.config[step], step)
    seed = int(section["seed"] if spec.seed is None else spec.seed)
    peft_config = build_lora_config(section["lora"], f"{step}.lora")
    if len(spec.dataset) == 0:
        raise DataError(f"{spec.data_source}: no training examples")

    model, tokenizer = load_model_and_tokenizer(spec.init_model, dtype=TRAIN_DTYPE)
    key = f"{step}.max_length"
    check_max_length(model, section["max_length"], key, spec.init_model)
    check_prompt_lengths(tokenizer, spec.dataset["prompt"], spec.record_ids, max_length=section["max_length"],
                         key=key, id_name=spec.id_name, source=spec.data_source)

    job = {**spec.job, "seed": seed}
    if dist.world_size() > 1:  # another global batch: another run (module doc)
        job["processes"] = dist.world_size()
    fingerprint = run_fingerprint({step: section}, {**job, "data": sha256_json(spec.dataset.to_dict())},
                                  {"model": spec.init_model, **spec.inputs})
    resume = dist.run_on_main(lambda: prepare_checkpoint_dir(spec.checkpoints, fingerprint,
                                                             processes=dist.world_size()))
    wb = wandb_setup(spec.config, group=spec.wandb_group, name=spec.run_name, job_type=step,
                     run_id=f"{spec.run_name}-{fingerprint['sha256'][:8]}", directory=wandb_dir())
    # the slice as given, not the resolved section: a hand-written slice's logging_steps wins
    args = _trainer_args(step, spec.config[step], output_dir=spec.checkpoints, seed=seed, run_name=spec.run_name,
                         report_to=wb.report_to)
    run = start_wandb(wb, spec.config, {"job": job}) if dist.is_main() else None
    try:
        make = make_dpo_trainer if step == "dpo" else make_sft_trainer
        trainer = make(model, tokenizer, spec.dataset, args, peft_config=peft_config,
                       callbacks=[prune_resume_state_callback()])
        fsdp = bool(trainer.is_fsdp_enabled)
        if fsdp and peft_config is not None:
            raise ConfigError(f"{step}.lora.enabled with the fsdp accelerate config: FSDP is for full fine-tuning; "
                              "a LoRA run fits one GPU per process, use the ddp config (PREFSWEEP_ACCELERATE=ddp)")
        try:
            result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        except Exception as exc:
            if is_disk_full(exc):
                raise disk_full_error(spec.checkpoints, "writing a checkpoint", exc, "Free space and rerun: the "
                                      "cut-off checkpoint is removed and training resumes from the last complete "
                                      "one") from exc
            raise
        adapter = peft_config is not None
        info = {
            "step": step, "job": job, "seed": seed, "init_model": str(spec.init_model),
            "fingerprint": fingerprint["sha256"], "inputs": fingerprint["inputs"],
            "resumed_from": resume.name if resume else None, "global_step": trainer.state.global_step,
            "train_metrics": result.metrics, "n_examples": len(spec.dataset),
            "n_examples_trained": len(trainer.train_dataset), "adapter": adapter and step == "dpo",
            "lora_merged": adapter and step != "dpo", "wandb_run_id": None if wb.mode == "disabled" else wb.run_id,
            **spec.run_info,
        }

        def write(tmp: Path) -> None:
            if fsdp:  # every rank is in this call (below): rank 0 gathers the full weights, writes them
                trainer.save_model(str(tmp))
            else:
                _export(step, trainer, tokenizer, adapter, tmp)
            save_run_info(tmp, scrub_secrets(dict(spec.config)), **info)

        if dist.is_main():
            save_atomically(spec.out, write)
        elif fsdp:
            trainer.save_model(str(spec.checkpoints))  # joins rank 0's gather; a non-main rank writes nothing
        dist.wait_for_everyone()
    finally:
        finish_wandb(run)
    if dist.is_main():
        log.info("%s %s: %d steps in %.1f s, written to %s", step, spec.run_name, trainer.state.global_step,
                 time.perf_counter() - t0, spec.out)
    return info
