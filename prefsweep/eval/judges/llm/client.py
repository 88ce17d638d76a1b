"""Blocking chat-completions client (OpenAI-compatible) with bounded retries and a deadline.

:meth:`ChatClient.complete` sends one request, retrying 408/409/429/5xx, timeouts, dropped
connections and 200s without a usable message (:func:`read_completion`) up to ``max_retries``
times with exponential backoff (a server's Retry-After honoured up to ``backoff_max``); it
returns ``{"judgment", "response_model", "usage"}`` or raises :class:`JudgeAPIError`.
``timeout`` is the deadline of one attempt as a whole (:class:`_Deadline`): a server trickling
its body a byte at a time is cut at the deadline. The API key is sent only in the
``Authorization`` header; texts from the server are redacted and error bodies of 401/403 dropped.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, NoReturn

from prefsweep.eval.judges.base import JudgeError
from prefsweep.eval.judges.llm.format import usable_judgment
from prefsweep.eval.judges.llm.settings import ClientSettings, VerdictSettings

log = logging.getLogger(__name__)

#: HTTP statuses worth asking again (rate limit, server trouble, request timeout).
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class JudgeAPIError(JudgeError):
    """An API call that failed for good (after the retries, or not retryable)."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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

