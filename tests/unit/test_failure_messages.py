"""Disk-full detection and wording (prefsweep.train.jobs) and the wandb offline fallback (prefsweep.tracking),
with fakes: no disk is filled and no wandb server is needed (the real cases are in
tests/reliability/test_hub_and_tracking.py)."""

from __future__ import annotations

import errno
import logging
import os

import pytest

from prefsweep.train import jobs

from prefsweep import tracking


def test_disk_full_is_recognised_in_each_form_it_takes():
    assert jobs.is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert jobs.is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert jobs.is_disk_full(RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"))
    assert jobs.is_disk_full(RuntimeError("[enforce fail at inline_container.cc:858] . PytorchStreamWriter failed "
                                          "writing file data/0: file write failed"))
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("save failed") from inner
    except RuntimeError as outer:
        assert jobs.is_disk_full(outer)
    assert not jobs.is_disk_full(RuntimeError("CUDA out of memory"))
    assert not jobs.is_disk_full(OSError(errno.EACCES, "Permission denied"))


def test_torch_save_to_a_full_disk_is_recognised(tmp_path):
    import torch

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with pytest.raises(RuntimeError) as exc:
        torch.save({"w": torch.zeros(1000)}, "/dev/full")
    assert jobs.is_disk_full(exc.value), exc.value


def test_free_space_of_a_directory_not_made_yet(tmp_path):
    text = jobs.free_space(tmp_path / "not" / "yet")
    assert text.endswith(" free") and text.split()[1] in ("B", "KiB", "MiB", "GiB", "TiB")


def test_disk_full_error_names_directory_free_space_and_cause(tmp_path):
    err = jobs.disk_full_error(tmp_path, "writing a checkpoint", RuntimeError("unexpected pos 7 vs 5\nmore"),
                               "Free space and rerun.")
    message = str(err)
    assert message.startswith(f"{tmp_path}: disk full (or quota exceeded) while writing a checkpoint: ")
    assert " free on its disk (RuntimeError: unexpected pos 7 vs 5). Free space and rerun." in message


def test_init_timeout_from_the_environment():
    assert tracking.init_timeout({}) == tracking.DEFAULT_INIT_TIMEOUT_S
    assert tracking.init_timeout({"WANDB_INIT_TIMEOUT": "5"}) == 5.0
    with pytest.raises(ValueError, match="WANDB_INIT_TIMEOUT: expected seconds"):
        tracking.init_timeout({"WANDB_INIT_TIMEOUT": "never"})


class FakeRun:
    def __init__(self, mode: str, run_id: str, directory: str):
        self.mode, self.id = mode, run_id
        self.settings = type("S", (), {"sync_dir": os.path.join(directory, "wandb", f"offline-run-x-{run_id}")})()


def test_an_online_run_that_cannot_start_goes_offline(tmp_path, monkeypatch, caplog):
    import wandb

    calls, teardowns = [], []

    def init(**kwargs):
        calls.append(kwargs)
        if kwargs["mode"] == "online":
            raise wandb.errors.CommError("giving up after 1 attempt(s): context deadline exceeded")
        return FakeRun(kwargs["mode"], kwargs["id"], kwargs["dir"])

    monkeypatch.setattr(wandb, "init", init)
    monkeypatch.setattr(wandb, "teardown", lambda: teardowns.append(1))
    monkeypatch.setattr(tracking, "_online_failed", False)
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "4")
    with caplog.at_level(logging.WARNING, logger="prefsweep.tracking"):
        run = tracking.init_run(mode="online", id="r1", dir=str(tmp_path))
        again = tracking.init_run(mode="online", id="r2", dir=str(tmp_path))
    assert run.mode == "offline" and run.id == "r1" and again.mode == "offline"
    # the second run does not wait for the server again; wandb's service is reset once
    assert [c["mode"] for c in calls] == ["online", "offline", "offline"] and teardowns == [1]
    assert calls[0]["settings"].init_timeout == 4.0
    assert os.environ["WANDB_MODE"] == "offline"
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "could not start (CommError: giving up" in text and "waited at most 4 s" in text
    assert f"wandb sync {tmp_path}" in text


def test_offline_and_disabled_runs_start_as_asked(monkeypatch):
    import wandb

    calls = []
    monkeypatch.setattr(wandb, "init", lambda **kw: calls.append(kw) or "run")
    monkeypatch.setattr(tracking, "_online_failed", False)
    assert tracking.init_run(mode="offline", id="r") == "run"
    assert [c["mode"] for c in calls] == ["offline"]
