"""The judge interface and its registry: what a judge is given, what it writes, what it declares.

A judge compares one model's answers with a baseline's, question by question, in both orders
(FastChat's ``pairwise-baseline`` mode), and writes one file of FastChat pair-judgment records
(``*_pair.jsonl``: ``question_id, model_1, model_2, g1_winner, g2_winner, judge, g1_user_prompt,
g1_judgment, g2_user_prompt, g2_judgment, turn, tstamp``; winners ``model_1 | model_2 | tie |
error``; ``judge`` = ``[name, prompt]``), atomically, in question order.

A judge is one module that subclasses :class:`Judge` and registers it with :func:`register`
(``eval.judge.type`` is its :attr:`Judge.name`). The workflow's rules, the config checks, the plan,
the cluster resources and the welfare table ask the registry (:func:`judge_of`,
:func:`get_judge`) what the configured judge needs and can do; nothing outside
``prefsweep/eval/judges/`` compares a judge's name. Adding a judge: docs/design/judges.md.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    import numpy as np


class JudgeError(RuntimeError):
    """A judge run that cannot go on (bad input, unknown judge, missing key, API failures)."""


@dataclass(frozen=True)
class JudgeJob:
    """What one judge job is given (``scripts/judge.py`` builds it from its command line)."""

    #: The job's config slice (step ``judge``: ``eval.judge`` verdict keys, ``data.source/seed/synthetic``).
    config: Mapping[str, Any]
    #: FastChat question.jsonl.
    questions: str | os.PathLike
    #: Answers of the model under test (``model_1``; its model name is the file name less ``.jsonl``).
    answers: str | os.PathLike
    #: Answers of the baseline (``model_2``).
    baseline: str | os.PathLike
    #: The judgment file to write.
    out: str | os.PathLike
    #: Response cache shared by the experiment's judge jobs (judges with :attr:`Judge.needs_cache`).
    cache: str | os.PathLike | None
    #: Judge the first k questions only (``eval.checkpoints.n_questions``); None: all.
    max_questions: int | None
    #: API client settings given on the command line (``--client-json``), else None.
    client_json: str | None
    #: The process environment (API keys, settings the workflow exports).
    env: Mapping[str, str]
    #: Where progress lines go.
    echo: Callable[[str], None]


@dataclass(frozen=True)
class ApiUsage:
    """What one API call of a judge costs, for the plan (``prefsweep.cost.plan``)."""

    #: The model the judge asks (shown in the plan).
    model: str
    #: Characters of the fixed prompt text sent with every call (system prompt + template).
    prompt_chars: int
    #: Most completion tokens one call may return.
    max_tokens: int


class UtilityModel(Protocol):
    """Every voter's utility of any answer (the welfare table needs it)."""

    @property
    def groups(self) -> list[str]: ...

    @property
    def group_names(self) -> list[str]: ...

    def utilities(self, texts: Sequence[str], questions: str | Sequence[str]) -> np.ndarray: ...


class Judge(ABC):
    """One kind of judge (``eval.judge.type``). Subclasses set :attr:`name` and implement
    :meth:`judge` and :meth:`runtime_minutes`; the other methods are capabilities with defaults
    for a judge that calls no API, needs nothing checked and knows no utilities."""

    #: ``eval.judge.type``; also the judgment directory (``paths.Layout.judgment``).
    name: ClassVar[str]
    #: First element of the records' ``judge`` field when the judge fixes it (the win-rate
    #: table's ``judge`` column); None when it depends on the config (an LLM's model name).
    record_name: ClassVar[str | None] = None
    #: Knows every voter's utility of any text (:meth:`utility_model`): the welfare and
    #: distortion tables and figures exist.
    measures_welfare: ClassVar[bool] = False
    #: A judge job takes seconds: the cluster may run the judgments and the tables over them as
    #: one group job (workflow/rules/common.smk, EVAL_GROUP).
    quick: ClassVar[bool] = False
    #: Its jobs need the response cache directory (``--cache``).
    needs_cache: ClassVar[bool] = False
    #: Calls an API: each job takes a slot of the ``judge_api`` resource (profiles/slurm
    #: bounds the concurrent ones), and :meth:`api_usage` prices its calls.
    calls_api: ClassVar[bool] = False

    @abstractmethod
    def judge(self, job: JudgeJob) -> list[dict[str, Any]]:
        """Write ``job.out`` (the module docstring's records) and return the records. Raises
        :class:`JudgeError`, ``ValueError`` or ``FileNotFoundError`` naming the file or key."""

    @abstractmethod
    def runtime_minutes(self, config: Mapping[str, Any], questions: int) -> int:
        """Cluster ``runtime`` (minutes) of one judge job over ``questions`` questions."""

    def check_config(self, config: Mapping[str, Any]) -> None:
        """Cross-key checks of a validated config, before any job; raises
        :class:`prefsweep.config.ConfigError` naming the key."""

    def check_environment(self, config: Mapping[str, Any], env: Mapping[str, str]) -> None:
        """What the jobs will need from the environment (API keys), when jobs start, not when
        planning; raises :class:`prefsweep.config.ConfigError`."""

    def job_environment(self, config: Mapping[str, Any], planned_calls: Callable[[], int]) -> dict[str, str]:
        """Variables exported to every job: settings that change no verdict (a param would rerun
        jobs). ``planned_calls()``: the experiment's judge requests (``prefsweep.cost.plan``)."""
        return {}

    def input_files(self, config: Mapping[str, Any]) -> dict[str, str]:
        """Named user files a judge job reads (editing one reruns the judgments)."""
        return {}

    def api_usage(self, config: Mapping[str, Any]) -> ApiUsage:
        """What one API call costs (judges with :attr:`calls_api`)."""
        raise JudgeError(f"judge {self.name!r} calls no API")

    def utility_model(self, config: Mapping[str, Any]) -> UtilityModel:
        """The voters' utilities (judges with :attr:`measures_welfare`), from a config slice."""
        raise JudgeError(f"judge {self.name!r} knows no voter utilities; the welfare table needs one that does")


#: Registered judges by name, in registration order.
JUDGES: dict[str, Judge] = {}


def register(cls: type[Judge]) -> type[Judge]:
    """Class decorator: register one instance of ``cls`` under ``cls.name``."""
    if cls.name in JUDGES:
        raise ValueError(f"judge {cls.name!r} registered twice")
    JUDGES[cls.name] = cls()
    return cls


def get_judge(name: str) -> Judge:
    """The judge named ``name``; :class:`JudgeError` listing the registered names otherwise."""
    try:
        return JUDGES[name]
    except (KeyError, TypeError):
        raise JudgeError(f"eval.judge.type: {name!r} is not a registered judge; expected one of "
                         f"{', '.join(map(repr, JUDGES))} (a judge is a module of prefsweep/eval/judges/)") from None


def judge_of(config: Mapping[str, Any]) -> Judge:
    """The judge of a config or a job's slice (``eval.judge.type``)."""
    try:
        name = config["eval"]["judge"]["type"]
    except (KeyError, TypeError):
        raise JudgeError("eval.judge.type: missing from the config slice; expected one of "
                         f"{', '.join(sorted(JUDGES))}") from None
    return get_judge(name)


def judge_of_records(name: str) -> Judge | None:
    """The registered judge whose records carry ``name`` first in their ``judge`` field, if any."""
    return next((j for j in JUDGES.values() if j.record_name is not None and j.record_name == name), None)


def welfare_judges() -> list[str]:
    """Names of the registered judges that know the voters' utilities."""
    return [name for name, j in JUDGES.items() if j.measures_welfare]

