"""Pairwise LLM judge over an OpenAI-compatible chat-completions API, with a request cache.

As in FastChat's MT-Bench judge (``fastchat.llm_judge``, fschat 0.2.36, mode
``pairwise-baseline``), every question is judged twice against a baseline: game ``g1`` shows the
model under test as assistant A and the baseline as B, game ``g2`` the other way round. Both
verdicts are written; a disagreement counts as a tie downstream (win rates).

Formats
-------
Inputs are FastChat files: questions ``{"question_id", "category", "turns": [text, ...]}`` and
answers ``{"question_id", "answer_id", "model_id", "choices": [{"index": 0, "turns": [text]}],
"tstamp"}``. A file's model name is its file name without ``.jsonl`` (FastChat's
``load_model_answers`` convention). Only the first turn is judged (``turn`` = 1).

Judge prompts are FastChat ``judge_prompts.jsonl`` records ``{"name", "type": "pairwise",
"system_prompt", "prompt_template", "description", "category", "output_format"}``;
``prompt_template`` has exactly the fields ``{question}``, ``{answer_a}``, ``{answer_b}``. The
package ships its own wording (``prefsweep/judge_prompts.jsonl``: ``prefsweep-pair-v1``);
FastChat's own file (not in its wheel) can be named instead, for its one-turn, reference-free
pairwise prompt ``pair-v2``.

Output: FastChat pair-judgment records, one file per model (``show_result`` reads them)
``{"question_id", "model_1", "model_2", "g1_winner", "g2_winner", "judge": [judge_model,
prompt_name], "g1_user_prompt", "g1_judgment", "g2_user_prompt", "g2_judgment", "turn",
"tstamp"}`` with winners ``model_1 | model_2 | tie | error`` (model_1 = model under test,
model_2 = baseline), in question order, written atomically.

Prompt rendering and verdict parsing follow ``fastchat.llm_judge.common.run_judge_pair``
exactly: ``prompt_template.format(question=..., answer_a=..., answer_b=...)``, messages
``[system, user]``; output format ``[[A]]``: "[[A]]" in the text -> A, else "[[B]]" -> B, else
"[[C]]" -> tie, else ``error``; ``[[rating_a,rating_b]]``: scores within ``TIE_DELTA`` are a
tie. (A test checks this module against FastChat's functions.) FastChat's module is not
imported here: it pulls in torch and transformers (about 12 s), and its API call retries 16
times with 10 s sleeps, has no timeout and no cache, so the HTTP call is ours.

Settings
--------
Two kinds, kept apart so that only the first can rerun a job (a retry setting must not rerun
every judgment, the win rates and the plots):

* :class:`VerdictSettings` (``VERDICT_KEYS``) change what the judge answers: judge model,
  prompt file and name, temperature, max_tokens, cache_malformed. They come from the job's
  config slice (``eval.judge``), a Snakemake param.
* :class:`ClientSettings` (``CLIENT_KEYS``) change only how the answers are fetched: api_base,
  api_key_env, parallel, max_retries, timeout, backoff, backoff_max. They arrive as a JSON
  object in the environment variable ``PREFSWEEP_JUDGE_CLIENT`` (``CLIENT_ENV``; the workflow
  exports :func:`client_env_value` of ``eval.judge`` in every job's shell prefix), so changing
  them reruns nothing. ``timeout`` is the deadline of one attempt as a whole (connect, send,
  the complete response), not of each socket read: a server trickling its body a byte at a
  time is cut at the deadline, and the attempt counts as timed out (retried).

Neither carries defaults: those live in ``workflow/schemas/config.schema.yaml``; a missing key
is an error naming it.

Request cache
-------------
One JSON file per request, ``{cache}/{key[:2]}/{key}.json`` (written atomically). ``key`` is
the SHA-256 of the canonical JSON of: judge model, prompt name, system prompt, prompt template,
question id, question text, answer A, answer B, order (``g1`` | ``g2``), temperature and
max_tokens -- verdict inputs only, so changing a client setting keeps every hit. Model names
are not part of the key: two models that give the same answer share the judgment. The entry
stores the judge's raw text; verdicts are parsed when the judgment file is written.

* Only HTTP-200 responses with a message text (a non-blank string) are cached. A 200 without
  one (empty or null content, no choices, a body that is not a chat completion) is a server
  fault like a 5xx: retried, never cached. Errors after the retries (HTTP 429/5xx, timeouts,
  connection errors, unusable bodies) are not cached either: they are asked again on the next
  run. An entry without judgment text (an older version cached empty replies) is a miss.
* A malformed verdict (a 200 whose text has no verdict) is a valid response and is cached when
  ``cache_malformed`` is true: at temperature 0 the judge would write the same text again, so
  asking again costs money for nothing. It is written as ``error``, which FastChat's
  ``show_result`` drops. With ``cache_malformed: false`` a malformed response is still written
  to this run's file but asked again next run (and by a concurrent job waiting for it).
* A run that fails partway has already cached every response it got and writes no judgment
  file; the next run pays only for the rest.

Claims across processes
-----------------------
Judge jobs of different models run at once and share the cache; models that give the same
answers need the same requests. Before sending, a job claims the key: an exclusive
``fcntl.flock`` on ``{cache}/{key[:2]}/{key}.lock``. The holder re-reads the cache (another
job may have answered meanwhile), sends only on a miss, writes the entry, then removes the lock
file and lets go. A key claimed by another job is put aside; once the job's own claims are
done it waits for each of those keys' locks and takes the cached answer (or, if the other job
failed or died, sends the request itself). Each unique request is thus sent once however many
jobs want it (two jobs missing the same keys must not pay twice). The OS releases a dead holder's lock, so there are no stale
locks; a lock file left by a killed job is just taken over. A waiter that gets the lock of a
file the holder has already removed sees that the path no longer names that file and claims
afresh, so two jobs never hold a valid claim on one key. (``flock`` is per host on local file
systems; on NFS, Linux maps it to byte-range locks that work across clients.)

The API key is read from the environment variable named by ``api_key_env`` and sent only in
the ``Authorization`` header; it never appears in a log line, an exception, a cache entry or an
output (texts from the server are redacted; error bodies of 401/403 are dropped).
"""

