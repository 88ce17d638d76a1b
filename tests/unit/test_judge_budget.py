"""The guard eval.judge.max_api_calls: a judge job refuses before sending anything when the
experiment's remaining API calls exceed it (loopback judge, tests/fixtures/judge_server.py)."""

from __future__ import annotations

import json

import pytest

from prefsweep.eval.judges.llm.budget import BUDGET_ENV, Budget, JudgeBudgetError, budget_env_value
from prefsweep.eval.judges.llm.judge import judge_answers
from prefsweep.eval.judges.llm.settings import CLIENT_ENV, PLAN_KEYS
from tests.fixtures.judge_cases import (  # noqa: F401 (fixtures: files, no_proxy, server)
    KEY,
    cache_files,
    client,
    client_values,
    files,
    judge_argv,
    no_proxy,
    out_path,
    script,
    server,
    slice_json,
    verdict,
)


def judge(files, server, budget, model="dpo-a", lines=None):
    return judge_answers(
        verdict(), client(server), questions_path=files / "question.jsonl",
        answers_path=files / "model_answer" / f"{model}.jsonl", baseline_path=files / "model_answer" / "sft.jsonl",
        cache_dir=files / "judge_cache", out_path=out_path(files, model), env={"OPENAI_API_KEY": KEY},
        echo=(lines.append if lines is not None else lambda line: None), budget=budget)


def test_job_refuses_before_sending_anything(server, files):
    # 4 questions x 2 orders for this job; the experiment plans 100 requests, none cached
    with pytest.raises(JudgeBudgetError) as err:
        judge(files, server, Budget(max_api_calls=99, planned_calls=100))
    msg = str(err.value)
    assert "about 100 API calls (100 planned requests, 0 cached; this job alone 8)" in msg
    assert "eval.judge.max_api_calls = 99; nothing was sent" in msg
    assert "max_api_calls: 100" in msg and "make plan" in msg
    assert server.n_requests == 0 and not cache_files(files) and not out_path(files, "dpo-a").exists()


def test_cached_responses_count_against_the_plan(server, files):
    judge(files, server, Budget(max_api_calls=None, planned_calls=100))  # no limit: 8 sent
    assert server.n_requests == 8
    # dpo-b needs 2 new calls; 100 planned - 8 cached = 92 remain for the experiment
    with pytest.raises(JudgeBudgetError, match=r"about 92 API calls \(100 planned requests, 8 cached"):
        judge(files, server, Budget(max_api_calls=91, planned_calls=100), model="dpo-b")
    assert server.n_requests == 8
    judge(files, server, Budget(max_api_calls=92, planned_calls=100), model="dpo-b")
    assert server.n_requests == 10


def test_own_calls_count_even_when_the_plan_is_low(server, files):
    with pytest.raises(JudgeBudgetError, match="about 8 API calls"):
        judge(files, server, Budget(max_api_calls=7, planned_calls=0))
    assert server.n_requests == 0


def test_fully_cached_job_never_refuses(server, files):
    judge(files, server, None)
    server.reset()
    judge(files, server, Budget(max_api_calls=0, planned_calls=10**6))
    assert server.n_requests == 0


def test_script_reads_the_budget_from_the_environment(server, files, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv(CLIENT_ENV, json.dumps(client_values(server)))
    judge_cfg = {"max_api_calls": 5}
    monkeypatch.setenv(BUDGET_ENV, budget_env_value(judge_cfg, 500))
    with pytest.raises(SystemExit, match="judge: error: the experiment still needs about 500 API calls"):
        script.main(judge_argv(files, slice_json()))
    assert server.n_requests == 0
    monkeypatch.setenv(BUDGET_ENV, '{"max_api_calls": "5"}')
    with pytest.raises(SystemExit, match="PREFSWEEP_JUDGE_BUDGET: expected a JSON object"):
        script.main(judge_argv(files, slice_json()))
    # --max-questions judges the first k questions only (eval.checkpoints.n_questions)
    monkeypatch.delenv(BUDGET_ENV)
    script.main(judge_argv(files, slice_json()) + ["--max-questions", "2"])
    assert server.n_requests == 4 and len(out_path(files, "dpo-a").read_text().splitlines()) == 2


def test_the_guard_and_prices_rerun_nothing():
    """Not in any job's config slice (a changed limit or price must not rerun judge jobs)."""
    from prefsweep.config import STEP_KEYS, job_config
    from tests.conftest import load_config

    config = load_config()
    config["eval"]["judge"].update(type="llm", max_api_calls=10, price_prompt_per_1k=0.5)
    for step in STEP_KEYS:
        judge = job_config(config, step).get("eval", {}).get("judge", {})
        assert not set(judge) & set(PLAN_KEYS), step
    assert json.loads(budget_env_value(config["eval"]["judge"], 42)) == {"max_api_calls": 10, "planned_calls": 42}
