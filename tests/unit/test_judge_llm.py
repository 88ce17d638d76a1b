"""The LLM judge against a scripted chat-completions server on loopback (tests/fixtures)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from prefsweep import judge_llm as jl
from prefsweep.io import atomic_write_json, atomic_write_jsonl

REPO = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


srv = _load("judge_server", REPO / "tests" / "fixtures" / "judge_server.py")
script = _load("judge_llm_script", REPO / "scripts" / "judge_llm.py")

KEY = "sk-test-5ecret-0123456789abcdef"
QUESTIONS = [
    {"question_id": f"q{i}", "category": "t", "turns": [f"Question number {i}?"]} for i in range(4)
]


def answers(model: str, texts: list[str]) -> list[dict]:
    return [{"question_id": f"q{i}", "answer_id": f"{model}-{i}", "model_id": model,
             "choices": [{"index": 0, "turns": [t]}], "tstamp": 0.0} for i, t in enumerate(texts)]


def prefers_good(request) -> srv.Action:
    """A judge that prefers the reply containing GOOD; rates GOOD 9, anything else 3."""
    if "[[A]]" in request.system:
        reply_a = request.user.split("### Reply of assistant A")[1].split("### Reply of assistant B")[0]
        reply_b = request.user.split("### Reply of assistant B")[1]
        a, b = "GOOD" in reply_a, "GOOD" in reply_b
        return srv.Reply("Verdict: " + ("[[A]]" if a and not b else "[[B]]" if b and not a else "[[C]]"))
    return srv.Reply("Grade: [[9]]" if "GOOD" in request.user else "Grade: [[3]]")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server():
    with srv.JudgeServer(default=prefers_good) as s:
        yield s


@pytest.fixture
def files(tmp_path):
    """Question file, two models' answers and a baseline (sft), reference answers."""
    d = tmp_path / "eval"
    atomic_write_jsonl(d / "question.jsonl", QUESTIONS)
    atomic_write_jsonl(d / "model_answer" / "dpo-a.jsonl", answers("dpo-a", ["GOOD 0", "GOOD 1", "meh 2", "GOOD 3"]))
    atomic_write_jsonl(d / "model_answer" / "sft.jsonl", answers("sft", ["meh 0", "meh 1", "GOOD 2", "meh 3"]))
    # Same answers as dpo-a except question q3: only q3's two games are new.
    atomic_write_jsonl(d / "model_answer" / "dpo-b.jsonl", answers("dpo-b", ["GOOD 0", "GOOD 1", "meh 2", "other 3"]))
    atomic_write_jsonl(d / "reference_answer" / "reference.jsonl", answers("reference", ["GOOD"] * 4))
    return d


def settings(server, **kw) -> jl.JudgeSettings:
    base = dict(model="judge-x", api_base=server.api_base, parallel=2, max_retries=3, timeout=5.0,
                backoff=0.001, backoff_max=0.01)
    return jl.JudgeSettings(**{**base, **kw})


def run(s, files, model="dpo-a", mode="pairwise", baseline="model_answer/sft.jsonl", env=None, lines=None):
    out = files / "model_judgment" / f"judge-x_{'pair' if mode == 'pairwise' else 'single'}" / f"{model}.jsonl"
    records = jl.judge_answers(
        s, mode=mode, questions_path=files / "question.jsonl",
        answers_path=files / "model_answer" / f"{model}.jsonl",
        baseline_path=(files / baseline) if baseline else None,
        cache_dir=files / "judge_cache", out_path=out,
        env={"OPENAI_API_KEY": KEY} if env is None else env,
        echo=(lines.append if lines is not None else lambda line: None))
    return records, out


def cache_files(files) -> list[Path]:
    return sorted((files / "judge_cache").glob("*/*.json"))


