"""Ballot records: validation messages, the jsonl and SHP adapters, the Arrow reader."""

from __future__ import annotations

import copy
import gzip
import json
import logging

import numpy as np
import pytest

from prefsweep.data.ballot_table import read_ballots_table
from prefsweep.data.ballots import BallotError, validate_ballots, write_ballots
from prefsweep.data.marker_screen import screen_turn_markers
from prefsweep.data.prompts import HH_MARKERS
from prefsweep.data.sources import load_source
from prefsweep.data.sources.jsonl import load_jsonl
from prefsweep.data.sources.shp import load_shp
from prefsweep.data.support import support_batches, support_matrix
from tests.conftest import load_config
from tests.fixtures import datasets as fx
from tests.unit.test_arms import reference_support


def shp_spec(path, domains=None, max_posts=None) -> dict:
    """``data.shp`` of a local SHP copy at ``path`` (every other key its schema default)."""
    return {"path": str(path), "split": "train", "domains": domains, "max_posts": max_posts,
            "min_score_ratio": None, "max_pairs_per_post": None}


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
     "candidate 'c' has the same text as candidate 'a' (candidates[0]), compared ignoring case and runs of "
     "white space; expected distinct response texts"),
    (lambda r: r["candidates"][1].update(text=" BOIL\t it. "), "candidates[1].text",
     "candidate 'b' has the same text as candidate 'a' (candidates[0])"),
    (lambda r: r["candidates"][1].update(text=""), "candidates[1].text", "expected the response's text, got ''"),
    (lambda r: r["candidates"][1].update(text="\n  "), "candidates[1].text", "(empty or only white space)"),
    (lambda r: r.update(prompt="Rice\udfff?"), "prompt", "character '\\udfff' at position 4 is not encodable as UTF-8"),
    (lambda r: r.update(topic="cook\ud800"), "topic", "character '\\ud800' at position 4 is not encodable"),
    (lambda r: r["candidates"][2].update(text="\udbff Buy."), "candidates[2].text", "character '\\udbff' at position 0"),
    (lambda r: r["candidates"][2].update(id="c\ud800"), "candidates[2].id", "is not encodable as UTF-8"),
    (lambda r: r["votes"][2].update(group="g\ud800"), "votes[2].group", "is not encodable as UTF-8"),
    (lambda r: r.update(meta={"note": ["ok", "x\ud800"]}), "meta.note[1]", "is not encodable as UTF-8"),
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
    recs = load_shp(shp_spec(d, None, None), str(tmp_path / "cache"))
    assert [r["prompt_id"] for r in recs] == ["p1", "p2", "p3"]
    p1 = recs[0]
    assert p1["topic"] == "askculinary_train" and p1["prompt"] == "How to cook rice?"
    assert p1["candidates"] == [{"id": "c1", "text": "Boil it."}, {"id": "c2", "text": "Fry it."},
                                {"id": "c3", "text": "Steam it."}]
    # labels == 1: A preferred; 0: B preferred; one vote per row
    assert [v["winner"] for v in p1["votes"]] == ["c1", "c1", "c2"]
    assert [v["pair"] for v in p1["votes"]] == [["c1", "c2"], ["c3", "c1"], ["c2", "c3"]]
    assert recs[2]["votes"] == [{"pair": ["e1", "e2"], "winner": "e2", "weight": 1.0}]
    only = load_shp(shp_spec(d, ["askculinary_train"], 1), str(tmp_path / "cache"))
    assert [r["prompt_id"] for r in only] == ["p1"] and len(only[0]["votes"]) == 3


def test_shp_adapter_rejects_other_schemas(tmp_path):
    d = tmp_path / "notshp"
    d.mkdir()
    write_lines(d / "train.jsonl", [{"post_id": "p", "text": "x"}])
    with pytest.raises(BallotError, match="missing; expected the SHP schema"):
        load_shp(shp_spec(d, None, None), str(tmp_path / "cache"))


# -- texts the validator compares, and turn markers (issue 22, findings 9, 10, 12) ---------------


def test_in_memory_records_with_a_lone_surrogate_are_refused():
    # records built in memory (a dataset, a caller) get the same check as a jsonl line
    bad = record("p1")
    bad["candidates"][0]["text"] = "Boil \ud800"
    with pytest.raises(BallotError, match=r"src: record 1 \(prompt_id 'p1'\): candidates\[0\].text: character "
                                           r"'\\ud800' at position 5 is not encodable as UTF-8"):
        validate_ballots([bad], "src", unit="record")


def test_an_emoji_escaped_as_a_surrogate_pair_is_text(tmp_path):
    rec = record()
    rec["candidates"][0]["text"] = "Boil it \U0001F35A."
    write_lines(tmp_path / "b.jsonl", [rec])  # json.dumps writes "\ud83c\udf5a"
    assert "\\ud83c\\udf5a" in (tmp_path / "b.jsonl").read_text()
    assert load_jsonl(tmp_path / "b.jsonl") == [rec]


def marked_record(pid: str = "p1") -> dict:
    rec = record(pid)
    rec["prompt"] = "Hi!\n\nAssistant: Hello.\n\nHuman: How do I cook rice?"  # earlier turns: fine
    rec["candidates"][1]["text"] = "Steam it.\n\nHuman: thanks"
    return rec


