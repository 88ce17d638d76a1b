"""The LLM judge: one model's answers against the baseline's, by a chat model over an API.

As FastChat's MT-Bench judge (``fastchat.llm_judge``, mode ``pairwise-baseline``), every
question is judged twice: game ``g1`` shows the model under test as assistant A, ``g2`` the
baseline. Inputs are FastChat question and answer files (a file's model name is its file name
less ``.jsonl``); only the first turn is judged. :func:`judge_answers` writes the records
(:func:`prefsweep.eval.judges.llm.format.pairwise_records`) atomically; a run that fails partway
has cached every response it got, writes no judgment file, and the next run pays only for the
rest. Registered as :class:`LlmJudge`.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from prefsweep.config import ConfigError
from prefsweep.eval.generate import model_name
from prefsweep.eval.judges.base import ApiUsage, Judge, JudgeError, JudgeJob, register
from prefsweep.eval.judges.llm.budget import BUDGET_ENV, Budget, budget_env_value
from prefsweep.eval.judges.llm.cache import JudgeCache, cache_key
from prefsweep.eval.judges.llm.client import ChatClient, JudgeAPIError
from prefsweep.eval.judges.llm.format import (
    JudgeRequest,
    format_pair_prompt,
    load_judge_prompts,
    pairwise_records,
    select_judge_prompt,
)
from prefsweep.eval.judges.llm.pool import run_requests
from prefsweep.eval.judges.llm.settings import CLIENT_ENV, ClientSettings, VerdictSettings, client_env_value
from prefsweep.io import atomic_write_jsonl, read_jsonl

#: Seconds one request is allowed in a job's runtime, retries and backoff included. A judge job
#: that runs out of time is retried (profiles/slurm: retries) and finds its answered requests in
#: the cache, so this only has to be right on average.
REQUEST_S = 10


def load_answers(path: str | os.PathLike) -> dict[str, dict]:
    """``{question_id: answer record}`` of one FastChat answer file."""
    return {str(a["question_id"]): a for a in read_jsonl(path)}


def _first_turn(answer: Mapping[str, Any]) -> str:
    return answer["choices"][0]["turns"][0]


def _check_answers(questions: list[dict], answers: Mapping[str, dict], path: str | os.PathLike,
                   questions_path: str | os.PathLike) -> None:
    missing = [str(q["question_id"]) for q in questions if str(q["question_id"]) not in answers]
    if missing:
        raise JudgeError(f"{path}: no answer to {len(missing)} question(s) of {questions_path}, "
                         f"e.g. {missing[:5]}; expected one answer per question")


def pairwise_requests(questions: list[dict], answers_1: Mapping[str, dict], answers_2: Mapping[str, dict],
                      prompt: Mapping[str, Any], settings: VerdictSettings) -> list[JudgeRequest]:
    """Two requests per question: g1 (model_1 as A) then g2 (model_2 as A)."""
    out = []
    for q in questions:
        qid = str(q["question_id"])
        text, a1, a2 = q["turns"][0], _first_turn(answers_1[qid]), _first_turn(answers_2[qid])
        for order, (a, b) in (("g1", (a1, a2)), ("g2", (a2, a1))):
            key = cache_key(judge_model=settings.model, prompt=prompt, question_id=qid, question=text,
                            answer_a=a, answer_b=b, order=order, temperature=settings.temperature,
                            max_tokens=settings.max_tokens)
            out.append(JudgeRequest(key, qid, order, prompt["system_prompt"],
                                    format_pair_prompt(prompt, text, a, b)))
    return out


def judge_answers(verdict: VerdictSettings, client: ClientSettings, *, questions_path: str | os.PathLike,
                  answers_path: str | os.PathLike, baseline_path: str | os.PathLike,
                  cache_dir: str | os.PathLike, out_path: str | os.PathLike,
                  env: Mapping[str, str] | None = None, echo: Callable[[str], None] = print,
                  sleep: Callable[[float], None] = time.sleep, budget: Budget | None = None,
                  max_questions: int | None = None) -> list[dict]:
    """Judge one model's answers against the baseline's; write its judgment file atomically.

    Returns the records. On failure nothing is written to ``out_path`` (responses received so
    far are in the cache) and the ``JudgeError`` names the answer files and ``out_path``.
    """
    env = os.environ if env is None else env
    prompt = select_judge_prompt(verdict)
    questions = read_jsonl(questions_path)[:max_questions]  # eval.checkpoints.n_questions
    if not questions:
        raise JudgeError(f"{questions_path}: no questions; expected FastChat question records")
    answers, baseline = load_answers(answers_path), load_answers(baseline_path)
    _check_answers(questions, answers, answers_path, questions_path)
    _check_answers(questions, baseline, baseline_path, questions_path)
    model_1, model_2 = model_name(answers_path), model_name(baseline_path)
    requests = pairwise_requests(questions, answers, baseline, prompt, verdict)

    def client_factory() -> ChatClient:
        api_key = None
        if client.api_key_env:
            api_key = env.get(client.api_key_env)
            if not api_key:
                raise JudgeError(f"environment variable {client.api_key_env} is not set; the LLM judge needs "
                                 "an API key (eval.judge.api_key_env names the variable; null for none)")
        return ChatClient(verdict, client, client.resolved_api_base(env), api_key, sleep=sleep)

    try:
        results = run_requests(requests, JudgeCache(cache_dir), verdict, client, client_factory, prompt, echo=echo,
                               budget=budget)
    except JudgeAPIError as exc:
        raise JudgeAPIError(f"{exc}; judging {answers_path} against {baseline_path}: {out_path} not written, "
                            f"the received judgments are kept in {cache_dir} (a rerun sends only the rest)") from None
    records = pairwise_records(questions, requests, results, model_1, model_2, prompt, verdict)
    n_error = sum(r["g1_winner"] == "error" or r["g2_winner"] == "error" for r in records)
    atomic_write_jsonl(out_path, records)
    echo(f"judge: wrote {len(records)} pairwise judgments of {model_1} to {out_path}"
         + (f" ({n_error} with a malformed verdict, recorded as error)" if n_error else ""))
    return records


@register
class LlmJudge(Judge):
    """A chat model over an OpenAI-compatible API, with the shared request cache."""

    name = "llm"
    needs_cache = True
    calls_api = True

    def judge(self, job: JudgeJob) -> list[dict[str, Any]]:
        verdict = VerdictSettings.from_config(job.config)
        if job.client_json is not None:
            client = ClientSettings.from_json(job.client_json, "--client-json")
        else:
            client = ClientSettings.from_env(job.env)
        print(f"judge client: {client}", file=sys.stderr, flush=True)
        # The guard eval.judge.max_api_calls: set by the workflow (absent in a hand run: no limit).
        budget = Budget.from_json(job.env[BUDGET_ENV]) if job.env.get(BUDGET_ENV) else None
        return judge_answers(verdict, client, questions_path=job.questions, answers_path=job.answers,
                             baseline_path=job.baseline, cache_dir=job.cache, out_path=job.out, env=job.env,
                             echo=job.echo, budget=budget, max_questions=job.max_questions)

    def runtime_minutes(self, config: Mapping[str, Any], questions: int) -> int:
        """2 orders x ``questions`` requests, ``eval.judge.parallel`` at a time, :data:`REQUEST_S`
        each, plus a minute to start."""
        seconds = 2 * questions * REQUEST_S / config["eval"]["judge"]["parallel"]
        return 1 + math.ceil(seconds / 60)

    def check_config(self, config: Mapping[str, Any]) -> None:
        path = config["eval"]["judge"]["judge_prompts"]
        if path and not os.path.isfile(path):
            raise ConfigError(f"eval.judge.judge_prompts: {path}: no such file (a FastChat judge_prompts.jsonl)")

    def check_environment(self, config: Mapping[str, Any], env: Mapping[str, str]) -> None:
        # A missing key would otherwise fail after hours of training and generation.
        name = config["eval"]["judge"]["api_key_env"]
        if name and not env.get(name):
            raise ConfigError(
                f"eval.judge.api_key_env: the LLM judge reads its API key from ${name}, which is not set "
                f"in this environment; export {name}=... (or set eval.judge.api_key_env to the variable "
                "that holds it, or null for a server that needs no key)"
            )

    def job_environment(self, config: Mapping[str, Any], planned_calls: Callable[[], int]) -> dict[str, str]:
        judge = config["eval"]["judge"]
        # The client settings and the guard eval.judge.max_api_calls with the experiment's
        # planned requests: they change no verdict, so they are no job param.
        return {CLIENT_ENV: client_env_value(judge), BUDGET_ENV: budget_env_value(judge, planned_calls())}

    def input_files(self, config: Mapping[str, Any]) -> dict[str, str]:
        path = config["eval"]["judge"]["judge_prompts"]
        return {"judge_prompts": path} if path else {}

    def api_usage(self, config: Mapping[str, Any]) -> ApiUsage:
        judge = config["eval"]["judge"]
        prompt = load_judge_prompts(judge["judge_prompts"]).get(judge["pairwise_prompt"], {})
        return ApiUsage(model=judge["model"], max_tokens=judge["max_tokens"],
                        prompt_chars=len(prompt.get("system_prompt", "")) + len(prompt.get("prompt_template", "")))
