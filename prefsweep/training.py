"""SFT and DPO with TRL: trainer configs from the experiment config, resume, wandb.

Config sections ``sft`` and ``dpo`` use TRL's own key names (``SFTConfig`` / ``DPOConfig``):

    learning_rate, num_train_epochs, per_device_train_batch_size, gradient_accumulation_steps,
    warmup_ratio, max_length, save_steps, bf16, lora {enabled, r, lora_alpha, lora_dropout,
    target_modules}; dpo adds beta, loss_type (and the workflow keys init, seeds).

Optional: gradient_checkpointing (default false, unlike TRL), lr_scheduler_type, logging_steps;
sft adds seed (data order, default 0). ``warmup_ratio`` is the name TRL users know; transformers 5
dropped that field and reads a float ``warmup_steps`` in [0, 1) as the same ratio, which is what
it is mapped to (likewise ``gradient_checkpointing`` -> ``activation_checkpointing``). An unknown
key is an error, never ignored.

Checkpoints and resume
    A job keeps ``checkpoint-{step}`` directories (every ``save_steps``, none deleted) in its
    checkpoints directory, together with ``fingerprint.json``: a hash of everything the run's
    result depends on (its config sections, its job wildcards, the sha256 of its input files and
    library versions). A restarted job resumes from its last *complete* checkpoint only when the
    stored fingerprint equals its own; otherwise the directory is emptied and training starts over.
    Trainer writes ``trainer_state.json`` last, so a checkpoint without a readable one was cut off
    mid-save and is removed. Older checkpoints keep their weights (for the training-evolution
    evaluation) but lose optimizer/scheduler/RNG states once a newer one is complete.

Reference log-probs
    DPO jobs never run the reference model: the reference log-probs of the arm are computed once
    (``prefsweep.reflogps``, ``scripts/ref_logps.py``) and arrive as the dataset columns
    ``ref_chosen_logps`` / ``ref_rejected_logps``. With ``precompute_ref_log_probs=True`` TRL 1.16's
    ``DPOTrainer`` builds no reference model (``ref_model`` stays ``None``, also with PEFT) and its
    loss reads the columns; but its ``__init__`` still calls ``_precompute_ref_logps``, which
    recomputes them unless a datasets cache file named by (dataset fingerprint, model hash)
    exists - never the case for an in-memory dataset, whose cache name is random (and the columns
    it would add clash with ours). :class:`PrecomputedRefDPOTrainer` replaces that step with a
    check that the columns are there, skips the hash of every weight TRL computes to name that
    cache, and refuses to exist if TRL built a reference model anyway (FSDP does).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefsweep.io import atomic_write_json, library_versions, sha256_file, sha256_json
from prefsweep.tracking import scrub_secrets, wandb_settings

log = logging.getLogger(__name__)

#: Keys both training sections accept, with the value used when a key is absent (None: required).
COMMON_KEYS: dict[str, Any] = {
    "learning_rate": None,
    "num_train_epochs": None,
    "per_device_train_batch_size": None,
    "gradient_accumulation_steps": 1,
    "warmup_ratio": 0.0,
    "max_length": None,
    "save_steps": None,
    "bf16": False,
    "gradient_checkpointing": False,
    "lr_scheduler_type": "linear",
    "logging_steps": 10,
    "lora": {"enabled": False},
}
SFT_KEYS: dict[str, Any] = {**COMMON_KEYS, "seed": 0}
DPO_KEYS: dict[str, Any] = {**COMMON_KEYS, "beta": 0.1, "loss_type": "sigmoid", "init": "sft", "seeds": None}
#: Keys of a section that are not TrainingArguments fields (handled here or by the workflow).
NON_TRL_KEYS = ("lora", "warmup_ratio", "init", "seeds")

LORA_KEYS = ("enabled", "r", "lora_alpha", "lora_dropout", "target_modules")

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
FINGERPRINT_FILE = "fingerprint.json"



# --------------------------------------------------------------------------------------------
# Config sections -> TRL configs
# --------------------------------------------------------------------------------------------


def resolve_section(section: Mapping[str, Any], allowed: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Section with defaults filled in; unknown or missing required keys raise ``KeyError``."""
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise KeyError(f"{name}: unknown keys {unknown} (allowed: {sorted(allowed)})")
    out = {k: section.get(k, default) for k, default in allowed.items()}
    missing = sorted(k for k, v in out.items() if v is None and k != "seeds")
    if missing:
        raise KeyError(f"{name}: missing required keys {missing}")
    ratio = out["warmup_ratio"]
    if not 0.0 <= float(ratio) < 1.0:
        raise ValueError(f"{name}.warmup_ratio must be in [0, 1), got {ratio}")
    return out


