"""What a table job is given besides its judgments: its config slice and the models' files.

Model metadata comes from the files on the command line, never from directory walks: answers
(FastChat answer files, ``{model_id}.jsonl``; the reference answers are ``reference.jsonl``),
series ``manifest.json`` files (whose own ``arm``/``matching``/``size`` fields name the series)
and the ``run_info.json`` of every final DPO model (``job`` names arm/matching/size/seed,
``global_step`` is its step). A missing or malformed file is an :class:`InputError` naming it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prefsweep.config import ConfigError
from prefsweep.paths import dpo_model_id


class InputError(ValueError):
    """A file the tables need (answers, manifest, run_info) is missing or malformed."""


def config_value(config: Mapping[str, Any], dotted: str) -> Any:
    """The value of config key ``dotted`` (e.g. ``"eval.bootstrap.n"``) in a job's config slice.

    The slice is the validated config (defaults filled by the schema), so a missing key is an
    error naming it, never a silent default.
    """
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(
                f"config key {dotted}: missing from the job's config slice; expected the validated config "
                "(e.g. --config-json \"$(python -m prefsweep.config STEP)\")"
            )
        node = node[part]
    return node


def _read_json(path: str | os.PathLike, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a valid JSON {what} ({exc})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object ({what})")
    return obj


def answer_texts(path: str | os.PathLike) -> dict[str, str]:
    """``{question_id: first turn of choice 0}`` of a FastChat answer file."""
    from prefsweep.io import read_jsonl

    try:
        return {str(r["question_id"]): r["choices"][0]["turns"][0] for r in read_jsonl(path)}
    except (KeyError, IndexError, TypeError, AttributeError):
        raise InputError(f"{path}: not a FastChat answer file (expected question_id and choices[0].turns[0] text "
                         "in every record)") from None


def read_manifest(path: str | os.PathLike) -> tuple[tuple[str, str, int], int]:
    """``((arm, matching, size), n_pairs)`` of a series ``manifest.json``, from its own fields."""
    m = _read_json(path, "series manifest")
    missing = [k for k in ("arm", "matching", "size", "n_pairs") if k not in m]
    if missing:
        raise InputError(f"{path}: series manifest lacks {missing}; expected the manifest.json the series step "
                         "writes (fields arm, matching, size, n_pairs)")
    return (str(m["arm"]), str(m["matching"]), int(m["size"])), int(m["n_pairs"])


@dataclass(frozen=True)
class FinalRun:
    """What a final DPO model's ``run_info.json`` says: its model id, step and wandb run."""

    model_id: str
    step: int
    wandb_run_id: str | None
    source: str


def read_run_info(path: str | os.PathLike) -> FinalRun:
    """A final DPO model's run: id from ``job`` (arm, matching, size, seed), ``global_step``,
    ``wandb_run_id`` (null when wandb was off)."""
    info = _read_json(path, "run_info.json")
    job = info.get("job")
    missing = ([] if isinstance(job, dict) else ["job"]) + (
        [f"job.{k}" for k in ("arm", "matching", "size", "seed") if k not in job] if isinstance(job, dict) else [])
    if "global_step" not in info:
        missing.append("global_step")
    if missing:
        raise InputError(f"{path}: run_info.json lacks {missing}; expected the run_info.json of a final DPO model "
                         "(scripts/dpo.py writes job {arm, matching, size, seed} and global_step)")
    mid = dpo_model_id(str(job["arm"]), str(job["matching"]), int(job["size"]), int(job["seed"]),
                       init=job.get("init"))
    return FinalRun(mid, int(info["global_step"]), info.get("wandb_run_id") or None, str(path))


@dataclass(frozen=True)
class ModelInputs:
    """Metadata of the models of a table, read from the job's declared input files.

    ``answer_words``: model id (answers file stem) -> mean answer length in words;
    ``n_pairs``: (arm, matching, size) -> actual training pairs of the series;
    ``finals``: final DPO model id -> :class:`FinalRun`;
    ``answer_lengths``: model id -> question id -> answer length in words;
    ``well_formed``: model id -> mean well-formed share of its answers.
    """

    answer_words: Mapping[str, float]
    n_pairs: Mapping[tuple[str, str, int], int]
    finals: Mapping[str, FinalRun]
    answer_lengths: Mapping[str, Mapping[str, int]]
    well_formed: Mapping[str, float]

    @classmethod
    def from_files(cls, answers: Sequence[str | os.PathLike], manifests: Sequence[str | os.PathLike],
                   run_infos: Sequence[str | os.PathLike]) -> ModelInputs:
        """Read ``--answers``, ``--manifests`` and ``--run-info`` files; two files for the same
        model or series are an error naming both."""
        from prefsweep.eval.generate import model_name
        from prefsweep.data.synthetic import well_formedness

        words: dict[str, float] = {}
        lengths: dict[str, dict[str, int]] = {}
        formed: dict[str, float] = {}
        seen: dict[Any, str] = {}

        def once(key: Any, path: str | os.PathLike, what: str) -> None:
            if key in seen:
                raise InputError(f"{path}: {what} given twice (also {seen[key]}); expected one file each")
            seen[key] = str(path)

        for p in answers:
            mid = model_name(p)
            once(("answers", mid), p, f"answers of {mid}")
            texts = answer_texts(p)
            lengths[mid] = {q: len(t.split()) for q, t in texts.items()}
            words[mid] = float(np.mean(list(lengths[mid].values()))) if texts else float("nan")
            formed[mid] = float(np.mean([well_formedness(t) for t in texts.values()])) if texts else float("nan")
        n_pairs: dict[tuple[str, str, int], int] = {}
        for p in manifests:
            cell, n = read_manifest(p)
            once(("manifest", cell), p, "series {}/{}/n{}".format(*cell))
            n_pairs[cell] = n
        finals: dict[str, FinalRun] = {}
        for p in run_infos:
            run = read_run_info(p)
            once(("run_info", run.model_id), p, f"run_info of {run.model_id}")
            finals[run.model_id] = run
        return cls(words, n_pairs, finals, lengths, formed)

    def run_ids(self) -> dict[str, str]:
        """Final DPO model id -> wandb run id of its training run (models with one)."""
        return {m: r.wandb_run_id for m, r in self.finals.items() if r.wandb_run_id}
