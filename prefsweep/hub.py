"""Every load of a model or dataset by Hugging Face hub id: where the hub is asked, how long a job
waits for it, and what a job says when it cannot have it.

* A local path, or anything else that is no hub id, goes to the library as it is.
* A hub id already in the local cache loads from the cache with no network access at all
  (models: the cached snapshot directory of its main revision, if it holds ``config.json``,
  is what the library loads; datasets: a copy that ``datasets`` prepared before, read as in
  offline mode). To take a newer revision, download it again (``hf download NAME``). The
  snapshot directory, not ``local_files_only=True``, because transformers 5.24 still asks the
  hub for an ``adapter_config.json`` of a hub id when told to use local files only.
* With offline mode on (``HF_HUB_OFFLINE=1``), a hub id not in the cache is a :class:`HubError`
  naming it and saying how to put it there.
* Otherwise the hub (``HF_ENDPOINT``) must answer a request about the id within
  ``PREFSWEEP_HUB_TIMEOUT`` seconds (:data:`DEFAULT_HUB_TIMEOUT_S`) before the library downloads
  it. A hub that accepts connections but never answers (a compute node behind a firewall) would
  otherwise hold a job for many minutes, since the libraries' own timeouts bound each read, not
  the request, and are retried; past the wait it is a :class:`HubError` naming the id, the
  endpoint, the wait and what to do. The download itself is not bounded: a large model takes
  minutes on a good network.

The local cache is the one of ``HF_HOME`` (models: ``$HF_HOME/hub``, datasets:
``$HF_HOME/datasets`` or a caller's ``cache_dir``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

#: A hub repository id: ``name`` or ``org/name``.
HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
#: Environment variable: seconds a job waits for the hub to answer before it gives up.
HUB_TIMEOUT_ENV = "PREFSWEEP_HUB_TIMEOUT"
#: The hub answers in well under a second; a hub silent for this long is not there.
DEFAULT_HUB_TIMEOUT_S = 30.0


class HubError(ConnectionError):
    """A hub id a job cannot load here: not in the cache, and the hub is off or does not answer.

    The message (one line) names the id, the cache or endpoint, the wait and what to do.
    """


def hub_timeout() -> float:
    """Seconds to wait for the hub's answer: ``PREFSWEEP_HUB_TIMEOUT``, else the default."""
    raw = os.environ.get(HUB_TIMEOUT_ENV, "")
    if not raw:
        return DEFAULT_HUB_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{HUB_TIMEOUT_ENV}: expected seconds (a number > 0), got {raw!r}") from None
    if not value > 0:
        raise ValueError(f"{HUB_TIMEOUT_ENV}: expected seconds (a number > 0), got {raw!r}")
    return value


def is_local(name_or_path: str | os.PathLike) -> bool:
    """Whether ``name_or_path`` is a path that exists here."""
    return os.path.exists(os.fspath(name_or_path))


def is_hub_id(name_or_path: str | os.PathLike) -> bool:
    """Whether ``name_or_path`` is no local path and reads as a hub id (``name`` or ``org/name``).
    Anything else (a missing directory...) is left to the library, whose error names the path."""
    name = os.fspath(name_or_path)
    return not is_local(name) and bool(HUB_ID_RE.match(name))