# --- parsing and prompts ----------------------------------------------------------------------
@pytest.mark.parametrize("text, fmt, want", [
    ("blah [[A]]", "[[A]]", "A"), ("[[B]] final", "[[A]]", "B"), ("so [[C]]", "[[A]]", "tie"),
    ("I pick A", "[[A]]", "error"), ("[[A]] or [[B]]", "[[A]]", "A"),
    ("[[7, 3]]", "[[rating_a,rating_b]]", "A"), ("[2,8.5]", "[[rating_a,rating_b]]", "B"),
    ("[[5, 5.05]]", "[[rating_a,rating_b]]", "tie"), ("none", "[[rating_a,rating_b]]", "error"),
])
def test_parse_pair_verdict(text, fmt, want):
    assert jl.parse_pair_verdict(text, fmt) == want


@pytest.mark.parametrize("text, want", [("Grade: [[7]]", 7), ("[[8.5]]", 8.5), ("[6] ok", 6), ("no grade", -1)])
def test_parse_single_rating(text, want):
    assert jl.parse_single_rating(text) == want


def test_shipped_prompts_are_valid_fastchat_records():
    prompts = jl.load_judge_prompts()
    assert set(prompts) >= {"prefsweep-pair-v1", "prefsweep-single-v1"}
    for p in prompts.values():
        assert set(p) == {"name", "type", "system_prompt", "prompt_template", "description",
                          "category", "output_format"}
        jl.check_judge_prompt(p, p["type"])
    assert prompts["prefsweep-pair-v1"]["output_format"] == "[[A]]"
    assert prompts["prefsweep-single-v1"]["output_format"] == "[[rating]]"


def test_unsupported_prompts_are_rejected(tmp_path):
    multi = {"name": "mt", "type": "pairwise", "system_prompt": "s", "output_format": "[[A]]",
             "prompt_template": "{question_1}{answer_a_1}{answer_b_1}"}
    with pytest.raises(jl.JudgeError, match="multi-turn"):
        jl.check_judge_prompt(multi, "pairwise")
    with pytest.raises(jl.JudgeError, match="type"):
        jl.check_judge_prompt(jl.load_judge_prompts()["prefsweep-single-v1"], "pairwise")
    atomic_write_jsonl(tmp_path / "p.jsonl", [multi])
    with pytest.raises(jl.JudgeError, match="not in"):
        jl.select_judge_prompt(jl.JudgeSettings(judge_prompts=str(tmp_path / "p.jsonl")), "pairwise")


def test_settings_from_config():
    s = jl.JudgeSettings.from_config({"type": "llm", "model": "m", "api_base": None, "parallel": 8})
    assert (s.model, s.api_base, s.parallel, s.api_key_env, s.max_retries) == ("m", None, 8, "OPENAI_API_KEY", 5)
    assert jl.JudgeSettings.from_config({"api_key_env": None}).api_key_env is None
    assert s.resolved_api_base({"OPENAI_API_BASE": "http://h/v1/"}) == "http://h/v1"
    assert jl.JudgeSettings(api_base="http://c/v1").resolved_api_base({"OPENAI_API_BASE": "x"}) == "http://c/v1"
    with pytest.raises(jl.JudgeError, match="parallel"):
        jl.JudgeSettings(parallel=0)


def test_cache_key_covers_every_input():
    prompt = jl.load_judge_prompts()["prefsweep-pair-v1"]
    base = dict(judge_model="m", prompt=prompt, question_id="q", question="Q", answer_a="a",
                answer_b="b", order="g1", temperature=0.0, max_tokens=10)
    k = jl.cache_key(**base)
    assert k == jl.cache_key(**base)
    changes = [{"judge_model": "n"}, {"prompt": {**prompt, "prompt_template": prompt["prompt_template"] + " "}},
               {"prompt": {**prompt, "name": "other"}}, {"question_id": "r"}, {"question": "Q2"},
               {"answer_a": "b"}, {"answer_b": "a"}, {"order": "g2"}, {"temperature": 0.5}, {"max_tokens": 11}]
    assert len({jl.cache_key(**{**base, **c}) for c in changes} | {k}) == len(changes) + 1


