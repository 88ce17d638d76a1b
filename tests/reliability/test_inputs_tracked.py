"""Files a user supplies are inputs: editing them reruns what read them, and only that."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import REPO
from tests.test_dag import job_counts, snakemake

pytestmark = pytest.mark.reliability


def ballots_file(path, n_prompts: int = 12, winner: str = "a") -> None:
    lines = []
    for i in range(n_prompts):
        cands = [{"id": c, "text": f"Answer {c} to question {i}, in a few words."} for c in ("a", "b", "c")]
        order = [winner] + [c for c in ("a", "b", "c") if c != winner]
        votes = [{"ranking": [[c] for c in order], "weight": 1, "voter": f"v{v}", "group": "g"} for v in range(3)]
        lines.append(json.dumps({"prompt_id": f"p{i}", "prompt": f"Question {i}?", "topic": "t",
                                 "candidates": cands, "votes": votes}))
    path.write_text("\n".join(lines) + "\n")


def planned(cwd, args) -> dict[str, int]:
    out = snakemake(*args, "-n", "--quiet", "rules", cwd=cwd).stdout
    return job_counts(out) if "Job stats:" in out else {}


def test_edited_ballots_file_reruns_the_data_stage(tmp_path, case):
    case.expect("after editing the user's ballots jsonl, -n reruns the ballots job (was: Nothing to be done)")
    source = tmp_path / "my_ballots.jsonl"
    ballots_file(source)
    config = tmp_path / "jsonl.yaml"
    config.write_text(
        f"data: {{source: jsonl, jsonl: {{path: {source}}}, n_eval_prompts: 2, sizes: [0, 4]}}\n"
        "eval: {judge: {type: llm, api_key_env: null}}\n"
    )
    # Both files in one --configfile: a second option would replace the first.
    args = ["results/default/data/ballots.jsonl", "--configfile", str(REPO / "config" / "config.yaml"), str(config)]
    snakemake("--cores", "1", *args, cwd=tmp_path)
    assert planned(tmp_path, args) == {}
    time.sleep(1.1)  # a newer mtime, as an editor leaves it
    ballots_file(source, winner="b")
    counts = planned(tmp_path, args)
    case.observe(f"dry-run after the edit: {counts}")
    assert counts.get("ballots") == 1


def test_edited_sft_file_reruns_the_sft_corpus_only(tmp_path, case):
    case.expect("after editing the lab's SFT file (sft.data.path), -n reruns the SFT corpus job and not the ballots")
    source, sft = tmp_path / "my_ballots.jsonl", tmp_path / "my_sft.jsonl"
    ballots_file(source)
    sft.write_text(json.dumps({"prompt": "A question of our own?", "completion": "An answer."}) + "\n")
    config = tmp_path / "sft.yaml"
    config.write_text(
        f"data: {{source: jsonl, jsonl: {{path: {source}}}, n_eval_prompts: 2, sizes: [0, 4]}}\n"
        f"sft: {{data: {{source: jsonl, path: {sft}}}}}\n"
        "eval: {judge: {type: llm, api_key_env: null}}\n"
    )
    args = ["results/default/data/sft.jsonl", "--configfile", str(REPO / "config" / "config.yaml"), str(config)]
    snakemake("--cores", "1", *args, cwd=tmp_path)
    assert planned(tmp_path, args) == {}
    time.sleep(1.1)
    sft.write_text(json.dumps({"prompt": "Another question?", "completion": "Another answer."}) + "\n")
    counts = planned(tmp_path, args)
    case.observe(f"dry-run after the edit: {counts}")
    assert counts.get("sft_corpus") == 1 and "ballots" not in counts