def offline() -> bool:
    """Offline mode as huggingface_hub reads it (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def endpoint() -> str:
    """The hub the libraries talk to (``HF_ENDPOINT``, default https://huggingface.co)."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def model_cache() -> str:
    """Directory of the local model cache (``$HF_HOME/hub`` unless ``HF_HUB_CACHE`` says)."""
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def cached_snapshot(repo_id: str) -> str | None:
    """The local cache's snapshot directory of the model's main revision when it holds the
    model's ``config.json``, else ``None``."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo_id, "config.json", cache_dir=model_cache())
    return os.path.dirname(config) if isinstance(config, str) else None


def unanswered(url: str, timeout: float) -> str | None:
    """``None`` when an HTTP server at ``url`` answers (any status) within ``timeout`` seconds,
    else why not (refused, no answer within the wait...).

    The request runs in a daemon thread joined with the deadline: a socket timeout alone bounds
    each read, and a server that trickles bytes keeps such a request alive indefinitely.
    """
    outcome: list[str | None] = []

    def ask() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url), timeout=timeout):
                pass
            outcome.append(None)
        except urllib.error.HTTPError:
            outcome.append(None)  # an answer: a 401 or 404 is the library's to explain
        except Exception as exc:  # noqa: BLE001 - every failure to get an answer is reported alike
            reason = getattr(exc, "reason", exc)
            # the socket's own timeout may fire before the join below gives up: the same silence
            silent = isinstance(reason, TimeoutError)
            outcome.append(f"no answer within {timeout:g} s" if silent else f"{type(reason).__name__}: {reason}")

    thread = threading.Thread(target=ask, name="prefsweep-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        return f"no answer within {timeout:g} s"
    return outcome[0]


def _download_advice(repo_id: str, repo_type: str) -> str:
    if repo_type == "dataset":
        return (f"download it where the hub is reachable (the login node): `hf download --repo-type dataset "
                f"{repo_id} --local-dir DIR` (older huggingface_hub: `huggingface-cli download --repo-type dataset "
                f"{repo_id} --local-dir DIR`) and give DIR as the path, or run this step once there with the same "
                "HF_HOME (datasets keeps its copy in $HF_HOME/datasets)")
    return (f"download it where the hub is reachable (the login node) into the same cache (same HF_HOME): "
            f"`hf download {repo_id}` (older huggingface_hub: `huggingface-cli download {repo_id}`), "
            "or give a local model directory instead of the id")


def offline_error(repo_id: str, repo_type: str, cache: str) -> HubError:
    """What a job says for a hub id that offline mode keeps it from downloading."""
    return HubError(f"{repo_type} {repo_id!r} is no local path and is not in the local Hugging Face cache ({cache}), "
                    f"and offline mode is on (HF_HUB_OFFLINE=1), so it cannot be downloaded here; "
                    f"{_download_advice(repo_id, repo_type)}")


def require_hub(repo_id: str, repo_type: str, cache: str) -> None:
    """Return when the hub answers a request about ``repo_id`` within :func:`hub_timeout`, else
    raise :class:`HubError` (the id, the endpoint, the wait, what to do)."""
    wait = hub_timeout()
    base = endpoint()
    kind = "datasets" if repo_type == "dataset" else "models"
    log.info("%s %s is not in the local cache (%s): asking %s (waiting at most %g s)", repo_type, repo_id, cache,
             base, wait)
    why = unanswered(f"{base}/api/{kind}/{repo_id}", wait)
    if why is not None:
        raise HubError(
            f"{repo_type} {repo_id!r}: no local path and not in the local Hugging Face cache ({cache}), and the "
            f"hub at {base} did not answer within {wait:g} s ({why}; the wait is {HUB_TIMEOUT_ENV}). On a compute "
            f"node without internet, {_download_advice(repo_id, repo_type)}, and set HF_HUB_OFFLINE=1 on the "
            "compute nodes")


def model_location(name_or_path: str | os.PathLike) -> str:
    """What a model loader should be given for ``name_or_path`` under the module's rules.

    Not a hub id: itself. A cached hub id: its snapshot directory (:func:`cached_snapshot`). A
    hub id not cached: itself, once the hub has answered (:func:`require_hub`); offline, or no
    answer: :class:`HubError`.
    """
    name = os.fspath(name_or_path)
    if not is_hub_id(name):
        return name
    snapshot = cached_snapshot(name)
    if snapshot is not None:
        log.info("model %s: from the local cache, %s", name, snapshot)
        return snapshot
    if offline():
        raise offline_error(name, "model", model_cache())
    require_hub(name, "model", model_cache())
    return name


def from_pretrained(loader: Callable[..., Any], name_or_path: str | os.PathLike, **kwargs: Any) -> Any:
    """``loader(location, **kwargs)`` (an ``AutoModel*.from_pretrained``,
    ``AutoTokenizer.from_pretrained``...) with :func:`model_location`.

    A hub id whose files are only partly cached (``config.json`` but not the weights) is a
    :class:`HubError` saying what to download; a local path's errors are the loader's.
    """
    name = os.fspath(name_or_path)
    location = model_location(name)
    try:
        return loader(location, **kwargs)
    except OSError as exc:
        if location == name:
            raise
        raise HubError(f"model {name!r}: only part of it is in the local Hugging Face cache ({location}: "
                       f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                       f"{_download_advice(name, 'model')}") from exc


@contextlib.contextmanager
def _datasets_offline() -> Iterator[None]:
    """``datasets`` in offline mode for one call: its own lookup of a copy it prepared before.

    ``datasets`` reads ``datasets.config.HF_HUB_OFFLINE`` at each call; it goes straight to its
    cache then, without asking the hub.
    """
    import datasets

    before = datasets.config.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE = before


def load_dataset(path: str, name: str | None = None, **kwargs: Any):
    """``datasets.load_dataset(path, name, **kwargs)`` under the module's rules.

    A hub id is first looked up in the datasets cache (``kwargs["cache_dir"]`` or
    ``$HF_HOME/datasets``), with no network; only when it is not there is the hub asked, with a
    bounded wait. Errors of a local path or of a hub that answered are those of ``datasets``.
    """
    import datasets

    if not is_hub_id(path):
        return datasets.load_dataset(path, name, **kwargs)
    cache = str(kwargs.get("cache_dir") or datasets.config.HF_DATASETS_CACHE)
    if offline():
        try:
            return datasets.load_dataset(path, name, **kwargs)
        except ConnectionError as exc:
            raise offline_error(path, "dataset", cache) from exc
    try:
        with _datasets_offline():
            return datasets.load_dataset(path, name, **kwargs)
    except Exception as exc:  # noqa: BLE001 - not (entirely) in the cache: ask the hub below
        log.debug("dataset %s not in the datasets cache %s: %s", path, cache, exc)
    require_hub(path, "dataset", cache)
    return datasets.load_dataset(path, name, **kwargs)