def _fastchat_common(monkeypatch):
    """fastchat/llm_judge/common.py itself, loaded with light stand-ins for its heavy imports.

    Its real imports (fastchat.model.model_adapter -> torch, transformers; anthropic; openai)
    take 10-30 s here and play no part in prompt rendering or verdict parsing; the stand-in
    conversation template is FastChat's own "chatgpt" template, which it uses for gpt-4.
    """
    import types

    from fastchat.conversation import get_conv_template

    adapter = types.ModuleType("fastchat.model.model_adapter")
    adapter.get_conversation_template = lambda model: get_conv_template("chatgpt")
    adapter.OPENAI_MODEL_LIST, adapter.ANTHROPIC_MODEL_LIST = ("gpt-4",), ()
    package = types.ModuleType("fastchat.model")
    package.model_adapter = adapter
    for name, module in [("fastchat.model", package), ("fastchat.model.model_adapter", adapter),
                         ("openai", types.ModuleType("openai")), ("anthropic", types.ModuleType("anthropic"))]:
        monkeypatch.setitem(sys.modules, name, module)
    origin = importlib.util.find_spec("fastchat.llm_judge.common").origin
    spec = importlib.util.spec_from_file_location("_fastchat_common", origin)
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    return common


def test_matches_fastchat_prompt_rendering_and_parsing(monkeypatch):
    """Our rendering and parsing give what FastChat's run_judge_pair / run_judge_single give."""
    common = _fastchat_common(monkeypatch)
    prompts = jl.load_judge_prompts()
    judge_pair = common.Judge("gpt-4", prompts["prefsweep-pair-v1"])
    judge_single = common.Judge("gpt-4", prompts["prefsweep-single-v1"])
    q = {"question_id": "q", "turns": ["What {is} 2+2?"]}
    a1 = {"choices": [{"turns": ["4, {x}"]}]}
    a2 = {"choices": [{"turns": ["five"]}]}
    seen = []

    def fake_api(judgment):
        def chat_completion_openai(model, conv, temperature, max_tokens, api_dict=None):
            seen.append(conv.to_openai_api_messages())
            return judgment
        return chat_completion_openai

    pair = prompts["prefsweep-pair-v1"]
    for judgment in ["x [[A]]", "[[B]]", "[[C]]", "nothing", "[[A]] [[B]]"]:
        monkeypatch.setattr(common, "chat_completion_openai", fake_api(judgment))
        winner, user_prompt, _ = common.run_judge_pair(q, a1, a2, judge_pair, None)
        assert winner == jl.parse_pair_verdict(judgment)
        assert user_prompt == jl.format_pair_prompt(pair, "What {is} 2+2?", "4, {x}", "five")
        assert seen[-1] == jl.JudgeRequest("k", "q", "g1", pair["system_prompt"], user_prompt).messages()
    single = prompts["prefsweep-single-v1"]
    for judgment in ["Grade: [[7]]", "[4.5]", "none"]:
        monkeypatch.setattr(common, "chat_completion_openai", fake_api(judgment))
        score, user_prompt, _ = common.run_judge_single(q, a1, judge_single, None)
        assert score == jl.parse_single_rating(judgment)
        assert user_prompt == jl.format_single_prompt(single, "What {is} 2+2?", "4, {x}")
        assert seen[-1] == jl.JudgeRequest("k", "q", "single", single["system_prompt"], user_prompt).messages()
    for pattern in ("one_score_pattern", "one_score_pattern_backup", "two_score_pattern", "two_score_pattern_backup"):
        assert getattr(common, pattern).pattern == getattr(jl, pattern.upper()).pattern
    assert common.TIE_DELTA == jl.TIE_DELTA