from __future__ import annotations

import ast
import concurrent.futures
import errno
import fcntl
import hashlib
import http.client
import json
import logging
import os
import random
import re
import socket
import string
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from prefsweep.io import atomic_write_json, atomic_write_jsonl, read_jsonl

log = logging.getLogger(__name__)

# --- FastChat's parsing constants (fastchat/llm_judge/common.py, fschat 0.2.36) -------------
TWO_SCORE_PATTERN = re.compile(r"\[\[(\d+\.?\d*),\s?(\d+\.?\d*)\]\]")
TWO_SCORE_PATTERN_BACKUP = re.compile(r"\[(\d+\.?\d*),\s?(\d+\.?\d*)\]")
TIE_DELTA = 0.1
#: Game g1 shows model_1 as A; game g2 shows model_2 as A.
G1_MAP = {"A": "model_1", "B": "model_2"}
G2_MAP = {"A": "model_2", "B": "model_1"}

PAIRWISE_FORMATS = ("[[A]]", "[[rating_a,rating_b]]")
TEMPLATE_FIELDS = frozenset({"question", "answer_a", "answer_b"})

#: HTTP statuses worth asking again (rate limit, server trouble, request timeout).
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
#: Where ``api_base: null`` goes when OPENAI_API_BASE is not set either (the schema documents it).
OPENAI_API_BASE = "https://api.openai.com/v1"
CACHE_VERSION = 1
#: Seconds between attempts to take a key another job holds.
LOCK_POLL_S = 0.02

