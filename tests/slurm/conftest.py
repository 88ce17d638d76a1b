"""``slurm_cluster``: a private one-node Slurm for the session (see tests/slurm/cluster.py).

It needs the Debian packages `make slurm-deps` installs and root (slurmd and munged run as
root). Without them the tests that use it skip, naming what is missing; with ``CI`` set they
fail instead, so a CI machine cannot pass by skipping. Every daemon it started is stopped by
pid at the end of the session, also when a test fails.
"""

from __future__ import annotations

import os

import pytest

from tests.slurm.cluster import PACKAGES, SUMMARY, LocalSlurm, missing_programs


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the Slurm test must run here)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    missing = missing_programs()
    if missing:
        _unavailable(
            f"Debian packages {' '.join(sorted(set(missing)))} not installed "
            f"(`make slurm-deps` installs {' '.join(sorted(set(PACKAGES.values())))})"
        )
    if os.geteuid() != 0:
        _unavailable("the local Slurm runs slurmd and munged as root; run the Slurm test as root")
    # Short root path: slurmd and munge put sockets under it (sun_path is 108 bytes).
    root = tmp_path_factory.mktemp("slurm", numbered=True)
    cluster = LocalSlurm(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def pytest_terminal_summary(terminalreporter):
    """The Slurm test's wall times and sacct summary, shown by ``make test`` (-q hides prints)."""
    for line in SUMMARY:
        terminalreporter.write_line(f"Slurm test: {line}")