# --- against the loopback server --------------------------------------------------------------
def test_pairwise_valid_verdicts_both_orders(server, files):
    lines = []
    records, out = run(settings(server), files, lines=lines)
    assert lines[0] == "judge: 8 comparisons, 0 cached, 8 API calls"
    assert server.n_requests == 8
    r0 = server.requests[0]
    assert r0.path == "/v1/chat/completions"
    assert r0.headers["Authorization"] == f"Bearer {KEY}"
    assert r0.body["model"] == "judge-x" and r0.body["temperature"] == 0 and r0.body["max_tokens"] == 1024
    assert [m["role"] for m in r0.messages] == ["system", "user"]
    assert [(r["g1_winner"], r["g2_winner"]) for r in records] == [("model_1", "model_1")] * 2 + [
        ("model_2", "model_2"), ("model_1", "model_1")]
    on_disk = [json.loads(line) for line in out.read_text().splitlines()]
    assert on_disk == records
    assert list(on_disk[0]) == ["question_id", "model_1", "model_2", "g1_winner", "g2_winner", "judge",
                                "g1_user_prompt", "g1_judgment", "g2_user_prompt", "g2_judgment", "turn", "tstamp"]
    assert on_disk[0]["judge"] == ["judge-x", "prefsweep-pair-v1"]
    assert (on_disk[0]["model_1"], on_disk[0]["model_2"]) == ("dpo-a", "sft")
    # g1 shows model_1 as A, g2 the baseline as A.
    assert on_disk[0]["g1_user_prompt"].index("GOOD 0") < on_disk[0]["g1_user_prompt"].index("meh 0")
    assert on_disk[0]["g2_user_prompt"].index("meh 0") < on_disk[0]["g2_user_prompt"].index("GOOD 0")


