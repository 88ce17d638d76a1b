"""Experiment tracking: all wandb code (settings, run setup) and secret scrubbing.

wandb settings come from the config section ``wandb`` when a job's config slice has one, else
from the environment the workflow sets for every job (``WANDB_MODE``, ``WANDB_PROJECT``,
``WANDB_ENTITY``, ``WANDB_DIR``; see ``workflow/rules/common.smk``), else the schema's defaults
for section ``wandb``. The workflow passes them through the environment so that switching wandb
on or off never reruns a job.

Training jobs (:mod:`prefsweep.train.jobs`) describe their run with :func:`wandb_setup`, start it with
:func:`start_wandb` (the transformers ``WandbCallback`` then logs into the started run) and end it
with :func:`finish_wandb`.

Tracking never costs a run: an online ``wandb.init`` that does not start within
``WANDB_INIT_TIMEOUT`` seconds (:data:`DEFAULT_INIT_TIMEOUT_S`; no network, a hub that does not
answer, no API key) is retried offline with a warning in the job log (:func:`init_run`), and
the offline run can be synced later with ``wandb sync``.

Nothing that looks like a credential is logged or saved: :func:`scrub_secrets` redacts keys
named like secrets and any value of a secret environment variable wherever it appears.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WANDB_MODES = ("offline", "online", "disabled")
#: Seconds an online ``wandb.init`` may take before the run goes offline (``WANDB_INIT_TIMEOUT``
#: overrides it). A reachable server starts a run in a few seconds; wandb's own default is 90 s.
DEFAULT_INIT_TIMEOUT_S = 60.0

#: Names of environment variables (and config keys) whose values are secrets.
SECRET_NAME_RE = re.compile(
    r"(^|[_.-])(api[_-]?key|access[_-]?key|token|secret|secret[_-]?key|passw(or)?d|credentials?)$", re.IGNORECASE
)
REDACTED = "<redacted>"
#: Where a run goes when its online start fails: logged on disk, uploaded later (wandb sync).
FALLBACK_MODE = "offline"


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


def table_wandb_dir(explicit: str | os.PathLike | None, disabled: bool, who: str) -> Path | None:
    """wandb directory of a tables/plots job: ``--wandb-dir``, else :func:`wandb_dir`; an error
    (``SystemExit`` naming ``who``) when wandb is wanted and neither says where."""
    if disabled:
        return None
    directory = Path(explicit) if explicit else wandb_dir()
    if directory is None:
        raise SystemExit(f"{who}: no wandb directory; pass --wandb-dir DIR, set WANDB_DIR, or pass --no-wandb")
    return directory


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


def init_timeout(env: Mapping[str, str] | None = None) -> float:
    """Seconds an online run may take to start: ``WANDB_INIT_TIMEOUT``, else the default."""
    env = os.environ if env is None else env
    raw = env.get("WANDB_INIT_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_INIT_TIMEOUT_S
    except ValueError:
        raise ValueError(f"WANDB_INIT_TIMEOUT: expected seconds (a number > 0), got {raw!r}") from None
    if not value > 0:
        raise ValueError(f"WANDB_INIT_TIMEOUT: expected seconds (a number > 0), got {raw!r}")
    return value


#: Set once an online run of this process could not start: later runs go offline at once.
_online_failed = False


def init_run(**kwargs: Any):
    """``wandb.init(**kwargs)`` (silent, bounded by :func:`init_timeout`) that never fails a job
    over tracking: an online run that cannot start is started offline instead (same id, same
    directory), with a warning saying why and how to sync it; ``WANDB_MODE`` becomes ``offline``
    for the rest of the process. Offline and disabled runs start as asked.
    """
    global _online_failed
    import wandb

    settings = wandb.Settings(silent=True, init_timeout=init_timeout())
    if kwargs.get("mode") != "online":
        return wandb.init(**kwargs, settings=settings)
    if not _online_failed:
        try:
            return wandb.init(**kwargs, settings=settings)
        except Exception as exc:  # noqa: BLE001 - CommError, UsageError (no key), timeouts: all alike here
            _online_failed = True
            first = str(exc).splitlines()[0] if str(exc) else ""
            log.warning("wandb: the online run could not start (%s: %s; server %s, waited at most %g s, "
                        "WANDB_INIT_TIMEOUT); logging offline instead, training goes on. Set wandb.mode: offline "
                        "where jobs have no internet", type(exc).__name__, first,
                        os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"), settings.init_timeout)
            wandb.teardown()  # the failed run still holds its id in wandb's service process
    os.environ["WANDB_MODE"] = FALLBACK_MODE
    run = wandb.init(**{**kwargs, "mode": FALLBACK_MODE}, settings=settings)
    log.warning("wandb: run %s is offline in %s; upload it later with: wandb sync %s", run.id, run.settings.sync_dir,
                run.settings.sync_dir)
    return run


def start_wandb(setup: WandbSetup, config: Mapping[str, Any], extra: Mapping[str, Any] | None = None):
    """Apply the env, and start (or resume) the run with the scrubbed config; ``None`` if disabled.

    The transformers ``WandbCallback`` finds the run already started and logs into it. An online
    run that cannot start goes offline with a warning (:func:`init_run`): training goes on.
    """
    os.environ.update(setup.env)
    if setup.mode == "disabled":
        return None
    if setup.directory is not None:
        setup.directory.mkdir(parents=True, exist_ok=True)
    logged = scrub_secrets({"prefsweep": dict(config), **dict(extra or {})})
    return init_run(project=setup.project, entity=setup.entity, group=setup.group, name=setup.name,
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


# --------------------------------------------------------------------------------------------
# Eval and plots logging (the win-rate and plots jobs)
# --------------------------------------------------------------------------------------------


def _init_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``wandb.init`` keywords from :func:`wandb_settings`. The entity is passed only when one is
    set, so a ``WANDB_ENTITY`` the workflow exports is never overridden by an empty value."""
    kwargs = {"project": settings["project"], "dir": settings["dir"], "mode": settings["mode"]}
    if settings.get("entity"):
        kwargs["entity"] = settings["entity"]
    return kwargs


