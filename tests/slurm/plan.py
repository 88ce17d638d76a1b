"""What a Slurm run would submit, read from ``snakemake -n`` output, and the sbatch lines the
executor plugin would build for it, by the plugin's own code.

A dry-run never calls the Slurm executor, so it prints no sbatch line; it does print every job
with its rule, threads and resources (``resources: mem_mb=..., slurm_partition=...``), and
group jobs as ``Group job NAME (...)`` followed by their indented member jobs. From those,
:func:`sbatch_line` calls ``snakemake_executor_plugin_slurm.submit_string.get_submit_command``
and ``utils.set_gres_string`` (the two functions ``Executor.run_job`` joins into the sbatch
call) with a stand-in job, and fills partition and account as ``Executor.get_partition_arg`` /
``get_account_arg`` format them (`` -p NAME``, `` -A NAME``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from types import SimpleNamespace

_JOB_RE = re.compile(r"^(?P<indent>\s*)(?:local)?(?:rule|checkpoint) (?P<rule>\w+):$")
_GROUP_RE = re.compile(r"^\[.*\] Group job (?P<group>\S+) \(")


@dataclass
class PlannedJob:
    rule: str
    group: str | None
    threads: int = 1
    resources: dict[str, int | str] = field(default_factory=dict)
    wildcards: str = ""


@dataclass
class Submission:
    """One sbatch call: a single job, or a group job with its members."""

    name: str  # rule name, or group name
    jobs: list[PlannedJob]


def _value(text: str) -> int | str:
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def parse_dry_run(output: str) -> list[Submission]:
    """Jobs of a ``snakemake -n`` (not ``--quiet``) output, grouped into submissions."""
    subs: list[Submission] = []
    current: PlannedJob | None = None
    group: Submission | None = None
    for line in output.splitlines():
        if m := _GROUP_RE.match(line):
            group = Submission(m["group"], [])
            subs.append(group)
            current = None
            continue
        if m := _JOB_RE.match(line):
            indented = bool(m["indent"])
            if not indented:
                group = None
            current = PlannedJob(m["rule"], group.name if group else None)
            if group is not None and indented:
                group.jobs.append(current)
            else:
                subs.append(Submission(current.rule, [current]))
            continue
        if current is None:
            continue
        key, _, rest = line.strip().partition(": ")
        if key == "threads":
            current.threads = int(rest)
        elif key == "wildcards":
            current.wildcards = rest
        elif key == "resources":
            current.resources = {k: _value(v) for k, _, v in (item.partition("=") for item in rest.split(", "))}
    return subs


class _Resources(dict):
    """What the plugin reads from ``job.resources``: ``.get(name)`` and ``.name``."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e


def sbatch_line(job: PlannedJob, profile_args: dict[str, str], account: str = "") -> str:
    """The sbatch call executor-plugin-slurm makes for ``job`` (without ``--wrap``).

    ``profile_args``: the profile's settings as Snakemake reads them
    (``ProfileConfigFileParser``), for ``slurm-qos`` and ``slurm-requeue``.
    """
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    stand_in = SimpleNamespace(resources=_Resources(job.resources), threads=job.threads, name=job.rule, is_group=lambda: False)
    settings = SimpleNamespace(
        requeue=profile_args.get("slurm-requeue", "").lower() == "true",
        qos=profile_args.get("slurm-qos"),
        reservation=None,
    )
    partition = job.resources.get("slurm_partition")
    account = job.resources.get("slurm_account", account)
    params = {
        "run_uuid": "RUN",
        "slurm_logfile": "LOG",
        "comment_str": f"rule_{job.rule}",
        "account": f" -A {shlex.quote(str(account))}" if account else "",
        "partition": f" -p {shlex.quote(str(partition))}" if partition else "",
        "workdir": "WORKDIR",
    }
    return get_submit_command(stand_in, params, settings=settings) + set_gres_string(stand_in)


def sbatch_options(line: str) -> dict[str, str]:
    """``--mem 4000 -p gpu --gpus=1`` -> {"--mem": "4000", "-p": "gpu", "--gpus": "1"}."""
    words = shlex.split(line)[1:]
    opts: dict[str, str] = {}
    i = 0
    while i < len(words):
        w = words[i]
        if "=" in w and w.startswith("--"):
            k, v = w.split("=", 1)
            opts[k] = v
        elif i + 1 < len(words) and not words[i + 1].startswith("-"):
            opts[w] = words[i + 1]
            i += 1
        else:
            opts[w] = ""
        i += 1
    return opts


def profile_args(path) -> dict[str, str]:
    """A profile's settings as Snakemake reads them (YTE rendered, one string per key)."""
    from snakemake.profiles import ProfileConfigFileParser

    with open(path) as fh:
        return dict(ProfileConfigFileParser().parse(fh))
