"""The data-source registry: the contract a ballot source meets, and the table of sources.

A source is one module of :mod:`prefsweep.data.sources` that builds a :class:`Source` and calls
:func:`register` when it is imported (the package imports every built-in one). Its ``name`` is a
value of ``data.source`` and the name of its config section ``data.<name>``, whose keys and
defaults live in the schema (``workflow/schemas/config.schema.yaml``, the one home of defaults;
``tests/unit/test_source_registry.py`` checks that every section belongs to a registered
source; ``data.source`` itself is open in the schema and checked against the registry by
:func:`prefsweep.experiment.check_experiment`). The ballots job (:func:`prefsweep.data.sources.load_source`),
its declared input and fingerprint (``workflow/rules/common.smk``), the config checks
(:func:`prefsweep.data.sources.check_source`) and the resource estimates
(:mod:`prefsweep.cost.resources`) ask :func:`get_source`; nothing else compares source names.

Adding a source (docs/extending.md): a module ``prefsweep/data/sources/<name>.py`` with a loader
and a ``register(Source(...))`` call (the package imports every module), and its section
``data.<name>`` in the schema when it has settings. Why the ballots
job's slice holds only ``data.<name>``: docs/design/data_sources.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from prefsweep.data.ballots import BallotRecord


class SourceBallots(NamedTuple):
    """What a source's ``load`` returns: validated ballots and how messages name them."""

    #: Validated records (:func:`prefsweep.data.ballots.validate_ballots` with
    #: ``distinct_texts=True``), not yet screened for turn markers.
    records: list[BallotRecord]
    #: The data as messages name them: a file, ``path (split train)``, ...
    where: str
    #: What ``lines`` count in messages: ``line``, ``record``, ``prompt``.
    unit: str = "prompt"
    #: The number (in ``unit``) of each record; None: 1, 2, ...
    lines: Sequence[int] | None = None


def _unknown(data: Mapping[str, Any]) -> int | None:
    return None


def _no_check(data: Mapping[str, Any]) -> None:
    return None


#: The ballots job's cluster request when a source gives none (Snakemake ``mem_mb``, ``runtime``).
BALLOTS_JOB = {"mem_mb": 4000, "runtime": 30}


@dataclass(frozen=True, kw_only=True)
class Source:
    """One ballot source.

    Args:
        name: the value of ``data.source`` and the config section ``data.<name>`` it reads.
        card: where the data and their fields are described (a dataset card's address, or the
            module that defines them).
        citation: the paper that introduced the data ("" for data made here).
        load: ``(config, source_file) -> SourceBallots``: the ballots of a config slice (the
            ballots job's: ``data.source``, ``data.seed``, ``data.<name>``, ``prompt_format``,
            ...) and, for a source with ``user_file``, that file; raises
            :class:`prefsweep.data.ballots.BallotError` (or ``ValueError`` naming a config key)
            naming the data, record and field that break the format.
        user_file: the key of ``data.<name>`` naming the user's file the source reads: the
            workflow declares it as an input of the ballots job and passes it as
            ``--source-file`` (editing the file reruns the job). None: no user file.
        local_copy: the key of ``data.<name>`` naming a dataset that may be a local copy (a
            directory): the workflow fingerprints it, so replacing the copy reruns the job.
        train_prompts: ``data -> int | None``: an upper bound on the training prompts the source
            gives under the ``data`` section (None: unknown), for resource estimates.
        pairs_per_prompt: ``data -> int | None``: pairs one prompt gives at most (None: unknown),
            for resource estimates.
        check: ``data -> None``: raises :class:`prefsweep.config.ConfigError` naming the key when
            the ``data`` section cannot work with this source (run before any job).
        ballots_job: the ballots job's ``mem_mb`` and ``runtime`` (minutes) on a cluster.
        electorate: the ballots come from an electorate whose utility of any text is known (the
            synthetic one): the electorate judge can score new answers, and the welfare table
            exists. False for real voters.
    """

    name: str
    card: str
    citation: str = ""
    load: Callable[[dict, str | os.PathLike | None], SourceBallots]
    user_file: str | None = None
    local_copy: str | None = None
    train_prompts: Callable[[Mapping[str, Any]], int | None] = _unknown
    pairs_per_prompt: Callable[[Mapping[str, Any]], int | None] = _unknown
    check: Callable[[Mapping[str, Any]], None] = _no_check
    ballots_job: Mapping[str, int] = field(default_factory=lambda: dict(BALLOTS_JOB))
    electorate: bool = False


#: Every registered source by name, in registration order (the built-in ones first).
SOURCES: dict[str, Source] = {}


def register(source: Source) -> Source:
    """Add ``source`` to :data:`SOURCES`; a name registered twice is a ``ValueError``."""
    if source.name in SOURCES:
        raise ValueError(f"data source {source.name!r} is registered twice")
    SOURCES[source.name] = source
    return source


def get_source(name: str) -> Source:
    """The source registered as ``name``; an unknown name raises ``ValueError`` naming
    ``data.source`` and the registered names."""
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"data.source: unknown source {name!r} (expected one of {', '.join(map(repr, SOURCES))}; "
                         "a source is a module of prefsweep/data/sources/)") from None


def electorate_sources() -> list[str]:
    """Names of the registered sources whose electorate is known (:attr:`Source.electorate`)."""
    return [name for name, source in SOURCES.items() if source.electorate]
