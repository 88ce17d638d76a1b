"""Turn markers in candidates: a candidate is one assistant turn.

A candidate holding a turn marker of ``prompt_format`` (:func:`prefsweep.data.prompts.turn_markers`:
``"\\n\\nHuman:"``, ``"\\n\\nAssistant:"`` for style ``hh``) would teach the model to write the
turns it is cut at, so it is an error, or with ``data.candidate_turn_markers: drop`` it is dropped
with the votes that then name nothing (counted in the job log). Prompts may hold markers: a
multi-turn prompt writes its earlier turns with them. :func:`prefsweep.data.sources.load_source`
screens the ballots of every source this way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prefsweep.config import schema_node
from prefsweep.data.ballots import BallotError, BallotRecord, Vote, locate
from prefsweep.data.prompts import turn_markers

log = logging.getLogger(__name__)


def _marker_in(text: str, markers: Sequence[str]) -> str | None:
    """The first of ``markers`` that ``text`` holds, or ``None``."""
    for marker in markers:
        if marker in text:
            return marker
    return None


def _without_candidates(record: BallotRecord, drop: set[str]) -> BallotRecord:
    """``record`` without the candidates ``drop``: they leave every ranking (a tier left empty
    goes, the order of the rest stays), a pair vote naming one goes, and so does a ranking that
    named only them (the rest were tied below it: it says nothing)."""
    votes: list[Vote] = []
    for vote in record["votes"]:
        if "pair" in vote:
            if not drop.intersection(vote["pair"]):
                votes.append(vote)
            continue
        tiers = [kept for tier in vote["ranking"] if (kept := [c for c in tier if c not in drop])]
        if tiers:
            votes.append({**vote, "ranking": tiers})
    cands = [c for c in record["candidates"] if c["id"] not in drop]
    return {**record, "candidates": cands, "votes": votes}  # type: ignore[typeddict-item]


def screen_turn_markers(
    records: Sequence[BallotRecord],
    markers: Sequence[str],
    drop: bool,
    source: str,
    lines: Sequence[int] | None = None,
    unit: str = "line",
) -> list[BallotRecord]:
    """Validated ``records`` whose candidate texts hold none of ``markers`` (the turn markers of
    ``prompt_format``, :func:`prefsweep.data.prompts.turn_markers`); prompts may hold them.

    Without ``drop`` (``data.candidate_turn_markers: error``) the first such candidate raises
    :class:`BallotError` naming ``source``, the line (``lines[i]``, default ``i + 1``, counted in
    ``unit``), the prompt id, the candidate and the marker. With ``drop`` such candidates are
    removed (:func:`_without_candidates`), a prompt left with fewer than two candidates or no
    vote goes too, and the counts are logged (a warning: the job log shows it); no prompt left is
    an error.
    """
    if not markers:
        return list(records)
    out: list[BallotRecord] = []
    n_cands = n_votes = n_prompts = 0
    for i, rec in enumerate(records):
        marked: set[str] = set()
        for j, cand in enumerate(rec["candidates"]):
            marker = _marker_in(cand["text"], markers)
            if marker is None:
                continue
            if not drop:
                line = lines[i] if lines is not None else i + 1
                raise BallotError(
                    f"{locate(source, line, rec['prompt_id'], unit)}: candidates[{j}].text: candidate "
                    f"{cand['id']!r} contains the turn marker {marker!r} of prompt_format; expected one "
                    "assistant response (earlier turns belong in the prompt; a candidate with a turn "
                    "marker teaches the model to write the turns it is cut at): remove it, or set "
                    "data.candidate_turn_markers: drop to drop such candidates"
                )
            marked.add(cand["id"])
        if not marked:
            out.append(rec)
            continue
        kept = _without_candidates(rec, marked)
        n_cands += len(marked)
        n_votes += len(rec["votes"]) - len(kept["votes"])
        if len(kept["candidates"]) < 2 or not kept["votes"]:
            n_prompts += 1
            continue
        out.append(kept)
    if n_cands:
        log.warning(
            "%s: dropped %d candidates containing a turn marker of prompt_format (%s), %d votes left "
            "comparing nothing (a pair with one of them, a ranking of only them), and %d prompts left "
            "with fewer than two candidates or no vote (data.candidate_turn_markers: drop)",
            source, n_cands, ", ".join(map(repr, markers)), n_votes, n_prompts,
        )
    if not out:
        raise BallotError(
            f"{source}: no prompt left after dropping the candidates that contain a turn marker "
            f"({', '.join(map(repr, markers))}); expected responses without them"
        )
    return out


def turn_marker_policy(config: dict) -> tuple[tuple[str, ...], bool]:
    """(turn markers of ``prompt_format``, whether ``data.candidate_turn_markers`` is ``drop``)
    of a config slice; a key the slice lacks (a config built by hand) takes the schema's default.
    An unknown mode raises ``ValueError`` naming the key."""
    fmt = config.get("prompt_format") or {"style": schema_node("prompt_format.style")["default"]}
    node = schema_node("data.candidate_turn_markers")
    mode = config["data"].get("candidate_turn_markers", node["default"])
    if mode not in node["enum"]:
        raise ValueError(f"data.candidate_turn_markers: {mode!r} (expected one of {', '.join(node['enum'])})")
    return turn_markers(fmt), mode == "drop"
