"""The LLM judge under faults: a flaky or failing API, a killed job, concurrent jobs, a secret.

Against the loopback server of tests/fixtures/judge_server.py, with tiny timeouts and backoffs
and four questions (eight requests per model), so every case runs in about a second. Jobs that
must be real processes (SIGKILL, two jobs at once, what a job prints) run scripts/judge.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from prefsweep.eval.judges.llm.client import JudgeAPIError
from prefsweep.eval.judges.llm.settings import CLIENT_ENV
from tests.conftest import REPO
from tests.fixtures import judge_server as srv
from tests.fixtures.judge_cases import (  # noqa: F401 (fixtures: files, no_proxy, server)
    KEY,
    SCRIPT,
    cache_files,
    client,
    client_values,
    files,
    judge_argv,
    no_proxy,
    out_path,
    prefers_good,
    run_judge,
    script,
    server,
    slice_json,
    subprocess_env,
    verdict,
    wait_for,
    write_eval_files,
)

pytestmark = pytest.mark.reliability


def _prompts(requests: list[srv.Received]) -> list[tuple[str, str]]:
    return [(r.system, r.user) for r in requests]


def _records(path: Path, drop: tuple[str, ...] = ()) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in drop} for line in path.read_text().splitlines()]


def _start(files: Path, server: srv.JudgeServer, model: str = "dpo-a", out: Path | None = None,
           log: Path | None = None, **client_over) -> subprocess.Popen:
    argv = judge_argv(files, slice_json(), model=model)
    if out is not None:
        argv[argv.index("--out") + 1] = str(out)
    command = [sys.executable, str(SCRIPT), *argv]
    env = subprocess_env(server, **client_over)
    if log is None:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with open(log, "w") as stream:  # as the workflow runs it: `> {log} 2>&1`
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=stream, stderr=subprocess.STDOUT)


def _counts(line: str) -> tuple[int, int]:
    """(sent, answered by the other job) from "judge: N requests sent, M answered meanwhile ..."."""
    words = line.split()
    return int(words[1]), int(words[4])


# --- a flaky API: retries with backoff ------------------------------------------------------
TRANSIENT = {
    "429 with Retry-After": srv.Fail(429, retry_after=0.001),
    "500": srv.Fail(500),
    "503": srv.Fail(503),
    "200 that is not JSON": srv.Raw(200, "not json"),
    "timeout": srv.Reply("late [[B]]", delay=1.0),
    "dropped connection": srv.Drop(),
    # Each read gets a byte within the 0.3 s timeout; only a deadline on the whole attempt cuts it.
    "body trickled one byte per 0.05 s": srv.Trickle("late [[B]]", interval=0.05, duration=1.5),
    "200 with empty content": srv.Reply(""),
    "200 with blank content": srv.Reply("  \n"),
    "200 with null content": srv.Raw(200, json.dumps(srv.completion(None))),
    "200 without choices": srv.Raw(200, json.dumps({**srv.completion("x"), "choices": []})),
}


@pytest.mark.parametrize("fault", list(TRANSIENT))
def test_transient_fault_is_retried_then_succeeds(case, server, files, fault, caplog):
    case.expect(f"two {fault} answers in a row: retried with backoff (retry 1/3, 2/3), then all 8 judgments written")
    server.script(TRANSIENT[fault], TRANSIENT[fault])
    records, out = run_judge(verdict(), client(server, parallel=1, timeout=0.3), files)
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    case.observe(f"{server.n_requests} requests; {retries[-1] if retries else 'no retry logged'}")
    assert server.n_requests == 10  # 8 + 2 retried attempts
    assert len(retries) == 2 and "question q0 (g1)" in retries[0] and "retry 2/3" in retries[1]
    assert records[0]["g1_winner"] == "model_1"  # the late reply was never used
    assert len(cache_files(files)) == 8 and out.exists()


# --- an API that keeps failing: a clear failure that keeps what was received -------------------
PERSISTENT = {
    "HTTP 429": (srv.Fail(429, message="rate limited"), "HTTP 429 from http://127.0.0.1"),
    "HTTP 500": (srv.Fail(500, message="upstream exploded"), "HTTP 500 from http://127.0.0.1"),
    "timeout": (srv.Reply("late [[A]]", delay=0.5), "timed out"),
    "dropped connection": (srv.Drop(), "failed (RemoteDisconnected"),
    "trickled body": (srv.Trickle("late [[A]]", interval=0.05, duration=1.5),
                      "timed out (no complete response within 0.2 s"),
    "200 with empty content": (srv.Reply(""), "unusable response from http://127.0.0.1"),
}


@pytest.mark.parametrize("fault", list(PERSISTENT))
def test_persistent_fault_fails_naming_questions_and_keeps_received(case, server, files, fault, monkeypatch):
    action, reason = PERSISTENT[fault]
    case.expect(f"after 3 answers, {fault} for good: exit naming question q1 (g2) and '{reason}', the 3 answers "
                "kept in the cache, no output file; the rerun sends only the other 5")
    server.script(srv.Reply("[[A]]"), srv.Reply("[[B]]"), srv.Reply("[[A]]"))  # q0 g1, q0 g2, q1 g1
    server.default = action
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv(CLIENT_ENV, json.dumps(client_values(server, parallel=1, max_retries=1, timeout=0.2)))
    with pytest.raises(SystemExit) as err:
        script.main(judge_argv(files, slice_json()))
    message = str(err.value)
    case.observe(message)
    assert message.startswith("judge: error: question(s) q1 (g2) failed for good: ") and reason in message
    assert "gave up after 2 attempts" in message
    assert "3 of 8 new responses were cached, 5 remain for the next run (questions q1 (g2), q2 (g1), q2 (g2), " \
           "q3 (g1), q3 (g2))" in message
    assert f"dpo-a.jsonl against {files / 'model_answer' / 'sft.jsonl'}: {out_path(files, 'dpo-a')} not written, " \
           f"the received judgments are kept in {files / 'judge_cache'}" in message
    assert server.n_requests == 5  # 3 answers, then 2 attempts of one request; nothing new started
    assert len(cache_files(files)) == 3
    assert not out_path(files, "dpo-a").exists() and not list(files.rglob(".dpo-a.jsonl.*"))
    server.reset()
    server.default = prefers_good
    lines = []
    records, out = run_judge(verdict(), client(server), files, lines=lines)
    case.observe(f"rerun: {lines[0]}")
    assert lines[0] == "judge: 8 comparisons, 3 cached, 5 API calls" and server.n_requests == 5
    assert [r["g1_winner"] for r in records[:2]] == ["model_1", "model_1"] and out.exists()


def test_trickling_server_is_cut_at_the_deadline(case, server, files):
    case.expect("a server that sends headers, then one byte every 0.05 s: each attempt is cut at the 0.3 s "
                "deadline (timeout), retried twice, then a clear error naming the server and the deadline")
    server.default = srv.Trickle("late [[A]]", interval=0.05, duration=10.0)
    start = time.monotonic()
    with pytest.raises(JudgeAPIError) as err:
        run_judge(verdict(), client(server, parallel=1, max_retries=2, timeout=0.3), files)
    elapsed = time.monotonic() - start
    case.observe(f"{elapsed:.1f} s, {server.n_requests} requests: {err.value}")
    assert f"request to {server.api_base}/chat/completions timed out (no complete response within 0.3 s" \
        in str(err.value)
    assert "gave up after 3 attempts" in str(err.value) and server.n_requests == 3
    # 3 attempts of 0.3 s and their backoff; without a deadline each would take the trickle's 10 s
    # (the bound is loose: a busy machine must not fail it)
    assert elapsed < 8
    assert cache_files(files) == []


def test_empty_responses_are_not_cached_and_a_fixed_server_recovers(case, server, files, monkeypatch):
    case.expect("a server answering HTTP 200 with empty content: the job fails naming the unusable response and "
                "caches nothing; once the server is fixed the rerun sends all 8 and writes no error")
    server.default = srv.Reply("")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv(CLIENT_ENV, json.dumps(client_values(server, parallel=1, max_retries=1)))
    with pytest.raises(SystemExit) as err:
        script.main(judge_argv(files, slice_json(cache_malformed=False)))
    case.observe(err.value)
    assert "question(s) q0 (g1) failed for good: unusable response from " \
           f"{server.api_base}/chat/completions (empty message content" in str(err.value)
    assert "0 of 8 new responses were cached" in str(err.value)
    assert cache_files(files) == [] and not out_path(files, "dpo-a").exists()
    server.reset()
    server.default = prefers_good
    lines = []
    records, _ = run_judge(verdict(), client(server), files, lines=lines)
    case.observe(f"fixed server: {lines[0]}; {lines[-1]}")
    assert lines[0] == "judge: 8 comparisons, 0 cached, 8 API calls" and server.n_requests == 8
    assert "error" not in {r[g] for r in records for g in ("g1_winner", "g2_winner")}


@pytest.mark.parametrize("judgment", ["", " \n", None])
def test_unusable_cache_entries_are_asked_again(case, server, files, judgment):
    case.expect(f"cache entries with judgment {judgment!r} (left by an older version): not served, asked again; "
                "the rerun writes real verdicts and repairs the cache")
    run_judge(verdict(), client(server), files)
    for path in cache_files(files):
        entry = json.loads(path.read_text())
        path.write_text(json.dumps({**entry, "judgment": judgment}))
    server.reset()
    lines = []
    records, _ = run_judge(verdict(cache_malformed=False), client(server), files, lines=lines)
    case.observe(f"{lines[0]}; {lines[-1]}")
    assert lines[0] == "judge: 8 comparisons, 0 cached, 8 API calls" and server.n_requests == 8
    assert "error" not in {r[g] for r in records for g in ("g1_winner", "g2_winner")}
    assert all(json.loads(p.read_text())["judgment"].startswith("Verdict: ") for p in cache_files(files))


def test_client_error_is_not_retried(case, server, files):
    case.expect("HTTP 400 (a bad request) fails at once, named, without retries")
    server.default = srv.Fail(400, message="bad model")
    with pytest.raises(JudgeAPIError) as err:
        run_judge(verdict(), client(server, parallel=1), files)
    case.observe(err.value)
    assert "question(s) q0 (g1) failed for good: HTTP 400" in str(err.value) and "bad model" in str(err.value)
    assert server.n_requests == 1


# --- a job killed mid-way ---------------------------------------------------------------------
def test_killed_judge_job_rerun_sends_only_what_is_missing(case, server, files, tmp_path):
    case.expect("SIGKILL after some answers: no output file; the rerun sends only the missing requests "
                "(no duplicate at the server) and writes what an uninterrupted run writes")
    server.default = lambda request: srv.Reply(prefers_good(request).content, delay=0.15)
    job = _start(files, server, parallel=1)
    wait_for(lambda: server.n_requests >= 4, what="4 requests")  # 3 answered, the 4th in flight
    job.send_signal(signal.SIGKILL)
    job.communicate(timeout=30)
    first = _prompts(server.requests)
    cached = len(cache_files(files))
    assert not out_path(files, "dpo-a").exists()
    assert list((files / "judge_cache").glob("*/*.lock"))  # the killed claim's file is left behind...
    server.reset()
    server.default = prefers_good
    rerun = _start(files, server)
    stdout, stderr = rerun.communicate(timeout=60)  # ...and taken over: the OS dropped its lock
    assert rerun.returncode == 0, stderr
    again = _prompts(server.requests)
    case.observe(f"killed after {len(first)} requests, {cached} cached; rerun sent {len(again)}: "
                 f"{stdout.splitlines()[0]}")
    assert cached in (3, 4)
    assert len(again) == 8 - cached and len(set(again)) == len(again)
    answered = set(first[:cached])  # parallel=1: the first `cached` requests are the answered ones
    assert not answered & set(again)
    assert len(answered | set(again)) == 8
    # What an uninterrupted run writes (tstamp is the time of each judgment, so it differs).
    fresh = write_eval_files(tmp_path / "fresh")
    _, uninterrupted = run_judge(verdict(), client(server), fresh)
    assert _records(out_path(files, "dpo-a"), drop=("tstamp",)) == _records(uninterrupted, drop=("tstamp",))


# --- concurrent jobs ----------------------------------------------------------------------------
@pytest.mark.parametrize("models, unique", [(("dpo-a", "dpo-a"), 8), (("dpo-a", "dpo-b"), 10)])
def test_concurrent_jobs_send_each_request_once(case, server, files, tmp_path, models, unique):
    case.expect(f"two judge jobs at once ({' and '.join(models)}) missing the same keys: {unique} requests "
                "at the server (one per unique request), both outputs complete")
    gate = threading.Event()

    def held(request: srv.Received) -> srv.Action:
        gate.wait(20)  # keep both jobs' first requests in flight at once
        return prefers_good(request)

    server.default = held
    outs = [tmp_path / "a" / f"{models[0]}.jsonl", tmp_path / "b" / f"{models[1]}.jsonl"]
    first = _start(files, server, model=models[0], out=outs[0], parallel=2)
    wait_for(lambda: server.n_requests == 2, what="the first job's 2 requests")
    second = _start(files, server, model=models[1], out=outs[1], parallel=2)
    wait_for(lambda: server.n_requests == 4, what="the second job's 2 requests (the other keys)")
    gate.set()
    results = [job.communicate(timeout=60) for job in (first, second)]
    for job, (_, stderr) in zip((first, second), results):
        assert job.returncode == 0, stderr
    sent = [next(line for line in out.splitlines() if "requests sent" in line) for out, _ in results]
    case.observe(f"{server.n_requests} requests; " + "; ".join(s.removeprefix("judge: ") for s in sent))
    prompts = _prompts(server.requests)
    assert len(prompts) == len(set(prompts)) == unique
    counts = [_counts(s) for s in sent]
    assert sum(n for n, _ in counts) == unique
    assert all(m >= 2 for _, m in counts)  # each waited for the other's claimed keys, then read them
    a, b = (_records(out) for out in outs)
    assert len(a) == len(b) == 4
    if models[0] == models[1]:
        assert outs[0].read_bytes() == outs[1].read_bytes()
    else:  # the three questions with equal answers have equal verdicts
        assert [r["g1_winner"] for r in a[:3]] == [r["g1_winner"] for r in b[:3]]
    assert not list((files / "judge_cache").glob("*/*.lock"))


# --- secrets --------------------------------------------------------------------------------------
def test_canary_key_appears_nowhere_but_the_auth_header(case, server, files, tmp_path):
    case.expect("a canary API key, echoed back by the server in error bodies and in a reply, appears in no file "
                "under the cache, output and log dirs and not in the job's stdout/stderr (redacted as ***)")
    logs = tmp_path / "logs"
    logs.mkdir()
    server.script(srv.Fail(500, message=f"echo of your key {KEY}"),  # retried, logged redacted
                  srv.Reply(f"Your key is {KEY}. [[A]]"))            # a reply that echoes it
    job = _start(files, server, log=logs / "dpo-a.log")
    job.wait(timeout=60)
    assert job.returncode == 0, (logs / "dpo-a.log").read_text()
    server.default = srv.Fail(401, message=f"Incorrect API key provided: {KEY}")
    failed = _start(files, server, model="dpo-b")
    stdout, stderr = failed.communicate(timeout=60)
    assert failed.returncode == 1 and "HTTP 401" in stderr
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in server.requests)  # the key was in play
    texts = {str(p): p.read_text(errors="replace") for d in (files, logs) for p in d.rglob("*") if p.is_file()}
    texts.update(stdout=stdout, stderr=stderr)
    leaks = [name for name, text in texts.items() if KEY in text]
    case.observe(f"{len(texts)} files and streams checked, leaks: {leaks or 'none'}; log: "
                 + next(line for line in (logs / "dpo-a.log").read_text().splitlines() if "retry" in line))
    assert leaks == []
    assert "echo of your key ***" in (logs / "dpo-a.log").read_text()
    assert "Your key is ***. [[A]]" in out_path(files, "dpo-a").read_text()
    assert len(cache_files(files)) == 8
