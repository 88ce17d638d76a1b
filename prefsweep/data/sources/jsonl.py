"""A ballots file (``data.source: jsonl``): the user's own ballots, one JSON object per line.

The format is :mod:`prefsweep.data.ballots`'s. The file is ``data.jsonl.path``; the workflow
declares it as an input of the ballots job and passes it as ``--source-file``, so editing it
reruns the job. Errors name the file, the line, the prompt id and the field.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from prefsweep.config import ConfigError
from prefsweep.data.ballots import BallotError, BallotRecord, gc_paused, locate, not_utf8, validate_ballots
from prefsweep.data.marker_screen import screen_turn_markers
from prefsweep.data.sources.registry import Source, SourceBallots, register
from prefsweep.io import DataFileError, jsonl_lines

#: A JSON ``\\u`` escape of a UTF-16 surrogate (``\\ud800``-``\\udfff``): only a line holding one
#: can decode to a string that UTF-8 cannot encode, so only such lines are searched for one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _first_not_utf8(value: Any, field: str) -> tuple[str, str] | None:
    """(field path, message) of the first string in ``value`` (keys included) that UTF-8 cannot
    encode, depth first; ``None`` if there is none."""
    if isinstance(value, str):
        msg = not_utf8(value)
        return None if msg is None else (field, msg)
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{field}.{key}" if field else str(key)
            bad_key = not_utf8(key) if isinstance(key, str) else None
            if bad_key:
                return sub, f"key: {bad_key}"
            found = _first_not_utf8(item, sub)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _first_not_utf8(item, f"{field}[{i}]")
            if found:
                return found
    return None


def read_jsonl(path: str | os.PathLike) -> tuple[list[BallotRecord], list[int]]:
    """The validated records of a ballots file and the line number of each; errors name file,
    line and field. Raises :class:`BallotError` (also for bytes that are not UTF-8, a string
    UTF-8 cannot encode, a missing file and a file without records)."""
    records: list[Any] = []
    lines: list[int] = []
    try:
        with gc_paused():
            for lineno, line in jsonl_lines(path):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BallotError(
                        f"{path}: line {lineno}: record: not valid JSON ({exc.msg} at column {exc.colno}); "
                        "expected one JSON object per line"
                    ) from None
                if _SURROGATE_ESCAPE.search(line):
                    found = _first_not_utf8(record, "")
                    if found:
                        pid = record.get("prompt_id") if isinstance(record, dict) else None
                        raise BallotError(f"{locate(path, lineno, pid)}: {found[0] or 'record'}: {found[1]}")
                records.append(record)
                lines.append(lineno)
    except DataFileError as exc:
        raise BallotError(str(exc)) from None
    except FileNotFoundError:
        raise BallotError(f"{path}: no such file; expected a ballots file (data.jsonl.path)") from None
    return validate_ballots(records, str(path), lines, distinct_texts=True), lines


def load_jsonl(
    path: str | os.PathLike, markers: Sequence[str] = (), drop_marked: bool = False
) -> list[BallotRecord]:
    """Read and validate a ballots file (:func:`read_jsonl`). Candidates holding one of
    ``markers`` (the prompt format's turn markers) are an error, or dropped when
    ``drop_marked`` (:func:`prefsweep.data.marker_screen.screen_turn_markers`)."""
    records, lines = read_jsonl(path)
    return screen_turn_markers(records, markers, drop_marked, str(path), lines)


def _load(config: dict, source_file: str | os.PathLike | None) -> SourceBallots:
    records, lines = read_jsonl(source_file)
    return SourceBallots(records, str(source_file), "line", lines)


def _check(data: Mapping[str, Any]) -> None:
    """``data.jsonl.path`` is set and names a file."""
    if data["jsonl"]["path"] and not os.path.isfile(data["jsonl"]["path"]):
        raise ConfigError(f"data.jsonl.path: {data['jsonl']['path']}: no such file (a ballots jsonl file)")
    if not data["jsonl"].get("path"):
        raise ConfigError("data.jsonl.path: required when data.source is 'jsonl' (path of a ballots file)")


register(Source(
    name="jsonl",
    card="prefsweep.data.ballots (the ballots format; README, 'Ballots: the input format')",
    load=_load,
    user_file="path",
    check=_check,
))