def test_a_turn_marker_in_a_candidate_is_an_error_naming_line_candidate_and_marker(tmp_path):
    path = tmp_path / "b.jsonl"
    write_lines(path, [record("p1"), marked_record("p2")])
    assert load_jsonl(path) == [record("p1"), marked_record("p2")]  # no markers given: not checked
    with pytest.raises(BallotError) as err:
        load_jsonl(path, HH_MARKERS)
    msg = str(err.value)
    assert msg.startswith(f"{path}: line 2 (prompt_id 'p2'): candidates[1].text: candidate 'b' contains the turn "
                          "marker '\\n\\nHuman:' of prompt_format"), msg
    assert "data.candidate_turn_markers: drop" in msg


def test_dropping_marked_candidates_prunes_votes_and_logs_counts(caplog):
    rec = marked_record()  # b is marked; votes: ranking a > {b, c}, pair a-b (tie), pair b-c
    rec["votes"].append({"ranking": [["b"]], "weight": 1.0})  # names only b: says nothing without it
    other = record("p2")
    for c in other["candidates"][:2]:
        c["text"] += "\n\nAssistant: more"  # a and b marked: one candidate left, the prompt goes
    with caplog.at_level(logging.WARNING, logger="prefsweep.data.marker_screen"):
        out = screen_turn_markers([rec, record("p3"), other], HH_MARKERS, True, "src.jsonl")
    assert [r["prompt_id"] for r in out] == ["p1", "p3"]
    assert out[0]["candidates"] == [{"id": "a", "text": "Boil it."}, {"id": "c", "text": "Buy it."}]
    assert out[0]["votes"] == [{"ranking": [["a"], ["c"]], "weight": 1.0, "voter": "v0", "group": "g"}]
    assert out[1] == record("p3") and rec == {**marked_record(), "votes": rec["votes"]}  # input unchanged
    validate_ballots(out, distinct_texts=True)
    # votes: p1's pairs a-b, b-c and its ranking [[b]]; p2's pairs a-b, b-c (its ranking keeps c)
    assert ("src.jsonl: dropped 3 candidates containing a turn marker of prompt_format ('\\n\\nHuman:', "
            "'\\n\\nAssistant:'), 5 votes left comparing nothing (a pair with one of them, a ranking of only them), and 1 prompts left") in caplog.text
    with pytest.raises(BallotError, match=r"src: no prompt left after dropping"):
        screen_turn_markers([other], HH_MARKERS, True, "src")


def test_load_source_uses_the_configured_format_and_mode(tmp_path):
    path = tmp_path / "b.jsonl"
    rec = record("p2")
    rec["candidates"][2]["text"] = "Buy it.\n### Answer: or cook it"
    write_lines(path, [record("p1"), rec])
    cfg = load_config()
    cfg["data"]["source"] = "jsonl"
    assert len(load_source(cfg, path)) == 2  # style hh: '### Answer:' is text
    cfg["prompt_format"] = {"style": "template", "prompt_template": "### Question: {prompt}\n### Answer:"}
    with pytest.raises(BallotError, match=r"line 2 \(prompt_id 'p2'\): candidates\[2\].text: candidate 'c' "
                                           r"contains the turn marker '\\n### Answer:'"):
        load_source(cfg, path)
    cfg["data"]["candidate_turn_markers"] = "drop"
    assert [len(r["candidates"]) for r in load_source(cfg, path)] == [3, 2]


def write_hh(directory, rows) -> dict:
    d = directory / "helpful-base"
    d.mkdir(parents=True)
    with gzip.open(d / "train.jsonl.gz", "wt") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows))
    return {**load_config()["data"]["hh"], "path": str(directory), "data_dir": "helpful-base"}


def test_hh_prompts_may_hold_turns_candidates_may_not(tmp_path):
    rows = fx.hh_rows(8)  # every fourth prompt is two turns deep
    bad = {"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello!\n\nHuman: Bye?",  # the last turn is the human's
           "rejected": "\n\nHuman: Hi?\n\nAssistant: Go away."}
    # a near-duplicate pair (trailing space) is one candidate: the pair says nothing and goes
    same = {"chosen": "\n\nHuman: Why?\n\nAssistant: Because.", "rejected": "\n\nHuman: Why?\n\nAssistant: Because. "}
    cfg = load_config()
    cfg["data"]["source"] = "hh"
    cfg["data"]["hh"] = write_hh(tmp_path / "hh", [*rows, same, bad])
    with pytest.raises(BallotError) as err:
        load_source(cfg, None)
    assert str(err.value).startswith(f"{tmp_path / 'hh'} (split train): prompt 9 (prompt_id 'hh-"), str(err.value)
    assert "candidates[0].text: candidate 'r1' contains the turn marker '\\n\\nHuman:'" in str(err.value)
    cfg["data"]["candidate_turn_markers"] = "drop"
    recs = load_source(cfg, None)
    assert len(recs) == 8 and any("\n\nAssistant: " in r["prompt"] for r in recs)  # multi-turn prompts kept


def test_shp_blank_and_near_duplicate_comments_are_named(tmp_path):
    rows = shp_rows()
    rows[2]["human_ref_B"] = "  "
    d = tmp_path / "shp"
    d.mkdir()
    write_lines(d / "train.jsonl", rows)
    with pytest.raises(BallotError, match=r"post 2 \(prompt_id 'p2'\): candidates\[1\].text: expected the response's text"):
        load_shp(shp_spec(d, None, None), str(tmp_path / "cache"))
    rows = shp_rows()
    rows[2]["human_ref_B"] = "rayleigh. "
    write_lines(d / "train.jsonl", rows)
    with pytest.raises(BallotError, match=r"post 2 \(prompt_id 'p2'\): candidates\[1\].text: candidate 'd2' has "
                                           r"the same text as candidate 'd1'"):
        load_shp(shp_spec(d, None, None), str(tmp_path / "cache2"))
