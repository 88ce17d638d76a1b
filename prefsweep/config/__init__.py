"""Experiment config: checks the JSON schema cannot express, and per-job config slices.

A value travels from ``config/config.yaml`` (or ``--configfile`` / ``--config key=value``) into
Snakemake's ``config`` dict, is validated and filled with defaults by
``workflow/schemas/config.schema.yaml``, checked again here, and then handed to each job as a
*slice*: the sections that job reads, as a JSON ``params`` value. Snakemake reruns a job when its
params change, so a job reruns when - and only when - a value it uses changes. Keys that shape
the DAG (sizes, matchings, seeds, baselines) are not in any slice: they add or remove jobs
through wildcards instead of rerunning the existing ones. Keys that change only how a job logs
or talks to an API (``RUNTIME_KEYS``, the judge's client keys) are in no slice either: they
reach jobs in environment variables.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG_PATH = REPO / "config" / "config.yaml"

#: Keys that only shape the DAG; dropped from every job slice.
SHAPE_KEYS = ("data.sizes", "data.matchings", "dpo.seeds", "eval.baselines", "eval.checkpoints")
#: Keys that only size cluster jobs (prefsweep/cost/resources.py): dropped from every slice.
RESOURCE_KEYS = ("model.n_params",)
#: ``eval.judge`` keys that only change how the LLM judge talks to its API, not what it answers:
#: dropped from every slice (changing them must rerun nothing) and handed to judge jobs in the
#: environment variable ``prefsweep.eval.judges.llm.settings.CLIENT_ENV`` instead.
JUDGE_CLIENT_KEYS = ("api_base", "api_key_env", "parallel", "max_retries", "timeout", "backoff", "backoff_max")
#: ``eval.judge`` keys of the plan and its guard (prefsweep/cost/plan.py), neither verdict nor
#: client: dropped from every slice; ``max_api_calls`` reaches judge jobs in
#: ``prefsweep.eval.judges.llm.budget.BUDGET_ENV``, the prices only the plan.
JUDGE_PLAN_KEYS = ("max_api_calls", "price_prompt_per_1k", "price_completion_per_1k")

#: Keys that set how often a job reports progress, never what it computes (TRL's logging_steps
#: of every training section): dropped from every slice (changing them must rerun nothing and
#: keep a run's checkpoints) and handed to jobs as a JSON object in :data:`RUNTIME_ENV`, which
#: the training job merges back (:func:`runtime_values`). Not ``save_steps``: it decides which
#: checkpoints exist and are evaluated.
RUNTIME_KEYS = ("pretrain.logging_steps", "sft.logging_steps", "dpo.logging_steps")
#: Environment variable holding :data:`RUNTIME_KEYS` (:func:`runtime_env_value`).
RUNTIME_ENV = "PREFSWEEP_RUNTIME"

#: Sections read by each step (dotted paths select a sub-key; ``{dotted}`` in a path is the value
#: of that key: ``data.{data.source}`` is the section of the chosen data source).
STEP_KEYS: dict[str, tuple[str, ...]] = {
    # data.{data.source}: the chosen source's section only (prefsweep.data.sources)
    "ballots": ("experiment", "data.source", "data.seed", "data.{data.source}", "data.candidate_turn_markers", "sc",
                # the prompt format's turn markers may not appear in a candidate
                "prompt_format"),
    "split": ("experiment", "data"),
    "data": ("experiment", "data", "sc", "prompt_format"),
    # the SFT corpus: the data stage's slice and what SFT trains on
    "sft_corpus": ("experiment", "data", "sc", "prompt_format", "sft.data"),
    "base_model": ("experiment", "model", "pretrain", "prompt_format"),
    "sft": ("experiment", "model", "sft", "prompt_format"),
    "ref_logps": ("experiment", "model", "dpo.max_length", "dpo.bf16", "prompt_format"),
    "dpo": ("experiment", "model", "dpo", "prompt_format"),
    "convert": ("experiment", "model"),
    "answers": ("experiment", "prompt_format", "eval.generation"),
    "pair_accuracy": ("experiment", "dpo.max_length"),
    "judge": ("experiment", "data.source", "data.seed", "data.synthetic", "eval.judge"),
    # data.source/seed/synthetic: the electorate whose utilities give the welfare table
    "win_rates": ("experiment", "data.reference_arm", "data.source", "data.seed", "data.synthetic", "dpo.init",
                  "eval.baseline", "eval.bootstrap"),
    "plots": ("experiment", "data.reference_arm", "plots"),
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


def _resolve_key(cfg: dict, pattern: str) -> str:
    """A :data:`STEP_KEYS` path with each ``{dotted}`` replaced by that key's value in ``cfg``."""
    return re.sub(r"\{([A-Za-z0-9_.]+)\}", lambda m: str(_get(cfg, m.group(1))), pattern)


