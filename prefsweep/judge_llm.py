"""LLM judge over an OpenAI-compatible chat-completions API, with a request cache.

Two modes, as in FastChat's MT-Bench judge (``fastchat.llm_judge``, fschat 0.2.36):

* ``pairwise`` -- every question is judged twice against a baseline: game ``g1`` shows the
  model under test as assistant A and the baseline as B, game ``g2`` the other way round.
  Both verdicts are written; a disagreement counts as a tie downstream (win rates).
* ``single`` -- every answer gets a 1..10 rating.

Formats
-------
Inputs are FastChat files: questions ``{"question_id", "category", "turns": [text, ...]}`` and
answers ``{"question_id", "answer_id", "model_id", "choices": [{"index": 0, "turns": [text]}],
"tstamp"}``. A file's model name is its file name without ``.jsonl`` (FastChat's
``load_model_answers`` convention). Only the first turn is judged (``turn`` = 1).

Judge prompts are FastChat ``judge_prompts.jsonl`` records ``{"name", "type": "pairwise" |
"single", "system_prompt", "prompt_template", "description", "category", "output_format"}``;
``prompt_template`` has ``{question}``, ``{answer_a}``, ``{answer_b}`` (pairwise) or
``{question}``, ``{answer}`` (single). The package ships its own wording
(``prefsweep/judge_prompts.jsonl``: ``prefsweep-pair-v1``, ``prefsweep-single-v1``); FastChat's
own file (not in its wheel) can be named instead, for its one-turn, reference-free prompts
(``pair-v2``, ``single-v1``).

Outputs are FastChat judgment records, one file per model (``show_result`` reads them):
pairwise ``{"question_id", "model_1", "model_2", "g1_winner", "g2_winner", "judge":
[judge_model, prompt_name], "g1_user_prompt", "g1_judgment", "g2_user_prompt",
"g2_judgment", "turn", "tstamp"}`` with winners ``model_1 | model_2 | tie | error``
(model_1 = model under test, model_2 = baseline); single ``{"question_id", "model", "judge",
"user_prompt", "judgment", "score", "turn", "tstamp"}`` with score -1 when no rating is found.

Prompt rendering and verdict parsing follow ``fastchat.llm_judge.common.run_judge_pair`` /
``run_judge_single`` exactly: ``prompt_template.format(question=..., answer_a=..., answer_b=...)``,
messages ``[system, user]``; output format ``[[A]]``: "[[A]]" in the text -> A, else "[[B]]" ->
B, else "[[C]]" -> tie, else ``error``; ``[[rating_a,rating_b]]``: scores within
``TIE_DELTA`` are a tie; ``[[rating]]``: first ``[[x]]``, else first ``[x]``, else -1.
(A test checks this module against FastChat's functions.) FastChat's module is not imported
here: it pulls in torch and transformers (about 12 s), and its API call retries 16 times with
10 s sleeps, has no timeout and no cache, so the HTTP call is ours.

Request cache
-------------
One JSON file per request, ``{cache}/{key[:2]}/{key}.json`` (written atomically, so parallel
jobs judging different models can share the directory without a lock). ``key`` is the SHA-256
of the canonical JSON of: judge model, prompt name, system prompt, prompt template, question id,
question text, answer A, answer B (null for single), order (``g1`` | ``g2`` | ``single``),
temperature and max_tokens. Model names are not part of the key: two models that give the
same answer share the judgment. The entry stores the judge's raw text; verdicts are parsed
when the judgment file is written.

* Only HTTP-200 responses with a message are cached. Errors after the retries (HTTP
  429/5xx, timeouts, connection errors, unparsable bodies) are not: they are asked again on
  the next run.
* A malformed verdict (a 200 whose text has no verdict) is a valid response and is cached by
  default (``cache_malformed: true``): at temperature 0 the judge would write the same text
  again, so asking again costs money for nothing. It is written as ``error`` (pairwise) or
  score -1 (single), which FastChat's ``show_result`` drops. With ``cache_malformed: false`` a
  malformed response is still written to this run's file but asked again next run.
* A run that fails partway has already cached every response it got and writes no judgment
  file; the next run pays only for the rest.

The API key is read from the environment variable named by ``api_key_env`` and sent only in
the ``Authorization`` header; it never appears in a log line, an exception, a cache entry or an
output (error texts from the server are redacted and dropped for 401/403).
"""

from __future__ import annotations

import ast
import concurrent.futures
import hashlib
import http.client
import json
import logging
import os
import random
import re
import string
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from prefsweep.io import atomic_write_json, atomic_write_jsonl, read_jsonl