def _wandb_frame(df: Any) -> Any:
    """A table as wandb takes it: nullable ints as floats, missing values as None."""
    out = df.copy()
    for c in out.columns:
        if str(out[c].dtype) == "Int64":
            out[c] = out[c].astype("float64")
    return out.astype(object).where(out.notna(), None)


def eval_metrics(row: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    """``eval/{judge}/{column}`` summary values of one win-rate row (missing values dropped), for
    ``columns`` (the columns the measures registry marks as logged:
    ``prefsweep.eval.measures.logged_columns("win_rates")``)."""
    import pandas as pd

    out = {}
    for k in columns:
        v = row.get(k)
        if v is None or pd.isna(v):
            continue
        out[f"eval/{row['judge']}/{k}"] = v.item() if hasattr(v, "item") else v
    return out


def log_win_rates_to_wandb(
    table: Any,
    diffs: Any,
    groups: Any,
    config: Mapping[str, Any],
    *,
    wandb_dir: str | os.PathLike,
    run_ids: Mapping[str, str],
    metric_columns: Sequence[str],
) -> dict[str, Any]:
    """Log eval metrics: into each final DPO model's training run where its id is known
    (``run_ids``: model id -> the ``wandb_run_id`` of its ``run_info.json``), and into one new
    eval run (all three tables, plus the metrics of models without a run). ``metric_columns``: the
    columns of ``table`` logged as summary values (:func:`eval_metrics`).

    Settings from :func:`wandb_settings`. Only the scrubbed config (:func:`scrub_secrets`) and the
    tables are logged. Returns ``{"attached": {model_id: run_id}, "eval_run": run id or None}``.
    """
    settings = wandb_settings(config, wandb_dir)
    if settings["mode"] == "disabled":
        return {"attached": {}, "eval_run": None}
    from pathlib import Path

    import pandas as pd
    import wandb

    Path(settings["dir"]).mkdir(parents=True, exist_ok=True)
    common = _init_kwargs(settings)
    attached: dict[str, str] = {}
    unattached: dict[str, Any] = {}
    for _, row in table.iterrows():
        rid = run_ids.get(row["model_id"])
        metrics = eval_metrics(row, metric_columns)
        if rid is None:
            line = "" if pd.isna(row["arm"]) or row["arm"] == "" else f"/{row['arm']}-{row['matching']}"
            unattached.update({f"{row['model_id']}{line}/{k}": v for k, v in metrics.items()})
            continue
        run = init_run(id=rid, resume="allow", **common)
        run.summary.update(metrics)
        run.finish()
        attached[row["model_id"]] = rid
    run = init_run(job_type="eval", name=f"eval-{config['experiment']}",
                   config=scrub_secrets({"prefsweep": dict(config)}), **common)
    run.log({"eval/win_rates": wandb.Table(dataframe=_wandb_frame(table), allow_mixed_types=True),
             "eval/arm_differences": wandb.Table(dataframe=_wandb_frame(diffs), allow_mixed_types=True),
             "eval/win_rates_groups": wandb.Table(dataframe=_wandb_frame(groups), allow_mixed_types=True)})
    run.summary.update(unattached)
    eval_id = run.id
    run.finish()
    return {"attached": attached, "eval_run": eval_id}


def log_plots_to_wandb(
    config: Mapping[str, Any],
    figures: Mapping[str, str | os.PathLike],
    tables: Mapping[str, Any],
    wandb_dir: str | os.PathLike,
) -> str | None:
    """Log PNG figures and tables to an eval run of the experiment; returns the run dir or None.

    ``wandb.init(job_type="eval", group=<experiment>, name="<experiment>-plots")`` with the
    secret-free config. Mode ``disabled`` does nothing (wandb is not even imported).
    """
    settings = wandb_settings(config, wandb_dir)
    if settings["mode"] == "disabled":
        return None
    import warnings
    from pathlib import Path

    import wandb

    Path(settings["dir"]).mkdir(parents=True, exist_ok=True)
    experiment = str(config["experiment"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = init_run(job_type="eval", group=experiment, name=f"{experiment}-plots",
                       config=scrub_secrets(dict(config)), tags=["plots"], **_init_kwargs(settings))
    try:
        payload: dict[str, Any] = {f"plots/{n}": wandb.Image(str(p), caption=n) for n, p in figures.items()}
        for n, df in tables.items():
            payload[f"tables/{n}"] = wandb.Table(dataframe=_wandb_frame(df), allow_mixed_types=True)
        run.log(payload)
        return str(getattr(run, "dir", "") or "")
    finally:
        run.finish()