#: ``eval.judge`` keys that change a verdict: the judge job's config slice carries these.
VERDICT_KEYS = ("model", "judge_prompts", "pairwise_prompt", "temperature", "max_tokens", "cache_malformed")
#: ``eval.judge`` keys that only change how verdicts are fetched: passed in ``CLIENT_ENV``.
CLIENT_KEYS = ("api_base", "api_key_env", "parallel", "max_retries", "timeout", "backoff", "backoff_max")
#: ``eval.judge`` keys of the plan and its guard (prefsweep/plan.py), neither verdict nor client:
#: ``max_api_calls`` reaches judge jobs in ``BUDGET_ENV``, the prices only the plan.
PLAN_KEYS = ("max_api_calls", "price_prompt_per_1k", "price_completion_per_1k")
#: Environment variable holding the client settings as a JSON object.
CLIENT_ENV = "PREFSWEEP_JUDGE_CLIENT"
#: Environment variable holding the experiment's call budget (:class:`Budget`) as a JSON object.
BUDGET_ENV = "PREFSWEEP_JUDGE_BUDGET"


class JudgeError(RuntimeError):
    """A judge run that cannot go on (bad input, missing key, API failures)."""


class JudgeBudgetError(JudgeError):
    """The experiment's remaining API calls exceed ``eval.judge.max_api_calls``."""


