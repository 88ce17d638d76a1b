"""Bad configs, tried as a user types them: each stops the run before any job, and the message
names the key (or file) and what is allowed."""

from __future__ import annotations

import os

import pytest

from tests.conftest import REPO
from tests.test_dag import snakemake

pytestmark = pytest.mark.reliability

# (case id, --config values (or a --configfile text), strings the message must contain)
CASES = [
    ("unknown top-level key", ["dpoo={beta: 0.2}"], ["dpoo", "unknown key", "allowed keys", "dpo"]),
    ("misspelt training key", ["dpo={lerning_rate: 0.1}"], ["dpo.lerning_rate", "did you mean 'learning_rate'"]),
    ("misspelt deep key", ["data={synthetic: {n_promts: 10}}"], ["data.synthetic.n_promts", "n_prompts"]),
    ("misspelt lora key", ["dpo={lora: {rank: 4}}"], ["dpo.lora.rank", "allowed keys", "lora_alpha"]),
    ("misspelt judge key", ["eval={judge: {modle: gpt-4}}"], ["eval.judge.modle", "did you mean 'mode"]),
    ("wrong type", ["dpo={beta: high}"], ["dpo.beta", "'high'", "expected number"]),
    ("sizes not a list", ["data={sizes: 5}"], ["data.sizes", "expected array"]),
    ("beta out of bounds", ["dpo={beta: 0}"], ["dpo.beta", "expected a value > 0"]),
    ("loss weights do not match", ["dpo={loss_type: [sigmoid, sft], loss_weights: [1.0]}"],
     ["dpo.loss_weights", "1 weights for 2 losses", "dpo.loss_type"]),
    ("no eval prompts", ["data={n_eval_prompts: 0}"], ["data.n_eval_prompts", ">= 1"]),
    ("warmup ratio above 1", ["dpo={warmup_ratio: 1.5}"], ["dpo.warmup_ratio", "< 1"]),
    ("duplicate sizes", ["data={sizes: [0, 64, 64]}"], ["data.sizes", "duplicate"]),
    ("unreachable size", ["data={sizes: [0, 100000]}"], ["data.sizes", "100000", "cannot be reached", "n_prompts"]),
    ("only the zero point", ["data={sizes: [0]}"], ["data.sizes", "no size > 0"]),
    ("empty seeds", ["dpo={seeds: []}"], ["dpo.seeds", "at least 1 item"]),
    ("negative seed", ["dpo={seeds: [-1]}"], ["dpo.seeds.0", ">= 0"]),
    ("unknown arm", ["data={reference_arm: median}"], ["data.reference_arm", "'median'", "maj, sc"]),
    ("unknown rule", ["sc={rule: bordaa}"], ["sc.rule", "bordaa", "borda", "copeland"]),
    ("unknown rule in a list", ["sc={rule: [borda, maximal_lotery]}"], ["sc.rule", "maximal_lotery", "maximal_lottery"]),
    ("unknown init in a list", ["dpo={init: [sft, sfft]}"], ["dpo.init", "'sfft'", "sft or base"]),
    ("unknown judge", ["eval={judge: {type: gpt}}"], ["eval.judge.type", "'gpt'", "'electorate', 'llm'"]),
    ("unknown matching", ["data={matchings: [prompt, length]}"], ["data.matchings.1", "'length'", "'prompt', 'size'"]),
    ("missing API key", "llm-judge", ["eval.judge.api_key_env", "PREFSWEEP_TEST_KEY", "not set"]),
    ("missing ballots file", ["data={source: jsonl, jsonl: {path: no/such/ballots.jsonl}}"],
     ["data.jsonl.path", "no/such/ballots.jsonl", "no such file"]),
    ("jsonl without a path", ["data={source: jsonl}"], ["data.jsonl.path", "required"]),
    ("missing judge prompts", "missing-judge-prompts", ["eval.judge.judge_prompts", "nope.jsonl", "no such file"]),
    ("missing local model", ["model={preset: hf, name_or_path: ./models/pythia-missing}"],
     ["model.name_or_path", "./models/pythia-missing", "no such directory"]),
    ("hf preset without a model", ["model={preset: hf}"], ["model.name_or_path", "required"]),
    ("context too short", ["dpo={max_length: 512}"], ["dpo.max_length", "512", "max_position_embeddings"]),
    ("malformed --config YAML", ["dpo={beta: 0.2"], ["--config dpo=", "not valid YAML"]),
    ("electorate judge on real data", ["data={source: shp}"], ["eval.judge.type", "electorate", "synthetic"]),
    ("missing SFT file", ["sft={data: {source: jsonl, path: no/such/sft.jsonl}}"],
     ["sft.data.path", "no/such/sft.jsonl", "no such file"]),
    ("unknown ballot source", ["data={source: multiprefs}"], ["data.source", "'multiprefs'", "'multipref'"]),
    ("unknown SFT source", ["sft={data: {source: chosen}}"], ["sft.data.source", "'chosen'", "'best_response'"]),
]

