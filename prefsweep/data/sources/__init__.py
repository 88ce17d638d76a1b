"""Where ballots come from: one module per source, each registering itself with
:mod:`prefsweep.data.sources.registry` (which states the contract a source meets), and
:func:`load_source`, the ballots job's one call.

What a voter and a group are in each source (the README's table "Ballot sources"):

============== ============================== ===================== ===========================
source         one prompt                     one voter             group
============== ============================== ===================== ===========================
synthetic      a composed question            a synthetic voter     its voter group
jsonl          a record of the file           its ``voter``         its ``group``
multipref      a ``prompt_id`` (all its       an annotator          ``normal`` or ``expert``
               comparisons)                   (``evaluator``)
helpsteer2     a ``prompt`` text (its rated   an attribute          the attribute
               responses)                     (helpfulness, ...)
ultrafeedback  an ``instruction`` (its 4      an aspect             the aspect
               completions)                   (honesty, ...)
prism          a conversation's opening turn  the participant       a survey field of the
               (the models' rated answers)    (``user_id``)         participant (``group_by``)
hh             a dialogue prefix (its         none (one pairwise    none
               chosen/rejected pairs)         vote per row)
shp            a post (its comments)          none (one pairwise    none
                                              vote per row)
============== ============================== ===================== ===========================
"""

from __future__ import annotations

import os

# The built-in sources, in the schema's order of data.source: importing one registers it.
from prefsweep.data.sources import synthetic  # noqa: F401
from prefsweep.data.sources import jsonl  # noqa: F401
from prefsweep.data.sources import shp  # noqa: F401
from prefsweep.data.sources import multipref  # noqa: F401
from prefsweep.data.sources import helpsteer2  # noqa: F401
from prefsweep.data.sources import ultrafeedback  # noqa: F401
from prefsweep.data.sources import prism  # noqa: F401
from prefsweep.data.sources import hh  # noqa: F401
from prefsweep.data.ballots import BallotRecord
from prefsweep.data.marker_screen import screen_turn_markers, turn_marker_policy
from prefsweep.data.sources.registry import SOURCES, get_source
from prefsweep.plugins import import_all

# Any other module of this package registers its source too (a new source is one module here:
# docs/extending.md), after the built-in ones.
import_all(__name__, __path__, skip=("registry", "hf_dataset"))


def load_source(config: dict, source_file: str | os.PathLike | None) -> list[BallotRecord]:
    """Ballots of the source named by ``config["data"]["source"]``, validated and screened.

    ``config`` is the ballots job's slice (``data.source``, ``data.seed``, ``data.<source>``,
    ``data.candidate_turn_markers``, ``prompt_format``, ...). ``source_file`` is the user's file
    of a source that reads one (the workflow passes ``data.jsonl.path`` as a declared input, so
    an edit to the file reruns the job): required for such a source, refused for the others.
    Candidate texts of a prompt are distinct (the source validates its ballots) and hold no turn
    marker of ``prompt_format`` (:func:`prefsweep.data.marker_screen.screen_turn_markers` under
    :func:`~prefsweep.data.marker_screen.turn_marker_policy`). Raises
    :class:`~prefsweep.data.ballots.BallotError` (or ``ValueError`` naming the config key).
    """
    markers, drop = turn_marker_policy(config)
    source = get_source(config["data"]["source"])
    if source_file is not None and source.user_file is None:
        readers = " or ".join(repr(name) for name, s in SOURCES.items() if s.user_file is not None)
        raise ValueError(
            f"--source-file {source_file}: data.source is {source.name!r}; a ballots file is read only "
            f"for data.source {readers}"
        )
    if source_file is None and source.user_file is not None:
        raise ValueError(
            f"--source-file: required for data.source {source.name!r} (the ballots file, "
            f"data.{source.name}.{source.user_file})"
        )
    loaded = source.load(config, source_file)
    return screen_turn_markers(loaded.records, markers, drop, loaded.where, loaded.lines, loaded.unit)


def source_user_file(config: dict) -> str | None:
    """The user's file the chosen source reads (``data.<source>.<user_file>``), which the
    workflow declares as an input of the ballots job; None when the source reads none."""
    data = config["data"]
    source = get_source(data["source"])
    return None if source.user_file is None else data[source.name][source.user_file]


def source_local_copy(config: dict) -> str | None:
    """The chosen source's dataset path that may be a local copy (``data.<source>.<local_copy>``),
    which the workflow fingerprints; None when the source reads no dataset."""
    data = config["data"]
    source = get_source(data["source"])
    return None if source.local_copy is None else data[source.name][source.local_copy]


def check_source(config: dict) -> None:
    """The chosen source's checks of the ``data`` section (before any job); raises
    :class:`prefsweep.config.ConfigError` naming the key."""
    data = config["data"]
    get_source(data["source"]).check(data)
