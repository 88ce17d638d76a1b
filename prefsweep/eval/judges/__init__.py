"""The judges: one interface and registry (:mod:`.base`), one module or subpackage per judge.

Importing this package registers every judge; ask it with :func:`judge_of` (a config or a job's
slice) or :func:`get_judge` (a name).
"""

from prefsweep.eval.judges.base import (
    JUDGES,
    ApiUsage,
    Judge,
    JudgeError,
    JudgeJob,
    get_judge,
    judge_of,
    judge_of_records,
    register,
    welfare_judges,
)

# Each import registers its judge (the order is the registry's order).
from prefsweep.eval.judges import electorate  # noqa: E402,F401
from prefsweep.eval.judges.llm import judge as _llm_judge  # noqa: E402,F401

__all__ = ["JUDGES", "ApiUsage", "Judge", "JudgeError", "JudgeJob", "get_judge", "judge_of", "judge_of_records",
           "register", "welfare_judges"]