CONFIG_FILES = {
    "llm-judge": "eval:\n  judge: {type: llm, api_key_env: PREFSWEEP_TEST_KEY}\n",
    "missing-judge-prompts": "eval:\n  judge: {type: llm, api_key_env: null, judge_prompts: nope.jsonl}\n",
}


@pytest.mark.parametrize("name, config, needles", CASES, ids=[c[0] for c in CASES])
def test_bad_config_stops_before_any_job(tmp_path, case, name, config, needles):
    case.expect("error naming " + ", ".join(needles[:2]) + "; no job runs")
    if isinstance(config, str):
        path = tmp_path / "bad.yaml"
        path.write_text(CONFIG_FILES[config])
        args = ["--configfile", str(REPO / "config/config.yaml"), str(path)]
    else:
        args = ["--config", *config]
    env_key = os.environ.pop("PREFSWEEP_TEST_KEY", None)
    try:
        # A real run, not -n: nothing may start.
        proc = snakemake("--cores", "1", *args, cwd=tmp_path, check=False)
    finally:
        if env_key is not None:
            os.environ["PREFSWEEP_TEST_KEY"] = env_key
    out = proc.stdout + proc.stderr
    message = next((line for line in out.splitlines() if any(n in line for n in needles)), out[-300:])
    case.observe(message)
    assert proc.returncode != 0
    for needle in needles:
        assert needle in out, f"{needle!r} not in:\n{out[-3000:]}"
    assert "Traceback" not in out and "$schema" not in out  # one clear line, no dump
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


def job_slices(output: str) -> dict[str, dict]:
    """``--out`` path -> ``--config-json`` slice of every job in a ``snakemake -n -p`` output
    (the params Snakemake compares to decide whether a finished job reruns)."""
    import json
    import shlex

    slices = {}
    for line in output.splitlines():
        if not line.startswith("Shell command:") or "--config-json" not in line:
            continue
        words = shlex.split(line.split(":", 1)[1].split(" > ")[0])
        args = dict(zip(words, words[1:]))
        slices[args.get("--out", words[-1])] = json.loads(args["--config-json"])
    return slices


def test_exponent_learning_rate_in_a_config_file(tmp_path, case):
    """PyYAML reads `5e-7` (no dot) as a string (YAML 1.1): the schema's type makes it a number."""
    import json
    import subprocess
    import sys

    case.expect("dpo: {learning_rate: 5e-7} in a config file: every DPO job's slice has the float 5e-07")
    path = tmp_path / "lr.yaml"
    path.write_text("dpo: {learning_rate: 5e-7}\n")
    proc = snakemake("-n", "-p", "--configfile", str(REPO / "config/config.yaml"), str(path), cwd=tmp_path,
                     check=False)
    out = proc.stdout + proc.stderr
    dpo = {k: v for k, v in job_slices(proc.stdout).items() if "/train/dpo/" in k}
    if proc.returncode:
        case.observe(next((line for line in out.splitlines() if "dpo.learning_rate" in line), out[-300:]))
    assert proc.returncode == 0, out[-2000:]
    case.observe(f"{len(dpo)} DPO jobs, learning_rate: "
                 + ", ".join(sorted({repr(s['dpo']['learning_rate']) for s in dpo.values()})))
    assert dpo and {type(s["dpo"]["learning_rate"]) for s in dpo.values()} == {float}
    assert {s["dpo"]["learning_rate"] for s in dpo.values()} == {5e-07}
    # the slice a script run by hand gets (prefsweep.config.load_config) is the same
    hand = subprocess.run([sys.executable, "-m", "prefsweep.config", "dpo", "--configfile", str(path)],
                          capture_output=True, text=True, cwd=REPO)
    assert hand.returncode == 0, hand.stderr[-2000:]
    assert json.loads(hand.stdout) == next(iter(dpo.values()))


def test_a_learning_rate_that_is_no_number_names_the_key(tmp_path, case):
    case.expect("error naming dpo.learning_rate, the value and how to write a number; no job runs")
    path = tmp_path / "lr.yaml"
    path.write_text("dpo: {learning_rate: 5e-7x}\n")
    proc = snakemake("--cores", "1", "--configfile", str(REPO / "config/config.yaml"), str(path), cwd=tmp_path,
                     check=False)
    out = proc.stdout + proc.stderr
    case.observe(next((line for line in out.splitlines() if "dpo.learning_rate" in line), out[-300:]))
    assert proc.returncode != 0
    for needle in ("dpo.learning_rate", "'5e-7x'", "expected number", "5.0e-7"):
        assert needle in out, f"{needle!r} not in:\n{out[-3000:]}"
    assert "Traceback" not in out and not (tmp_path / "results").exists()
