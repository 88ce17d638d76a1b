"""Turn what training leaves behind into self-contained Hugging Face model directories.

These sources all become the same kind of output directory, ``hf/{model_id}/``:

* a full HF model directory (``config.json`` + weights), e.g. ``train/sft/final/``;
* a hub model id (``org/name``, e.g. a baseline used as it is), loaded with ``from_pretrained``
  through :mod:`prefsweep.hub` (the local cache when it is there, else a bounded wait for the hub);
* a PEFT adapter directory (``adapter_config.json``), merged into its base model with
  ``merge_and_unload`` (base from ``--base`` or the adapter's ``base_model_name_or_path``);
* a ``transformers.Trainer`` checkpoint (``checkpoint-{step}/`` with ``trainer_state.json``),
  holding either of the above;
* and, through :func:`import_policy`, a ``policy.pt`` of the DPO reference implementation
  (eric-mitchell/direct-preference-optimization: ``{"step_idx", "state", "metrics"}``).

Output directory (written atomically with :func:`prefsweep.io.atomic_dir`)::

    config.json  generation_config.json  model.safetensors  tokenizer files  provenance.json

``generation_config.json`` carries the tokenizer's ``eos_token_id`` and a ``pad_token_id``
(the eos token when the tokenizer has no pad token), so batched generation needs nothing else.

``provenance.json``::

    {"model_id": str, "source": str (path as given), "source_kind": "full"|"adapter"|"hub"|"policy_pt",
     "checkpoint": bool, "step": int|null, "base": str|null (base of an adapter or policy),
     "config_sha256": str|null (prefsweep.io.sha256_json of the job's config),
     "dataset_manifest_sha256": str|null, "run_info": str|null (the run_info.json it came from),
     "wandb_run_id": str|null, "train_global_step": int|null (the training run's last step),
     "metrics": dict|null (policy.pt only), "versions": {...}}

The training run's ``run_info.json`` is passed explicitly (the workflow declares it as an
input); the manifest hash is its first present key of :data:`MANIFEST_SHA_KEYS` (``dpo.py``
writes ``manifest_sha256``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefsweep import hub
from prefsweep.io import atomic_dir, atomic_write_json, library_versions, sha256_json

#: Keys of a run_info.json (top level or under "extra"/"data") that may hold the sha256 of the
#: series manifest the model was trained on; the first present one is recorded.
MANIFEST_SHA_KEYS = ("dataset_manifest_sha256", "manifest_sha256", "pairs_sha256", "dataset_sha256")


@dataclass(frozen=True)
class Source:
    """What a training output directory holds."""

    path: Path
    kind: str  # "full" | "adapter" | "hub"
    checkpoint: bool
    step: int | None
    name: str = ""  # the source as given (a hub id for kind "hub")


def hub_source(name: str) -> Source:
    """A hub model id (``name`` or ``org/name``), loaded with ``from_pretrained`` through
    :mod:`prefsweep.hub` (the local cache when it is there). The caller says a source is a hub
    id: a string that merely looks like one is never taken for one, whatever the working
    directory holds."""
    if not hub.HUB_ID_RE.match(name):
        raise ValueError(f"{name!r}: not a hub model id (expected name or org/name)")
    return Source(Path(name), "hub", False, None, name)


def inspect_source(path: str | os.PathLike) -> Source:
    """Classify a local model directory; raise ``FileNotFoundError`` if it holds no model.

    A Trainer checkpoint is recognised by ``trainer_state.json``; its step is that file's
    ``global_step`` (falling back to the ``checkpoint-{step}`` directory name).
    """
    name = str(path)
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: model source directory does not exist (a hub id is passed as --hub-id)")
    if (path / "adapter_config.json").exists():
        kind = "adapter"
    elif (path / "config.json").exists():
        kind = "full"
    else:
        raise FileNotFoundError(
            f"{path}: neither adapter_config.json (PEFT adapter) nor config.json (HF model) found"
        )
    step = None
    state = path / "trainer_state.json"
    checkpoint = state.exists()
    if checkpoint:
        step = json.loads(state.read_text()).get("global_step")
        if step is None and (m := re.fullmatch(r"checkpoint-(\d+)", path.name)):
            step = int(m[1])
    return Source(path, kind, checkpoint, None if step is None else int(step), name)


def _first_key(d: dict, keys: tuple[str, ...]) -> Any:
    for section in (d, d.get("extra") or {}, d.get("data") or {}):
        if not isinstance(section, dict):
            continue
        for k in keys:
            if section.get(k):
                return section[k]
    return None


def run_info_fields(run_info: Path | None) -> dict[str, Any]:
    """``dataset_manifest_sha256``, ``wandb_run_id`` and the run's final ``global_step``
    (``train_global_step``) from a run_info.json (None where absent).

    A nested ``{"manifest": {"sha256": ...}}`` is accepted too.
    """
    out: dict[str, Any] = {"run_info": None, "dataset_manifest_sha256": None, "wandb_run_id": None,
                           "train_global_step": None}
    if run_info is None:
        return out
    info = json.loads(Path(run_info).read_text())
    sha = _first_key(info, MANIFEST_SHA_KEYS)
    if sha is None and isinstance(info.get("manifest"), dict):
        sha = info["manifest"].get("sha256")
    out.update(run_info=str(run_info), dataset_manifest_sha256=sha, wandb_run_id=_first_key(info, ("wandb_run_id",)),
               train_global_step=_first_key(info, ("global_step",)))
    return out


def _has_tokenizer(path: Path) -> bool:
    return any((path / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json"))


def load_tokenizer(*candidates: str | os.PathLike | None):
    """The tokenizer of the first candidate directory (or hub name) that has one."""
    from transformers import AutoTokenizer

    tried = []
    for c in candidates:
        if c is None:
            continue
        p = Path(c)
        if p.is_dir() and not _has_tokenizer(p):
            tried.append(str(c))
            continue
        return hub.from_pretrained(AutoTokenizer.from_pretrained, c)
    raise FileNotFoundError(f"no tokenizer found in {tried}; pass --base DIR with a tokenizer")


def adapter_base(source: Path, base: str | os.PathLike | None) -> str:
    """Base model of a PEFT adapter: ``base`` if given, else the adapter's own record."""
    if base is not None:
        return str(base)
    cfg = json.loads((source / "adapter_config.json").read_text())
    name = cfg.get("base_model_name_or_path")
    if not name:
        raise ValueError(f"{source}/adapter_config.json names no base_model_name_or_path: pass --base DIR")
    return str(name)


