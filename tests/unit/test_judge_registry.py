"""The judge registry (prefsweep/eval/judges): both judges registered and meeting the interface,
and a new judge registered in one place reaching the config checks, the plan and the resources."""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from prefsweep.config import ConfigError
from prefsweep.cost import plan as pl
from prefsweep.cost import resources as R
from prefsweep.eval.judges import JUDGES, ApiUsage, Judge, JudgeError, JudgeJob, get_judge, judge_of, register
from prefsweep.eval.judges.base import judge_of_records, welfare_judges
from prefsweep.experiment import check_experiment, check_secrets
from tests.conftest import load_config


@pytest.fixture(autouse=True)
def empty_workdir(tmp_path, monkeypatch):
    """The plan reads results/ under the working directory: an empty one."""
    monkeypatch.chdir(tmp_path)


def with_judge(name: str) -> dict:
    config = copy.deepcopy(load_config())
    config["eval"]["judge"]["type"] = name
    return config


# --- the two judges -----------------------------------------------------------------------------
def test_both_judges_are_registered_under_their_names():
    assert list(JUDGES)[:2] == ["electorate", "llm"]
    for name, judge in JUDGES.items():
        assert isinstance(judge, Judge) and judge.name == name and get_judge(name) is judge
        assert not inspect.isabstract(type(judge))
    assert judge_of(load_config()) is get_judge("electorate")  # the default experiment's judge


def test_each_judge_meets_the_interface():
    config = load_config()
    for judge in JUDGES.values():
        assert judge.runtime_minutes(config, 100) >= 1
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in judge.input_files(config).items())
        env = judge.job_environment(config, lambda: 7)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        if judge.calls_api:
            usage = judge.api_usage(config)
            assert usage.prompt_chars > 0 and usage.max_tokens == config["eval"]["judge"]["max_tokens"]
        else:
            with pytest.raises(JudgeError, match="calls no API"):
                judge.api_usage(config)
        if judge.measures_welfare:
            assert judge_of_records(judge.record_name) is judge
            utilities = judge.utility_model(config)
            assert utilities.utilities(["an answer"], ["a question?"]).shape[0] == len(utilities.groups)
        else:
            with pytest.raises(JudgeError, match="knows no voter utilities"):
                judge.utility_model(config)


def test_capabilities_of_the_two_judges():
    electorate, llm = get_judge("electorate"), get_judge("llm")
    assert (electorate.measures_welfare, electorate.quick, electorate.calls_api, electorate.needs_cache) == (
        True, True, False, False)
    assert (llm.measures_welfare, llm.quick, llm.calls_api, llm.needs_cache) == (False, False, True, True)
    assert welfare_judges() == ["electorate"] and judge_of_records("gpt-4") is None
    # what the LLM judge exports to every job: its client settings and the budget guard
    env = llm.job_environment(with_judge("llm"), lambda: 42)
    assert set(env) == {"PREFSWEEP_JUDGE_CLIENT", "PREFSWEEP_JUDGE_BUDGET"}
    assert json.loads(env["PREFSWEEP_JUDGE_BUDGET"]) == {"max_api_calls": None, "planned_calls": 42}
    assert electorate.job_environment(load_config(), lambda: pytest.fail("the electorate plans no calls")) == {}


def test_unknown_or_missing_judge_names_the_key_and_the_choices():
    with pytest.raises(JudgeError, match=r"eval.judge.type: 'gpt' is not a registered judge; expected one of 'electorate', 'llm'"):
        get_judge("gpt")
    with pytest.raises(JudgeError, match="eval.judge.type: missing from the config slice"):
        judge_of({"eval": {}})


# --- a toy judge, registered here, reaches the workflow's helpers ---------------------------------
class ToyJudge(Judge):
    """Judges by a coin: its capabilities are what the tests below look for."""

    name = "toy"
    calls_api = True
    seen: list[tuple[str, Any]] = []

    def judge(self, job: JudgeJob) -> list[dict[str, Any]]:
        return []

    def runtime_minutes(self, config: Mapping[str, Any], questions: int) -> int:
        self.seen.append(("runtime", questions))
        return 1000 + questions

    def check_config(self, config: Mapping[str, Any]) -> None:
        if config["eval"]["judge"]["model"] == "no-such-toy":
            raise ConfigError("eval.judge.model: 'no-such-toy' is no toy")

    def check_environment(self, config: Mapping[str, Any], env: Mapping[str, str]) -> None:
        if "TOY_KEY" not in env:
            raise ConfigError("eval.judge: the toy judge needs $TOY_KEY")

    def job_environment(self, config: Mapping[str, Any], planned_calls: Callable[[], int]) -> dict[str, str]:
        return {"TOY_CALLS": str(planned_calls())}

    def api_usage(self, config: Mapping[str, Any]) -> ApiUsage:
        return ApiUsage(model="toy-model-1", prompt_chars=400, max_tokens=8)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.delitem(JUDGES, "toy", raising=False)
    register(ToyJudge)
    yield JUDGES["toy"]
    del JUDGES["toy"]
    ToyJudge.seen.clear()


def test_a_registered_judge_is_found_by_name_and_config(toy):
    assert get_judge("toy") is toy and judge_of(with_judge("toy")) is toy
    with pytest.raises(ValueError, match="registered twice"):
        register(ToyJudge)


def test_the_plan_and_the_resources_ask_the_registered_judge(toy):
    config = with_judge("toy")
    assert R.judge_runtime(config) == 1000 + config["data"]["n_eval_prompts"]
    assert toy.seen == [("runtime", config["data"]["n_eval_prompts"])]
    plan = pl.make_plan(config, {})
    j = plan.judge
    planned = pl.planned_comparisons(config)
    assert (j["type"], j["model"], j["planned_calls"], j["api_calls"]) == ("toy", "toy-model-1", planned, planned)
    assert j["completion_tokens"] == planned * 8  # the toy's max_tokens, below the plan's typical judgment
    assert f"toy-model-1: {planned} requests" in pl.format_plan(plan)
    # A judge that calls no API: no calls planned, whatever it is named.
    toy.calls_api = False
    try:
        j = pl.make_plan(config, {}).judge
        assert j == {"type": "toy", "api_calls": 0}
        assert "toy: no API calls" in pl.format_plan(pl.make_plan(config, {}))
    finally:
        del toy.calls_api


def test_the_experiment_checks_ask_the_registered_judge(toy):
    config = with_judge("toy")
    check_experiment(config)
    config["eval"]["judge"]["model"] = "no-such-toy"
    with pytest.raises(ConfigError, match="'no-such-toy' is no toy"):
        check_experiment(config)
    with pytest.raises(ConfigError, match=r"needs \$TOY_KEY"):
        check_secrets(config, env={})
    check_secrets(config, env={"TOY_KEY": "x"})
    # the electorate's own check: only a synthetic electorate scores new text
    real = load_config()
    real["data"]["source"] = "shp"
    with pytest.raises(ConfigError, match="eval.judge.type: 'electorate' needs data.source 'synthetic'"):
        get_judge("electorate").check_config(real)
