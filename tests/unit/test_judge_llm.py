"""The LLM judge against a scripted chat-completions server on loopback (tests/fixtures).

Faults (429/500/timeouts/dropped connections, a killed job, concurrent jobs, secrets) are in
tests/reliability/test_judge_faults.py.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import subprocess
import sys
import threading
import time
from argparse import Namespace

import pytest

from prefsweep.eval.judges.base import JudgeError
from prefsweep.eval.judges.llm import format as judge_format
from prefsweep.eval.judges.llm.cache import JudgeCache, cache_key
from prefsweep.eval.judges.llm.client import ChatClient, JudgeAPIError
from prefsweep.eval.judges.llm.format import (
    JudgeRequest,
    TIE_DELTA,
    check_judge_prompt,
    format_pair_prompt,
    load_judge_prompts,
    parse_pair_verdict,
    select_judge_prompt,
    usable_judgment,
)
from prefsweep.eval.judges.llm.settings import (
    CLIENT_ENV,
    CLIENT_KEYS,
    ClientSettings,
    PLAN_KEYS,
    VERDICT_KEYS,
    VerdictSettings,
    client_env_value,
)
from prefsweep.config import load_schema
from prefsweep.io import atomic_write_jsonl
from tests.conftest import REPO
from tests.fixtures import judge_server as srv
from tests.fixtures.judge_cases import (  # noqa: F401 (fixtures: files, no_proxy, server)
    KEY,
    cache_files,
    client,
    client_values,
    files,
    judge_argv,
    judge_section,
    no_proxy,
    out_path,
    prefers_good,
    run_judge,
    script,
    server,
    slice_json,
    verdict,
    wait_for,
    write_eval_files,
)


# --- parsing and prompts ----------------------------------------------------------------------
@pytest.mark.parametrize("text, fmt, want", [
    ("blah [[A]]", "[[A]]", "A"), ("[[B]] final", "[[A]]", "B"), ("so [[C]]", "[[A]]", "tie"),
    ("I pick A", "[[A]]", "error"), ("[[A]] or [[B]]", "[[A]]", "A"),
    ("[[7, 3]]", "[[rating_a,rating_b]]", "A"), ("[2,8.5]", "[[rating_a,rating_b]]", "B"),
    ("[[5, 5.05]]", "[[rating_a,rating_b]]", "tie"), ("none", "[[rating_a,rating_b]]", "error"),
])
def test_parse_pair_verdict(text, fmt, want):
    assert parse_pair_verdict(text, fmt) == want


def test_shipped_prompts_are_valid_fastchat_records():
    prompts = load_judge_prompts()
    assert set(prompts) == {"prefsweep-pair-v1"}
    for p in prompts.values():
        assert set(p) == {"name", "type", "system_prompt", "prompt_template", "description",
                          "category", "output_format"}
        check_judge_prompt(p)
    assert prompts["prefsweep-pair-v1"]["output_format"] == "[[A]]"


def test_unsupported_prompts_are_rejected(tmp_path):
    multi = {"name": "mt", "type": "pairwise", "system_prompt": "s", "output_format": "[[A]]",
             "prompt_template": "{question_1}{answer_a_1}{answer_b_1}"}
    with pytest.raises(JudgeError, match="multi-turn"):
        check_judge_prompt(multi)
    single = {"name": "single-v1", "type": "single", "system_prompt": "s", "output_format": "[[rating]]",
              "prompt_template": "{question}{answer}"}
    with pytest.raises(JudgeError, match="'single-v1' has type 'single', not 'pairwise'"):
        check_judge_prompt(single)
    atomic_write_jsonl(tmp_path / "p.jsonl", [multi])
    with pytest.raises(JudgeError, match=r"p\.jsonl: judge prompt 'prefsweep-pair-v1' .*not in the file"):
        select_judge_prompt(verdict(judge_prompts=str(tmp_path / "p.jsonl")))


# --- settings ---------------------------------------------------------------------------------
def test_settings_have_no_defaults_of_their_own():
    """Defaults live in the schema only: no field default, and no schema default in a default
    position (function default, class attribute, ``.get(key, default)``) of the judge modules."""
    for cls in (VerdictSettings, ClientSettings):
        for f in dataclasses.fields(cls):
            assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, (cls, f.name)
    judge = load_schema()["properties"]["eval"]["properties"]["judge"]["properties"]
    assert set(judge) == {"type", *VERDICT_KEYS, *CLIENT_KEYS, *PLAN_KEYS}
    defaults = {v["default"] for v in judge.values() if v.get("default") is not None}
    for module in sorted((REPO / "prefsweep" / "eval" / "judges").rglob("*.py")):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            candidates = []
            if isinstance(node, (ast.FunctionDef, ast.Lambda)):
                candidates += node.args.defaults + [d for d in node.args.kw_defaults if d is not None]
            elif isinstance(node, ast.ClassDef):
                candidates += [s.value for s in node.body if isinstance(s, ast.AnnAssign) and s.value]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get" and len(node.args) == 2:
                candidates.append(node.args[1])
            for c in candidates:
                assert not (isinstance(c, ast.Constant) and c.value in defaults and not isinstance(c.value, bool)), (
                    f"{module.relative_to(REPO)}:{c.lineno}: schema default {c.value!r} copied")


def test_verdict_settings_from_the_slice_and_missing_keys():
    v = VerdictSettings.from_config(json.loads(slice_json()))
    assert v == verdict()
    assert (v.model, v.pairwise_prompt, v.temperature, v.max_tokens, v.cache_malformed) == (
        "judge-x", "prefsweep-pair-v1", 0, 1024, True)
    for key in VERDICT_KEYS:
        cfg = json.loads(slice_json())
        del cfg["eval"]["judge"][key]
        with pytest.raises(JudgeError, match=rf"eval.judge: missing key\(s\) {key};"):
            VerdictSettings.from_config(cfg)
    # A client setting in the slice would rerun every judge job when changed: refused, named.
    cfg = json.loads(slice_json())
    cfg["eval"]["judge"]["timeout"] = 60
    with pytest.raises(JudgeError, match="eval.judge.timeout: a client setting .* PREFSWEEP_JUDGE_CLIENT"):
        VerdictSettings.from_config(cfg)
    cfg = json.loads(slice_json(max_tokens=0))
    with pytest.raises(JudgeError, match=r"eval.judge.max_tokens: must be >= 1, got 0"):
        VerdictSettings.from_config(cfg)
    cfg = json.loads(slice_json(model=None))
    with pytest.raises(JudgeError, match=r"eval.judge.model: expected str, got None"):
        VerdictSettings.from_config(cfg)


def test_client_settings_exact_keys_types_and_bounds():
    values = client_values()
    c = ClientSettings.from_json(json.dumps(values), "PREFSWEEP_JUDGE_CLIENT")
    assert c == ClientSettings(**values)
    for key in CLIENT_KEYS:
        partial = {k: v for k, v in values.items() if k != key}
        with pytest.raises(JudgeError, match=rf"PREFSWEEP_JUDGE_CLIENT: missing key\(s\) {key};"):
            ClientSettings.from_mapping(partial, "PREFSWEEP_JUDGE_CLIENT")
    with pytest.raises(JudgeError, match=r"--client-json: unknown key\(s\) temperature; expected exactly api_base"):
        ClientSettings.from_mapping({**values, "temperature": 0}, "--client-json")
    with pytest.raises(JudgeError, match="--client-json: parallel: must be >= 1, got 0"):
        ClientSettings.from_mapping({**values, "parallel": 0}, "--client-json")
    with pytest.raises(JudgeError, match="--client-json: timeout: expected float, got '5'"):
        ClientSettings.from_mapping({**values, "timeout": "5"}, "--client-json")
    with pytest.raises(JudgeError, match="--client-json: parallel: expected int, got True"):
        ClientSettings.from_mapping({**values, "parallel": True}, "--client-json")
    with pytest.raises(JudgeError, match="--client-json: not valid JSON"):
        ClientSettings.from_json("{parallel: 2}", "--client-json")
    with pytest.raises(JudgeError, match="PREFSWEEP_JUDGE_CLIENT: not set"):
        ClientSettings.from_env({})
    assert c.resolved_api_base({"OPENAI_API_BASE": "http://h/v1/"}) == "http://h/v1"
    assert client(api_base="http://c/v1").resolved_api_base({"OPENAI_API_BASE": "x"}) == "http://c/v1"
    assert c.resolved_api_base({}) == "https://api.openai.com/v1"


def test_client_env_value_is_the_validated_configs_client_section():
    section = judge_section()
    value = json.loads(client_env_value(section))
    assert value == {k: section[k] for k in CLIENT_KEYS}
    assert ClientSettings.from_json(client_env_value(section), "x").parallel == section["parallel"]
    proc = subprocess.run([sys.executable, "-m", "prefsweep.eval.judges.llm"], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {k: load_schema()["properties"]["eval"]["properties"]["judge"]
                                       ["properties"][k]["default"] for k in CLIENT_KEYS}


# --- cache keys -------------------------------------------------------------------------------
def test_cache_key_covers_every_verdict_input_and_is_stable():
    prompt = load_judge_prompts()["prefsweep-pair-v1"]
    base = dict(judge_model="m", prompt=prompt, question_id="q", question="Q", answer_a="a",
                answer_b="b", order="g1", temperature=0.0, max_tokens=10)
    k = cache_key(**base)
    assert k == cache_key(**base)
    changes = [{"judge_model": "n"}, {"prompt": {**prompt, "prompt_template": prompt["prompt_template"] + " "}},
               {"prompt": {**prompt, "name": "other"}}, {"question_id": "r"}, {"question": "Q2"},
               {"answer_a": "b"}, {"answer_b": "a"}, {"order": "g2"}, {"temperature": 0.5}, {"max_tokens": 11}]
    assert len({cache_key(**{**base, **c}) for c in changes} | {k}) == len(changes) + 1
    # Pinned: a change of the key's recipe would silently throw every user's cache away.
    assert cache_key(judge_model="gpt-4", prompt=prompt, question_id="q0", question="Q?", answer_a="a",
                        answer_b="b", order="g1", temperature=0.0, max_tokens=1024) == (
        "50134b19ee502c74c6f07d8feea6b01e9feee999fa2c15320d73960b2dcb4a0f")


def test_client_settings_changes_keep_every_cache_hit(server, files):
    _, out = run_judge(verdict(), client(server), files)
    before = out.read_bytes()
    with srv.JudgeServer(default=prefers_good) as other:  # another api_base
        lines = []
        run_judge(verdict(), client(other, parallel=1, timeout=0.5, max_retries=0, backoff=2.0, backoff_max=3.0,
                                    api_key_env="OTHER_KEY"), files, env={}, lines=lines)
        assert other.n_requests == 0
    assert lines[0] == "judge: 8 comparisons, 8 cached, 0 API calls"
    assert out.read_bytes() == before
    assert server.n_requests == 8


# --- FastChat equivalence ---------------------------------------------------------------------
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
    """Our rendering and parsing give what FastChat's run_judge_pair gives."""
    common = _fastchat_common(monkeypatch)
    pair = load_judge_prompts()["prefsweep-pair-v1"]
    q = {"question_id": "q", "turns": ["What {is} 2+2?"]}
    a1 = {"choices": [{"turns": ["4, {x}"]}]}
    a2 = {"choices": [{"turns": ["five"]}]}
    seen = []

    def fake_api(judgment):
        def chat_completion_openai(model, conv, temperature, max_tokens, api_dict=None):
            seen.append(conv.to_openai_api_messages())
            return judgment
        return chat_completion_openai

    for fmt, judgments in [("[[A]]", ["x [[A]]", "[[B]]", "[[C]]", "nothing", "[[A]] [[B]]"]),
                           ("[[rating_a,rating_b]]", ["[[7, 3]]", "[2,8.5]", "[[5, 5.05]]", "none"])]:
        prompt = {**pair, "output_format": fmt}
        judge = common.Judge("gpt-4", prompt)
        for judgment in judgments:
            monkeypatch.setattr(common, "chat_completion_openai", fake_api(judgment))
            winner, user_prompt, _ = common.run_judge_pair(q, a1, a2, judge, None)
            assert winner == parse_pair_verdict(judgment, fmt)
            assert user_prompt == format_pair_prompt(pair, "What {is} 2+2?", "4, {x}", "five")
            assert seen[-1] == JudgeRequest("k", "q", "g1", pair["system_prompt"], user_prompt).messages()
    for pattern in ("two_score_pattern", "two_score_pattern_backup"):
        assert getattr(common, pattern).pattern == getattr(judge_format, pattern.upper()).pattern
    assert common.TIE_DELTA == TIE_DELTA