def _drop(cfg: dict, dotted: str) -> None:
    parts = dotted.split(".")
    node = cfg
    for part in parts[:-1]:
        if part not in node:
            return
        node = node[part]
    node.pop(parts[-1], None)


#: Steps whose slice holds the ``sc`` section: each job sees only the rule it uses
#: (:func:`job_config`), so adding a rule to ``sc.rule`` reruns no existing job.
ONE_RULE_STEPS = ("ballots", "data")


def job_config(config: dict, step: str, arm: str | None = None, init: str | None = None) -> dict:
    """The slice of the resolved config that ``step`` reads (shape keys removed).

    Data steps (:data:`ONE_RULE_STEPS`) see one arm's rule: ``sc.rule`` restricted to the
    rule of ``arm`` (a one-rule list, or the string of the original form; no ``sc`` section for
    ``maj``); without ``arm``, to the first rule (the SFT corpus's and reference answers' best
    response, :func:`prefsweep.data.series.best_responses`). A list ``dpo.init`` shapes the DAG (the
    init is in every DPO path): a DPO job's slice holds its own ``init`` (the same slice as
    under the scalar form), the first one without ``init``.
    """
    from prefsweep.paths import MAJ, arm_rules, multi_init

    out: dict = {}
    for pattern in STEP_KEYS[step]:
        key = _resolve_key(config, pattern)
        _set(out, key, copy.deepcopy(_get(config, key)))
    for key in (SHAPE_KEYS + RESOURCE_KEYS + RUNTIME_KEYS
                + tuple(f"eval.judge.{k}" for k in JUDGE_CLIENT_KEYS + JUDGE_PLAN_KEYS)):
        _drop(out, key)
    if "sc" in out and step in ONE_RULE_STEPS:
        rules = arm_rules(config)
        arm = arm if arm is not None else next(iter(rules))
        if arm == MAJ:
            del out["sc"]
        elif arm not in rules:
            raise ConfigError(f"arm {arm!r}: not an arm of this config (arms: {MAJ}, {', '.join(rules)})")
        elif not isinstance(config["sc"]["rule"], str):
            out["sc"]["rule"] = [rules[arm]]
    if step == "dpo" and multi_init(config):
        inits = list(config["dpo"]["init"])
        if init is not None and init not in inits:
            raise ConfigError(f"dpo.init: {init!r} is not an init of this config ({', '.join(inits)})")
        out["dpo"]["init"] = init if init is not None else inits[0]
    return out




@dataclass(frozen=True)
class CheckpointEval:
    """``eval.checkpoints``: whether kept checkpoints are evaluated (evolution curves), of which
    series sizes (None: all), and on how many questions (the first n of question.jsonl, whose
    order is seeded; None: all)."""

    enabled: bool
    sizes: tuple[int, ...] | None = None
    n_questions: int | None = None


def checkpoint_eval(config: dict) -> CheckpointEval:
    """:class:`CheckpointEval` of a validated config (``true``/``false`` or an object)."""
    value = config["eval"]["checkpoints"]
    if isinstance(value, bool):
        return CheckpointEval(value)
    sizes = value.get("sizes")
    return CheckpointEval(True, None if sizes is None else tuple(int(s) for s in sizes), value.get("n_questions"))


def job_config_json(config: dict, step: str, arm: str | None = None, init: str | None = None) -> str:
    """:func:`job_config` as canonical JSON, the form passed to scripts as ``--config-json``."""
    return json.dumps(job_config(config, step, arm, init), sort_keys=True, separators=(",", ":"))


