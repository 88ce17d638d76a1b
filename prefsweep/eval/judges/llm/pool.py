"""Answering a job's requests from the cache or the API, ``parallel`` at a time.

:func:`run_requests` plans (cache hits, unique misses; the plan line is printed before any
request), checks the budget, then claims and sends the misses (this job's own claims first,
then the keys other jobs held), caching each response as it arrives. After the first call that
fails for good no new call starts; the error names the failed and the missing questions.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prefsweep.eval.judges.llm.budget import Budget
from prefsweep.eval.judges.llm.cache import JudgeCache
from prefsweep.eval.judges.llm.client import ChatClient, JudgeAPIError
from prefsweep.eval.judges.llm.format import JudgeRequest, is_malformed
from prefsweep.eval.judges.llm.settings import ClientSettings, VerdictSettings


@dataclass
class RunStats:
    """What a run planned (comparisons, cache hits, API calls) and did (sent, answered by others)."""

    comparisons: int
    cached: int
    api_calls: int
    sent: int
    by_other_job: int

    def line(self) -> str:
        return f"judge: {self.comparisons} comparisons, {self.cached} cached, {self.api_calls} API calls"

    def done_line(self) -> str:
        return (f"judge: {self.sent} requests sent, {self.by_other_job} answered meanwhile by a concurrent "
                "judge job")


def plan(requests: list[JudgeRequest], cache: JudgeCache) -> tuple[dict[str, dict], list[JudgeRequest], RunStats]:
    """Split requests into cache hits ``{key: entry}`` and the unique misses to send."""
    hits: dict[str, dict] = {}
    misses: dict[str, JudgeRequest] = {}
    for r in requests:
        if r.key in hits or r.key in misses:
            continue
        entry = cache.get(r.key)
        if entry is not None:
            hits[r.key] = entry
        else:
            misses[r.key] = r
    cached = sum(1 for r in requests if r.key in hits)
    return hits, list(misses.values()), RunStats(len(requests), cached, len(misses), sent=0, by_other_job=0)


def _ids(labels: list[str], limit: int = 10) -> str:
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return ", ".join(labels[:limit]) + more


def run_requests(requests: list[JudgeRequest], cache: JudgeCache, verdict: VerdictSettings,
                 client: ClientSettings, client_factory: Callable[[], ChatClient], prompt: Mapping[str, Any],
                 echo: Callable[[str], None] = print, budget: Budget | None = None) -> dict[str, dict]:
    """Answer every request from the cache or the API; ``{key: cache entry}``.

    Prints the plan line before any request; with a ``budget`` whose limit the experiment's
    remaining calls exceed, raises :class:`JudgeBudgetError` before sending anything. Misses are claimed across processes (module
    docstring): first this job's own claims, ``client.parallel`` at a time, then the keys other
    jobs held. Each response is cached as soon as it arrives. After the first call that fails
    for good no new call starts (calls in flight finish and are cached), and ``JudgeAPIError``
    is raised naming the failed and the missing question ids.
    """
    hits, misses, stats = plan(requests, cache)
    echo(stats.line())
    results = dict(hits)
    if not misses:
        return results
    if budget is not None:
        budget.check(stats.api_calls, cache.count())
    chat = client_factory()
    stop = threading.Event()
    lock = threading.Lock()
    failures: list[tuple[JudgeRequest, str]] = []
    held_elsewhere: list[JudgeRequest] = []

    def work(r: JudgeRequest, wait: bool) -> None:
        if stop.is_set():
            return
        claim = cache.claim(r.key, wait=wait, stop=stop)
        if claim is None:
            if not wait:
                with lock:
                    held_elsewhere.append(r)
            return
        try:
            entry = cache.get(r.key)
            if entry is not None:  # answered by another job since the plan
                with lock:
                    results[r.key] = entry
                    stats.by_other_job += 1
                return
            with lock:
                stats.sent += 1
            try:
                response = chat.complete(r.messages(), label=r.label)
            except JudgeAPIError as exc:
                stop.set()
                with lock:
                    failures.append((r, str(exc)))
                return
            entry = {"key": r.key, "judge_model": verdict.model, "prompt_name": prompt["name"],
                     "question_id": r.question_id, "order": r.order, "tstamp": time.time(), **response}
            if verdict.cache_malformed or not is_malformed(response["judgment"], prompt):
                cache.put(r.key, entry)
            with lock:
                results[r.key] = entry
        finally:
            claim.release()

    with concurrent.futures.ThreadPoolExecutor(client.parallel) as pool:
        for batch, wait in ((misses, False), (held_elsewhere, True)):
            futures = [pool.submit(work, r, wait) for r in list(batch)]
            try:
                for future in concurrent.futures.as_completed(futures):
                    future.result()  # re-raise unexpected errors (e.g. a cache write that failed)
            except BaseException:
                # Ctrl-C or an unexpected error: start nothing new, let calls in flight finish.
                stop.set()
                for future in futures:
                    future.cancel()
                raise
    echo(stats.done_line())
    if failures:
        failures.sort(key=lambda f: misses.index(f[0]))
        missing = [r.label for r in misses if r.key not in results]
        done = len(misses) - len(missing)
        raise JudgeAPIError(
            f"question(s) {_ids([r.label for r, _ in failures])} failed for good: {failures[0][1]}; "
            f"{done} of {len(misses)} new responses were cached, {len(missing)} remain for the next run "
            f"(questions {_ids(missing)})"
        )
    return results