# --- against the loopback server --------------------------------------------------------------
def test_pairwise_valid_verdicts_both_orders(server, files):
    lines = []
    records, out = run_judge(verdict(), client(server), files, lines=lines)
    assert lines[0] == "judge: 8 comparisons, 0 cached, 8 API calls"
    assert lines[1] == "judge: 8 requests sent, 0 answered meanwhile by a concurrent judge job"
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
    assert not list((files / "judge_cache").glob("*/*.lock"))  # claims are cleaned up


def test_show_result_reads_the_judgments(server, files, capsys):
    from fastchat.llm_judge import show_result

    _, pair = run_judge(verdict(), client(server), files)
    capsys.readouterr()
    show_result.display_result_pairwise(Namespace(input_file=str(pair), model_list=None, baseline_model="sft"))
    text = capsys.readouterr().out
    assert "dpo-a" in text and "0.75" in text  # 3 wins, 1 loss
    proc = subprocess.run([sys.executable, "-m", "fastchat.llm_judge.show_result", "--input-file", str(pair),
                           "--mode", "pairwise-baseline", "--baseline-model", "sft"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "dpo-a" in proc.stdout


def test_reference_answers_as_baseline(server, files):
    records, _ = run_judge(verdict(), client(server), files, baseline="reference_answer/reference.jsonl")
    assert {r["model_2"] for r in records} == {"reference"}
    assert [r["g1_winner"] for r in records] == ["tie", "tie", "model_2", "tie"]


def test_missing_answer_names_the_file(server, files):
    path = files / "model_answer" / "dpo-a.jsonl"
    atomic_write_jsonl(path, [json.loads(line) for line in path.read_text().splitlines() if '"q2"' not in line])
    with pytest.raises(JudgeError, match=r"dpo-a\.jsonl: no answer to 1 question\(s\) of .*question\.jsonl, "
                                            r"e\.g\. \['q2'\]"):
        run_judge(verdict(), client(server), files)
    assert server.n_requests == 0


def test_malformed_verdict_is_error_and_cached(server, files):
    server.script(srv.Reply("Both are fine, I think."))  # first request, parallel=1: q0 g1
    records, out = run_judge(verdict(), client(server, parallel=1), files)
    assert records[0]["g1_winner"] == "error" and records[0]["g2_winner"] == "model_1"
    assert records[0]["g1_judgment"] == "Both are fine, I think."
    assert len(cache_files(files)) == 8
    before = out.read_bytes()
    server.reset()
    lines = []
    run_judge(verdict(), client(server, parallel=1), files, lines=lines)
    assert server.n_requests == 0
    assert lines == ["judge: 8 comparisons, 8 cached, 0 API calls", f"judge: wrote 4 pairwise judgments of dpo-a "
                     f"to {out} (1 with a malformed verdict, recorded as error)"]
    assert out.read_bytes() == before  # a rerun writes the same bytes


def test_malformed_not_cached_when_disabled(server, files):
    server.script(srv.Reply("no verdict here"))
    records, _ = run_judge(verdict(cache_malformed=False), client(server, parallel=1), files)
    assert records[0]["g1_winner"] == "error"
    assert len(cache_files(files)) == 7
    server.reset()
    records, _ = run_judge(verdict(cache_malformed=False), client(server, parallel=1), files)
    assert server.n_requests == 1 and records[0]["g1_winner"] == "model_1"


def test_rerun_and_added_model_send_only_missing_requests(server, files):
    run_judge(verdict(), client(server, parallel=3), files)
    assert server.n_requests == 8
    server.reset()
    lines = []
    run_judge(verdict(), client(server, parallel=3), files, lines=lines)
    assert server.n_requests == 0 and lines[0] == "judge: 8 comparisons, 8 cached, 0 API calls"
    # An added model that shares three of its four answers with dpo-a pays for q3 only.
    lines.clear()
    records, _ = run_judge(verdict(), client(server, parallel=3), files, model="dpo-b", lines=lines)
    assert lines[0] == "judge: 8 comparisons, 6 cached, 2 API calls"
    assert server.n_requests == 2
    assert {r.user.count("other 3") for r in server.requests} == {1}
    assert {r["model_1"] for r in records} == {"dpo-b"}
    # A different judge model shares nothing.
    server.reset()
    run_judge(verdict(model="judge-y"), client(server), files)
    assert server.n_requests == 8


def test_missing_key_fails_only_when_calls_are_needed(server, files):
    with pytest.raises(JudgeError, match="OPENAI_API_KEY is not set"):
        run_judge(verdict(), client(server), files, env={})
    assert server.n_requests == 0
    run_judge(verdict(), client(server), files)
    server.reset()
    run_judge(verdict(), client(server), files, env={})  # fully cached: no key needed
    assert server.n_requests == 0
    # A server without auth: api_key_env null sends no Authorization header.
    run_judge(verdict(), client(server, api_key_env=None), files, model="dpo-b", env={})
    assert all("Authorization" not in r.headers for r in server.requests)


# --- the HTTP client: deadline and unusable responses -------------------------------------------
def _chat(server: srv.JudgeServer, **over) -> ChatClient:
    return ChatClient(verdict(), client(server, **{"max_retries": 0, **over}), server.api_base, KEY,
                         sleep=lambda s: None)


@pytest.mark.parametrize("body, reason", [
    (json.dumps(srv.completion("")), "(empty message content, finish_reason 'stop')"),
    (json.dumps(srv.completion(" \n\t")), "(empty message content, finish_reason 'stop')"),
    (json.dumps(srv.completion(None)), "(message content is null, not a string)"),
    (json.dumps(srv.completion(7)), "(message content is a number, not a string)"),
    (json.dumps({**srv.completion("x"), "choices": []}), "(no choices)"),
    (json.dumps({"model": "m"}), "(no choices)"),
    (json.dumps({"choices": [{"index": 0}]}), "(choices[0] has no message)"),
    (json.dumps([1, 2]), "(body is an array, not a JSON object)"),
    ("not json", "(not JSON:"),
])
def test_unusable_response_is_a_retried_server_fault(server, body, reason):
    chat = _chat(server, max_retries=1)
    server.default = srv.Reply("Verdict: [[A]]")
    server.script(srv.Raw(200, body), srv.Raw(200, body))
    with pytest.raises(JudgeAPIError) as err:
        chat.complete([{"role": "user", "content": "q"}])
    assert f"unusable response from {server.api_base}/chat/completions {reason}" in str(err.value)
    assert "gave up after 2 attempts" in str(err.value) and server.n_requests == 2
    server.script(srv.Raw(200, body))  # once, then the default verdict: the retry succeeds
    assert chat.complete([{"role": "user", "content": "q"}])["judgment"].startswith("Verdict: ")


def test_cache_serves_only_entries_with_judgment_text(tmp_path):
    cache = JudgeCache(tmp_path)
    entries = {"empty": "", "blank": " \n", "null": None, "number": 3, "text": "Verdict: [[A]]"}
    for key, judgment in entries.items():
        cache.put(key * 8, {"key": key * 8, "judgment": judgment})
    cache.put("missing" * 8, {"key": "x"})
    served = {key: cache.get(key * 8) is not None for key in [*entries, "missing"]}
    assert served == {"empty": False, "blank": False, "null": False, "number": False, "text": True,
                      "missing": False}
    assert usable_judgment("[[A]]") and not usable_judgment("\n")


def test_deadline_bounds_the_whole_attempt_not_each_read(server):
    chat = _chat(server, timeout=0.4)
    server.script(srv.Reply("Verdict: [[A]]", delay=0.2))  # in time: answered
    assert chat.complete([{"role": "user", "content": "q"}])["judgment"] == "Verdict: [[A]]"
    server.script(srv.Trickle("Verdict: [[B]]", interval=0.02, duration=20.0))
    start = time.monotonic()
    with pytest.raises(JudgeAPIError, match=r"timed out \(no complete response within 0\.4 s"):
        chat.complete([{"role": "user", "content": "q"}])
    assert 0.35 < time.monotonic() - start < 10  # the trickle alone would take 20 s
    # The attempt's watchdog is gone with it: no timer thread is left per request.
    wait_for(lambda: not [t for t in threading.enumerate() if t.name == "judge-deadline"], timeout=2.0,
             what="the deadline threads to end")


# --- the script -------------------------------------------------------------------------------
def test_cli_llm_client_from_env_or_flag(server, files, monkeypatch, capsys):
    monkeypatch.setenv("PREFSWEEP_TEST_KEY", KEY)
    monkeypatch.setenv(CLIENT_ENV, json.dumps(client_values(server, api_key_env="PREFSWEEP_TEST_KEY")))
    argv = judge_argv(files, slice_json())
    script.main(argv)
    captured = capsys.readouterr()
    assert "judge: 8 comparisons, 0 cached, 8 API calls" in captured.out
    assert "judge client: ClientSettings(api_base=" in captured.err
    assert len(out_path(files, "dpo-a").read_text().splitlines()) == 4
    assert server.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    # --client-json wins over the environment: here a server without auth.
    script.main(judge_argv(files, slice_json(), model="dpo-b")
                + ["--client-json", json.dumps(client_values(server, api_key_env=None))])
    assert all("Authorization" not in r.headers for r in server.requests[8:])
    assert server.n_requests == 10


@pytest.mark.parametrize("change, message", [
    (lambda argv, env: env.pop(CLIENT_ENV), "judge: error: PREFSWEEP_JUDGE_CLIENT: not set"),
    (lambda argv, env: env.update({CLIENT_ENV: json.dumps({"parallel": 2})}),
     r"judge: error: PREFSWEEP_JUDGE_CLIENT: missing key\(s\) api_base, api_key_env, max_retries"),
    (lambda argv, env: env.pop("OPENAI_API_KEY"), "judge: error: environment variable OPENAI_API_KEY is not set"),
    (lambda argv, env: argv.__setitem__(1, json.dumps({"eval": {"judge": {"type": "gpt"}}})),
     "judge: error: eval.judge.type: 'gpt' is not a registered judge; expected one of 'electorate', 'llm'"),
    (lambda argv, env: argv.__setitem__(1, json.dumps({"eval": {"judge": judge_section()}})),
     "judge: error: eval.judge.api_base: a client setting in the judge job's config slice"),
])
def test_cli_errors_name_what_is_wrong(server, files, monkeypatch, change, message):
    env = {CLIENT_ENV: json.dumps(client_values(server)), "OPENAI_API_KEY": KEY}
    argv = judge_argv(files, slice_json())
    change(argv, env)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv(CLIENT_ENV, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit, match=message):
        script.main(argv)
    assert server.n_requests == 0
    assert not out_path(files, "dpo-a").exists()


def test_cli_llm_needs_cache(files, capsys):
    with pytest.raises(SystemExit):
        script.main(judge_argv(files, slice_json(), cache=False))
    assert "--cache is required when eval.judge.type is llm" in capsys.readouterr().err