def runtime_env_value(config: dict) -> str:
    """The value of :data:`RUNTIME_ENV`: ``{"dpo.logging_steps": 10, ...}`` of a resolved config."""
    return json.dumps({key: _get(config, key) for key in RUNTIME_KEYS}, sort_keys=True, separators=(",", ":"))


def runtime_values(section: Mapping[str, Any], name: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The :data:`RUNTIME_KEYS` of training section ``name`` (``dpo``, ``sft``, ``pretrain``) as
    ``{key: value}``, for the trainer's arguments: the section's own value (a slice written by
    hand), else :data:`RUNTIME_ENV`'s (the workflow exports it), else the schema's default (a
    script rerun by hand). A value the schema refuses is a :class:`ConfigError` naming it."""
    import jsonschema

    env = os.environ if env is None else env
    raw = env.get(RUNTIME_ENV)
    exported: Any = {}
    if raw:
        try:
            exported = json.loads(raw)
        except ValueError:
            exported = None
        if not isinstance(exported, dict):
            raise ConfigError(f"{RUNTIME_ENV}: not a JSON object: {raw[:80]!r}; expected e.g. "
                              '{"dpo.logging_steps": 10} (the workflow exports it; unset it to use the defaults)')
    out = {}
    for dotted in RUNTIME_KEYS:
        sec, _, key = dotted.rpartition(".")
        if sec != name:
            continue
        node = schema_node(dotted)
        value = section[key] if key in section else exported.get(dotted, node["default"])
        try:
            jsonschema.validate(value, node)
        except jsonschema.ValidationError as exc:
            where = name if key in section else RUNTIME_ENV
            raise ConfigError(f"{where}: {dotted} = {value!r}: {exc.message}") from None
        out[key] = value
    return out


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
    sft_data = config["sft"]["data"]
    if sft_data["source"] == "jsonl" and not sft_data["path"]:
        raise ConfigError("sft.data.path: required when sft.data.source is 'jsonl' (a file of prompt/completion "
                          "or messages objects, one a line)")
    if sft_data["source"] == "jsonl" and not os.path.isfile(sft_data["path"]):
        raise ConfigError(f"sft.data.path: {sft_data['path']}: no such file (the SFT data, one JSON object a line)")
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


#: A decimal number as YAML 1.2 writes it: PyYAML (YAML 1.1) reads ``5e-7`` (no dot) as a string.
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _number(text: str, types: set[str]) -> int | float | None:
    """``text`` as the number the schema's ``types`` allow, or None when it is not one."""
    if not _NUMBER.fullmatch(text.strip()):
        return None
    value = float(text)
    if "number" in types:
        return value
    return int(value) if value.is_integer() else None  # integer only


def coerce_cli_strings(config: dict, schema: dict) -> dict:
    """Give string values their schema types, in place (config files and ``--config`` alike).

    Snakemake parses nested ``--config 'dpo={beta: 0.2, seeds: [1, 2]}'`` with YAML's base loader,
    so every scalar arrives as a string; and PyYAML reads ``learning_rate: 5e-7`` in a config
    file as the string ``'5e-7'`` (YAML 1.1 wants a dot). Where the schema expects a number,
    integer or boolean and gets a string, the string is read as YAML, then as a decimal number
    (``5e-7``); anything else is left to the validator, whose error names the key and the value.
    """

    def walk(value: Any, node: dict, key: str = "") -> Any:
        node = _resolve_ref(node, schema)
        if "oneOf" in node:  # e.g. eval.checkpoints: a boolean or an object
            alts = [_resolve_ref(a, schema) for a in node["oneOf"]]
            kind = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else None
            match = next((a for a in alts if a.get("type") == kind), None) if kind else None
            if match is not None:
                return walk(value, match, key)
            node = {**node, "type": [t for a in alts for t in _types(a)]}
        types = node.get("type", [])
        types = [types] if isinstance(types, str) else types
        if isinstance(value, str) and {"object", "array"} & set(types) and value.lstrip()[:1] in ("{", "["):
            # Snakemake keeps a --config value it cannot parse as a plain string; the schema
            # would then report a type error with a schema dump. Say what is wrong instead.
            import yaml

            try:
                yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise ConfigError(
                    f"--config {key}={value}: not valid YAML ({str(exc).splitlines()[0]}); "
                    f"expected e.g. {key}='{{key: value}}' with balanced brackets"
                ) from None
        if isinstance(value, str) and {"number", "integer", "boolean", "null"} & set(types):
            import yaml

            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                parsed = value
            if isinstance(parsed, str) and {"number", "integer"} & set(types):
                number = _number(value, set(types))
                return value if number is None else number
            return parsed if not isinstance(parsed, str) else value
        if isinstance(value, dict):
            props = node.get("properties", {})
            for k, v in value.items():
                if k in props:
                    value[k] = walk(v, props[k], f"{key}.{k}" if key else k)
        elif isinstance(value, list) and isinstance(node.get("items"), dict):
            return [walk(v, node["items"], key) for v in value]
        return value

    walk(config, schema)
    return config


def _types(node: dict) -> list[str]:
    t = node.get("type", [])
    return [t] if isinstance(t, str) else list(t)


@functools.cache
def load_schema() -> dict:
    """The config schema (``workflow/schemas/config.schema.yaml``): the one home of defaults."""
    import yaml

    # libyaml's loader where PyYAML has it: the schema is parsed at every Snakefile load
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader)  # noqa: S506 (a safe loader)


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


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "config"


