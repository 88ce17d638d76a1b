"""A job that cannot reach the hub or wandb, or whose disk fills, says so instead of hanging or
dying with a library's traceback.

The unreachable hub and wandb server is a loopback TCP server that accepts connections and never
answers (a compute node behind a firewall: the worst case, since nothing fails by itself). Hub
jobs run as subprocesses (``scripts/base_model.py``, :func:`prefsweep.data.sources.hf_dataset.load_hf`) with
``HF_ENDPOINT`` pointed at it, ``HF_HOME`` in a temporary directory and ``HF_HUB_OFFLINE``
unset, as a user's job would be; each has a hard wall-clock limit, so a hang fails the test
instead of holding the suite.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from prefsweep.config import job_config
from tests.conftest import REPO, load_config
from tests.unit.train_helpers import build_tiny_dir, dpo_argv, load_script, make_pairs, write_pairs_and_manifest

pytestmark = pytest.mark.reliability

MODEL_ID = "prefsweep-test/tiny-neox"
DATASET_ID = "prefsweep-test/votes"
#: PREFSWEEP_HUB_TIMEOUT of the hub jobs; a job must end well within JOB_LIMIT_S.
HUB_WAIT_S = 3
JOB_LIMIT_S = 60
TINY = {"vocab_size": 400, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 128}


class SilentServer:
    """A loopback TCP server that accepts every connection and never sends a byte.

    ``connections`` counts the accepted ones; :meth:`close` stops the accept loop (it polls a
    stop flag every 0.1 s) and closes every socket.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def connections(self) -> int:
        return len(self._accepted)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        for conn in self._accepted:
            conn.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


def hub_env(home: Path, endpoint: str, **extra: str) -> dict[str, str]:
    """A job's environment: no HF setting of this shell, ``HF_HOME`` and ``HF_ENDPOINT`` as given,
    offline mode off unless ``extra`` sets it, wandb off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(home), HF_ENDPOINT=endpoint, PREFSWEEP_HUB_TIMEOUT=str(HUB_WAIT_S),
               WANDB_MODE="disabled", TOKENIZERS_PARALLELISM="false", **extra)
    return env


def run_job(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int | None, float, str]:
    """``(returncode, seconds, stderr)`` of ``python argv``; returncode ``None`` when the job was
    still running after :data:`JOB_LIMIT_S` (it is killed then)."""
    t0 = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, *argv], env=env, cwd=cwd, capture_output=True, text=True,
                              timeout=JOB_LIMIT_S)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return None, time.monotonic() - t0, err
    return proc.returncode, time.monotonic() - t0, proc.stderr


def base_model_argv(tmp_path: Path, name_or_path: str) -> list[str]:
    """``scripts/base_model.py`` with ``model.preset: hf`` and ``model.name_or_path``."""
    config = job_config(load_config(), "base_model")
    config["model"].update(preset="hf", name_or_path=name_or_path)
    path = tmp_path / "base_model.json"
    path.write_text(json.dumps(config))
    return [str(REPO / "scripts" / "base_model.py"), "--config-json", str(path), "--out", str(tmp_path / "base")]


def last_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "(nothing on stderr)"


def outcome(rc: int | None, seconds: float, stderr: str) -> str:
    if rc is None:
        return f"still running after {seconds:.0f} s (killed); stderr ends: {last_line(stderr)}"
    return f"exit {rc} after {seconds:.1f} s: {last_line(stderr)}"


# ---------------------------------------------------------------------------------------------
# Models and datasets from the hub
# ---------------------------------------------------------------------------------------------


def test_a_hub_that_never_answers_fails_the_model_job_in_bounded_time(case, tmp_path, silent_server):
    case.expect(f"hub accepts connections but never answers, model not cached: the job fails within "
                f"{JOB_LIMIT_S} s (wait {HUB_WAIT_S} s) naming the id, the endpoint, the wait and what to do "
                "(hf download on the login node, HF_HUB_OFFLINE=1)")
    rc, seconds, stderr = run_job(base_model_argv(tmp_path, MODEL_ID), hub_env(tmp_path / "hf", silent_server.url),
                                  tmp_path)
    case.observe(outcome(rc, seconds, stderr))
    assert rc not in (None, 0), outcome(rc, seconds, stderr)
    message = last_line(stderr)
    for part in (MODEL_ID, silent_server.url, f"{HUB_WAIT_S} s", "PREFSWEEP_HUB_TIMEOUT", f"hf download {MODEL_ID}",
                 "HF_HUB_OFFLINE=1"):
        assert part in message, (part, message)
    assert "Traceback" not in stderr


def test_offline_mode_and_a_model_not_in_the_cache_names_both(case, tmp_path, silent_server):
    case.expect("HF_HUB_OFFLINE=1 and a model not in the local cache: error naming the id, that offline mode is "
                "on, that it is not in the cache, and how to put it there; the hub is never contacted")
    env = hub_env(tmp_path / "hf", silent_server.url, HF_HUB_OFFLINE="1")
    rc, seconds, stderr = run_job(base_model_argv(tmp_path, MODEL_ID), env, tmp_path)
    case.observe(outcome(rc, seconds, stderr))
    assert rc not in (None, 0), outcome(rc, seconds, stderr)
    message = last_line(stderr)
    for part in (MODEL_ID, "not in the local Hugging Face cache", str(tmp_path / "hf" / "hub"),
                 "offline mode is on (HF_HUB_OFFLINE=1)", f"hf download {MODEL_ID}"):
        assert part in message, (part, message)
    assert silent_server.connections == 0


def cache_model(home: Path, repo_id: str, model_dir: Path) -> None:
    """Put ``model_dir``'s files in the hub cache of ``HF_HOME=home`` as ``hf download`` lays
    them out (``models--org--name/snapshots/<commit>/`` and ``refs/main``)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = home / "hub" / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