def build_lora_config(lora: Mapping[str, Any] | None, name: str = "lora"):
    """``peft.LoraConfig`` for a causal LM, or ``None`` when ``lora.enabled`` is false.

    Absent keys take PEFT's defaults; ``target_modules: null`` lets PEFT pick the modules it knows
    for the architecture (``query_key_value`` for GPT-NeoX). ``lm_head`` cannot be a target: TRL's
    fused log-prob head multiplies by ``lm_head.weight`` directly.
    """
    lora = dict(lora or {})
    unknown = sorted(set(lora) - set(LORA_KEYS))
    if unknown:
        raise KeyError(f"{name}: unknown keys {unknown} (allowed: {list(LORA_KEYS)})")
    if not lora.pop("enabled", False):
        return None
    from peft import LoraConfig

    kwargs = {k: v for k, v in lora.items() if v is not None}
    return LoraConfig(task_type="CAUSAL_LM", **kwargs)


def _trainer_kwargs(section: dict[str, Any], *, output_dir: str | os.PathLike, seed: int, run_name: str,
                    report_to: str | list[str]) -> dict[str, Any]:
    kwargs = {k: v for k, v in section.items()
              if k not in NON_TRL_KEYS and k not in ("seed", "beta", "gradient_checkpointing")}
    kwargs.update(
        output_dir=str(output_dir),
        warmup_steps=float(section["warmup_ratio"]),
        # transformers 5 renamed it; setting the new name also overrides TRL's default (True).
        activation_checkpointing=bool(section["gradient_checkpointing"]),
        seed=int(seed),
        data_seed=int(seed),
        run_name=run_name,
        report_to=report_to,
        save_strategy="steps",
        save_total_limit=None,
        save_only_model=False,  # optimizer, scheduler and RNG states too: needed to resume
        logging_first_step=True,
        disable_tqdm=True,  # job logs are files: one line per logging step, no progress bars
        dataloader_num_workers=0,
        dataloader_pin_memory=_cuda_available(),
    )
    return kwargs


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def build_sft_config(section: Mapping[str, Any], *, output_dir: str | os.PathLike, run_name: str = "sft",
                     report_to: str | list[str] = "none"):
    """``trl.SFTConfig`` from config section ``sft`` (prompt/completion data, completion-only loss)."""
    from trl import SFTConfig

    sec = resolve_section(section, SFT_KEYS, "sft")
    kwargs = _trainer_kwargs(sec, output_dir=output_dir, seed=sec["seed"], run_name=run_name, report_to=report_to)
    return SFTConfig(completion_only_loss=True, **kwargs)


def build_dpo_config(section: Mapping[str, Any], *, output_dir: str | os.PathLike, seed: int, run_name: str = "dpo",
                     report_to: str | list[str] = "none"):
    """``trl.DPOConfig`` from config section ``dpo``; ``seed`` drives data order and adapter init.

    ``precompute_ref_log_probs=True``: reference log-probs come from the dataset (see module doc).
    """
    from trl import DPOConfig

    sec = resolve_section(section, DPO_KEYS, "dpo")
    kwargs = _trainer_kwargs(sec, output_dir=output_dir, seed=seed, run_name=run_name, report_to=report_to)
    return DPOConfig(beta=float(sec["beta"]), precompute_ref_log_probs=True, **kwargs)


# --------------------------------------------------------------------------------------------
# DPO without a reference model
# --------------------------------------------------------------------------------------------

