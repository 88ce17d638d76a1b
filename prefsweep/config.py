"""Experiment config: checks the JSON schema cannot express, and per-job config slices.

A value travels from ``config/config.yaml`` (or ``--configfile`` / ``--config key=value``) into
Snakemake's ``config`` dict, is validated and filled with defaults by
``workflow/schemas/config.schema.yaml``, checked again here, and then handed to each job as a
*slice*: the sections that job reads, as a JSON ``params`` value. Snakemake reruns a job when its
params change, so a job reruns when - and only when - a value it uses changes. Keys that shape
the DAG (sizes, matchings, seeds, baselines) are not in any slice: they add or remove jobs
through wildcards instead of rerunning the existing ones.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG_PATH = REPO / "config" / "config.yaml"

#: Keys that only shape the DAG; dropped from every job slice.
SHAPE_KEYS = ("data.sizes", "data.matchings", "dpo.seeds", "eval.baselines", "eval.checkpoints")

#: Sections read by each step (dotted paths select a sub-key).
STEP_KEYS: dict[str, tuple[str, ...]] = {
    "ballots": ("experiment", "data.source", "data.seed", "data.synthetic", "data.jsonl", "data.shp", "sc"),
    "split": ("experiment", "data"),
    "data": ("experiment", "data", "sc", "prompt_format"),
    "base_model": ("experiment", "model", "prompt_format"),
    "sft": ("experiment", "model", "sft", "prompt_format"),
    "ref_logps": ("experiment", "model", "dpo.max_length", "dpo.bf16", "prompt_format"),
    "dpo": ("experiment", "model", "dpo", "prompt_format"),
    "convert": ("experiment", "model"),
    "answers": ("experiment", "prompt_format", "eval.generation"),
    "pair_accuracy": ("experiment", "dpo.max_length"),
    "judge": ("experiment", "data", "prompt_format", "eval.judge", "eval.baseline"),
    "win_rates": ("experiment", "data.reference_arm", "dpo.init", "eval.baseline", "eval.judge", "eval.bootstrap"),
    "plots": ("experiment", "data.reference_arm", "eval.baseline", "eval.judge.type", "plots"),
}


class ConfigError(ValueError):
    """A config value the schema accepts but the experiment cannot use."""


def _get(cfg: dict, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def _set(cfg: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = cfg
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _drop(cfg: dict, dotted: str) -> None:
    parts = dotted.split(".")
    node = cfg
    for part in parts[:-1]:
        if part not in node:
            return
        node = node[part]
    node.pop(parts[-1], None)


def job_config(config: dict, step: str) -> dict:
    """The slice of the resolved config that ``step`` reads (shape keys removed)."""
    out: dict = {}
    for key in STEP_KEYS[step]:
        _set(out, key, copy.deepcopy(_get(config, key)))
    for key in SHAPE_KEYS:
        _drop(out, key)
    return out


def job_config_json(config: dict, step: str) -> str:
    """:func:`job_config` as canonical JSON, the form passed to scripts as ``--config-json``."""
    return json.dumps(job_config(config, step), sort_keys=True, separators=(",", ":"))


def check_config(config: dict) -> None:
    """Cross-key checks, run when the workflow is parsed, before any job.

    Raises :class:`ConfigError` naming the key and what is expected.
    """
    data = config["data"]
    if data["source"] == "jsonl" and not data["jsonl"].get("path"):
        raise ConfigError("data.jsonl.path: required when data.source is 'jsonl' (path of a ballots file)")
    if config["model"]["preset"] == "hf" and not config["model"].get("name_or_path"):
        raise ConfigError("model.name_or_path: required when model.preset is 'hf' (hub id or local directory)")
    if config["eval"]["judge"]["type"] == "electorate" and data["source"] != "synthetic":
        raise ConfigError(
            "eval.judge.type: 'electorate' needs data.source 'synthetic' (only a synthetic electorate "
            "can score new text); use 'llm' for other sources"
        )
    tiny = config["model"]["tiny"]
    if tiny["hidden_size"] % tiny["num_attention_heads"]:
        raise ConfigError(
            f"model.tiny.hidden_size: {tiny['hidden_size']} must be divisible by "
            f"model.tiny.num_attention_heads ({tiny['num_attention_heads']})"
        )
    for section in ("sft", "dpo"):
        if config[section]["max_length"] > tiny["max_position_embeddings"] and config["model"]["preset"] == "tiny":
            raise ConfigError(
                f"{section}.max_length: {config[section]['max_length']} exceeds "
                f"model.tiny.max_position_embeddings ({tiny['max_position_embeddings']})"
            )
    names = [b["name"] for b in config["eval"]["baselines"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"eval.baselines: names must be unique, got {names}")


def coerce_cli_strings(config: dict, schema: dict) -> dict:
    """Give ``--config`` values their schema types, in place.

    Snakemake parses nested ``--config 'dpo={beta: 0.2, seeds: [1, 2]}'`` with YAML's base loader,
    so every scalar arrives as a string. Where the schema expects a number, integer or boolean
    and gets a string, the string is read as YAML; anything else is left to the validator.
    """

    def resolve(node: dict) -> dict:
        while "$ref" in node:
            ref = node["$ref"]
            node = schema
            for part in ref.lstrip("#/").split("/"):
                node = node[part]
        return node

    def walk(value: Any, node: dict) -> Any:
        node = resolve(node)
        types = node.get("type", [])
        types = [types] if isinstance(types, str) else types
        if isinstance(value, str) and {"number", "integer", "boolean", "null"} & set(types):
            import yaml

            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                return value
            return parsed if not isinstance(parsed, str) else value
        if isinstance(value, dict):
            props = node.get("properties", {})
            for k, v in value.items():
                if k in props:
                    value[k] = walk(v, props[k])
        elif isinstance(value, list) and isinstance(node.get("items"), dict):
            return [walk(v, node["items"]) for v in value]
        return value

    walk(config, schema)
    return config


@functools.cache
def load_schema() -> dict:
    """The config schema (``workflow/schemas/config.schema.yaml``): the one home of defaults."""
    import yaml

    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _resolve_ref(node: dict, schema: dict) -> dict:
    while "$ref" in node:
        target: Any = schema
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def schema_node(dotted: str) -> dict:
    """The schema of config key ``dotted`` (e.g. ``"dpo.lora"``), ``$ref`` resolved."""
    schema = load_schema()
    node = schema
    for part in dotted.split("."):
        node = _resolve_ref(node, schema)
        try:
            node = node["properties"][part]
        except KeyError:
            raise KeyError(f"config key {dotted!r}: not in {SCHEMA_PATH.name}") from None
    return _resolve_ref(node, schema)


def schema_properties(dotted: str) -> tuple[str, ...]:
    """Keys an object-valued config section accepts, in schema order."""
    return tuple(schema_node(dotted).get("properties", {}))


def load_config(*configfiles: str | Path) -> dict:
    """``config/config.yaml`` with ``configfiles`` merged over it (Snakemake's order), validated
    and filled with the schema's defaults, then checked: what a workflow job receives."""
    import yaml
    from snakemake.utils import update_config, validate

    with open(DEFAULT_CONFIG_PATH, encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    for path in configfiles:
        with open(path, encoding="utf-8") as fh:
            update_config(config, yaml.safe_load(fh) or {})
    validate(config, str(SCHEMA_PATH))
    check_config(config)
    return config


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m prefsweep.config",
        description="Print the config slice a step's job receives (for running a script by hand: "
        "--config-json \"$(python -m prefsweep.config dpo)\").",
    )
    p.add_argument("step", choices=sorted(STEP_KEYS))
    p.add_argument("--configfile", nargs="*", default=[], help="config files merged over config/config.yaml")
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    print(job_config_json(load_config(*args.configfile), args.step))


if __name__ == "__main__":
    main()