def test_show_result_reads_pairwise_and_single(server, files, capsys):
    from fastchat.llm_judge import show_result

    _, pair = run(settings(server), files)
    _, single = run(settings(server), files, mode="single", baseline=None)
    capsys.readouterr()
    show_result.display_result_pairwise(Namespace(input_file=str(pair), model_list=None, baseline_model="sft"))
    text = capsys.readouterr().out
    assert "dpo-a" in text and "0.75" in text  # 3 wins, 1 loss
    show_result.display_result_single(Namespace(input_file=str(single), model_list=None, bench_name="prefsweep"))
    assert "dpo-a" in capsys.readouterr().out
    # And as the command line runs it.
    proc = subprocess.run([sys.executable, "-m", "fastchat.llm_judge.show_result", "--input-file", str(pair),
                           "--mode", "pairwise-baseline", "--baseline-model", "sft"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "dpo-a" in proc.stdout


def test_single_grading(server, files):
    server.script(srv.Reply("I cannot decide."))
    records, out = run(settings(server, parallel=1), files, mode="single", baseline=None)
    assert server.n_requests == 4
    assert [r["score"] for r in records] == [-1, 9, 3, 9]
    assert list(records[0]) == ["question_id", "model", "judge", "user_prompt", "judgment", "score", "turn", "tstamp"]
    assert records[0]["judge"] == ["judge-x", "prefsweep-single-v1"] and records[0]["model"] == "dpo-a"


def test_reference_answers_as_baseline(server, files):
    records, _ = run(settings(server), files, baseline="reference_answer/reference.jsonl")
    assert {r["model_2"] for r in records} == {"reference"}
    assert [r["g1_winner"] for r in records] == ["tie", "tie", "model_2", "tie"]


def test_malformed_verdict_is_error_and_cached(server, files):
    server.script(srv.Reply("Both are fine, I think."))  # first request, parallel=1: q0 g1
    records, out = run(settings(server, parallel=1), files)
    assert records[0]["g1_winner"] == "error" and records[0]["g2_winner"] == "model_1"
    assert records[0]["g1_judgment"] == "Both are fine, I think."
    assert len(cache_files(files)) == 8
    before = out.read_bytes()
    server.reset()
    lines = []
    run(settings(server, parallel=1), files, lines=lines)
    assert server.n_requests == 0
    assert lines[0] == "judge: 8 comparisons, 8 cached, 0 API calls"
    assert out.read_bytes() == before  # a rerun writes the same bytes


def test_malformed_not_cached_when_disabled(server, files):
    server.script(srv.Reply("no verdict here"))
    records, _ = run(settings(server, parallel=1, cache_malformed=False), files)
    assert records[0]["g1_winner"] == "error"
    assert len(cache_files(files)) == 7
    server.reset()
    records, _ = run(settings(server, parallel=1, cache_malformed=False), files)
    assert server.n_requests == 1 and records[0]["g1_winner"] == "model_1"


@pytest.mark.parametrize("failure", [srv.Fail(429, retry_after=0.001), srv.Fail(500), srv.Fail(503),
                                     srv.Raw(200, "not json"), srv.Reply("late [[B]]", delay=1.0)])
def test_transient_failure_then_success(server, files, failure, caplog):
    server.script(failure, failure)
    records, _ = run(settings(server, parallel=1, timeout=0.3), files)
    assert server.n_requests == 10  # 8 + 2 retried attempts
    assert records[0]["g1_winner"] == "model_1"  # the late reply was never used
    assert len(cache_files(files)) == 8
    assert "retry 2/3" in caplog.text


def test_persistent_500_fails_clearly_and_caches_nothing(server, files):
    server.default = srv.Fail(500, message="upstream exploded")
    with pytest.raises(jl.JudgeAPIError) as err:
        run(settings(server, parallel=1, max_retries=2), files)
    message = str(err.value)
    assert "HTTP 500" in message and "upstream exploded" in message and "gave up after 3 attempts" in message
    assert server.n_requests == 3  # no new call starts after one failed for good
    assert cache_files(files) == []
    assert not (files / "model_judgment").exists() or not any((files / "model_judgment").rglob("*.jsonl"))


def test_persistent_timeout_fails(server, files):
    server.default = srv.Reply("[[A]]", delay=0.5)
    with pytest.raises(jl.JudgeAPIError, match="timed out"):
        run(settings(server, parallel=1, max_retries=1, timeout=0.1), files)
    assert cache_files(files) == []


def test_client_error_is_not_retried(server, files):
    server.default = srv.Fail(400, message="bad model")
    with pytest.raises(jl.JudgeAPIError, match="HTTP 400"):
        run(settings(server, parallel=1), files)
    assert server.n_requests == 1


def test_partial_failure_keeps_responses_and_rerun_pays_the_rest(server, files):
    server.script(srv.Reply("[[A]]"), srv.Reply("[[B]]"), srv.Reply("[[A]]"))
    server.default = srv.Fail(500)
    with pytest.raises(jl.JudgeAPIError, match="3 of 8 new responses were cached, 5 remain"):
        run(settings(server, parallel=1, max_retries=1), files)
    assert len(cache_files(files)) == 3
    assert not any(files.rglob("dpo-a.jsonl.*tmp*"))
    assert not (files / "model_judgment" / "judge-x_pair" / "dpo-a.jsonl").exists()
    server.reset()
    server.default = prefers_good
    lines = []
    records, out = run(settings(server, parallel=1), files, lines=lines)
    assert lines[0] == "judge: 8 comparisons, 3 cached, 5 API calls"
    assert server.n_requests == 5
    assert records[0]["g1_winner"] == "model_1" and records[1]["g1_winner"] == "model_1"
    assert out.exists()


def test_rerun_and_added_model_send_only_missing_requests(server, files):
    run(settings(server, parallel=3), files)
    assert server.n_requests == 8
    server.reset()
    lines = []
    run(settings(server, parallel=3), files, lines=lines)
    assert server.n_requests == 0 and lines[0] == "judge: 8 comparisons, 8 cached, 0 API calls"
    # An added model that shares three of its four answers with dpo-a pays for q3 only.
    lines.clear()
    records, _ = run(settings(server, parallel=3), files, model="dpo-b", lines=lines)
    assert lines[0] == "judge: 8 comparisons, 6 cached, 2 API calls"
    assert server.n_requests == 2
    assert {r.user.count("other 3") for r in server.requests} == {1}
    assert {r["model_1"] for r in records} == {"dpo-b"}
    # A different judge model shares nothing.
    server.reset()
    run(settings(server, model="judge-y"), files)
    assert server.n_requests == 8


def test_api_key_never_leaks(server, files, caplog, capsys):
    server.script(srv.Fail(500, message=f"echo {KEY}"))  # a server that echoes the key back
    run(settings(server, parallel=1), files)
    server.default = srv.Fail(401, message=f"Incorrect API key provided: {KEY}")
    with pytest.raises(jl.JudgeAPIError) as err:
        run(settings(server, parallel=1), files, model="dpo-b")
    assert "HTTP 401" in str(err.value)
    assert server.requests[-1].headers["Authorization"] == f"Bearer {KEY}"  # it was used
    client = jl.ChatClient(settings(server), server.api_base, KEY)
    texts = [str(err.value), repr(err.value), caplog.text, *capsys.readouterr(), repr(client)]
    texts += [p.read_text() for p in files.rglob("*") if p.is_file()]  # cache, outputs
    assert len(cache_files(files)) == 8
    assert all(KEY not in t for t in texts)
    assert "***" in caplog.text  # the echoed key was redacted


def test_missing_key_fails_only_when_calls_are_needed(server, files):
    with pytest.raises(jl.JudgeError, match="OPENAI_API_KEY is not set"):
        run(settings(server), files, env={})
    assert server.n_requests == 0
    run(settings(server), files)
    server.reset()
    run(settings(server), files, env={})  # fully cached: no key needed
    assert server.n_requests == 0
    # A server without auth: api_key_env null sends no Authorization header.
    run(settings(server, api_key_env=None), files, model="dpo-b", env={})
    assert all("Authorization" not in r.headers for r in server.requests)


def test_cli(server, files, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PREFSWEEP_TEST_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_BASE", server.api_base)
    config = {"experiment": "t", "eval": {"judge": {"type": "llm", "model": "judge-x", "api_base": None,
                                                    "api_key_env": "PREFSWEEP_TEST_KEY", "parallel": 2,
                                                    "backoff": 0.001}}}
    atomic_write_json(tmp_path / "config.json", config)
    out = files / "model_judgment" / "judge-x_pair" / "dpo-a.jsonl"
    argv = ["--config-json", str(tmp_path / "config.json"), "--mode", "pairwise",
            "--questions", str(files / "question.jsonl"),
            "--answers", str(files / "model_answer" / "dpo-a.jsonl"),
            "--baseline-answers", str(files / "model_answer" / "sft.jsonl"),
            "--cache", str(files / "judge_cache"), "--out", str(out)]
    assert script.main(argv) == 0
    assert "judge: 8 comparisons, 0 cached, 8 API calls" in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 4
    assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    monkeypatch.delenv("PREFSWEEP_TEST_KEY")
    argv[argv.index(str(files / "model_answer" / "dpo-a.jsonl"))] = str(files / "model_answer" / "dpo-b.jsonl")
    assert script.main(argv) == 1
    assert "PREFSWEEP_TEST_KEY is not set" in capsys.readouterr().err


def test_cli_mode_from_config(server, files, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    config = {"eval": {"judge": {"type": "llm", "mode": "single", "model": "judge-x", "api_base": server.api_base}}}
    atomic_write_json(tmp_path / "config.json", config)
    out = tmp_path / "single" / "sft.jsonl"
    assert script.main(["--config-json", str(tmp_path / "config.json"), "--questions", str(files / "question.jsonl"),
                        "--answers", str(files / "model_answer" / "sft.jsonl"), "--cache", str(files / "judge_cache"),
                        "--out", str(out)]) == 0
    assert [json.loads(line)["score"] for line in out.read_text().splitlines()] == [3, 3, 9, 3]
    assert "judge: 4 comparisons, 0 cached, 4 API calls" in capsys.readouterr().out