def load_merged(source: Source, base: str | os.PathLike | None = None):
    """Load a source as a plain ``PreTrainedModel`` (LoRA merged) and its tokenizer.

    Returns ``(model, tokenizer, base_used)``; ``base_used`` is None for a full model.
    """
    from transformers import AutoModelForCausalLM

    load = AutoModelForCausalLM.from_pretrained
    if source.kind == "hub":
        model = hub.from_pretrained(load, source.name)
        return model, load_tokenizer(source.name), None
    if source.kind == "full":
        model = hub.from_pretrained(load, source.path)
        tok = load_tokenizer(source.path, base)
        return model, tok, None
    from peft import PeftModel

    base_name = adapter_base(source.path, base)
    base_model = hub.from_pretrained(load, base_name)
    model = PeftModel.from_pretrained(base_model, str(source.path)).merge_and_unload()
    tok = load_tokenizer(source.path, base_name)
    return model, tok, base_name


def set_generation_ids(model, tokenizer) -> None:
    """Give tokenizer, model config and generation config the same eos and pad token ids.

    A tokenizer without a pad token gets its eos token as pad (the usual choice for decoder-only
    models; generation pads on the left, so the pad id is never a prediction target).
    """
    if tokenizer.eos_token_id is None:
        raise ValueError("tokenizer has no eos token: cannot set generation_config.eos_token_id")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    for cfg in (model.config, model.generation_config):
        cfg.eos_token_id = tokenizer.eos_token_id
        cfg.pad_token_id = tokenizer.pad_token_id
        if tokenizer.bos_token_id is not None:
            cfg.bos_token_id = tokenizer.bos_token_id


def save_hf_dir(model, tokenizer, out: str | os.PathLike, provenance: dict[str, Any]) -> Path:
    """Write model (safetensors), tokenizer, generation config and provenance.json atomically."""
    set_generation_ids(model, tokenizer)
    out = Path(out)
    with atomic_dir(out) as tmp:
        model.save_pretrained(str(tmp))  # safetensors is the only format transformers 5 writes
        tokenizer.save_pretrained(str(tmp))
        if not any(tmp.glob("*.safetensors")):
            raise RuntimeError(f"{out}: save_pretrained wrote no safetensors file")
        atomic_write_json(tmp / "provenance.json", {**provenance, "versions": library_versions()})
    return out