def test_a_model_in_the_cache_loads_without_the_network(case, tmp_path, silent_server):
    case.expect("a hub id already in the local cache, offline mode off, hub never answering: the job loads it "
                "from the cache at once and never contacts the hub")
    cache_model(tmp_path / "hf", MODEL_ID, build_tiny_dir(tmp_path / "tiny", TINY, n_prompts=4))
    rc, seconds, stderr = run_job(base_model_argv(tmp_path, MODEL_ID), hub_env(tmp_path / "hf", silent_server.url),
                                  tmp_path)
    case.observe(f"{outcome(rc, seconds, stderr)}; {silent_server.connections} connections to the hub")
    assert rc == 0, outcome(rc, seconds, stderr)
    assert json.loads((tmp_path / "base" / "run_info.json").read_text())["source"] == MODEL_ID
    assert silent_server.connections == 0


LOAD_DATASET = """
import sys
from prefsweep.data.ballots import BallotError
from prefsweep.data.sources.hf_dataset import load_hf
try:
    ds = load_hf({"path": sys.argv[1], "split": "train"}, "hh", cache_dir=sys.argv[2])
except BallotError as exc:
    raise SystemExit(str(exc))
print("rows", len(ds), ds.column_names)
"""


def test_a_hub_that_never_answers_fails_the_dataset_load_in_bounded_time(case, tmp_path, silent_server):
    case.expect(f"hub never answers, dataset not cached: the data job fails within {JOB_LIMIT_S} s naming the "
                "config key, the id, the endpoint, the wait and what to do")
    argv = ["-c", LOAD_DATASET, DATASET_ID, str(tmp_path / "datasets")]
    rc, seconds, stderr = run_job(argv, hub_env(tmp_path / "hf", silent_server.url), tmp_path)
    case.observe(outcome(rc, seconds, stderr))
    assert rc not in (None, 0), outcome(rc, seconds, stderr)
    message = last_line(stderr)
    for part in ("data.hh.path", DATASET_ID, silent_server.url, f"{HUB_WAIT_S} s", "hf download --repo-type dataset",
                 "HF_HUB_OFFLINE=1"):
        assert part in message, (part, message)


def cache_dataset(cache: Path, repo_id: str, tmp_path: Path) -> None:
    """A copy of ``repo_id`` in the datasets cache ``cache``, as ``datasets`` leaves one after a
    load from the hub (``org___name/default/0.0.0/<hash>/``), made from a local file."""
    import datasets

    name = repo_id.split("/")[1]
    src = tmp_path / "src" / name
    src.mkdir(parents=True)
    (src / "train.jsonl").write_text("".join(json.dumps({"chosen": f"c{i}", "rejected": f"r{i}"}) + "\n"
                                             for i in range(3)))
    datasets.load_dataset(str(src), split="train", cache_dir=str(cache))
    (cache / name).rename(cache / repo_id.replace("/", "___"))


def test_a_dataset_in_the_cache_loads_without_the_network(case, tmp_path, silent_server):
    case.expect("a hub dataset already in the datasets cache, offline mode off, hub never answering: it loads "
                "from the cache at once and the hub is never contacted")
    cache_dataset(tmp_path / "datasets", DATASET_ID, tmp_path)
    argv = ["-c", LOAD_DATASET, DATASET_ID, str(tmp_path / "datasets")]
    rc, seconds, stderr = run_job(argv, hub_env(tmp_path / "hf", silent_server.url), tmp_path)
    case.observe(f"{outcome(rc, seconds, stderr)}; {silent_server.connections} connections to the hub")
    assert rc == 0, outcome(rc, seconds, stderr)
    assert silent_server.connections == 0


# ---------------------------------------------------------------------------------------------
# wandb
# ---------------------------------------------------------------------------------------------