class JudgeAPIError(JudgeError):
    """An API call that failed for good (after the retries, or not retryable)."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- settings ---------------------------------------------------------------------------------
def _pick(section: Mapping[str, Any], keys: tuple[str, ...], where: str) -> dict[str, Any]:
    missing = [k for k in keys if k not in section]
    if missing:
        raise JudgeError(f"{where}: missing key(s) {', '.join(missing)}; expected all of {', '.join(keys)}")
    return {k: section[k] for k in keys}


Bounds = Mapping[str, tuple[Callable[[Any], bool], str]]


def _validate(cls: type, values: Mapping[str, Any], prefix: str, bounds: Bounds) -> None:
    """Type of every value against the field's annotation, then ``bounds``: ``{key: (ok, text)}``.

    The schema checks the config, but a hand run's JSON reaches here unchecked.
    """
    allowed = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}
    for f in fields(cls):
        value = values[f.name]
        kinds = [k.strip() for k in str(f.type).split("|")]
        if value is None and "None" in kinds:
            continue
        ok = any(isinstance(value, allowed[k]) for k in kinds if k in allowed)
        if isinstance(value, bool) and "bool" not in kinds:
            ok = False  # JSON true is not a number
        if not ok:
            raise JudgeError(f"{prefix}{f.name}: expected {' or '.join(kinds)}, got {value!r}")
    for key, (ok, text) in bounds.items():
        if not ok(values[key]):
            raise JudgeError(f"{prefix}{key}: must be {text}, got {values[key]!r}")


@dataclass(frozen=True)
class VerdictSettings:
    """The ``eval.judge`` keys that change a verdict (``VERDICT_KEYS``); no defaults here."""

    #: Judge model name sent to the API.
    model: str
    #: Path of a FastChat judge_prompts.jsonl; None: the prompts shipped with prefsweep.
    judge_prompts: str | None
    #: Name of the pairwise prompt in that file.
    pairwise_prompt: str
    temperature: float
    max_tokens: int
    #: Cache responses with no recognisable verdict (see the module docstring).
    cache_malformed: bool

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> VerdictSettings:
        """From a job's config slice (reads ``eval.judge``).

        Client keys in the slice are an error: as Snakemake params they would rerun every judge
        job when changed (they belong in ``CLIENT_ENV``).
        """
        judge = (config.get("eval") or {}).get("judge")
        if not isinstance(judge, Mapping):
            raise JudgeError("config slice: missing section eval.judge")
        misplaced = [k for k in CLIENT_KEYS if k in judge]
        if misplaced:
            raise JudgeError(
                f"eval.judge.{misplaced[0]}: a client setting in the judge job's config slice; it must "
                f"not be a job param (changing it would rerun every judge job): pass {', '.join(misplaced)} "
                f"in the environment variable {CLIENT_ENV} or --client-json"
            )
        values = _pick(judge, VERDICT_KEYS, "eval.judge")
        _validate(cls, values, "eval.judge.", {"temperature": (lambda t: t >= 0, ">= 0"),
                                              "max_tokens": (lambda n: n >= 1, ">= 1")})
        return cls(**values)


@dataclass(frozen=True)
class ClientSettings:
    """How requests are sent (``CLIENT_KEYS``); verdicts do not depend on them; no defaults here."""

    #: Base URL ending before ``/chat/completions``; None: env OPENAI_API_BASE, else OpenAI's.
    api_base: str | None
    #: Environment variable holding the API key; None for a server that needs none.
    api_key_env: str | None
    #: Concurrent API requests of one job.
    parallel: int
    #: Retries after the first attempt, on 408/409/429/5xx, timeouts, connection errors and 200s
    #: without a usable message.
    max_retries: int
    #: Seconds one attempt may take in all (connect, send, the complete response); past it the
    #: attempt counts as timed out. Also each socket operation's timeout.
    timeout: float
    #: First retry delay in seconds; doubles each retry, capped by backoff_max (a server's
    #: Retry-After, when longer, is honoured up to backoff_max).
    backoff: float
    backoff_max: float

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str) -> ClientSettings:
        """Exactly ``CLIENT_KEYS``: a missing or an unknown key is an error naming it."""
        unknown = sorted(set(values) - set(CLIENT_KEYS))
        if unknown:
            raise JudgeError(f"{source}: unknown key(s) {', '.join(unknown)}; "
                             f"expected exactly {', '.join(CLIENT_KEYS)}")
        picked = _pick(values, CLIENT_KEYS, source)
        _validate(cls, picked, f"{source}: ", {
            "parallel": (lambda n: n >= 1, ">= 1"), "max_retries": (lambda n: n >= 0, ">= 0"),
            "timeout": (lambda t: t > 0, "> 0"), "backoff": (lambda t: t >= 0, ">= 0"),
            "backoff_max": (lambda t: t >= 0, ">= 0")})
        return cls(**picked)

    @classmethod
    def from_json(cls, text: str, source: str) -> ClientSettings:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise JudgeError(f"{source}: not valid JSON ({exc.msg}); expected an object with keys "
                             f"{', '.join(CLIENT_KEYS)}") from None
        if not isinstance(values, dict):
            raise JudgeError(f"{source}: expected a JSON object with keys {', '.join(CLIENT_KEYS)}")
        return cls.from_mapping(values, source)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ClientSettings:
        if CLIENT_ENV not in env:
            raise JudgeError(f"{CLIENT_ENV}: not set; the LLM judge needs its client settings "
                             f"(a JSON object with keys {', '.join(CLIENT_KEYS)}; the workflow exports it, "
                             "a hand run can pass --client-json)")
        return cls.from_json(env[CLIENT_ENV], CLIENT_ENV)

    def resolved_api_base(self, env: Mapping[str, str]) -> str:
        return (self.api_base or env.get("OPENAI_API_BASE") or OPENAI_API_BASE).rstrip("/")


@dataclass(frozen=True)
class Budget:
    """The guard ``eval.judge.max_api_calls`` with the experiment's planned requests
    (``prefsweep.plan.planned_comparisons``: 2 orders x questions x judged models, checkpoints
    included). Like the client settings it reaches jobs in the environment (``BUDGET_ENV``), so
    changing it reruns nothing."""

    max_api_calls: int | None
    planned_calls: int

    @classmethod
    def from_json(cls, text: str, source: str = BUDGET_ENV) -> Budget:
        try:
            values = json.loads(text)
            budget = cls(values["max_api_calls"], int(values["planned_calls"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise JudgeError(f"{source}: expected a JSON object {{\"max_api_calls\": int|null, "
                             f"\"planned_calls\": int}} ({type(exc).__name__}: {exc})") from None
        if budget.max_api_calls is not None and (isinstance(budget.max_api_calls, bool)
                                                 or not isinstance(budget.max_api_calls, int)):
            raise JudgeError(f"{source}: max_api_calls must be an integer or null, got {budget.max_api_calls!r}")
        return budget

    def check(self, own_calls: int, cached: int) -> None:
        """Raise :class:`JudgeBudgetError` when the experiment's remaining calls (planned less
        ``cached``, at least this job's ``own_calls``) exceed ``max_api_calls``."""
        if self.max_api_calls is None:
            return
        remaining = max(own_calls, self.planned_calls - cached)
        if remaining > self.max_api_calls:
            raise JudgeBudgetError(
                f"the experiment still needs about {remaining} API calls ({self.planned_calls} planned requests, "
                f"{cached} cached; this job alone {own_calls}), more than eval.judge.max_api_calls = "
                f"{self.max_api_calls}; nothing was sent. Raise eval.judge.max_api_calls to at least {remaining} "
                f"(in the config file, or --config 'eval={{judge: {{max_api_calls: {remaining}}}}}'), or evaluate "
                "fewer checkpoints (eval.checkpoints: {sizes: [...], n_questions: k}), and rerun; "
                "`make plan CONFIG=...` prints the figures"
            )


