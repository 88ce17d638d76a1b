"""The experiment as the workflow plans it: every check of a config before any job.

The config layer checks what it alone knows (:func:`prefsweep.config.check_config`: schema-level
cross-key rules); each stage checks its own part (the data source's section, the arms' rules
against ``pref_voting``, ...).
This module is above them all and runs every check, in the order a user's errors are best met.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from prefsweep.config import ConfigError, check_config
from prefsweep.data.arms import check_arms
from prefsweep.data.sft_data import check_sft_data
from prefsweep.data.sources import check_source, get_source
from prefsweep.eval.judges import JudgeError, judge_of


def check_registered(config: dict) -> None:
    """``data.source`` and ``eval.judge.type`` name registered modules (the schema leaves them open
    so that a new source or judge is one module): :class:`ConfigError` listing the registered ones."""
    try:
        get_source(config["data"]["source"])
        judge_of(config)
    except (ValueError, JudgeError) as exc:
        raise ConfigError(str(exc)) from None


def check_experiment(config: dict) -> None:
    """Every check of a validated config, before any job; raises
    :class:`prefsweep.config.ConfigError` naming the key, the value and what is allowed."""
    check_registered(config)
    check_config(config)
    check_source(config)
    check_sft_data(config)
    judge_of(config).check_config(config)
    check_arms(config)


def check_secrets(config: dict, env: Mapping[str, str] | None = None) -> None:
    """The secrets a run needs are in the environment (their presence, never their values): the
    judge's (:meth:`prefsweep.eval.judges.Judge.check_environment`, e.g. the LLM judge's API key).

    The workflow calls this when it starts executing jobs (``onstart``), so a missing API key
    fails before any training, while planning (``-n``, ``--dag``, ``--report``) works without it.
    """
    judge_of(config).check_environment(config, os.environ if env is None else env)
