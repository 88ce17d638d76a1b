"""The LLM judge's request cache and its claims across processes (docs/design/llm-judge.md).

One JSON file per request, ``{cache}/{key[:2]}/{key}.json`` (written atomically); ``key``
(:func:`cache_key`) is the SHA-256 of the verdict inputs only, so a client setting keeps every
hit. An entry stores the judge's raw text (``judgment``); an entry without usable text is a miss.

Before sending, a job claims a key: an exclusive ``fcntl.flock`` on ``{key[:2]}/{key}.lock``
(:meth:`JudgeCache.claim`). The holder re-reads the cache, sends only on a miss, writes the
entry, removes the lock file and lets go; so each unique request is sent once however many
concurrent jobs want it, and a dead holder's lock is released by the OS.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefsweep.eval.judges.llm.format import usable_judgment
from prefsweep.io import atomic_write_json

log = logging.getLogger(__name__)

CACHE_VERSION = 1
#: Seconds between attempts to take a key another job holds.
LOCK_POLL_S = 0.02


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
    """Directory of JSON entries, one per request key, and their claims (the module docstring; docs/design/llm-judge.md)."""

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