def budget_env_value(judge_cfg: Mapping[str, Any], planned_calls: int) -> str:
    """The value of ``BUDGET_ENV`` for a validated ``eval.judge`` section."""
    return json.dumps({"max_api_calls": judge_cfg["max_api_calls"], "planned_calls": int(planned_calls)},
                      sort_keys=True, separators=(",", ":"))


def client_env_value(judge_cfg: Mapping[str, Any]) -> str:
    """The value of ``CLIENT_ENV`` for a validated ``eval.judge`` section (canonical JSON)."""
    return json.dumps(_pick(judge_cfg, CLIENT_KEYS, "eval.judge"), sort_keys=True, separators=(",", ":"))


# --- prompts ----------------------------------------------------------------------------------
def default_judge_prompts_path() -> Path:
    return Path(str(resources.files("prefsweep") / "judge_prompts.jsonl"))


def load_judge_prompts(path: str | os.PathLike | None = None) -> dict[str, dict]:
    """``{name: prompt record}`` from a FastChat judge_prompts.jsonl (ours when ``path`` is None)."""
    return {p["name"]: p for p in read_jsonl(path or default_judge_prompts_path())}


def check_judge_prompt(prompt: Mapping[str, Any]) -> None:
    """Raise ``JudgeError`` unless ``prompt`` is a one-turn, reference-free pairwise prompt."""
    name = prompt.get("name")
    if prompt.get("type") != "pairwise":
        raise JudgeError(f"judge prompt {name!r} has type {prompt.get('type')!r}, not 'pairwise'")
    if prompt.get("output_format") not in PAIRWISE_FORMATS:
        raise JudgeError(
            f"judge prompt {name!r}: output_format {prompt.get('output_format')!r} is not one of {PAIRWISE_FORMATS}"
        )
    used = {f for _, f, _, _ in string.Formatter().parse(prompt["prompt_template"]) if f is not None}
    if used != TEMPLATE_FIELDS:
        raise JudgeError(
            f"judge prompt {name!r}: template fields {sorted(used)}, expected {sorted(TEMPLATE_FIELDS)} "
            "(multi-turn and reference-guided prompts are not supported)"
        )


def select_judge_prompt(settings: VerdictSettings) -> dict:
    source = settings.judge_prompts or "prefsweep/judge_prompts.jsonl"
    prompts = load_judge_prompts(settings.judge_prompts)
    name = settings.pairwise_prompt
    if name not in prompts:
        raise JudgeError(f"{source}: judge prompt {name!r} (eval.judge.pairwise_prompt) not in the file "
                         f"(has {sorted(prompts)})")
    check_judge_prompt(prompts[name])
    return prompts[name]


