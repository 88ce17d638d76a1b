"""Experiment tracking: wandb settings and secret scrubbing, shared by every job that logs.

wandb settings come from the config section ``wandb`` when a job's config slice has one, else
from the environment the workflow sets for every job (``WANDB_MODE``, ``WANDB_PROJECT``,
``WANDB_ENTITY``; see ``workflow/rules/common.smk``), else offline. The workflow
passes them through the environment so that switching wandb on or off never reruns a job.

Nothing that looks like a credential is logged or saved: :func:`scrub_secrets` redacts keys
named like secrets and any value of a secret environment variable wherever it appears.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

WANDB_MODES = ("offline", "online", "disabled")

#: Names of environment variables (and config keys) whose values are secrets.
SECRET_NAME_RE = re.compile(
    r"(^|[_.-])(api[_-]?key|access[_-]?key|token|secret|secret[_-]?key|passw(or)?d|credentials?)$", re.IGNORECASE
)
REDACTED = "<redacted>"


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names look like secrets (OPENAI_API_KEY, HF_TOKEN...)."""
    env = os.environ if env is None else env
    return sorted({v for k, v in env.items() if SECRET_NAME_RE.search(k) and len(v) >= 4})


def scrub_secrets(obj: Any, env: Mapping[str, str] | None = None) -> Any:
    """Copy of a JSON-like object without secrets, safe to log or save.

    Keys whose names look like secrets (``api_key``, ``token``...) get ``"<redacted>"``; any string
    containing the value of a secret environment variable has it replaced.
    """
    secrets = secret_values(env)

    def walk(x: Any) -> Any:
        if isinstance(x, Mapping):
            return {k: REDACTED if SECRET_NAME_RE.search(str(k)) and isinstance(v, str) else walk(v)
                    for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v) for v in x]
        if isinstance(x, str):
            for s in secrets:
                x = x.replace(s, REDACTED)
        return x

    return walk(obj)


def wandb_settings(config: Mapping[str, Any], default_dir: str | os.PathLike,
                   env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{mode, project, entity, dir}`` for a job: config ``wandb`` first, then the environment.

    ``dir`` is the caller's ``default_dir`` (the experiment's ``results/<experiment>/wandb``).

    Raises ``KeyError`` for an unknown key and ``ValueError`` for an unknown mode, naming them.
    """
    env = os.environ if env is None else env
    section = dict(config.get("wandb") or {})
    unknown = sorted(set(section) - {"mode", "project", "entity"})
    if unknown:
        raise KeyError(f"wandb: unknown keys {unknown} (allowed: ['entity', 'mode', 'project'])")
    mode = section.get("mode") or env.get("WANDB_MODE") or "offline"
    if mode not in WANDB_MODES:
        raise ValueError(f"wandb.mode: expected offline, online or disabled, got {mode!r}")
    return {
        "mode": mode,
        "project": section.get("project") or env.get("WANDB_PROJECT") or "prefsweep",
        "entity": section.get("entity") or env.get("WANDB_ENTITY") or None,
        "dir": str(default_dir),
    }