def test_wandb_online_without_network_goes_offline_and_training_goes_on(case, tmp_path, silent_server, monkeypatch,
                                                                        caplog):
    case.expect("wandb.mode online, wandb server never answering: the run starts offline within the bounded wait "
                "(WANDB_INIT_TIMEOUT) with a warning in the job log saying so and how to sync; no CommError")
    import wandb

    from prefsweep import tracking

    for key in ("WANDB_MODE", "WANDB_PROJECT", "WANDB_RUN_GROUP", "WANDB_JOB_TYPE", "WANDB_SILENT", "WANDB_DIR",
                "WANDB_ENTITY"):
        monkeypatch.delenv(key, raising=False)  # start_wandb sets them; restored after the test
    monkeypatch.setenv("WANDB_BASE_URL", silent_server.url)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "3")
    monkeypatch.setattr(tracking, "_online_failed", False, raising=False)  # a fresh process
    setup = tracking.wandb_setup({"wandb": {"mode": "online", "project": "p"}}, group="g", name="dpo-x",
                                 job_type="dpo", run_id="dpo-x-1234", directory=tmp_path / "wandb")
    t0 = time.monotonic()
    run = None
    try:
        with caplog.at_level(logging.WARNING, logger="prefsweep.tracking"):
            run = tracking.start_wandb(setup, {"experiment": "e"})
        seconds = time.monotonic() - t0
        warnings = [r.getMessage() for r in caplog.records if r.name == "prefsweep.tracking"]
        case.observe(f"after {seconds:.1f} s: offline={run.offline}; " + " | ".join(warnings))
        assert run.offline and run.id == "dpo-x-1234"
        assert seconds < 30
        assert any("could not start" in w and "offline" in w and silent_server.url in w for w in warnings), warnings
        assert any(f"wandb sync {tmp_path / 'wandb'}" in w for w in warnings), warnings
        assert os.environ["WANDB_MODE"] == "offline"
        run.log({"train/loss": 1.0})
    except Exception as exc:
        case.observe(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        raise
    finally:
        tracking.finish_wandb(run)
        wandb.teardown()
    assert list((tmp_path / "wandb" / "wandb").glob("offline-run-*-dpo-x-1234"))


# ---------------------------------------------------------------------------------------------
# Disk full
# ---------------------------------------------------------------------------------------------


def dpo_job(root: Path) -> list[str]:
    """A tiny DPO job (8 pairs, batch 2, 2 epochs: 8 steps, a checkpoint every 2), ready to run."""
    model = build_tiny_dir(root / "tiny", TINY, n_prompts=8)
    config = job_config(load_config(), "dpo")
    config["dpo"].update(num_train_epochs=2, per_device_train_batch_size=2, save_steps=2, max_length=64,
                         logging_steps=100, learning_rate=3e-3, lora={**config["dpo"]["lora"], "enabled": False})
    path = root / "dpo.json"
    path.write_text(json.dumps(config))
    pairs, manifest = write_pairs_and_manifest(root, make_pairs(8))
    ref = root / "ref.parquet"
    load_script("ref_logps").main(["--config-json", str(path), "--model", str(model), "--pairs", str(pairs),
                                   "--out", str(ref), "--threads", "1"])
    return dpo_argv(root, config=path, model=model, pairs=pairs, manifest=manifest, ref_logps=ref, n_pairs=8,
                    out=root / "out", checkpoints=root / "checkpoints")


def test_disk_full_while_torch_writes_the_optimizer_state(case, tmp_path, monkeypatch):
    case.expect("the disk fills while a DPO checkpoint's optimizer.pt is written (torch: 'inline_container.cc "
                "unexpected pos'): the job's error says disk full, names the checkpoints directory and its free space")
    import torch

    argv = dpo_job(tmp_path)
    checkpoints = Path(argv[argv.index("--checkpoints") + 1])
    original = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if str(f).endswith(f"checkpoint-4{os.sep}optimizer.pt"):
            if Path("/dev/full").exists():  # a real full-disk write: torch's own error
                return original(obj, "/dev/full", *args, **kwargs)
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
        return original(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(SystemExit) as exc:
        load_script("dpo").main(argv)
    message = str(exc.value)
    case.observe(message)
    assert "disk full" in message and str(checkpoints) in message
    assert " free on its disk" in message and "inline_container.cc" in message


def test_disk_full_errno_names_the_directory_and_free_space(case, tmp_path):
    case.expect("OSError ENOSPC while saving: 'disk full', the directory, and its free space (shutil.disk_usage)")
    from prefsweep.train.jobs import DiskFullError, save_atomically

    def write(tmp: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp / "model.safetensors"))

    out = tmp_path / "models" / "sft"
    with pytest.raises(DiskFullError) as exc:
        save_atomically(out, write)
    case.observe(exc.value)
    assert str(out) in str(exc.value) and "disk full" in str(exc.value)
    assert " free on its disk" in str(exc.value)
