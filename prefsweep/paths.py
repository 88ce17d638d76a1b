"""Path patterns and model ids: the one place that maps experiment cells to files.

The workflow's rules, the scripts and the tests all build paths through these functions, so a
cell (arm, matching, size, seed) always lives at the same place and has the same model id.

Model ids (FastChat's file-name ids):
    base, sft                               the base and the common SFT model
    dpo-{arm}-{matching}-n{size}-seed{seed} a DPO run; matching is "shared" for the reference arm
    dpo-...-seed{seed}-step{step}           a kept checkpoint of that run
    baseline-{name}                         a baseline model named in the config
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ARMS = ("maj", "sc")
MATCHINGS = ("prompt", "size")
#: The reference arm's series do not depend on matching: stored and trained once, as "shared".
SHARED = "shared"

MODEL_ID_RE = re.compile(
    r"^dpo-(?P<arm>[a-z]+)-(?P<matching>[a-z]+)-n(?P<size>\d+)-seed(?P<seed>\d+)(?:-step(?P<step>\d+))?$"
)


def data_matching(arm: str, matching: str, reference_arm: str) -> str:
    """Matching under which a series is stored: ``shared`` for the reference arm."""
    return SHARED if arm == reference_arm else matching


def series_cells(config: dict) -> list[tuple[str, str, int]]:
    """Distinct (arm, data matching, size>0) series of an experiment, in a stable order."""
    data = config["data"]
    ref = data["reference_arm"]
    cells: list[tuple[str, str, int]] = []
    for arm in ARMS:
        for matching in data["matchings"]:
            m = data_matching(arm, matching, ref)
            for size in data["sizes"]:
                if size > 0 and (arm, m, size) not in cells:
                    cells.append((arm, m, int(size)))
    return cells


def dpo_model_id(arm: str, matching: str, size: int, seed: int, step: int | None = None) -> str:
    mid = f"dpo-{arm}-{matching}-n{size}-seed{seed}"
    return mid if step is None else f"{mid}-step{step}"


@dataclass(frozen=True)
class ModelCell:
    """What a model id says about the model."""

    model_id: str
    kind: str  # base | sft | dpo | checkpoint | baseline
    arm: str | None = None
    matching: str | None = None
    size: int | None = None
    seed: int | None = None
    step: int | None = None
    baseline: str | None = None


def parse_model_id(model_id: str) -> ModelCell:
    """Inverse of the id functions; raises ``ValueError`` for an id of no known form."""
    if model_id in ("base", "sft"):
        return ModelCell(model_id, model_id)
    if model_id.startswith("baseline-") and len(model_id) > len("baseline-"):
        return ModelCell(model_id, "baseline", baseline=model_id[len("baseline-"):])
    m = MODEL_ID_RE.match(model_id)
    if not m:
        raise ValueError(
            f"model id {model_id!r}: expected base, sft, baseline-<name> or "
            "dpo-<arm>-<matching>-n<size>-seed<seed>[-step<step>]"
        )
    step = m["step"]
    return ModelCell(
        model_id,
        "checkpoint" if step else "dpo",
        arm=m["arm"],
        matching=m["matching"],
        size=int(m["size"]),
        seed=int(m["seed"]),
        step=int(step) if step else None,
    )


def zero_point_id(config: dict) -> str:
    """Size 0 is the DPO init model itself: ``sft`` or ``base``."""
    return "sft" if config["dpo"]["init"] == "sft" else "base"


def final_model_ids(config: dict) -> list[str]:
    """Every final model of the experiment: zero point, SFT, DPO runs, baselines."""
    ids = ["sft", zero_point_id(config)]
    for arm, m, size in series_cells(config):
        for seed in config["dpo"]["seeds"]:
            ids.append(dpo_model_id(arm, m, size, seed))
    for b in config["eval"].get("baselines", []) or []:
        ids.append(f"baseline-{b['name']}")
    return list(dict.fromkeys(ids))