def convert(
    source: str | os.PathLike | Source,
    out: str | os.PathLike,
    model_id: str,
    config: dict | None = None,
    base: str | os.PathLike | None = None,
    run_info: str | os.PathLike | None = None,
) -> Path:
    """Convert a full model, adapter or Trainer checkpoint directory (or a :func:`hub_source`)
    into ``out``; ``run_info`` is the ``run_info.json`` of the training run it came from."""
    src = source if isinstance(source, Source) else inspect_source(source)
    model, tok, base_used = load_merged(src, base)
    prov = {
        "model_id": model_id,
        "source": src.name,
        "source_kind": src.kind,
        "checkpoint": src.checkpoint,
        "step": src.step,
        "base": base_used,
        "config_sha256": None if config is None else sha256_json(config),
        "metrics": None,
        **run_info_fields(None if run_info is None else Path(run_info)),
    }
    return save_hf_dir(model, tok, out, prov)


class StateDictMismatch(ValueError):
    """A policy.pt whose keys or shapes do not match the base model's architecture."""


def _fmt_keys(keys) -> str:
    keys = sorted(str(k) for k in keys)
    return ", ".join(keys[:10]) + (f" ... ({len(keys)} in all)" if len(keys) > 10 else "")


def model_from_state_dict(base: str | os.PathLike, state: dict):
    """``base``'s architecture (config only) with the weights of ``state``, strictly checked.

    Loading goes through ``from_pretrained(None, config=..., state_dict=...)`` so transformers'
    own checkpoint conversions apply (e.g. GPT-NeoX ``embed_out.*`` -> ``lm_head.*``, buffers that
    transformers 4.x kept in ``state_dict`` such as ``attention.bias``/``masked_bias``), and tied
    weights may be absent. Any missing, unexpected or mis-shaped key raises
    :class:`StateDictMismatch` listing them; nothing is silently re-initialised.
    """
    from transformers import AutoConfig
    from transformers import logging as hf_logging
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    config = hub.from_pretrained(AutoConfig.from_pretrained, base)
    cls = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # our error below replaces transformers' load report
    try:
        model, info = cls.from_pretrained(
            None, config=config, state_dict=state, output_loading_info=True, ignore_mismatched_sizes=True
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    parts = []
    if info["missing_keys"]:
        parts.append(f"missing keys: {_fmt_keys(info['missing_keys'])}")
    if info["unexpected_keys"]:
        parts.append(f"unexpected keys: {_fmt_keys(info['unexpected_keys'])}")
    if info["mismatched_keys"]:
        parts.append("mismatched shapes: " + _fmt_keys(
            f"{k} (policy {tuple(a)}, model {tuple(b)})" for k, a, b in info["mismatched_keys"]))
    if info.get("error_msgs"):
        parts.append("errors: " + "; ".join(map(str, info["error_msgs"])))
    if parts:
        raise StateDictMismatch(
            f"policy state dict does not match {cls.__name__} of {base}: " + "; ".join(parts)
            + " (is --base the model the policy was trained from?)"
        )
    return model


def load_policy_pt(path: str | os.PathLike) -> dict[str, Any]:
    """Read a DPO-reference ``policy.pt`` safely (``weights_only=True``).

    Format (direct-preference-optimization ``BasicTrainer.write_state_dict``):
    ``{"step_idx": int, "state": {param name: tensor}, "metrics": {name: float}}``.
    """
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many types
        raise ValueError(f"{path}: cannot be read with torch.load(weights_only=True): {exc}") from exc
    if not isinstance(obj, dict) or "state" not in obj:
        keys = list(obj) if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"{path}: expected a dict with 'state' (and 'step_idx', 'metrics'), got {keys}")
    return obj


def import_policy(
    policy: str | os.PathLike,
    base: str | os.PathLike,
    out: str | os.PathLike,
    model_id: str | None = None,
    config: dict | None = None,
) -> Path:
    """Load a DPO-reference ``policy.pt`` into ``base``'s architecture and save an HF dir."""
    obj = load_policy_pt(policy)
    model = model_from_state_dict(base, obj["state"])
    tok = load_tokenizer(base)
    step = obj.get("step_idx")
    prov = {
        "model_id": model_id or Path(out).name,
        "source": str(policy),
        "source_kind": "policy_pt",
        "checkpoint": False,
        "step": None if step is None else int(step),
        "base": str(base),
        "config_sha256": None if config is None else sha256_json(config),
        "metrics": obj.get("metrics"),
        **run_info_fields(None),
    }
    return save_hf_dir(model, tok, out, prov)
