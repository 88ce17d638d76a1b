"""LLM judge throughput against the loopback server, vs FastChat's ``gen_judgment``.

    python benchmarks/bench_judge.py [--scale full|small] [--repeats 3] [--latency 0.2] [--json OUT]

The server is tests/fixtures/judge_server.py (an OpenAI-compatible chat-completions server on
127.0.0.1) answering every request after a fixed ``--latency`` (200 ms), as a remote API would.
One model's answers are judged against a baseline's on ``n`` questions, both orders of each
pair: 2n requests per run. At ``parallel`` 1, 8 and 32, in turn for each repeat:

* prefsweep: ``prefsweep.eval.judges.llm.judge.judge_answers`` (what scripts/judge.py runs) with
  ``ClientSettings.parallel``, a fresh cache each run;
* FastChat 0.2.36: the loop of ``fastchat/llm_judge/gen_judgment.py``'s ``__main__`` block --
  ``load_questions``, ``load_model_answers``, ``load_judge_prompts``, ``make_judge_pairwise``,
  ``make_match`` and ``play_a_match_pair`` over a ``ThreadPoolExecutor(--parallel)`` (a plain
  loop at 1), on the same question and answer files (its judge prompts: ours under FastChat's
  names), ``openai.api_base`` pointed at the server. Its ``input("Press Enter")`` is left out.

Figures: requests per second of each (median of the repeats, ratio repeat by repeat); the
cache hit rate of a rerun over the same cache (every request answered from it: 100%); and the
requests the server receives from two judge jobs (``scripts/judge.py`` processes) started at
the same time over the same models and one cache -- each unique request once (= 2n).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO, Figure, emit, median, parser, ratios, spread, target

sys.path.insert(0, str(REPO))
from tests.fixtures.judge_server import JudgeServer, Reply, default_verdict

PARALLEL = (1, 8, 32)
FIGURES = ("judge.parallel1", "judge.parallel8", "judge.parallel32", "judge.cache_rerun", "judge.concurrent_jobs")
SCALES = {"full": 24, "small": 8}
BASELINE, MODEL = "sft", "dpo-maj-shared-n64-seed1"


def write_inputs(work: Path, n: int) -> Path:
    """FastChat's layout (data/bench/...): questions, two models' answers, judge prompts."""
    from prefsweep.eval.judges.llm.format import default_judge_prompts_path, load_judge_prompts

    bench = work / "data" / "bench"
    (bench / "model_answer").mkdir(parents=True)
    (bench / "reference_answer").mkdir()
    questions = [{"question_id": f"q{i:03d}", "category": "writing", "turns": [f"How do I plan trip {i}?"]}
                 for i in range(n)]
    (bench / "question.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    for model, style in ((MODEL, "Pack light and book early"), (BASELINE, "Go somewhere")):
        (bench / "model_answer" / f"{model}.jsonl").write_text("".join(json.dumps({
            "question_id": q["question_id"], "model_id": model, "answer_id": f"{model}-{q['question_id']}",
            "choices": [{"index": 0, "turns": [f"{style} for trip {i}."]}], "tstamp": 0.0}) + "\n"
            for i, q in enumerate(questions)))
    ours = load_judge_prompts(default_judge_prompts_path())["prefsweep-pair-v1"]
    names = ("pair-v2", "pair-v2-multi-turn", "pair-math-v1", "pair-math-v1-multi-turn")
    (work / "data" / "judge_prompts.jsonl").write_text("".join(json.dumps({**ours, "name": nm}) + "\n" for nm in names))
    return bench


@functools.cache
def verdict_settings():
    """The default config's verdict settings, read once (the warm-up run): loading the config is
    the job's start-up, not judging, and FastChat's runs are not charged for theirs."""
    from prefsweep.config import load_config
    from prefsweep.eval.judges.llm.settings import VERDICT_KEYS, VerdictSettings

    judge = load_config(check=False)["eval"]["judge"]
    return VerdictSettings(**{k: judge[k] for k in VERDICT_KEYS})


def client_settings(api_base: str, parallel: int):
    from prefsweep.eval.judges.llm.settings import ClientSettings

    return ClientSettings(api_base=api_base, api_key_env=None, parallel=parallel, max_retries=0, timeout=30.0,
                          backoff=0.0, backoff_max=0.0)


def ours(bench: Path, work: Path, api_base: str, parallel: int, cache: Path) -> None:
    from prefsweep.eval.judges.llm.judge import judge_answers

    judge_answers(verdict_settings(), client_settings(api_base, parallel), questions_path=bench / "question.jsonl",
                  answers_path=bench / "model_answer" / f"{MODEL}.jsonl",
                  baseline_path=bench / "model_answer" / f"{BASELINE}.jsonl", cache_dir=cache,
                  out_path=work / "ours" / f"{MODEL}.jsonl", echo=lambda s: None)


def fastchat(work: Path, api_base: str, parallel: int, out: Path) -> None:
    """gen_judgment.py's __main__ for --mode pairwise-baseline --judge-model gpt-4."""
    import openai
    from fastchat.llm_judge.common import (
        NEED_REF_CATS,
        load_judge_prompts,
        load_model_answers,
        load_questions,
        play_a_match_pair,
    )
    from fastchat.llm_judge.gen_judgment import make_judge_pairwise, make_match

    openai.api_base, openai.api_key = api_base, "unused"
    bench = work / "data" / "bench"
    questions = load_questions(str(bench / "question.jsonl"), None, None)
    model_answers = load_model_answers(str(bench / "model_answer"))
    judges = make_judge_pairwise("gpt-4", load_judge_prompts(str(work / "data" / "judge_prompts.jsonl")))
    default = [q for q in questions if q["category"] not in NEED_REF_CATS]
    matches = make_match(default, [MODEL], model_answers, judges["default"], BASELINE)
    matches += make_match(default, [MODEL], model_answers, judges["default-mt"], BASELINE, multi_turn=True)
    if parallel == 1:
        for match in matches:
            play_a_match_pair(match, output_file=str(out))
    else:
        with ThreadPoolExecutor(parallel) as executor:
            list(executor.map(lambda m: play_a_match_pair(m, output_file=str(out)), matches))