def format_pair_prompt(prompt: Mapping[str, Any], question: str, answer_a: str, answer_b: str) -> str:
    return prompt["prompt_template"].format(question=question, answer_a=answer_a, answer_b=answer_b)


# --- verdict parsing (FastChat's rules) -------------------------------------------------------
def parse_pair_verdict(judgment: str, output_format: str) -> str:
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


def is_malformed(judgment: str, prompt: Mapping[str, Any]) -> bool:
    return parse_pair_verdict(judgment, prompt["output_format"]) == "error"


def usable_judgment(judgment: object) -> bool:
    """Whether a judge's text can be cached and served: a string with more than whitespace.

    An empty reply is a server fault, not a verdict (at temperature 0 an empty text would be
    served forever as ``error``), so it is neither cached nor read back from the cache.
    """
    return isinstance(judgment, str) and bool(judgment.strip())


# --- requests and cache -----------------------------------------------------------------------
@dataclass(frozen=True)
class JudgeRequest:
    """One chat-completion call: a question, two answers, one order."""

    key: str
    question_id: str
    order: str  # g1 | g2
    system_prompt: str
    user_prompt: str

    def messages(self) -> list[dict[str, str]]:
        # What FastChat's "chatgpt" conversation template gives via to_openai_api_messages().
        return [{"role": "system", "content": self.system_prompt},
                {"role": "user", "content": self.user_prompt}]

    @property
    def label(self) -> str:
        return f"{self.question_id} ({self.order})"


def cache_key(*, judge_model: str, prompt: Mapping[str, Any], question_id: str, question: str,
              answer_a: str, answer_b: str, order: str, temperature: float, max_tokens: int) -> str:
    """SHA-256 (hex) of everything that determines the judge's response (verdict inputs only)."""
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


class Claim:
    """An exclusive claim on one cache key, held through an ``flock`` on its lock file."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    def release(self) -> None:
        # Remove the file while still holding it: a job that was waiting on it then finds that
        # the path no longer names the file it locked, and claims afresh (JudgeCache.claim).
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)  # lets go of the flock


class JudgeCache:
    """Directory of JSON entries, one per request key, and their claims (module docstring)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def lock_path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.lock"

    def get(self, key: str) -> dict | None:
        try:
            with open(self.path(key), encoding="utf-8") as fh:
                entry = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("judge cache: unreadable entry %s, asking again", self.path(key))
            return None
        if not isinstance(entry, dict) or not usable_judgment(entry.get("judgment")):
            log.warning("judge cache: entry %s has no judgment text, asking again", self.path(key))
            return None
        return entry

    def put(self, key: str, entry: dict) -> None:
        atomic_write_json(self.path(key), entry)

    def count(self) -> int:
        """Cached responses (entry files; claims and temporary files are not counted)."""
        if not self.directory.is_dir():
            return 0
        return sum(1 for sub in self.directory.iterdir() if sub.is_dir()
                   for f in sub.iterdir() if f.suffix == ".json" and not f.name.startswith("."))

    def claim(self, key: str, *, wait: bool, stop: threading.Event) -> Claim | None:
        """Claim ``key`` for this job; None when another job holds it and ``wait`` is false, or
        when ``stop`` is set while waiting."""
        path = self.lock_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                locked = _flock(fd, wait, stop)
                if locked:
                    here = os.fstat(fd)
                    try:
                        there = os.stat(path)
                    except FileNotFoundError:
                        there = None
                    if there is not None and (there.st_dev, there.st_ino) == (here.st_dev, here.st_ino):
                        return Claim(path, fd)
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
            if not locked:
                return None
            # The holder we waited for removed the file before letting go: claim the path anew.


def _flock(fd: int, wait: bool, stop: threading.Event) -> bool:
    # Polled rather than blocking, so that a stopping run (a failure, Ctrl-C) is not stuck
    # behind another job's request.
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
        if not wait or stop.wait(LOCK_POLL_S):
            return False


