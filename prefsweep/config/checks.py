"""Cross-key checks of a validated config that the config layer can make on its own (the
stages' and registries' checks run from :func:`prefsweep.experiment.check_experiment`)."""

from __future__ import annotations

import os

from prefsweep.config.schema import ConfigError
from prefsweep.config.slices import checkpoint_eval

def check_config(config: dict) -> None:
    """Cross-key checks of the config itself, run when the workflow is parsed, before any job
    (the data source's, the judge's and the arms' own checks run beside it:
    :func:`prefsweep.experiment.check_experiment`).

    Raises :class:`ConfigError` naming the key and what is expected.
    """
    data = config["data"]
    if not any(size > 0 for size in data["sizes"]):
        raise ConfigError(
            f"data.sizes: {data['sizes']} has no size > 0; give at least one series size in pairs "
            "(0 is the zero point, the DPO init model itself, and is always evaluated)"
        )
    if config["model"]["preset"] == "hf" and not config["model"].get("name_or_path"):
        raise ConfigError("model.name_or_path: required when model.preset is 'hf' (hub id or local directory)")
    tiny = config["model"]["tiny"]
    if tiny["hidden_size"] % tiny["num_attention_heads"]:
        raise ConfigError(
            f"model.tiny.hidden_size: {tiny['hidden_size']} must be divisible by "
            f"model.tiny.num_attention_heads ({tiny['num_attention_heads']})"
        )
    losses, weights = config["dpo"]["loss_type"], config["dpo"]["loss_weights"]
    n_losses = 1 if isinstance(losses, str) else len(losses)
    if weights is not None and len(weights) != n_losses:
        raise ConfigError(
            f"dpo.loss_weights: {weights} has {len(weights)} weights for {n_losses} losses in "
            f"dpo.loss_type ({losses}); give one weight per loss, or null for 1 each"
        )
    for section in ("pretrain", "sft", "dpo"):
        if config[section]["max_length"] > tiny["max_position_embeddings"] and config["model"]["preset"] == "tiny":
            raise ConfigError(
                f"{section}.max_length: {config[section]['max_length']} exceeds "
                f"model.tiny.max_position_embeddings ({tiny['max_position_embeddings']})"
            )
    name = config["model"]["name_or_path"]
    if config["model"]["preset"] == "hf" and name and name.startswith(("/", "./", "../", "~")) and not os.path.isdir(
            os.path.expanduser(name)):
        raise ConfigError(f"model.name_or_path: {name}: no such directory (a local HF model directory)")
    ck = checkpoint_eval(config)
    if ck.sizes is not None:
        trained = sorted(s for s in data["sizes"] if s > 0)
        bad = sorted(set(ck.sizes) - set(trained))
        if bad:
            raise ConfigError(f"eval.checkpoints.sizes: {bad} not among the trained sizes of data.sizes {trained}")
    names = [b["name"] for b in config["eval"]["baselines"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"eval.baselines: names must be unique, got {names}")
    models = [("model.name_or_path", name)] if config["model"]["preset"] == "hf" else []
    models += [(f"eval.baselines[{i}].name_or_path", b["name_or_path"]) for i, b in enumerate(config["eval"]["baselines"])]
    for key, value in models:
        check_model_name(key, value)


def check_model_name(key: str, value: str) -> None:
    """A model named in the config is a local directory or a hub id (``name`` or ``org/name`` of
    letters, digits, ``-_.``): anything else (a typo'd path, shell syntax) stops the run here,
    before any job, rather than failing in a job or reaching a command line."""
    from prefsweep.hub import HUB_ID_RE

    if os.path.isdir(os.path.expanduser(value)) or HUB_ID_RE.match(value):
        return
    raise ConfigError(f"{key}: {value!r} is neither a local directory nor a hub id (name or org/name of letters, "
                      "digits, '-', '_' and '.')")
