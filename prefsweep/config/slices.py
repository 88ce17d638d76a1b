"""Per-job config slices: which sections each step's job reads (:data:`STEP_KEYS`), and the keys
no job's slice carries (DAG shape, cluster sizing, runtime-only and the judge's client keys).

A job's slice is a JSON ``params`` value: Snakemake reruns a job when - and only when - a value
it reads changes.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prefsweep.config.schema import ConfigError, schema_node

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
    "judge": ("experiment", "data.source", "data.seed", "data.{data.source}", "eval.judge"),
    # data.source/seed/synthetic: the electorate whose utilities give the welfare table
    "win_rates": ("experiment", "data.reference_arm", "data.source", "data.seed", "data.{data.source}", "dpo.init",
                  "eval.baseline", "eval.bootstrap"),
    "plots": ("experiment", "data.reference_arm", "plots"),
}


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


def _has(cfg: dict, dotted: str) -> bool:
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


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


def other_source_sections(config: dict) -> tuple[str, ...]:
    """``data.<name>`` of every data source's settings section (the schema's object sections of
    ``data``) but the chosen source's: no job reads them, so no job's slice carries them."""
    chosen = config.get("data", {}).get("source")
    names = (k for k, node in schema_node("data")["properties"].items() if node.get("type") == "object")
    return tuple(f"data.{name}" for name in names if name != chosen)


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
        if key != pattern and not _has(config, key):
            continue  # data.{data.source}: a source without settings of its own has no section
        _set(out, key, copy.deepcopy(_get(config, key)))
    for key in (SHAPE_KEYS + RESOURCE_KEYS + RUNTIME_KEYS
                + tuple(f"eval.judge.{k}" for k in JUDGE_CLIENT_KEYS + JUDGE_PLAN_KEYS)
                + other_source_sections(config)):
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
