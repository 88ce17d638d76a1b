"""What every benchmark script shares: figures, repeats, spread, and the JSON it hands back.

A benchmark script (``benchmarks/bench_*.py``) declares the names of the figures it reports in
a module-level tuple ``FIGURES`` (a literal: ``tests/unit/test_benchmarks.py`` reads it without
importing the script, and checks that ``benchmarks/RESULTS.md`` has exactly these rows), takes
``--scale full|small`` (small: a few seconds, to check that it works; full: what ``make bench``
runs) and ``--json PATH``, and ends with :func:`emit`, which refuses a figure set that differs
from ``FIGURES``. ``benchmarks/run_all.py`` runs every script and writes RESULTS.md.

A figure is one row of RESULTS.md: what was measured (``value``), what it is compared with in
the same run (``comparison``), their ratio, the spread over repeats, and the target it is held
to. Timings are repeated and reported as the median with min-max; a ratio is taken repeat by
repeat (A and B run in turn, so a drift of the machine's speed hits both) and its median and
min-max are reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Figure:
    """One row of RESULTS.md."""

    #: Stable id, declared in the script's FIGURES (e.g. ``answers.tiny``).
    name: str
    #: What is measured, in words.
    label: str
    #: The measured value with its unit (``"1.9 s"``, ``"100%"``).
    value: str
    #: What it is compared with, measured in the same run (``"FastChat loop 31.0 s"``); "" if none.
    comparison: str = ""
    #: Ratio of comparison to value (a speed-up) or value to comparison, with its sense (``"16.3x faster"``).
    ratio: str = ""
    #: Spread over repeats (``"median of 3; 15.1-17.0x"``) or why there is none.
    spread: str = ""
    #: The target (``">= 10x"``) and whether it is met (``"met"``/``"NOT met"``); "" if none.
    target: str = ""


def parser(doc: str) -> argparse.ArgumentParser:
    """The arguments every benchmark script takes (add its own to the returned parser)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0], epilog=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=("full", "small"), default="full",
                   help="full: the benchmark as make bench runs it; small: a quick check that it works")
    p.add_argument("--repeats", type=int, default=None, help="repeats of each timing (default: the scale's)")
    p.add_argument("--json", default=None, help="write the figures here (run_all.py reads them)")
    return p


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of ``fn()`` and its result."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def paired(a: Callable[[], Any], b: Callable[[], Any], repeats: int) -> tuple[list[float], list[float], Any, Any]:
    """Run ``a`` and ``b`` in turn ``repeats`` times: their wall seconds and last results."""
    ta, tb, ra, rb = [], [], None, None
    for _ in range(repeats):
        t, ra = timed(a)
        ta.append(t)
        t, rb = timed(b)
        tb.append(t)
    return ta, tb, ra, rb


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def fmt_num(x: float, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, no exponent for ordinary magnitudes."""
    if x == 0:
        return "0"
    if abs(x) >= 10 ** digits:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def fmt_s(seconds: float) -> str:
    return f"{fmt_num(seconds)} s" if seconds < 600 else f"{fmt_num(seconds / 60)} min"


def spread(xs: Sequence[float], fmt: Callable[[float], str] = fmt_num, what: str = "") -> str:
    """``"median of 3, min-max 1.2-1.5"`` (``what`` names the quantity, e.g. ``"ratio"``)."""
    head = f"{what} " if what else ""
    if len(xs) == 1:
        return f"{head}1 run (no spread)"
    return f"{head}median of {len(xs)}, min-max {fmt(min(xs))}-{fmt(max(xs))}"


def ratios(num: Sequence[float], den: Sequence[float]) -> list[float]:
    """Repeat-by-repeat ratios ``num[i] / den[i]``."""
    return [n / d for n, d in zip(num, den)]


def target(ok: bool, text: str) -> str:
    return f"{text}: {'met' if ok else 'NOT met'}"


def emit(figures: list[Figure], declared: Sequence[str], json_path: str | None, meta: dict | None = None) -> None:
    """Print the figures and write them to ``json_path``; the names must be exactly ``declared``."""
    names = [f.name for f in figures]
    if sorted(names) != sorted(declared):
        raise SystemExit(f"benchmark reports figures {names}, but declares FIGURES = {list(declared)}")
    for f in figures:
        line = f"[bench] {f.name}: {f.label}: {f.value}"
        for part in (f.comparison and f"vs {f.comparison}", f.ratio, f.spread, f.target):
            if part:
                line += f"; {part}"
        print(line, flush=True)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps({"meta": meta or {}, "figures": [asdict(f) for f in figures]}, indent=1))
    sys.stdout.flush()


@dataclass
class JobUsage:
    """A finished child process: wall and CPU seconds, peak resident memory (its own, in MiB)."""

    wall: float
    cpu: float
    peak_mib: float


def run_job(argv: Sequence[str], *, log: str | Path | None = None, env: dict | None = None) -> JobUsage:
    """Run ``argv`` as a child process (output to ``log`` or discarded), as a workflow job runs;
    fail with its log's tail when it fails. Peak memory is the kernel's ``ru_maxrss`` of the child."""
    import os
    import subprocess

    if log:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if log:
        out.close()
    if proc.returncode != 0:
        tail = Path(log).read_text()[-3000:] if log else ""
        raise SystemExit(f"{' '.join(map(str, argv))} failed (exit {proc.returncode}):\n{tail}")
    return JobUsage(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def snakemake_argv(*args: str, cwd: str | Path, profile: str | None = "local",
                   snakefile: str | Path = REPO / "Snakefile") -> list[str]:
    """A workflow command in ``cwd`` with ``profiles/<profile>/`` (local: what `make run` uses);
    ``snakefile``: this workflow unless another is given."""
    bin_dir = Path(sys.executable).parent
    profile_args = ["--profile", str(REPO / "profiles" / profile)] if profile else []
    return [str(bin_dir / "snakemake"), *args, "--snakefile", str(snakefile), "--directory", str(cwd),
            *profile_args]


def snakemake_env() -> dict[str, str]:
    """Jobs run ``python``: this venv's, as after ``source .venv/bin/activate``."""
    import os

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def job_counts(output: str) -> dict[str, int]:
    """Jobs per rule from the 'Job stats' table of a Snakemake run or dry-run ({} when nothing to do)."""
    from prefsweep.cost.plan import parse_job_stats

    return parse_job_stats(output)