def _explain(error) -> str:
    """One line for a schema violation: the key, what it got, and what is allowed."""
    import difflib

    where = _where(error.absolute_path)
    schema = error.schema
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        parts = []
        for key in extra:
            close = difflib.get_close_matches(key, allowed, n=1)
            parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        prefix = "" if where == "config" else f"{where}."
        return (f"{prefix}{extra[0]}: unknown key{'s' if len(extra) > 1 else ''} {', '.join(parts)} in {where}; "
                f"allowed keys: {', '.join(allowed)}")
    if error.validator == "enum":
        return f"{where}: {error.instance!r} is not allowed; allowed values: {', '.join(map(repr, schema['enum']))}"
    if error.validator == "type":
        expected = _types(schema)
        hint = ""
        if isinstance(error.instance, str) and "number" in expected:
            hint = "; write a number without quotes, e.g. 0.0002 or 5.0e-7"
        elif isinstance(error.instance, str) and "integer" in expected:
            hint = "; write a whole number without quotes, e.g. 16"
        return f"{where}: {error.instance!r} has the wrong type; expected {schema['type']}{hint}"
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[error.validator]
        return f"{where}: {error.instance!r} is out of bounds; expected a value {bound} {error.validator_value}"
    if error.validator == "minItems":
        return f"{where}: {error.instance!r} is empty or too short; expected at least {error.validator_value} item(s)"
    if error.validator == "uniqueItems":
        return f"{where}: {error.instance!r} has duplicate items; expected each value once"
    if error.validator in ("oneOf", "anyOf"):
        return f"{where}: {error.instance!r} is not allowed; expected {schema.get('description', error.message)}"
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "pattern":
        return f"{where}: {error.instance!r} does not match the pattern {error.validator_value!r}"
    return f"{where}: {error.message}"


def validate_config(config: dict) -> dict:
    """Validate ``config`` against the schema and fill its defaults, in place.

    Every violation is reported on one line naming the key, the value and what is allowed
    (jsonschema's own message dumps the schema); then Snakemake's validator fills the defaults.
    Raises :class:`ConfigError`.
    """
    import jsonschema
    from snakemake.utils import validate

    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(e.absolute_path), e.validator))
    if errors:
        lines = list(dict.fromkeys(_explain(e) for e in errors))
        raise ConfigError("invalid config (workflow/schemas/config.schema.yaml):\n  " + "\n  ".join(lines))
    validate(config, str(SCHEMA_PATH))
    return config


def load_config(*configfiles: str | Path, check: bool = True) -> dict:
    """``config/config.yaml`` with ``configfiles`` merged over it (Snakemake's order), validated
    and filled with the schema's defaults, then checked (:func:`check_config`, unless ``check``
    is false): the config a workflow job's slice is cut from."""
    import yaml
    from snakemake.utils import update_config

    with open(DEFAULT_CONFIG_PATH, encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    for path in configfiles:
        with open(path, encoding="utf-8") as fh:
            update_config(config, yaml.safe_load(fh) or {})
    coerce_cli_strings(config, load_schema())  # learning_rate: 5e-7, as the Snakefile does
    validate_config(config)
    if check:
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
