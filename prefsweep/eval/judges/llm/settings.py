"""The LLM judge's settings: what changes a verdict, and how requests are sent.

Two kinds, kept apart so that only the first can rerun a job (docs/design/llm-judge.md):

* :class:`VerdictSettings` (:data:`VERDICT_KEYS`): judge model, prompt file and name,
  temperature, max_tokens, cache_malformed; from the judge job's config slice (``eval.judge``).
* :class:`ClientSettings` (:data:`CLIENT_KEYS`): api_base, api_key_env, parallel, max_retries,
  timeout, backoff, backoff_max; a JSON object in the environment variable :data:`CLIENT_ENV`
  (the workflow exports :func:`client_env_value` of ``eval.judge`` to every job) or
  ``--client-json``. ``timeout`` bounds one attempt as a whole, not each socket read.

Neither carries defaults: they live in ``workflow/schemas/config.schema.yaml``; a missing key is
a :class:`~prefsweep.eval.judges.base.JudgeError` naming it, as is a value of the wrong type or
out of bounds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from prefsweep.config import JUDGE_CLIENT_KEYS, JUDGE_PLAN_KEYS
from prefsweep.eval.judges.base import JudgeError

#: Where ``api_base: null`` goes when OPENAI_API_BASE is not set either (the schema documents it).
OPENAI_API_BASE = "https://api.openai.com/v1"
#: ``eval.judge`` keys that change a verdict: the judge job's config slice carries these.
VERDICT_KEYS = ("model", "judge_prompts", "pairwise_prompt", "temperature", "max_tokens", "cache_malformed")
#: ``eval.judge`` keys that only change how verdicts are fetched: passed in ``CLIENT_ENV``.
CLIENT_KEYS = JUDGE_CLIENT_KEYS
#: ``eval.judge`` keys of the plan and its guard: ``max_api_calls`` reaches judge jobs in ``BUDGET_ENV``.
PLAN_KEYS = JUDGE_PLAN_KEYS
#: Environment variable holding the client settings as a JSON object.
CLIENT_ENV = "PREFSWEEP_JUDGE_CLIENT"


def _pick(section: Mapping[str, Any], keys: tuple[str, ...], where: str) -> dict[str, Any]:
    missing = [k for k in keys if k not in section]
    if missing:
        raise JudgeError(f"{where}: missing key(s) {', '.join(missing)}; expected all of {', '.join(keys)}")
    return {k: section[k] for k in keys}


Bounds = Mapping[str, tuple[Callable[[Any], bool], str]]


def _validate(cls: type, values: Mapping[str, Any], prefix: str, bounds: Bounds) -> None:
    """Type of every value against the field's annotation, then ``bounds``: ``{key: (ok, text)}``.

    The schema checks the config, but a hand run's JSON reaches here unchecked.
    """
    allowed = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}
    for f in fields(cls):
        value = values[f.name]
        kinds = [k.strip() for k in str(f.type).split("|")]
        if value is None and "None" in kinds:
            continue
        ok = any(isinstance(value, allowed[k]) for k in kinds if k in allowed)
        if isinstance(value, bool) and "bool" not in kinds:
            ok = False  # JSON true is not a number
        if not ok:
            raise JudgeError(f"{prefix}{f.name}: expected {' or '.join(kinds)}, got {value!r}")
    for key, (ok, text) in bounds.items():
        if not ok(values[key]):
            raise JudgeError(f"{prefix}{key}: must be {text}, got {values[key]!r}")


@dataclass(frozen=True)
class VerdictSettings:
    """The ``eval.judge`` keys that change a verdict (``VERDICT_KEYS``); no defaults here."""

    #: Judge model name sent to the API.
    model: str
    #: Path of a FastChat judge_prompts.jsonl; None: the prompts shipped with prefsweep.
    judge_prompts: str | None
    #: Name of the pairwise prompt in that file.
    pairwise_prompt: str
    temperature: float
    max_tokens: int
    #: Cache responses with no recognisable verdict (docs/design/llm-judge.md, "Request cache").
    cache_malformed: bool

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> VerdictSettings:
        """From a job's config slice (reads ``eval.judge``).

        Client keys in the slice are an error: as Snakemake params they would rerun every judge
        job when changed (they belong in ``CLIENT_ENV``).
        """
        judge = (config.get("eval") or {}).get("judge")
        if not isinstance(judge, Mapping):
            raise JudgeError("config slice: missing section eval.judge")
        misplaced = [k for k in CLIENT_KEYS if k in judge]
        if misplaced:
            raise JudgeError(
                f"eval.judge.{misplaced[0]}: a client setting in the judge job's config slice; it must "
                f"not be a job param (changing it would rerun every judge job): pass {', '.join(misplaced)} "
                f"in the environment variable {CLIENT_ENV} or --client-json"
            )
        values = _pick(judge, VERDICT_KEYS, "eval.judge")
        _validate(cls, values, "eval.judge.", {"temperature": (lambda t: t >= 0, ">= 0"),
                                              "max_tokens": (lambda n: n >= 1, ">= 1")})
        return cls(**values)


@dataclass(frozen=True)
class ClientSettings:
    """How requests are sent (``CLIENT_KEYS``); verdicts do not depend on them; no defaults here."""

    #: Base URL ending before ``/chat/completions``; None: env OPENAI_API_BASE, else OpenAI's.
    api_base: str | None
    #: Environment variable holding the API key; None for a server that needs none.
    api_key_env: str | None
    #: Concurrent API requests of one job.
    parallel: int
    #: Retries after the first attempt, on 408/409/429/5xx, timeouts, connection errors and 200s
    #: without a usable message.
    max_retries: int
    #: Seconds one attempt may take in all (connect, send, the complete response); past it the
    #: attempt counts as timed out. Also each socket operation's timeout.
    timeout: float
    #: First retry delay in seconds; doubles each retry, capped by backoff_max (a server's
    #: Retry-After, when longer, is honoured up to backoff_max).
    backoff: float
    backoff_max: float

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str) -> ClientSettings:
        """Exactly ``CLIENT_KEYS``: a missing or an unknown key is an error naming it."""
        unknown = sorted(set(values) - set(CLIENT_KEYS))
        if unknown:
            raise JudgeError(f"{source}: unknown key(s) {', '.join(unknown)}; "
                             f"expected exactly {', '.join(CLIENT_KEYS)}")
        picked = _pick(values, CLIENT_KEYS, source)
        _validate(cls, picked, f"{source}: ", {
            "parallel": (lambda n: n >= 1, ">= 1"), "max_retries": (lambda n: n >= 0, ">= 0"),
            "timeout": (lambda t: t > 0, "> 0"), "backoff": (lambda t: t >= 0, ">= 0"),
            "backoff_max": (lambda t: t >= 0, ">= 0")})
        return cls(**picked)

    @classmethod
    def from_json(cls, text: str, source: str) -> ClientSettings:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise JudgeError(f"{source}: not valid JSON ({exc.msg}); expected an object with keys "
                             f"{', '.join(CLIENT_KEYS)}") from None
        if not isinstance(values, dict):
            raise JudgeError(f"{source}: expected a JSON object with keys {', '.join(CLIENT_KEYS)}")
        return cls.from_mapping(values, source)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ClientSettings:
        if CLIENT_ENV not in env:
            raise JudgeError(f"{CLIENT_ENV}: not set; the LLM judge needs its client settings "
                             f"(a JSON object with keys {', '.join(CLIENT_KEYS)}; the workflow exports it, "
                             "a hand run can pass --client-json)")
        return cls.from_json(env[CLIENT_ENV], CLIENT_ENV)

    def resolved_api_base(self, env: Mapping[str, str]) -> str:
        return (self.api_base or env.get("OPENAI_API_BASE") or OPENAI_API_BASE).rstrip("/")


def client_env_value(judge_cfg: Mapping[str, Any]) -> str:
    """The value of ``CLIENT_ENV`` for a validated ``eval.judge`` section (canonical JSON)."""
    return json.dumps(_pick(judge_cfg, CLIENT_KEYS, "eval.judge"), sort_keys=True, separators=(",", ":"))