@functools.cache
def _precomputed_ref_trainer_cls():
    from trl import DPOTrainer

    from prefsweep.reflogps import REF_COLUMNS

    class PrecomputedRefDPOTrainer(DPOTrainer):
        """``DPOTrainer`` whose reference log-probs are dataset columns, never recomputed.

        Requires ``args.precompute_ref_log_probs=True`` and no ``ref_model``: TRL then keeps
        ``self.ref_model = None`` and ``_compute_loss`` reads ``ref_chosen_logps`` /
        ``ref_rejected_logps`` from each batch. The precompute hook only checks the columns.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            training_args = kwargs.get("args")
            if training_args is None or not training_args.precompute_ref_log_probs:
                raise ValueError("PrecomputedRefDPOTrainer needs a DPOConfig with precompute_ref_log_probs=True")
            if kwargs.get("ref_model") is not None or len(args) > 1:
                raise ValueError("PrecomputedRefDPOTrainer takes no ref_model: the reference log-probs are data")
            with _skip_model_hash():
                super().__init__(*args, **kwargs)
            if self.ref_model is not None:  # e.g. FSDP, where TRL loads one for its own precompute
                raise RuntimeError("TRL built a reference model although the reference log-probs are precomputed")

        def _precompute_ref_logps(self, dataset, name, batch_size):
            missing = [c for c in REF_COLUMNS if c not in dataset.column_names]
            if missing:
                raise ValueError(f"{name} dataset lacks the precomputed reference columns {missing}")
            return dataset

    return PrecomputedRefDPOTrainer


@contextlib.contextmanager
def _skip_model_hash() -> Iterator[None]:
    """TRL hashes every weight of the policy to name its precompute cache; we have no cache.

    For a billion-parameter model that is a full device-to-host copy for nothing, so the hash
    function seen by ``trl.trainer.dpo_trainer`` is stubbed while the trainer is built.
    """
    import trl.trainer.dpo_trainer as dpo_module

    original = dpo_module.hash_module
    dpo_module.hash_module = lambda module: "precomputed-ref-logps"
    try:
        yield
    finally:
        dpo_module.hash_module = original


def make_dpo_trainer(model, tokenizer, train_dataset, args, *, peft_config=None, callbacks=None):
    """A :class:`PrecomputedRefDPOTrainer` (built here so tests and the script share it).

    ``train_dataset``: ``datasets.Dataset`` with columns prompt, chosen, rejected (rendered
    strings) and ref_chosen_logps, ref_rejected_logps (float, summed completion log-probs).
    """
    cls = _precomputed_ref_trainer_cls()
    return cls(model=model, args=args, train_dataset=train_dataset, processing_class=tokenizer,
               peft_config=peft_config, callbacks=callbacks)


def __getattr__(name: str):
    # `from prefsweep.training import PrecomputedRefDPOTrainer` without importing TRL at module import.
    if name == "PrecomputedRefDPOTrainer":
        return _precomputed_ref_trainer_cls()
    raise AttributeError(name)


# --------------------------------------------------------------------------------------------
# Fingerprints, checkpoints, resume
# --------------------------------------------------------------------------------------------


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


def last_complete_checkpoint(ckpt_dir: str | os.PathLike, remove_incomplete: bool = True) -> Path | None:
    """Newest complete ``checkpoint-{step}`` in ``ckpt_dir``; newer, incomplete ones are removed."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return None
    found = sorted(((s, p) for p in ckpt_dir.iterdir() if (s := _checkpoint_step(p)) is not None), reverse=True)
    for _, path in found:
        if is_complete_checkpoint(path):
            return path
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
    time keeps one complete checkpoint with its optimizer state to resume from.
    """
    from transformers import TrainerCallback

    class PruneResumeState(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                newest = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if is_complete_checkpoint(newest):
                    prune_resume_state(args.output_dir, newest)

    return PruneResumeState()


def prepare_checkpoint_dir(ckpt_dir: str | os.PathLike, fingerprint: Mapping[str, Any]) -> Path | None:
    """Make ``ckpt_dir`` ready for a run with ``fingerprint``; return the checkpoint to resume from.

    Same fingerprint: the last complete checkpoint (or ``None`` if there is none yet). Otherwise
    (different config/data, or no fingerprint file): the directory is emptied, the new fingerprint
    written, and ``None`` returned - the run starts over.
    """
    ckpt_dir = Path(ckpt_dir)
    fp_path = ckpt_dir / FINGERPRINT_FILE
    stored = None
    if fp_path.is_file():
        with contextlib.suppress(OSError, ValueError):
            stored = json.loads(fp_path.read_text()).get("sha256")
    if stored == fingerprint["sha256"]:
        resume = last_complete_checkpoint(ckpt_dir)
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


# --------------------------------------------------------------------------------------------
# Weights & Biases
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WandbSetup:
    """Where and how a job logs to wandb. ``report_to`` goes to the TRL config."""

    mode: str  # offline | online | disabled
    project: str
    group: str
    name: str
    job_type: str
    run_id: str
    directory: Path
    env: dict[str, str] = field(default_factory=dict)
    entity: str | None = None

    @property
    def report_to(self) -> str:
        return "none" if self.mode == "disabled" else "wandb"


def wandb_setup(config: Mapping[str, Any], *, group: str, name: str, job_type: str, run_id: str,
                results_root: str | os.PathLike = "results") -> WandbSetup:
    """wandb settings of a job (:func:`prefsweep.tracking.wandb_settings`: config, else environment).

    Files go to ``{results_root}/{experiment}/wandb``; DPO runs are grouped as
    ``{arm}-{matching}-n{size}`` and named ``{group}-seed{seed}``. ``run_id`` should change when
    the run starts over (use the fingerprint) and stay when it resumes.
    """
    default_dir = Path(results_root) / str(config.get("experiment", "default")) / "wandb"
    settings = wandb_settings(config, default_dir)
    mode, project, entity = settings["mode"], settings["project"], settings["entity"]
    directory = Path(settings["dir"])
    env = {"WANDB_MODE": mode, "WANDB_DIR": str(directory), "WANDB_PROJECT": project,
           "WANDB_RUN_GROUP": group, "WANDB_JOB_TYPE": job_type, "WANDB_SILENT": "true"}
    if entity:
        env["WANDB_ENTITY"] = str(entity)
    return WandbSetup(mode, project, group, name, job_type, run_id, directory, env, entity or None)


def start_wandb(setup: WandbSetup, config: Mapping[str, Any], extra: Mapping[str, Any] | None = None):
    """Apply the env, and start (or resume) the run with the scrubbed config; ``None`` if disabled.

    The transformers ``WandbCallback`` finds the run already started and logs into it.
    """
    os.environ.update(setup.env)
    if setup.mode == "disabled":
        return None
    import wandb

    setup.directory.mkdir(parents=True, exist_ok=True)
    logged = scrub_secrets({"prefsweep": dict(config), **dict(extra or {})})
    return wandb.init(project=setup.project, entity=setup.entity, group=setup.group, name=setup.name,
                      job_type=setup.job_type, id=setup.run_id, resume="allow", dir=str(setup.directory),
                      mode=setup.mode, config=logged)


def finish_wandb(run) -> None:
    if run is not None:
        run.finish()


# --------------------------------------------------------------------------------------------
# Runtime helpers shared by the scripts
# --------------------------------------------------------------------------------------------


def configure_runtime(threads: int | None = None) -> None:
    """Quiet, reproducible job runtime: logging to stderr, no progress bars, torch thread count.

    ``threads``: torch intra-op threads (the rule's ``threads``). Tiny models run fastest with 1;
    several threads on a shared, busy CPU can be many times slower.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import torch

    datasets.disable_progress_bars()
    import transformers

    transformers.utils.logging.disable_progress_bar()
    if threads:
        torch.set_num_threads(int(threads))


#: dtype of the weights a training job loads: fp32 master weights, whatever the checkpoint's
#: dtype (``bf16: true`` trains them under bf16 autocast, the mixed precision of the DPO paper's
#: reference code). transformers 5 would otherwise load the checkpoint's dtype (fp16 for Pythia).
TRAIN_DTYPE = "float32"


def load_model_and_tokenizer(name_or_path: str | os.PathLike, **model_kwargs: Any):
    """``AutoModelForCausalLM`` + ``AutoTokenizer`` from a hub id or a local HF directory.

    ``model_kwargs`` go to ``from_pretrained`` (e.g. ``dtype=TRAIN_DTYPE``; default: the
    checkpoint's dtype). A tokenizer without a padding token gets its eos token as pad (TRL's own
    fallback), written into the model config too so the saved pair agrees.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
    model = AutoModelForCausalLM.from_pretrained(str(name_or_path), **model_kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def n_parameters(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))
