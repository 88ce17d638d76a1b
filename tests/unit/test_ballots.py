"""Ballot records: validation messages, the jsonl and SHP adapters, the Arrow reader."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from prefsweep.arms import support_batches, support_matrix
from prefsweep.ballots import (
    BallotError, load_jsonl, load_shp, read_ballots_table, validate_ballots, write_ballots,
)
from tests.unit.test_arms import reference_support


def record(pid: str = "p1") -> dict:
    return {
        "prompt_id": pid,
        "prompt": "How do I cook rice?",
        "topic": "cooking",
        "candidates": [{"id": "a", "text": "Boil it."}, {"id": "b", "text": "Steam it."},
                       {"id": "c", "text": "Buy it."}],
        "votes": [
            {"ranking": [["a"], ["b", "c"]], "weight": 1.0, "voter": "v0", "group": "g"},
            {"pair": ["a", "b"], "winner": None},
            {"pair": ["b", "c"], "winner": "c", "weight": 2},
        ],
    }


def write_lines(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_valid_records_round_trip(tmp_path):
    recs = [record("p1"), record("p2")]
    write_ballots(tmp_path / "b.jsonl", recs)
    assert load_jsonl(tmp_path / "b.jsonl") == recs


# (mutation of the second record, field named in the message, what the message says)
BAD = [
    (lambda r: r.pop("topic"), "topic", "missing field"),
    (lambda r: r.update(prompt_id=""), "prompt_id", "non-empty string"),
    (lambda r: r.update(extra=1), "extra", "unknown field"),
    (lambda r: r.update(candidates=r["candidates"][:1]), "candidates", "at least two candidates, got 1"),
    (lambda r: r["candidates"].append({"id": "a", "text": "x"}), "candidates[3].id", "duplicate candidate id 'a'"),
    (lambda r: r["candidates"][1].pop("text"), "candidates[1].text", "missing field"),
    (lambda r: r.update(votes=[]), "votes", "non-empty list of votes"),
    (lambda r: r["votes"][0]["ranking"][1].append("x"), "votes[0].ranking[1][2]",
     "unknown candidate 'x' (expected one of 'a', 'b', 'c')"),
    (lambda r: r["votes"][0]["ranking"].append([]), "votes[0].ranking[2]", "non-empty list of candidate ids"),
    (lambda r: r["votes"][0]["ranking"].append(["a"]), "votes[0].ranking[2][0]", "listed twice"),
    (lambda r: r["votes"][0].update(ranking=["a", "b"]), "votes[0].ranking[0]", "(a tier)"),
    (lambda r: r["votes"][0].update(ranking=[]), "votes[0].ranking", "non-empty list of tiers"),
    (lambda r: r["votes"][0].update(weight=-1.0), "votes[0].weight", "finite number from 1e-06 to 1e+06"),
    (lambda r: r["votes"][0].update(weight=float("nan")), "votes[0].weight", "finite number from 1e-06 to 1e+06"),
    (lambda r: r["votes"][0].update(weight="1"), "votes[0].weight", "finite number from 1e-06 to 1e+06"),
    (lambda r: r["votes"][0].update(weight=0), "votes[0].weight", "got 0"),
    (lambda r: r["votes"][0].update(weight=1e308), "votes[0].weight", "got 1e+308"),
    (lambda r: r["votes"].extend([{"ranking": [["a"]], "weight": 1e6}] * 2000), "votes", "total weight 2e+09 over 3 candidates"),
    (lambda r: r.update(prompt=""), "prompt", "expected the question's text, got ''"),
    (lambda r: r.update(prompt=" \n\t"), "prompt", "(empty or only white space)"),
    (lambda r: r["candidates"][2].update(text="Boil it."), "candidates[2].text",
     "candidate 'c' has the same text as candidate 'a' (candidates[0]); expected distinct response texts"),
    (lambda r: r["votes"][0].update(voter=3), "votes[0].voter", "expected a string"),
    (lambda r: r["votes"][0].update(pair=["a", "b"]), "votes[0]", "exactly one of 'ranking'"),
    (lambda r: r["votes"][1].update(pair=["a", "z"]), "votes[1].pair[1]", "unknown candidate 'z'"),
    (lambda r: r["votes"][1].update(pair=["a", "a"]), "votes[1].pair", "two different candidates"),
    (lambda r: r["votes"][1].update(pair=["a"]), "votes[1].pair", "two candidate ids"),
    (lambda r: r["votes"][2].update(winner="a"), "votes[2].winner", "expected 'b', 'c' or null, got 'a'"),
    (lambda r: r["votes"][2].pop("winner"), "votes[2].winner", "missing field"),
    (lambda r: r["votes"][2].update(note="x"), "votes[2].note", "unknown field"),
]


@pytest.mark.parametrize("mutate,field,what", BAD)
def test_errors_name_file_record_field_and_expectation(tmp_path, mutate, field, what):
    bad = record("p2")
    mutate(bad)
    path = tmp_path / "ballots.jsonl"
    write_lines(path, [record("p1"), bad])
    with pytest.raises(BallotError) as err:
        load_jsonl(path)
    msg = str(err.value)
    prefix = f"{path}: line 2" + (" (prompt_id 'p2')" if bad.get("prompt_id") else "")
    assert msg.startswith(prefix), msg
    assert f": {field}: " in msg and what in msg, msg


def test_duplicate_prompt_id_names_both_lines(tmp_path):
    path = tmp_path / "b.jsonl"
    write_lines(path, [record("p1"), record("p2"), record("p1")])
    with pytest.raises(BallotError, match=r"line 3 \(prompt_id 'p1'\): prompt_id: duplicate prompt id \(first at line 1"):
        load_jsonl(path)


def test_bad_json_and_write_validation(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps(record()) + "\n{not json\n")
    with pytest.raises(BallotError, match=r"b.jsonl: line 2: record: not valid JSON"):
        load_jsonl(path)
    bad = record()
    bad["votes"][0]["weight"] = -2.0
    with pytest.raises(BallotError, match=r"out.jsonl: record 1 \(prompt_id 'p1'\): votes\[0\].weight"):
        write_ballots(tmp_path / "out.jsonl", [bad])
    assert not (tmp_path / "out.jsonl").exists()


def test_fast_path_rejects_what_the_slow_path_rejects():
    # complete strict rankings take the fast path; each flaw must still be caught
    good = record()
    good["votes"] = [{"ranking": [["c"], ["a"], ["b"]], "weight": 0.5, "voter": "v", "group": "g"}]
    validate_ballots([good])
    for flaw in (
        lambda v: v.update(ranking=[["c"], ["a"], ["a"]]),
        lambda v: v.update(ranking=[["c"], ["a"], [["b"]]]),
        lambda v: v.update(ranking=[["c"], ["a"], "b"]),
        lambda v: v.update(weight=-0.5),
        lambda v: v.update(weight=float("inf")),
        lambda v: v.update(group=None),
        lambda v: v.update(pair=["a", "b"]),
    ):
        bad = copy.deepcopy(good)
        flaw(bad["votes"][0])
        with pytest.raises(BallotError, match=r"votes\[0\]"):
            validate_ballots([bad])


def test_arrow_reader_gives_the_same_supports(tmp_path):
    recs = [record("p1"), record("p2")]
    recs[1]["votes"].append({"ranking": [["c"], ["b"], ["a"]]})
    write_ballots(tmp_path / "b.jsonl", recs)
    table = read_ballots_table(tmp_path / "b.jsonl")
    assert table.column("prompt_id").to_pylist() == ["p1", "p2"]
    for batch in support_batches(table):
        for p, r in enumerate(batch.rec.tolist()):
            s, c = reference_support(recs[r])
            np.testing.assert_allclose(batch.support[p], s)
            np.testing.assert_array_equal(batch.count[p], c)
    s, _ = support_matrix(recs[0])
    # a > b, a > c from the ranking (b, c tied); c > b from the weighted pair vote; a-b tie: nothing
    np.testing.assert_allclose(s, [[0, 1, 1], [0, 0, 0], [0, 2, 0]])


def shp_rows() -> list[dict]:
    base = {"upvote_ratio": 0.9, "created_at_utc_A": 1, "created_at_utc_B": 2, "score_A": 5,
            "score_B": 3, "seconds_difference": 1.0, "score_ratio": 1.5}
    rows = [
        ("p1", "askculinary_train", "How to cook rice?", "c1", "c2", "Boil it.", "Fry it.", 1),
        ("p1", "askculinary_train", "How to cook rice?", "c3", "c1", "Steam it.", "Boil it.", 0),
        ("p2", "askscience_train", "Why is the sky blue?", "d1", "d2", "Rayleigh.", "Magic.", 1),
        ("p3", "askculinary_train", "Best knife?", "e1", "e2", "Chef's knife.", "Spoon.", 0),
        ("p1", "askculinary_train", "How to cook rice?", "c2", "c3", "Fry it.", "Steam it.", 1),
    ]
    keys = ("post_id", "domain", "history", "c_root_id_A", "c_root_id_B", "human_ref_A", "human_ref_B", "labels")
    return [{**base, **dict(zip(keys, r))} for r in rows]


def test_shp_adapter_groups_rows_by_post(tmp_path):
    d = tmp_path / "shp"
    d.mkdir()
    write_lines(d / "train.jsonl", shp_rows())
    recs = load_shp(str(d), "train", None, None, cache_dir=str(tmp_path / "cache"))
    assert [r["prompt_id"] for r in recs] == ["p1", "p2", "p3"]
    p1 = recs[0]
    assert p1["topic"] == "askculinary_train" and p1["prompt"] == "How to cook rice?"
    assert p1["candidates"] == [{"id": "c1", "text": "Boil it."}, {"id": "c2", "text": "Fry it."},
                                {"id": "c3", "text": "Steam it."}]
    # labels == 1: A preferred; 0: B preferred; one vote per row
    assert [v["winner"] for v in p1["votes"]] == ["c1", "c1", "c2"]
    assert [v["pair"] for v in p1["votes"]] == [["c1", "c2"], ["c3", "c1"], ["c2", "c3"]]
    assert recs[2]["votes"] == [{"pair": ["e1", "e2"], "winner": "e2", "weight": 1.0}]
    only = load_shp(str(d), "train", ["askculinary_train"], 1, cache_dir=str(tmp_path / "cache"))
    assert [r["prompt_id"] for r in only] == ["p1"] and len(only[0]["votes"]) == 3


def test_shp_adapter_rejects_other_schemas(tmp_path):
    d = tmp_path / "notshp"
    d.mkdir()
    write_lines(d / "train.jsonl", [{"post_id": "p", "text": "x"}])
    with pytest.raises(BallotError, match="missing; expected the SHP schema"):
        load_shp(str(d), "train", None, None, cache_dir=str(tmp_path / "cache"))
