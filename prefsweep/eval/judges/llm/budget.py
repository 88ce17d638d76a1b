"""The guard ``eval.judge.max_api_calls``: a judge job stops before sending anything when the
experiment's remaining API calls exceed it.

The workflow exports :data:`BUDGET_ENV` (:func:`budget_env_value`: the limit and the experiment's
planned requests, ``prefsweep.cost.plan.planned_comparisons``) to every job, so changing the limit
reruns nothing; a hand run without it has no limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prefsweep.eval.judges.base import JudgeError

#: Environment variable holding the experiment's call budget (:class:`Budget`) as a JSON object.
BUDGET_ENV = "PREFSWEEP_JUDGE_BUDGET"


class JudgeBudgetError(JudgeError):
    """The experiment's remaining API calls exceed ``eval.judge.max_api_calls``."""


@dataclass(frozen=True)
class Budget:
    """The guard ``eval.judge.max_api_calls`` with the experiment's planned requests
    (``prefsweep.cost.plan.planned_comparisons``: 2 orders x questions x judged models, checkpoints
    included). Like the client settings it reaches jobs in the environment (``BUDGET_ENV``), so
    changing it reruns nothing."""

    max_api_calls: int | None
    planned_calls: int

    @classmethod
    def from_json(cls, text: str, source: str = BUDGET_ENV) -> Budget:
        try:
            values = json.loads(text)
            budget = cls(values["max_api_calls"], int(values["planned_calls"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise JudgeError(f"{source}: expected a JSON object {{\"max_api_calls\": int|null, "
                             f"\"planned_calls\": int}} ({type(exc).__name__}: {exc})") from None
        if budget.max_api_calls is not None and (isinstance(budget.max_api_calls, bool)
                                                 or not isinstance(budget.max_api_calls, int)):
            raise JudgeError(f"{source}: max_api_calls must be an integer or null, got {budget.max_api_calls!r}")
        return budget

    def check(self, own_calls: int, cached: int) -> None:
        """Raise :class:`JudgeBudgetError` when the experiment's remaining calls (planned less
        ``cached``, at least this job's ``own_calls``) exceed ``max_api_calls``."""
        if self.max_api_calls is None:
            return
        remaining = max(own_calls, self.planned_calls - cached)
        if remaining > self.max_api_calls:
            raise JudgeBudgetError(
                f"the experiment still needs about {remaining} API calls ({self.planned_calls} planned requests, "
                f"{cached} cached; this job alone {own_calls}), more than eval.judge.max_api_calls = "
                f"{self.max_api_calls}; nothing was sent. Raise eval.judge.max_api_calls to at least {remaining} "
                f"(in the config file, or --config 'eval={{judge: {{max_api_calls: {remaining}}}}}'), or evaluate "
                "fewer checkpoints (eval.checkpoints: {sizes: [...], n_questions: k}), and rerun; "
                "`make plan CONFIG=...` prints the figures"
            )


def budget_env_value(judge_cfg: Mapping[str, Any], planned_calls: int) -> str:
    """The value of ``BUDGET_ENV`` for a validated ``eval.judge`` section."""
    return json.dumps({"max_api_calls": judge_cfg["max_api_calls"], "planned_calls": int(planned_calls)},
                      sort_keys=True, separators=(",", ":"))