log = logging.getLogger(__name__)

# --- FastChat's parsing constants (fastchat/llm_judge/common.py, fschat 0.2.36) -------------
TWO_SCORE_PATTERN = re.compile(r"\[\[(\d+\.?\d*),\s?(\d+\.?\d*)\]\]")
TWO_SCORE_PATTERN_BACKUP = re.compile(r"\[(\d+\.?\d*),\s?(\d+\.?\d*)\]")
ONE_SCORE_PATTERN = re.compile(r"\[\[(\d+\.?\d*)\]\]")
ONE_SCORE_PATTERN_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")
TIE_DELTA = 0.1
#: Game g1 shows model_1 as A; game g2 shows model_2 as A.
G1_MAP = {"A": "model_1", "B": "model_2"}
G2_MAP = {"A": "model_2", "B": "model_1"}

PAIRWISE_FORMATS = ("[[A]]", "[[rating_a,rating_b]]")
SINGLE_FORMATS = ("[[rating]]",)
TEMPLATE_FIELDS = {"pairwise": {"question", "answer_a", "answer_b"}, "single": {"question", "answer"}}

#: HTTP statuses worth asking again (rate limit, server trouble, request timeout).
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
DEFAULT_API_BASE = "https://api.openai.com/v1"
CACHE_VERSION = 1


class JudgeError(RuntimeError):
    """A judge run that cannot go on (bad input, missing key, API failures)."""