# --- HTTP client ------------------------------------------------------------------------------
def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


class _Deadline:
    """Shuts the connections of one attempt down once ``seconds`` have passed since it began.

    A socket timeout bounds each read, not the request: a server that trickles one byte per
    read keeps a request alive forever. The timer shuts the socket down under the blocked read,
    which then fails (EOF or a read error); ``expired`` tells the caller why. Use as a context
    manager around the attempt; leaving it cancels the timer.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.name = "judge-deadline"
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down at the deadline (at once if it has passed)."""
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired.is_set()
        if expired:
            _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired.set()
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    try:
        # The plain socket's shutdown, also under TLS: SSLSocket.shutdown would first drop its
        # SSL object under the thread still reading through it.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: the attempt ended meanwhile


class _Watched:
    """Mixin for ``http.client`` connections: the opened socket is handed to a :class:`_Deadline`."""

    def __init__(self, *args: Any, deadline: _Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._deadline.watch(self.sock)  # type: ignore[attr-defined]


class _WatchedHTTPConnection(_Watched, http.client.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, http.client.HTTPSConnection):
    pass


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_WatchedHTTPConnection, req, deadline=self._deadline)


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        # No context: HTTPSConnection's default one, as urlopen's own handler uses.
        return self.do_open(_WatchedHTTPSConnection, req, deadline=self._deadline)


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    kinds = ((bool, "a boolean"), ((int, float), "a number"), (str, "a string"), (list, "an array"),
             (dict, "an object"))
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


def read_completion(raw: bytes) -> tuple[str, dict[str, Any]]:
    """The judge's text (``choices[0].message.content``) and the parsed chat.completion body.

    Raises ``ValueError`` saying what makes the body unusable: not JSON, no choices, no
    message, content that is not a string or is blank (:func:`usable_judgment`).
    """
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"body is {_json_kind(data)}, not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError("no choices")
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message")
    if not isinstance(message, dict):
        raise ValueError("choices[0] has no message")
    content = message.get("content")
    if not isinstance(content, str):
        raise ValueError(f"message content is {_json_kind(content)}, not a string")
    if not usable_judgment(content):
        raise ValueError(f"empty message content, finish_reason {choice.get('finish_reason')!r}")
    return content, data