def two_jobs(bench: Path, work: Path, api_base: str, parallel: int) -> None:
    """Two scripts/judge.py processes at once over the same models and cache."""
    import os

    from prefsweep.config import job_config_json, load_config

    overlay = work / "llm.yaml"
    overlay.write_text("eval: {judge: {type: llm}}\n")
    config_json = job_config_json(load_config(overlay, check=False), "judge")
    client = json.dumps({"api_base": api_base, "api_key_env": None, "parallel": parallel, "max_retries": 0,
                         "timeout": 30.0, "backoff": 0.0, "backoff_max": 0.0})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "judge.py"), "--config-json", config_json, "--client-json", client,
         "--answers", str(bench / "model_answer" / f"{MODEL}.jsonl"),
         "--baseline-answers", str(bench / "model_answer" / f"{BASELINE}.jsonl"),
         "--questions", str(bench / "question.jsonl"), "--cache", str(work / "shared-cache"),
         "--out", str(work / f"job{i}" / f"{MODEL}.jsonl")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True) for i in (1, 2)]
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"scripts/judge.py failed:\n{out[-3000:]}")


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument("--latency", type=float, default=0.2, help="seconds the server takes per request")
    args = p.parse_args(argv)
    n = SCALES[args.scale]
    repeats = args.repeats or (3 if args.scale == "full" else 1)
    latency = args.latency

    def slow(request):
        return Reply(default_verdict(request).content, delay=latency)

    figures = []
    with tempfile.TemporaryDirectory(prefix="bench_judge.") as tmp, JudgeServer(default=slow) as server:
        work = Path(tmp)
        bench = write_inputs(work, n)
        # warm-up: imports and first connections are not a run's cost
        ours(bench, work, server.api_base, 8, work / "cache-warm-up")
        fastchat(work, server.api_base, 8, work / "fastchat-warm-up.jsonl")
        runs = 0
        for parallel in PARALLEL:
            rps_ours, rps_fc, sent = [], [], set()
            for _ in range(repeats):
                runs += 1
                for side in ("ours", "fastchat"):
                    server.reset()
                    t0 = time.perf_counter()
                    if side == "ours":
                        ours(bench, work, server.api_base, parallel, work / f"cache{runs}")
                    else:
                        fastchat(work, server.api_base, parallel, work / f"fastchat{runs}.jsonl")
                    wall = time.perf_counter() - t0
                    sent.add((side, server.n_requests))
                    (rps_ours if side == "ours" else rps_fc).append(server.n_requests / wall)
            counts = {c for _, c in sent}
            if counts != {2 * n}:
                raise SystemExit(f"judge.parallel{parallel}: requests per run {sorted(sent)}, expected {2 * n} each")
            r = ratios(rps_ours, rps_fc)
            ideal = min(parallel, 2 * n) / latency
            figures.append(Figure(
                name=f"judge.parallel{parallel}",
                label=(f"judge throughput, parallel {parallel}: {2 * n} requests ({n} questions x 2 orders), "
                       f"server latency {latency * 1000:g} ms (ideal {ideal:.1f} req/s)"),
                value=f"prefsweep {median(rps_ours):.1f} req/s",
                comparison=f"FastChat gen_judgment --parallel {parallel}: {median(rps_fc):.1f} req/s",
                ratio=f"{median(r):.2f}x FastChat's rate",
                spread=spread(r, lambda x: f"{x:.2f}x", "ratio")))

        # a rerun over a filled cache sends nothing
        server.reset()
        ours(bench, work, server.api_base, 8, work / "cache1")
        hit = 1 - server.n_requests / (2 * n)
        figures.append(Figure(
            name="judge.cache_rerun", label=f"judge rerun over its cache ({2 * n} requests)",
            value=f"cache hit rate {hit:.0%}", comparison=f"first run: {2 * n} requests sent",
            ratio=f"{server.n_requests} requests sent", spread="deterministic (1 run)",
            target=target(hit == 1.0, "100%")))

        server.reset()
        two_jobs(bench, work, server.api_base, 8)
        got = server.n_requests
        figures.append(Figure(
            name="judge.concurrent_jobs",
            label="two judge jobs (processes) at once over the same models and one cache",
            value=f"{got} requests received", comparison=f"{2 * n} unique requests; {4 * n} without sharing",
            ratio=f"{got / (2 * n):.2f}x the unique requests", spread="1 run",
            target=target(got == 2 * n, f"= {2 * n} unique")))
    emit(figures, FIGURES, args.json)


if __name__ == "__main__":
    main()
