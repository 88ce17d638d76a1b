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

from prefsweep.plugins import import_all  # noqa: E402

# Each module registers its judge when imported: the built-in ones first (the registry's order),
# then any other module of this package (a new judge is one module here: docs/extending.md).
from prefsweep.eval.judges import electorate  # noqa: E402,F401
from prefsweep.eval.judges.llm import judge as _llm_judge  # noqa: E402,F401

import_all(__name__, __path__, skip=("base",))

__all__ = ["JUDGES", "ApiUsage", "Judge", "JudgeError", "JudgeJob", "get_judge", "judge_of", "judge_of_records",
           "register", "welfare_judges"]