class ChatClient:
    """Blocking chat-completions client with bounded retries and exponential backoff."""

    def __init__(self, verdict: VerdictSettings, client: ClientSettings, api_base: str, api_key: str | None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.verdict, self.client = verdict, client
        self.url = f"{api_base.rstrip('/')}/chat/completions"
        self._api_key = api_key
        self._sleep = sleep

    def __repr__(self) -> str:  # never show the key
        return f"ChatClient(url={self.url!r}, model={self.verdict.model!r})"

    def _once(self, messages: list[dict[str, str]]) -> dict:
        v = self.verdict
        body = json.dumps({"model": v.model, "messages": messages, "n": 1,
                           "temperature": v.temperature, "max_tokens": v.max_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        raw = self._post(urllib.request.Request(self.url, data=body, headers=headers, method="POST"))
        try:
            content, data = read_completion(raw)
        except ValueError as exc:
            raise _Retryable(f"unusable response from {self.url} ({_redact(str(exc), self._api_key)})") from None
        # Redacted too: a server that echoes the request would otherwise put the key in the cache.
        return {"judgment": _redact(content, self._api_key), "response_model": data.get("model"),
                "usage": data.get("usage")}

    def _post(self, request: urllib.request.Request) -> bytes:
        """The body of a 200 response complete within ``timeout``; else raise ``_Retryable`` or
        ``JudgeAPIError``."""
        timeout = self.client.timeout
        with _Deadline(timeout) as deadline:
            # build_opener keeps urlopen's other handlers (proxies from the environment included).
            opener = urllib.request.build_opener(_DeadlineHTTPHandler(deadline), _DeadlineHTTPSHandler(deadline))
            try:
                with opener.open(request, timeout=timeout) as response:
                    return response.read()
            except (OSError, http.client.HTTPException) as exc:
                if deadline.expired.is_set() and not isinstance(exc, urllib.error.HTTPError):
                    raise _Retryable(f"request to {self.url} timed out (no complete response within {timeout:g} s, "
                                     "eval.judge.timeout)") from None
                self._raise_failure(exc)

    def _raise_failure(self, exc: OSError | http.client.HTTPException) -> NoReturn:
        """Raise ``_Retryable`` or ``JudgeAPIError`` for an attempt that got no 200 response."""
        if isinstance(exc, urllib.error.HTTPError):
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
        # URLError, socket timeouts, resets, dropped connections.
        reason = getattr(exc, "reason", exc)
        kind = "timed out" if isinstance(reason, TimeoutError) or "timed out" in str(reason) else "failed"
        raise _Retryable(f"request to {self.url} {kind} ({type(reason).__name__}: "
                         f"{_redact(str(reason), self._api_key)})") from None

    def complete(self, messages: list[dict[str, str]], label: str = "") -> dict:
        """``{"judgment", "response_model", "usage"}``; raises ``JudgeAPIError`` when it gives up."""
        c = self.client
        what = f"question {label}: " if label else ""
        for attempt in range(c.max_retries + 1):
            try:
                return self._once(messages)
            except _Retryable as exc:
                if attempt == c.max_retries:
                    raise JudgeAPIError(f"{exc}; gave up after {attempt + 1} attempts") from None
                delay = min(c.backoff * 2**attempt, c.backoff_max)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, c.backoff_max))
                delay *= 1 + 0.1 * random.random()  # jitter: parallel threads do not retry in step
                log.warning("judge: %s%s; retry %d/%d in %.2f s", what, exc, attempt + 1, c.max_retries, delay)
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


def load_answers(path: str | os.PathLike) -> dict[str, dict]:
    """``{question_id: answer record}`` of one FastChat answer file."""
    return {str(a["question_id"]): a for a in read_jsonl(path)}


def model_name(path: str | os.PathLike) -> str:
    """FastChat's model name of an answer file: its file name without ``.jsonl``."""
    name = Path(path).name
    return name[: -len(".jsonl")] if name.endswith(".jsonl") else Path(path).stem


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


def pairwise_records(questions: list[dict], requests: list[JudgeRequest], results: Mapping[str, dict],
                     model_1: str, model_2: str, prompt: Mapping[str, Any], settings: VerdictSettings) -> list[dict]:
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


def main(argv: list[str] | None = None) -> None:
    """``python -m prefsweep.judge_llm [--configfile F ...]``: print the value of ``CLIENT_ENV``
    for ``config/config.yaml`` (with F merged over it), for running scripts/judge.py by hand."""
    import argparse

    from prefsweep.config import load_config

    p = argparse.ArgumentParser(prog="python -m prefsweep.judge_llm",
                                description=f"Print the value of {CLIENT_ENV} for a config.")
    p.add_argument("--configfile", nargs="*", default=[], help="config files merged over config/config.yaml")
    args = p.parse_args(argv)
    print(client_env_value(load_config(*args.configfile)["eval"]["judge"]))


__all__ = [
    "VerdictSettings", "ClientSettings", "VERDICT_KEYS", "CLIENT_KEYS", "CLIENT_ENV", "client_env_value",
    "PLAN_KEYS", "BUDGET_ENV", "Budget", "budget_env_value", "JudgeBudgetError", "JudgeError", "JudgeAPIError", "JudgeCache", "Claim", "ChatClient", "JudgeRequest", "RunStats",
    "load_judge_prompts", "select_judge_prompt", "check_judge_prompt", "parse_pair_verdict",
    "cache_key", "usable_judgment", "read_completion", "pairwise_requests", "run_requests", "pairwise_records",
    "judge_answers", "model_name", "load_answers",
]


if __name__ == "__main__":
    main()