class JudgeAPIError(JudgeError):
    """An API call that failed for good (after the retries, or not retryable)."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- settings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class JudgeSettings:
    """The ``eval.judge`` keys the LLM judge reads (``type: llm``), with their defaults."""

    #: Judge model name sent to the API.
    model: str = "gpt-4"
    #: Base URL ending before ``/chat/completions``; null: env OPENAI_API_BASE, else OpenAI's.
    api_base: str | None = None
    #: Environment variable holding the API key; null for a server that needs none.
    api_key_env: str | None = "OPENAI_API_KEY"
    #: Path of a FastChat judge_prompts.jsonl; null: the prompts shipped with prefsweep.
    judge_prompts: str | None = None
    #: Prompt names (in that file) for each mode.
    pairwise_prompt: str = "prefsweep-pair-v1"
    single_prompt: str = "prefsweep-single-v1"
    #: Concurrent API requests.
    parallel: int = 4
    #: Retries after the first attempt, on 408/409/429/5xx, timeouts and connection errors.
    max_retries: int = 5
    #: Seconds per socket operation (connect, each read) before the attempt counts as timed out.
    timeout: float = 60.0
    #: First retry delay in seconds; doubles each retry, capped by backoff_max (a server's
    #: Retry-After, when longer, is honoured up to backoff_max).
    backoff: float = 1.0
    backoff_max: float = 60.0
    temperature: float = 0.0
    max_tokens: int = 1024
    #: Cache responses with no recognisable verdict (see the module docstring).
    cache_malformed: bool = True

    def __post_init__(self) -> None:
        checks = [
            (self.parallel >= 1, "parallel must be >= 1"),
            (self.max_retries >= 0, "max_retries must be >= 0"),
            (self.timeout > 0, "timeout must be > 0"),
            (self.backoff >= 0 and self.backoff_max >= 0, "backoff and backoff_max must be >= 0"),
            (self.max_tokens >= 1, "max_tokens must be >= 1"),
            (self.temperature >= 0, "temperature must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise JudgeError(f"eval.judge: {message}")

    @classmethod
    def from_config(cls, judge_cfg: Mapping[str, Any] | None) -> JudgeSettings:
        """Settings from the config section ``eval.judge``.

        Keys that are not fields here (``type`` and the electorate judge's keys) are left to the
        config schema, which rejects typos.
        """
        judge_cfg = judge_cfg or {}
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in judge_cfg.items() if k in names and v is not None}
        # api_base / api_key_env / judge_prompts may be explicitly null.
        for k in ("api_base", "api_key_env", "judge_prompts"):
            if k in judge_cfg:
                kwargs[k] = judge_cfg[k]
        return cls(**kwargs)

    def resolved_api_base(self, env: Mapping[str, str]) -> str:
        return (self.api_base or env.get("OPENAI_API_BASE") or DEFAULT_API_BASE).rstrip("/")

    def prompt_name(self, mode: str) -> str:
        return {"pairwise": self.pairwise_prompt, "single": self.single_prompt}[mode]


# --- prompts ----------------------------------------------------------------------------------
def default_judge_prompts_path() -> Path:
    return Path(str(resources.files("prefsweep") / "judge_prompts.jsonl"))


def load_judge_prompts(path: str | os.PathLike | None = None) -> dict[str, dict]:
    """``{name: prompt record}`` from a FastChat judge_prompts.jsonl (ours when ``path`` is None)."""
    return {p["name"]: p for p in read_jsonl(path or default_judge_prompts_path())}


def check_judge_prompt(prompt: Mapping[str, Any], mode: str) -> None:
    """Raise ``JudgeError`` unless ``prompt`` is a one-turn, reference-free prompt for ``mode``."""
    name = prompt.get("name")
    if prompt.get("type") != mode:
        raise JudgeError(f"judge prompt {name!r} has type {prompt.get('type')!r}, not {mode!r}")
    allowed = PAIRWISE_FORMATS if mode == "pairwise" else SINGLE_FORMATS
    if prompt.get("output_format") not in allowed:
        raise JudgeError(
            f"judge prompt {name!r}: output_format {prompt.get('output_format')!r} is not one of {allowed}"
        )
    used = {f for _, f, _, _ in string.Formatter().parse(prompt["prompt_template"]) if f is not None}
    expected = TEMPLATE_FIELDS[mode]
    if used != expected:
        raise JudgeError(
            f"judge prompt {name!r}: template fields {sorted(used)}, expected {sorted(expected)} "
            "(multi-turn and reference-guided prompts are not supported)"
        )


def select_judge_prompt(settings: JudgeSettings, mode: str) -> dict:
    prompts = load_judge_prompts(settings.judge_prompts)
    name = settings.prompt_name(mode)
    if name not in prompts:
        raise JudgeError(f"judge prompt {name!r} not in {settings.judge_prompts or 'prefsweep/judge_prompts.jsonl'} "
                         f"(has {sorted(prompts)})")
    check_judge_prompt(prompts[name], mode)
    return prompts[name]


def format_pair_prompt(prompt: Mapping[str, Any], question: str, answer_a: str, answer_b: str) -> str:
    return prompt["prompt_template"].format(question=question, answer_a=answer_a, answer_b=answer_b)


def format_single_prompt(prompt: Mapping[str, Any], question: str, answer: str) -> str:
    return prompt["prompt_template"].format(question=question, answer=answer)


# --- verdict parsing (FastChat's rules) -------------------------------------------------------
def parse_pair_verdict(judgment: str, output_format: str = "[[A]]") -> str:
    """``"A" | "B" | "tie" | "error"`` from a pairwise judgment (run_judge_pair's rules)."""
    if output_format == "[[A]]":
        if "[[A]]" in judgment:
            return "A"
        if "[[B]]" in judgment:
            return "B"
        if "[[C]]" in judgment:
            return "tie"
        return "error"
    if output_format == "[[rating_a,rating_b]]":
        match = TWO_SCORE_PATTERN.search(judgment) or TWO_SCORE_PATTERN_BACKUP.search(judgment)
        if not match:
            return "error"
        a, b = (ast.literal_eval(s.strip()) for s in match.groups())
        if abs(a - b) <= TIE_DELTA:
            return "tie"
        return "A" if a > b else "B"
    raise JudgeError(f"invalid pairwise output format: {output_format!r}")


def parse_single_rating(judgment: str, output_format: str = "[[rating]]") -> float | int:
    """The rating of a single-answer judgment, -1 when none is found (run_judge_single's rules)."""
    if output_format != "[[rating]]":
        raise JudgeError(f"invalid single output format: {output_format!r}")
    match = ONE_SCORE_PATTERN.search(judgment) or ONE_SCORE_PATTERN_BACKUP.search(judgment)
    return ast.literal_eval(match.groups()[0]) if match else -1


def is_malformed(judgment: str, prompt: Mapping[str, Any]) -> bool:
    if prompt["type"] == "pairwise":
        return parse_pair_verdict(judgment, prompt["output_format"]) == "error"
    return parse_single_rating(judgment, prompt["output_format"]) == -1


# --- requests and cache -----------------------------------------------------------------------
@dataclass(frozen=True)
class JudgeRequest:
    """One chat-completion call: a question, one or two answers, one order."""

    key: str
    question_id: str
    order: str  # g1 | g2 | single
    system_prompt: str
    user_prompt: str

    def messages(self) -> list[dict[str, str]]:
        # What FastChat's "chatgpt" conversation template gives via to_openai_api_messages().
        return [{"role": "system", "content": self.system_prompt},
                {"role": "user", "content": self.user_prompt}]


def cache_key(*, judge_model: str, prompt: Mapping[str, Any], question_id: str, question: str,
              answer_a: str, answer_b: str | None, order: str, temperature: float,
              max_tokens: int) -> str:
    """SHA-256 (hex) of everything that determines the judge's response."""
    payload = {
        "v": CACHE_VERSION,
        "judge_model": judge_model,
        "prompt_name": prompt["name"],
        "system_prompt": prompt["system_prompt"],
        "prompt_template": prompt["prompt_template"],
        "question_id": str(question_id),
        "question": question,
        "answer_a": answer_a,
        "answer_b": answer_b,
        "order": order,
        "temperature": float(temperature),
        "max_tokens": int(max_tokens),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


class JudgeCache:
    """Directory of JSON entries, one per request key (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        try:
            with open(self.path(key), encoding="utf-8") as fh:
                entry = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("judge cache: unreadable entry %s, asking again", self.path(key))
            return None
        return entry if isinstance(entry, dict) and isinstance(entry.get("judgment"), str) else None

    def put(self, key: str, entry: dict) -> None:
        atomic_write_json(self.path(key), entry)


# --- HTTP client ------------------------------------------------------------------------------
def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


class ChatClient:
    """Blocking chat-completions client with bounded retries and exponential backoff."""

    def __init__(self, settings: JudgeSettings, api_base: str, api_key: str | None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.url = f"{api_base.rstrip('/')}/chat/completions"
        self._api_key = api_key
        self._sleep = sleep

    def __repr__(self) -> str:  # never show the key
        return f"ChatClient(url={self.url!r}, model={self.settings.model!r})"

    def _once(self, messages: list[dict[str, str]]) -> dict:
        s = self.settings
        body = json.dumps({"model": s.model, "messages": messages, "n": 1,
                           "temperature": s.temperature, "max_tokens": s.max_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=s.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            detail = ""
            if status not in (401, 403):
                try:
                    detail = _redact(exc.read(500).decode("utf-8", "replace"), self._api_key)
                except Exception:  # noqa: BLE001 (the body is only decoration)
                    detail = ""
                detail = f": {' '.join(detail.split())[:300]}" if detail else ""
            message = f"HTTP {status} from {self.url}{detail}"
            if status in RETRY_STATUSES:
                raise _Retryable(message, retry_after) from None
            raise JudgeAPIError(message) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
            reason = getattr(exc, "reason", exc)
            kind = "timed out" if isinstance(reason, TimeoutError) or "timed out" in str(reason) else "failed"
            raise _Retryable(f"request to {self.url} {kind} ({type(reason).__name__}: "
                             f"{_redact(str(reason), self._api_key)})") from None
        try:
            data = json.loads(raw)
            content = data["choices"][0]["message"]["content"]
            if not isinstance(content, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise _Retryable(f"unusable response from {self.url} ({type(exc).__name__})") from None
        return {"judgment": content, "response_model": data.get("model"), "usage": data.get("usage")}

    def complete(self, messages: list[dict[str, str]]) -> dict:
        """``{"judgment", "response_model", "usage"}``; raises ``JudgeAPIError`` when it gives up."""
        s = self.settings
        for attempt in range(s.max_retries + 1):
            try:
                return self._once(messages)
            except _Retryable as exc:
                if attempt == s.max_retries:
                    raise JudgeAPIError(f"{exc}; gave up after {attempt + 1} attempts") from None
                delay = min(s.backoff * 2**attempt, s.backoff_max)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, s.backoff_max))
                delay *= 1 + 0.1 * random.random()  # jitter: parallel threads do not retry in step
                log.warning("judge: %s; retry %d/%d in %.2f s", exc, attempt + 1, s.max_retries, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: ignore, use our own backoff


# --- running ----------------------------------------------------------------------------------
@dataclass
class RunStats:
    comparisons: int
    cached: int
    api_calls: int

    def line(self) -> str:
        return f"judge: {self.comparisons} comparisons, {self.cached} cached, {self.api_calls} API calls"


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
    return hits, list(misses.values()), RunStats(len(requests), cached, len(misses))


def run_requests(requests: list[JudgeRequest], cache: JudgeCache, settings: JudgeSettings,
                 client_factory: Callable[[], ChatClient], prompt: Mapping[str, Any],
                 echo: Callable[[str], None] = print) -> dict[str, dict]:
    """Answer every request from the cache or the API; ``{key: cache entry}``.

    Prints the plan line before any request. Each response is cached as soon as it arrives.
    After the first call that fails for good no new call starts (calls in flight finish and
    are cached), and ``JudgeAPIError`` is raised.
    """
    hits, misses, stats = plan(requests, cache)
    echo(stats.line())
    results = dict(hits)
    if not misses:
        return results
    client = client_factory()
    stop = threading.Event()
    lock = threading.Lock()
    failures: list[str] = []

    def work(r: JudgeRequest) -> None:
        if stop.is_set():
            return
        try:
            response = client.complete(r.messages())
        except JudgeAPIError as exc:
            stop.set()
            with lock:
                failures.append(f"question {r.question_id} ({r.order}): {exc}")
            return
        entry = {"key": r.key, "judge_model": settings.model, "prompt_name": prompt["name"],
                 "question_id": r.question_id, "order": r.order, "tstamp": time.time(), **response}
        if settings.cache_malformed or not is_malformed(response["judgment"], prompt):
            cache.put(r.key, entry)
        with lock:
            results[r.key] = entry

    with concurrent.futures.ThreadPoolExecutor(settings.parallel) as pool:
        futures = [pool.submit(work, r) for r in misses]
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()  # re-raise unexpected errors (e.g. a cache write that failed)
        except BaseException:
            # Ctrl-C or an unexpected error: start nothing new, let calls in flight finish.
            stop.set()
            for future in futures:
                future.cancel()
            raise
    if failures:
        done = sum(1 for r in misses if r.key in results)
        raise JudgeAPIError(
            f"{len(failures)} API call(s) failed for good; {done} of {len(misses)} new responses were "
            f"cached, {len(misses) - done} remain for the next run. First failure: {failures[0]}"
        )
    return results


def load_answers(path: str | os.PathLike) -> dict[str, dict]:
    """``{question_id: answer record}`` of one FastChat answer file."""
    return {str(a["question_id"]): a for a in read_jsonl(path)}


def model_name(path: str | os.PathLike) -> str:
    """FastChat's model name of an answer file: its file name without ``.jsonl``."""
    name = Path(path).name
    return name[: -len(".jsonl")] if name.endswith(".jsonl") else Path(path).stem


def _first_turn(answer: Mapping[str, Any]) -> str:
    return answer["choices"][0]["turns"][0]


def _check_answers(questions: list[dict], answers: Mapping[str, dict], who: str) -> None:
    missing = [str(q["question_id"]) for q in questions if str(q["question_id"]) not in answers]
    if missing:
        raise JudgeError(f"{who}: no answer to {len(missing)} question(s), e.g. {missing[:5]}")


def pairwise_requests(questions: list[dict], answers_1: Mapping[str, dict], answers_2: Mapping[str, dict],
                      prompt: Mapping[str, Any], settings: JudgeSettings) -> list[JudgeRequest]:
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


def single_requests(questions: list[dict], answers: Mapping[str, dict], prompt: Mapping[str, Any],
                    settings: JudgeSettings) -> list[JudgeRequest]:
    out = []
    for q in questions:
        qid = str(q["question_id"])
        text, a = q["turns"][0], _first_turn(answers[qid])
        key = cache_key(judge_model=settings.model, prompt=prompt, question_id=qid, question=text,
                        answer_a=a, answer_b=None, order="single", temperature=settings.temperature,
                        max_tokens=settings.max_tokens)
        out.append(JudgeRequest(key, qid, "single", prompt["system_prompt"],
                                format_single_prompt(prompt, text, a)))
    return out


def pairwise_records(questions: list[dict], requests: list[JudgeRequest], results: Mapping[str, dict],
                     model_1: str, model_2: str, prompt: Mapping[str, Any], settings: JudgeSettings) -> list[dict]:
    """FastChat ``*_pair.jsonl`` records, in question order (as ``play_a_match_pair`` writes them)."""
    by_q = {(r.question_id, r.order): r for r in requests}
    records = []
    for q in questions:
        qid = str(q["question_id"])
        r1, r2 = by_q[(qid, "g1")], by_q[(qid, "g2")]
        e1, e2 = results[r1.key], results[r2.key]
        w1 = parse_pair_verdict(e1["judgment"], prompt["output_format"])
        w2 = parse_pair_verdict(e2["judgment"], prompt["output_format"])
        records.append({
            "question_id": q["question_id"],
            "model_1": model_1,
            "model_2": model_2,
            "g1_winner": G1_MAP.get(w1, w1),
            "g2_winner": G2_MAP.get(w2, w2),
            "judge": [settings.model, prompt["name"]],
            "g1_user_prompt": r1.user_prompt,
            "g1_judgment": e1["judgment"],
            "g2_user_prompt": r2.user_prompt,
            "g2_judgment": e2["judgment"],
            "turn": 1,
            # The time the judgment was made (cached), so a rerun writes the same bytes.
            "tstamp": max(e1["tstamp"], e2["tstamp"]),
        })
    return records


def single_records(questions: list[dict], requests: list[JudgeRequest], results: Mapping[str, dict],
                   model: str, prompt: Mapping[str, Any], settings: JudgeSettings) -> list[dict]:
    """FastChat ``*_single.jsonl`` records, in question order."""
    by_q = {r.question_id: r for r in requests}
    records = []
    for q in questions:
        r = by_q[str(q["question_id"])]
        e = results[r.key]
        records.append({
            "question_id": q["question_id"],
            "model": model,
            "judge": [settings.model, prompt["name"]],
            "user_prompt": r.user_prompt,
            "judgment": e["judgment"],
            "score": parse_single_rating(e["judgment"], prompt["output_format"]),
            "turn": 1,
            "tstamp": e["tstamp"],
        })
    return records


def judge_answers(settings: JudgeSettings, *, mode: str, questions_path: str | os.PathLike,
                  answers_path: str | os.PathLike, cache_dir: str | os.PathLike,
                  out_path: str | os.PathLike, baseline_path: str | os.PathLike | None = None,
                  model_id: str | None = None, baseline_id: str | None = None,
                  env: Mapping[str, str] | None = None, echo: Callable[[str], None] = print,
                  sleep: Callable[[float], None] = time.sleep) -> list[dict]:
    """Judge one model's answers and write its judgment file atomically; returns the records.

    ``mode`` is ``pairwise`` (needs ``baseline_path``) or ``single``. On failure nothing is
    written to ``out_path`` (responses received so far are in the cache).
    """
    if mode not in TEMPLATE_FIELDS:
        raise JudgeError(f"mode must be pairwise or single, not {mode!r}")
    env = os.environ if env is None else env
    prompt = select_judge_prompt(settings, mode)
    questions = read_jsonl(questions_path)
    if not questions:
        raise JudgeError(f"{questions_path}: no questions")
    answers = load_answers(answers_path)
    model_1 = model_id or model_name(answers_path)
    _check_answers(questions, answers, model_1)
    if mode == "pairwise":
        if baseline_path is None:
            raise JudgeError("pairwise judging needs baseline answers")
        baseline = load_answers(baseline_path)
        model_2 = baseline_id or model_name(baseline_path)
        _check_answers(questions, baseline, model_2)
        requests = pairwise_requests(questions, answers, baseline, prompt, settings)
    else:
        requests = single_requests(questions, answers, prompt, settings)

    def client_factory() -> ChatClient:
        api_key = None
        if settings.api_key_env:
            api_key = env.get(settings.api_key_env)
            if not api_key:
                raise JudgeError(f"environment variable {settings.api_key_env} is not set; the LLM judge "
                                 "needs an API key (eval.judge.api_key_env names the variable; null for none)")
        return ChatClient(settings, settings.resolved_api_base(env), api_key, sleep=sleep)

    results = run_requests(requests, JudgeCache(cache_dir), settings, client_factory, prompt, echo=echo)
    if mode == "pairwise":
        records = pairwise_records(questions, requests, results, model_1, model_2, prompt, settings)
        n_error = sum(r["g1_winner"] == "error" or r["g2_winner"] == "error" for r in records)
    else:
        records = single_records(questions, requests, results, model_1, prompt, settings)
        n_error = sum(r["score"] == -1 for r in records)
    atomic_write_jsonl(out_path, records)
    echo(f"judge: wrote {len(records)} {mode} judgments of {model_1} to {out_path}"
         + (f" ({n_error} with a malformed verdict, recorded as error)" if n_error else ""))
    return records


__all__ = [
    "JudgeSettings", "JudgeError", "JudgeAPIError", "JudgeCache", "ChatClient", "JudgeRequest",
    "load_judge_prompts", "select_judge_prompt", "check_judge_prompt", "parse_pair_verdict",
    "parse_single_rating", "cache_key", "pairwise_requests", "single_requests", "run_requests",
    "pairwise_records", "single_records", "judge_answers", "model_name", "load_answers",
]
