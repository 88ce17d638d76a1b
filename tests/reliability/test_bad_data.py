"""Bad data files, as a user would hand them over: each stops the data job with the file, the
line or prompt id and what was expected, and writes nothing.

Every ballots case runs the real ``scripts/ballots.py`` ``main()`` with ``data.source: jsonl``
and ``--source-file``, over an ``--out`` that holds an earlier good result: after the error
that file is byte-identical and no temporary file is left beside it. Damaged workflow files
(a ballots file that skipped validation, a truncated pool, a truncated split) go through
``scripts/pool.py`` and ``scripts/series.py``.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from prefsweep.config import job_config
from tests.conftest import REPO, load_config

pytestmark = pytest.mark.reliability


def script(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def config() -> dict:
    return load_config()


def good(pid: str) -> dict:
    return {
        "prompt_id": pid,
        "prompt": f"How do I cook rice ({pid})?",
        "topic": "cooking",
        "candidates": [{"id": "a", "text": "Boil it."}, {"id": "b", "text": "Steam it."},
                       {"id": "c", "text": "Buy it."}],
        "votes": [{"ranking": [["a"], ["b"], ["c"]], "weight": 1.0},
                  {"ranking": [["b"], ["a"], ["c"]], "weight": 0.5},
                  {"pair": ["a", "c"], "winner": "c"}],
    }


def lines(*records: dict) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def bad(mutate: Callable[[dict], None]) -> bytes:
    """Three good records, the second one mutated."""
    second = good("p2")
    mutate(second)
    return lines(good("p1"), second, good("p3"))


def ballots_slice(config: dict, path: Path) -> str:
    cfg = copy.deepcopy(config)
    cfg["data"]["source"] = "jsonl"
    cfg["data"]["jsonl"]["path"] = str(path)
    return json.dumps(job_config(cfg, "ballots"))


def run_ballots(config: dict, tmp_path: Path, data: bytes) -> tuple[str, Path]:
    """Run scripts/ballots.py on ``data``; return its error message and the source path, after
    checking that the earlier ``--out`` is untouched and nothing else was written."""
    src = tmp_path / "my_ballots.jsonl"
    src.write_bytes(data)
    out_dir = tmp_path / "results" / "data"
    out_dir.mkdir(parents=True)
    out = out_dir / "ballots.jsonl"
    earlier = lines(good("old1"), good("old2"))
    out.write_bytes(earlier)
    with pytest.raises(SystemExit) as exc:
        script("ballots").main(["--config-json", ballots_slice(config, src), "--source-file", str(src),
                                "--out", str(out)])
    assert out.read_bytes() == earlier, "an earlier result was changed"
    assert sorted(p.name for p in out_dir.iterdir()) == ["ballots.jsonl"], "a stray file was written"
    return str(exc.value), src


# (name, file content, fragments the message must hold after "<file>: ", what the user expects)
CASES = [
    ("non_utf8", lines(good("p1")) + b'{"prompt_id": "p2", "prompt": "caf\xe9"}\n',
     ["line 2: not valid UTF-8 (byte 0xe9 at column 35)", "expected a UTF-8 text file"],
     "file, line and column of the bad byte; UTF-8 expected"),
    ("malformed_json", lines(good("p1")) + b'{"prompt_id": "p2", "prompt": \n',
     ["line 2: record: not valid JSON", "expected one JSON object per line"],
     "file and line; one JSON object per line expected"),
    ("missing_field", bad(lambda r: r.pop("topic")),
     ["line 2 (prompt_id 'p2'): topic: missing field", "prompt_id, prompt, topic, candidates, votes"],
     "file, line, prompt id, the missing field and the fields a record needs"),
    ("duplicate_prompt_id", lines(good("p1"), good("p2"), good("p1")),
     ["line 3 (prompt_id 'p1'): prompt_id: duplicate prompt id (first at line 1", "every prompt_id once"],
     "file, both lines and the prompt id; unique ids expected"),
    ("duplicate_candidate_id", bad(lambda r: r["candidates"].append({"id": "a", "text": "Fry it."})),
     ["line 2 (prompt_id 'p2'): candidates[3].id: duplicate candidate id 'a'"],
     "file, line, prompt id and the repeated candidate id"),
    ("unknown_candidate", bad(lambda r: r["votes"][0]["ranking"].append(["z"])),
     ["line 2 (prompt_id 'p2'): votes[0].ranking[3][0]: unknown candidate 'z'", "expected one of 'a', 'b', 'c'"],
     "file, line, prompt id, the vote and the known candidates"),
    ("unknown_pair_candidate", bad(lambda r: r["votes"][2].update(pair=["a", "x"])),
     ["line 2 (prompt_id 'p2'): votes[2].pair[1]: unknown candidate 'x'", "expected one of 'a', 'b', 'c'"],
     "file, line, prompt id, the pair vote and the known candidates"),
    ("one_candidate", bad(lambda r: r.update(candidates=r["candidates"][:1])),
     ["line 2 (prompt_id 'p2'): candidates: expected a list of at least two candidates, got 1"],
     "file, line, prompt id; at least two candidates expected"),
    ("empty_prompt", bad(lambda r: r.update(prompt="")),
     ["line 2 (prompt_id 'p2'): prompt: expected the question's text, got ''"],
     "file, line, prompt id; a non-empty prompt expected"),
    ("whitespace_prompt", bad(lambda r: r.update(prompt="  \n\t ")),
     ["line 2 (prompt_id 'p2'): prompt: expected the question's text", "(empty or only white space)"],
     "file, line, prompt id; a prompt with text expected"),
    ("identical_texts", bad(lambda r: r["candidates"][2].update(text="Boil it.")),
     ["line 2 (prompt_id 'p2'): candidates[2].text: candidate 'c' has the same text as candidate 'a'",
      "expected distinct response texts"],
     "file, line, prompt id and both candidate ids; distinct texts expected"),
    ("weight_1e308", bad(lambda r: r["votes"][1].update(weight=1e308)),
     ["line 2 (prompt_id 'p2'): votes[1].weight: expected a finite number from 1e-06 to 1e+06", "got 1e+308"],
     "file, line, prompt id, the vote; the allowed weight range"),
    ("weight_nan", bad(lambda r: r["votes"][1].update(weight=float("nan"))),
     ["line 2 (prompt_id 'p2'): votes[1].weight: expected a finite number from 1e-06 to 1e+06", "got nan"],
     "file, line, prompt id, the vote; the allowed weight range"),
    ("weight_negative", bad(lambda r: r["votes"][1].update(weight=-0.5)),
     ["line 2 (prompt_id 'p2'): votes[1].weight: expected a finite number from 1e-06 to 1e+06", "got -0.5"],
     "file, line, prompt id, the vote; the allowed weight range"),
    ("weight_zero", bad(lambda r: r["votes"][1].update(weight=0)),
     ["line 2 (prompt_id 'p2'): votes[1].weight: expected a finite number from 1e-06 to 1e+06", "got 0"],
     "file, line, prompt id, the vote; the allowed weight range"),
    ("empty_file", b"",
     ["no ballot records (empty, or only blank lines)", "expected at least one prompt"],
     "the file; at least one record expected"),
    ("blank_lines_only", b"\n  \n\n",
     ["no ballot records (empty, or only blank lines)", "expected at least one prompt"],
     "the file; at least one record expected"),
    # issue 22, finding 9: blank responses and texts that differ only in case or spacing
    ("empty_candidate", bad(lambda r: r["candidates"][1].update(text="")),
     ["line 2 (prompt_id 'p2'): candidates[1].text: expected the response's text, got ''"],
     "file, line, prompt id and the candidate; a response with text expected"),
    ("whitespace_candidate", bad(lambda r: r["candidates"][1].update(text=" \n\t ")),
     ["line 2 (prompt_id 'p2'): candidates[1].text: expected the response's text", "(empty or only white space)"],
     "file, line, prompt id and the candidate; a response with text expected"),
    ("texts_differ_in_spacing_only", bad(lambda r: r["candidates"][1].update(text="Boil  it.\n")),
     ["line 2 (prompt_id 'p2'): candidates[1].text: candidate 'b' has the same text as candidate 'a' (candidates[0])",
      "ignoring case and runs of white space", "expected distinct response texts"],
     "file, line, prompt id and both candidate ids; texts distinct up to white space expected"),
    ("texts_differ_in_case_and_spacing", bad(lambda r: r["candidates"][2].update(text="  boil\n\nIT. ")),
     ["line 2 (prompt_id 'p2'): candidates[2].text: candidate 'c' has the same text as candidate 'a' (candidates[0])"],
     "file, line, prompt id and both candidate ids; texts distinct up to case and white space expected"),
    # finding 10: a response that writes the next turn (prompt_format style hh, the default)
    ("hh_human_marker_in_candidate", bad(lambda r: r["candidates"][1].update(text="Steam it.\n\nHuman: And then?")),
     ["line 2 (prompt_id 'p2'): candidates[1].text: candidate 'b' contains the turn marker '\\n\\nHuman:'",
      "data.candidate_turn_markers: drop"],
     "file, line, prompt id, candidate and the marker; the option to drop such candidates"),
    ("hh_assistant_marker_in_candidate",
     bad(lambda r: r["candidates"][2].update(text="Buy it.\n\nAssistant: Or cook it.")),
     ["line 2 (prompt_id 'p2'): candidates[2].text: candidate 'c' contains the turn marker '\\n\\nAssistant:'"],
     "file, line, prompt id, candidate and the marker"),
    # finding 12: a lone surrogate (valid JSON, not text) in any field that is written back
    ("lone_surrogate_in_candidate_text", bad(lambda r: r["candidates"][1].update(text="Steam \ud800 it.")),
     ["line 2 (prompt_id 'p2'): candidates[1].text: character '\\ud800' at position 6 is not encodable as UTF-8",
      "expected UTF-8 text"],
     "file, line, prompt id and the field; UTF-8 text expected"),
    ("lone_surrogate_in_prompt", bad(lambda r: r.update(prompt="How do I cook \udc00rice?")),
     ["line 2 (prompt_id 'p2'): prompt: character '\\udc00' at position 14 is not encodable as UTF-8"],
     "file, line, prompt id and the field; UTF-8 text expected"),
    ("lone_surrogate_in_candidate_id", bad(lambda r: r["candidates"][0].update(id="a\ud800")),
     ["line 2 (prompt_id 'p2'): candidates[0].id: character '\\ud800' at position 1 is not encodable as UTF-8"],
     "file, line, prompt id and the field; UTF-8 text expected"),
    ("lone_surrogate_in_prompt_id", bad(lambda r: r.update(prompt_id="p\udfff")),
     ["line 2 (prompt_id 'p\\udfff'): prompt_id: character '\\udfff' at position 1 is not encodable as UTF-8"],
     "file, line, the prompt id (escaped) and the field; UTF-8 text expected"),
    ("lone_surrogate_in_voter", bad(lambda r: r["votes"][1].update(voter="v\ud800")),
     ["line 2 (prompt_id 'p2'): votes[1].voter: character '\\ud800' at position 1 is not encodable as UTF-8"],
     "file, line, prompt id and the field; UTF-8 text expected"),
]


@pytest.mark.parametrize("name,data,fragments,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_ballots_file(case, config, tmp_path, name, data, fragments, expected):
    case.expect(f"error naming {expected}; no output written")
    msg, src = run_ballots(config, tmp_path, data)
    case.observe(msg.replace(str(tmp_path), "<tmp>"))
    assert msg.startswith(f"{src}: "), msg
    for fragment in fragments:
        assert fragment in msg, msg
    assert "Traceback" not in msg


def test_multi_turn_prompt_and_emoji_are_accepted(case, config, tmp_path):
    case.expect("a prompt holding earlier HH turns and an emoji (a valid surrogate pair in JSON) is kept "
                "as it is: only candidates are checked for turn markers")
    rec = good("p1")
    rec["prompt"] = "Hi!\n\nAssistant: Hello, how can I help?\n\nHuman: How do I cook rice \U0001F35A?"
    src, out = tmp_path / "multi.jsonl", tmp_path / "ballots.jsonl"
    src.write_bytes(lines(rec, good("p2")))
    script("ballots").main(["--config-json", ballots_slice(config, src), "--source-file", str(src), "--out", str(out)])
    prompts = [json.loads(line)["prompt"] for line in out.read_text(encoding="utf-8").splitlines()]
    case.observe(f"written prompts {prompts}")
    assert prompts == [rec["prompt"], good("p2")["prompt"]]


def test_turn_marker_candidates_dropped_when_configured(case, config, tmp_path):
    case.expect("data.candidate_turn_markers: drop: candidates holding a turn marker are dropped with the "
                "votes left comparing nothing (a prompt left with one candidate too), counted in the job log")
    p2, p3 = good("p2"), good("p3")
    p2["candidates"][1]["text"] = "Steam it.\n\nHuman: Thanks!"
    p3["candidates"][0]["text"] = "Boil it.\n\nAssistant: Or fry it."
    p3["candidates"][1]["text"] = "Steam it.\n\nHuman: And?"
    src, out = tmp_path / "marked.jsonl", tmp_path / "ballots.jsonl"
    src.write_bytes(lines(good("p1"), p2, p3))
    cfg = copy.deepcopy(config)
    cfg["data"]["candidate_turn_markers"] = "drop"
    # the job as the rule runs it: its log is stdout and stderr together
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "ballots.py"), "--config-json",
                          ballots_slice(cfg, src), "--source-file", str(src), "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    job_log = run.stdout + run.stderr
    dropped = [line for line in job_log.splitlines() if "dropped" in line]
    case.observe((dropped or job_log.strip().splitlines()[-1:] or [f"exit {run.returncode}, no log"])[0]
                 .replace(str(tmp_path), "<tmp>"))
    assert run.returncode == 0, job_log
    assert f"{src}: dropped 3 candidates containing a turn marker" in job_log
    assert "1 votes left comparing nothing (a pair with one of them, a ranking of only them), and 1 prompts left" in job_log
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prompt_id"] for r in recs] == ["p1", "p2"]
    assert [c["id"] for c in recs[1]["candidates"]] == ["a", "c"]
    assert recs[1]["votes"] == [{"ranking": [["a"], ["c"]], "weight": 1.0}, {"ranking": [["a"], ["c"]], "weight": 0.5},
                                {"pair": ["a", "c"], "winner": "c"}]


def test_default_synthetic_ballots_read_back_as_jsonl(case, config, tmp_path):
    case.expect("the default synthetic ballots, written by the ballots job and fed back as data.source "
                "jsonl, are accepted unchanged (no prompt has two candidates with the same text)")
    first, again = tmp_path / "synthetic.jsonl", tmp_path / "again.jsonl"
    script("ballots").main(["--config-json", json.dumps(job_config(config, "ballots")), "--out", str(first)])
    try:
        script("ballots").main(["--config-json", ballots_slice(config, first), "--source-file", str(first),
                                "--out", str(again)])
    except SystemExit as exc:
        case.observe(str(exc).replace(str(tmp_path), "<tmp>"))
        raise
    case.observe(f"read back {len(first.read_text().splitlines())} prompts unchanged")
    assert again.read_bytes() == first.read_bytes()


def test_jsonl_source_needs_source_file(case, config, tmp_path):
    case.expect("data.source jsonl without --source-file: error naming --source-file and data.jsonl.path")
    src = tmp_path / "my_ballots.jsonl"
    src.write_bytes(lines(good("p1"), good("p2")))
    out = tmp_path / "ballots.jsonl"
    with pytest.raises(SystemExit) as exc:
        script("ballots").main(["--config-json", ballots_slice(config, src), "--out", str(out)])
    case.observe(exc.value)
    assert "--source-file: required for data.source 'jsonl'" in str(exc.value)
    assert "data.jsonl.path" in str(exc.value) and not out.exists()


def test_source_file_is_what_is_read(case, config, tmp_path):
    case.expect("the file named by --source-file is read (the rule declares it, so an edit reruns the job)")
    src = tmp_path / "edited.jsonl"
    src.write_bytes(lines(good("p1"), good("p2"), good("p3")))
    out = tmp_path / "ballots.jsonl"
    # data.jsonl.path names another (missing) file: only --source-file counts
    cfg = ballots_slice(config, tmp_path / "elsewhere.jsonl")
    script("ballots").main(["--config-json", cfg, "--source-file", str(src), "--out", str(out)])
    ids = [json.loads(line)["prompt_id"] for line in out.read_text().splitlines()]
    case.observe(f"read {ids}")
    assert ids == ["p1", "p2", "p3"]
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(SystemExit, match=rf"{missing}: no such file"):
        script("ballots").main(["--config-json", cfg, "--source-file", str(missing), "--out", str(out)])


# -- damaged workflow files --------------------------------------------------------------------


@pytest.fixture
def data_stage(config, tmp_path) -> dict:
    """A small real data stage: ballots (jsonl), split, both pools; returns paths and args."""
    cfg = copy.deepcopy(config)
    src = tmp_path / "src.jsonl"
    src.write_bytes(lines(*(good(f"p{i}") for i in range(12))))
    cfg["data"].update(source="jsonl", n_eval_prompts=2)
    cfg["data"]["jsonl"]["path"] = str(src)
    d = tmp_path / "data"
    paths = {"ballots": d / "ballots.jsonl", "split": d / "split.json",
             "maj": d / "pool" / "maj.parquet", "sc": d / "pool" / "sc.parquet"}
    data_cfg = json.dumps(job_config(cfg, "data"))
    script("ballots").main(["--config-json", json.dumps(job_config(cfg, "ballots")), "--source-file", str(src),
                            "--out", str(paths["ballots"])])
    script("split").main(["--config-json", json.dumps(job_config(cfg, "split")), "--ballots", str(paths["ballots"]),
                          "--out", str(paths["split"])])
    for arm in ("maj", "sc"):
        script("pool").main(["--config-json", data_cfg, "--ballots", str(paths["ballots"]), "--split",
                             str(paths["split"]), "--arm", arm, "--out", str(paths[arm])])
    return {"paths": paths, "config": data_cfg, "dir": d, "cfg": cfg}


def series_args(stage: dict, out_dir: Path) -> list[str]:
    p = stage["paths"]
    return ["--config-json", stage["config"], "--ref-pool", str(p["maj"]), "--pool", str(p["sc"]),
            "--arm", "sc", "--matching", "size", "--size", "4", "--pairs-out", str(out_dir / "pairs.parquet"),
            "--manifest-out", str(out_dir / "manifest.json")]


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_truncated_pool_through_series(case, data_stage, damage):
    case.expect("series on a truncated pool: error naming the pool, 'corrupt or truncated' and how to "
                "rebuild it (snakemake <path>); no series written")
    pool = data_stage["paths"]["sc"]
    blob = pool.read_bytes()
    pool.write_bytes(blob[: len(blob) // 2] if damage == "truncated" else b"")
    out_dir = data_stage["dir"] / "sc" / "size" / "n4"
    with pytest.raises(SystemExit) as exc:
        script("series").main(series_args(data_stage, out_dir))
    msg = str(exc.value)
    case.observe(msg.replace(str(data_stage["dir"]), "<data>"))
    assert msg.startswith(f"{pool}: corrupt or truncated Parquet file"), msg
    assert f"delete it and rerun `snakemake {pool}`" in msg and "--forcerun" in msg
    assert not out_dir.exists()


def test_series_of_an_intact_pool_still_works(data_stage):
    # the damaged-file cases above fail because of the damage, not of the setup
    out_dir = data_stage["dir"] / "sc" / "size" / "n4"
    script("series").main(series_args(data_stage, out_dir))
    assert json.loads((out_dir / "manifest.json").read_text())["n_pairs"] == 4


def test_truncated_split_through_pool(case, data_stage):
    case.expect("pool on a truncated split.json: error naming the file, 'not valid JSON' and how to rebuild it")
    split = data_stage["paths"]["split"]
    split.write_bytes(split.read_bytes()[:40])
    out = data_stage["dir"] / "pool" / "maj2.parquet"
    with pytest.raises(SystemExit) as exc:
        script("pool").main(["--config-json", data_stage["config"], "--ballots", str(data_stage["paths"]["ballots"]),
                             "--split", str(split), "--arm", "maj", "--out", str(out)])
    msg = str(exc.value)
    case.observe(msg.replace(str(data_stage["dir"]), "<data>"))
    assert msg.startswith(f"{split}: not valid JSON") and f"snakemake {split}" in msg, msg
    assert not out.exists()


def test_unvalidated_huge_weight_through_pool(case, data_stage):
    case.expect("pool on a ballots.jsonl edited by hand to weight 1e308: error naming the prompt and the "
                "vote's weight before any pair is built (no NaN margins, no crash in rules.pick); no pool written")
    ballots = data_stage["paths"]["ballots"]
    recs = [json.loads(line) for line in ballots.read_text().splitlines()]
    recs[3]["votes"][1]["weight"] = 1e308
    ballots.write_bytes(lines(*recs))
    out = data_stage["dir"] / "pool" / "maj2.parquet"
    with pytest.raises(SystemExit) as exc:
        script("pool").main(["--config-json", data_stage["config"], "--ballots", str(ballots),
                             "--split", str(data_stage["paths"]["split"]), "--arm", "sc", "--out", str(out)])
    msg = str(exc.value)
    case.observe(msg)
    assert msg.startswith(f"{ballots}: prompt_id {recs[3]['prompt_id']!r}: votes[1].weight: expected a finite number from 1e-06 to 1e+06"), msg
    assert "got 1e+308" in msg and not out.exists()


def test_sft_file_with_an_eval_prompt_in_other_case_or_spacing(case, data_stage, tmp_path):
    case.expect("an SFT jsonl file whose prompt is a held-out eval prompt up to case and doubled spaces is "
                "refused naming the eval prompt id and the SFT example; no corpus written")
    eval_id = json.loads(data_stage["paths"]["split"].read_text())["eval_prompt_ids"][0]
    ballots = [json.loads(line) for line in data_stage["paths"]["ballots"].read_text().splitlines()]
    eval_text = next(r["prompt"] for r in ballots if r["prompt_id"] == eval_id)
    variant = eval_text.upper().replace(" ", "  ")
    sft = tmp_path / "my_sft.jsonl"
    sft.write_bytes(lines({"prompt": "A question of our own?", "completion": "Our answer."},
                          {"prompt": variant, "completion": "Leaked answer."}))
    cfg = copy.deepcopy(data_stage["cfg"])
    cfg["sft"]["data"].update(source="jsonl", path=str(sft))
    out = tmp_path / "sft.jsonl"
    with pytest.raises(SystemExit) as exc:
        script("sft_corpus").main(["--config-json", json.dumps(job_config(cfg, "sft_corpus")),
                                   "--ballots", str(data_stage["paths"]["ballots"]),
                                   "--split", str(data_stage["paths"]["split"]), "--sft-data", str(sft),
                                   "--out", str(out)])
    msg = str(exc.value)
    case.observe(msg.replace(str(tmp_path), "<tmp>"))
    assert msg.startswith(f"{sft}: 1 SFT prompts are held-out eval prompts (eval prompt ids '{eval_id}'"), msg
    assert "SFT examples sft-2 (line 2)" in msg and not out.exists()
