"""Experiment tracking: all wandb code (settings, run setup) and secret scrubbing.

wandb settings come from the config section ``wandb`` when a job's config slice has one, else
from the environment the workflow sets for every job (``WANDB_MODE``, ``WANDB_PROJECT``,
``WANDB_ENTITY``, ``WANDB_DIR``; see ``workflow/rules/common.smk``), else the schema's defaults
for section ``wandb``. The workflow passes them through the environment so that switching wandb
on or off never reruns a job.

Training jobs (:mod:`prefsweep.jobs`) describe their run with :func:`wandb_setup`, start it with
:func:`start_wandb` (the transformers ``WandbCallback`` then logs into the started run) and end it
with :func:`finish_wandb`.

Nothing that looks like a credential is logged or saved: :func:`scrub_secrets` redacts keys
named like secrets and any value of a secret environment variable wherever it appears.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
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


@dataclass(frozen=True)
class WandbSetup:
    """Where and how a job logs to wandb. ``report_to`` goes to the TRL config."""

    mode: str  # offline | online | disabled
    project: str
    group: str
    name: str
    job_type: str
    run_id: str
    directory: Path | None  # None: wandb's own choice (./wandb)
    env: dict[str, str] = field(default_factory=dict)
    entity: str | None = None

    @property
    def report_to(self) -> str:
        return "none" if self.mode == "disabled" else "wandb"


def wandb_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """The wandb directory of a job: ``WANDB_DIR`` as the workflow sets it (the experiment's
    ``wandb/`` directory, from ``prefsweep.paths`` via the rules), else ``None`` (wandb's ``./wandb``)."""
    env = os.environ if env is None else env
    return Path(env["WANDB_DIR"]) if env.get("WANDB_DIR") else None


def wandb_setup(config: Mapping[str, Any], *, group: str, name: str, job_type: str, run_id: str,
                directory: str | os.PathLike | None) -> WandbSetup:
    """wandb settings of a job (:func:`wandb_settings`: config, else environment, else schema).

    ``directory``: where wandb writes (:func:`wandb_dir`). DPO runs are grouped as
    ``{arm}-{matching}-n{size}`` and named by their model id. ``run_id`` should change when the
    run starts over (use the fingerprint) and stay when it resumes.
    """
    settings = wandb_settings(config, "" if directory is None else directory)
    mode, project, entity = settings["mode"], settings["project"], settings["entity"]
    directory = Path(directory) if directory is not None else None
    env = {"WANDB_MODE": mode, "WANDB_PROJECT": project, "WANDB_RUN_GROUP": group, "WANDB_JOB_TYPE": job_type,
           "WANDB_SILENT": "true"}
    if directory is not None:
        env["WANDB_DIR"] = str(directory)
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

    if setup.directory is not None:
        setup.directory.mkdir(parents=True, exist_ok=True)
    logged = scrub_secrets({"prefsweep": dict(config), **dict(extra or {})})
    return wandb.init(project=setup.project, entity=setup.entity, group=setup.group, name=setup.name,
                      job_type=setup.job_type, id=setup.run_id, resume="allow",
                      dir=None if setup.directory is None else str(setup.directory), mode=setup.mode, config=logged)


def finish_wandb(run) -> None:
    if run is not None:
        run.finish()


def _schema_wandb_defaults() -> dict[str, Any]:
    """Defaults of config section ``wandb`` from the schema (their one home)."""
    from prefsweep.config import schema_node

    return {k: v.get("default") for k, v in schema_node("wandb")["properties"].items()}


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
    defaults = _schema_wandb_defaults()
    mode = section.get("mode") or env.get("WANDB_MODE") or defaults["mode"]
    if mode not in WANDB_MODES:
        raise ValueError(f"wandb.mode: expected offline, online or disabled, got {mode!r}")
    return {
        "mode": mode,
        "project": section.get("project") or env.get("WANDB_PROJECT") or defaults["project"],
        "entity": section.get("entity") or env.get("WANDB_ENTITY") or defaults["entity"],
        "dir": str(default_dir),
    }
