"""prefsweep.hub: which loads may use the network, the bounded wait, and what the errors say.

The hub's settings are read from ``huggingface_hub.constants`` at each call, so these tests set
them there (a job sets them in its environment: tests/reliability/test_hub_and_tracking.py).
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path

import pytest
from huggingface_hub import constants

from prefsweep import hub

REPO_ID = "org/tiny"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_settings(tmp_path, monkeypatch):
    """An empty cache in tmp_path, offline mode off, a 0.5 s wait."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv(hub.HUB_TIMEOUT_ENV, "0.5")
    return tmp_path / "hub"


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture
def answering_port():
    """A loopback HTTP server that answers every GET with 404."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def cache(root: Path, repo_id: str, files: dict[str, str]) -> Path:
    snapshot = root / f"models--{repo_id.replace('/', '--')}" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name, text in files.items():
        (snapshot / name).write_text(text)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text(COMMIT)
    return snapshot


def test_hub_timeout_from_the_environment(monkeypatch):
    monkeypatch.delenv(hub.HUB_TIMEOUT_ENV, raising=False)
    assert hub.hub_timeout() == hub.DEFAULT_HUB_TIMEOUT_S
    monkeypatch.setenv(hub.HUB_TIMEOUT_ENV, "7.5")
    assert hub.hub_timeout() == 7.5
    for bad in ("soon", "0", "-3"):
        monkeypatch.setenv(hub.HUB_TIMEOUT_ENV, bad)
        with pytest.raises(ValueError, match=f"{hub.HUB_TIMEOUT_ENV}: expected seconds .*{bad}"):
            hub.hub_timeout()


def test_what_counts_as_a_hub_id(tmp_path):
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert hub.is_hub_id("EleutherAI/pythia-70m") and hub.is_hub_id("gpt2")
    assert not hub.is_hub_id(str(tmp_path / "org" / "name"))  # a directory
    assert not hub.is_hub_id(str(tmp_path / "missing"))  # an absolute path: the library names it
    assert not hub.is_hub_id("a/b/c") and not hub.is_hub_id("./x")


def test_unanswered_tells_answer_silence_and_refusal_apart(answering_port, silent_port):
    assert hub.unanswered(f"http://127.0.0.1:{answering_port}/api/models/x", 5) is None  # a 404 is an answer
    t0 = time.monotonic()
    assert hub.unanswered(f"http://127.0.0.1:{silent_port}/api/models/x", 0.5) == "no answer within 0.5 s"
    assert time.monotonic() - t0 < 10  # a 0.5 s wait; loose so that a busy machine passes
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # bound, not listening: connections are refused
        assert "ConnectionRefusedError" in hub.unanswered(f"http://127.0.0.1:{closed}/", 2)


def test_local_paths_go_to_the_loader_as_they_are(tmp_path, hub_settings):
    seen = []
    hub.from_pretrained(lambda name, **kw: seen.append((name, kw)), tmp_path, dtype="float32")
    assert seen == [(str(tmp_path), {"dtype": "float32"})]


def test_a_cached_model_loads_from_its_snapshot(hub_settings, monkeypatch):
    snapshot = cache(hub_settings, REPO_ID, {"config.json": "{}"})
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # never asked
    assert hub.model_location(REPO_ID) == str(snapshot)

    def partial(name, **kwargs):
        raise OSError(f"{name} does not appear to have a file named model.safetensors")

    with pytest.raises(hub.HubError, match=rf"model '{REPO_ID}': only part of it is in the local Hugging Face "
                                           rf"cache .*model.safetensors.*hf download {REPO_ID}"):
        hub.from_pretrained(partial, REPO_ID)


def test_offline_and_not_cached_is_named(hub_settings, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(hub.HubError) as exc:
        hub.model_location(REPO_ID)
    message = str(exc.value)
    assert f"model '{REPO_ID}' is no local path and is not in the local Hugging Face cache ({hub_settings})" in message
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in message and f"`hf download {REPO_ID}`" in message
    assert "\n" not in message


def test_a_silent_hub_is_an_error_after_the_wait(hub_settings, monkeypatch, silent_port):
    endpoint = f"http://127.0.0.1:{silent_port}"
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    t0 = time.monotonic()
    with pytest.raises(hub.HubError) as exc:
        hub.from_pretrained(lambda *a, **k: pytest.fail("the loader must not run"), REPO_ID)
    assert time.monotonic() - t0 < 10  # a 0.5 s wait; loose so that a busy machine passes
    message = str(exc.value)
    for part in (REPO_ID, endpoint, "0.5 s", hub.HUB_TIMEOUT_ENV, f"hf download {REPO_ID}", "HF_HUB_OFFLINE=1"):
        assert part in message, part


def test_an_answering_hub_lets_the_library_download(hub_settings, monkeypatch, answering_port):
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{answering_port}")
    assert hub.from_pretrained(lambda name, **kw: name, REPO_ID) == REPO_ID


def test_dataset_advice_names_the_dataset_download(hub_settings, monkeypatch, silent_port):
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{silent_port}")
    with pytest.raises(hub.HubError, match=r"dataset 'org/votes'.*hf download --repo-type dataset org/votes "
                                           r"--local-dir DIR"):
        hub.require_hub("org/votes", "dataset", "/cache")


def test_offline_and_a_dataset_not_cached_is_named(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(hub.HubError, match=r"dataset 'org/votes' is no local path and is not in the local Hugging "
                                           r"Face cache \(.*cache\), and offline mode is on \(HF_HUB_OFFLINE=1\).*"
                                           r"--local-dir DIR"):
        hub.load_dataset("org/votes", split="train", cache_dir=str(tmp_path / "cache"))
