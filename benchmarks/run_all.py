"""Run every benchmark and write benchmarks/RESULTS.md.

    python benchmarks/run_all.py [--scale full|small] [--only NAME ...] [--fresh-run | --reuse-run DIR]   # make bench

Each ``benchmarks/bench_*.py`` runs as its own process with ``--scale`` and ``--json``; its
figures are kept in ``benchmarks/figures/<script>.json`` (with the date, commit, scale and its
run time), and RESULTS.md is rewritten from every such file: the machine, the date and commit of
each script's run, and one row per figure (measured, compared with, ratio, spread, target).
``--only bench_dag bench_judge`` reruns those scripts and keeps the others' last figures.
By default bench_default_run.py reuses this clone's own `make run` when it ran every job from a
clean ``results/`` and is still current (``--reuse-if-done``; else it runs afresh, ~9 min);
``--fresh-run`` always runs afresh, ``--reuse-run DIR`` hands ``--reuse DIR`` to it (the
figures of a finished `make run` in DIR, unchecked). ``--render`` only rewrites RESULTS.md from
the stored figures. A script that fails keeps its previous figures; the exit status is then
non-zero.

RESULTS.md is the one home of the figures: docs/benchmarks.md links it and copies no row
(tests/unit/test_benchmarks.py checks RESULTS.md against every script's ``FIGURES``).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS_DIR = BENCH / "figures"
RESULTS_MD = BENCH / "RESULTS.md"
#: Run order: bench_data keeps its 100k-prompt data for bench_ref_sharing (see main).
ORDER = ("bench_data", "bench_ref_sharing", "bench_data_memory", "bench_answers", "bench_dag", "bench_judge",
         "bench_incremental", "bench_default_run")
COLUMNS = ("figure", "measured", "compared with", "ratio", "spread", "target")


def scripts() -> list[str]:
    """Every benchmark script's name (``bench_*.py``), in run order."""
    found = sorted(p.stem for p in BENCH.glob("bench_*.py"))
    return [s for s in ORDER if s in found] + [s for s in found if s not in ORDER]


def declared_figures(script: str) -> tuple[str, ...]:
    """The script's ``FIGURES`` literal, read without importing it."""
    tree = ast.parse((BENCH / f"{script}.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "FIGURES" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise ValueError(f"benchmarks/{script}.py declares no FIGURES tuple")


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    # What make bench itself writes (figures, RESULTS.md) is not a change to the code measured.
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                  ":(exclude)benchmarks/figures", ":(exclude)benchmarks/RESULTS.md")
    return head + (" + uncommitted changes" if changed else "")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU") \
        if Path("/proc/cpuinfo").exists() else platform.processor()
    mem = ""
    if Path("/proc/meminfo").exists():
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 2**20:.0f} GiB"
    try:
        import torch

        torch_v = f", torch {torch.__version__}"
    except ImportError:
        torch_v = ""
    return (f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores{mem}, "
            f"Python {platform.python_version()}{torch_v}")


def cell(text: str) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def table(results: dict[str, dict]) -> list[str]:
    """The figures table (Markdown lines): every declared figure of every script, in run order;
    a figure without a stored measurement (its script not run yet) says so."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    for script in scripts():
        figures = {f["name"]: f for f in results.get(script, {}).get("figures", [])}
        for name in declared_figures(script):
            f = figures.get(name)
            if f is None:
                row = (f"`{name}`: not measured yet (`{script}.py` has not run since it declared it)", "", "", "", "",
                       "")
            else:
                row = (f"`{name}`: {f['label']}", f["value"], f["comparison"], f["ratio"], f["spread"], f["target"])
            lines.append("| " + " | ".join(cell(x) for x in row) + " |")
    return lines


def load_results() -> dict[str, dict]:
    out = {}
    for script in scripts():
        path = RESULTS_DIR / f"{script}.json"
        if path.exists():
            out[script] = json.loads(path.read_text())
    return out


def render(results: dict[str, dict]) -> str:
    runs = ["| script | scale | date (UTC) | commit | run time |", "| --- | --- | --- | --- | --- |"]
    for script in scripts():
        meta = results.get(script, {}).get("meta")
        if meta:
            runs.append(f"| `{script}.py` | {meta['scale']} | {meta['date']} | {meta['commit']} | "
                        f"{meta['seconds'] / 60:.1f} min |")
    missing = [s for s in scripts() if s not in results]
    machines = sorted({r["meta"]["machine"] for r in results.values() if r.get("meta")})
    return "\n".join([
        "# Benchmark results",
        "",
        "Written by `make bench` (`python benchmarks/run_all.py`, see its docstring); not edited by hand.",
        "Every figure is measured against its comparison in the same run; timings are medians over",
        "repeats with min-max, ratios taken repeat by repeat. The machine is shared and noisy: read",
        "the ratios, not the absolute times.",
        "",
        *(f"Machine: {m}" for m in machines),
        "",
        *runs,
        *([""] + [f"Not run yet: {', '.join(f'`{s}.py`' for s in missing)}"] if missing else []),
        "",
        *table(results),
        "",
    ])


def write_outputs() -> None:
    RESULTS_MD.write_text(render(load_results()))


def run_script(script: str, args: argparse.Namespace, scratch: Path) -> bool:
    extra = []
    if script == "bench_data":
        extra = ["--keep", str(scratch / "data")]
    elif script == "bench_ref_sharing":
        extra = ["--data-dir", str(scratch / "data")]
    elif script == "bench_default_run" and args.reuse_run:
        extra = ["--reuse", args.reuse_run]
    elif script == "bench_default_run" and not args.fresh_run:
        extra = ["--reuse-if-done", str(REPO)]
    out = scratch / f"{script}.json"
    log = scratch / f"{script}.log"
    cmd = [sys.executable, str(BENCH / f"{script}.py"), "--scale", args.scale, "--json", str(out), *extra]
    print(f"== {script}.py ({' '.join(cmd[2:])})", flush=True)
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t0
    lines = log.read_text().splitlines()
    for line in lines:
        if line.startswith("[bench]"):
            print(line, flush=True)
    if proc.returncode != 0 or not out.exists():
        print(f"!! {script}.py failed (exit {proc.returncode}) after {seconds:.0f} s; its previous figures stay:\n"
              + "\n".join(lines[-30:]), flush=True)
        return False
    data = json.loads(out.read_text())
    data["meta"] = {**data.get("meta", {}), "scale": args.scale, "seconds": round(seconds, 1),
                    "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"), "commit": git_commit(),
                    "machine": machine()}
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"{script}.json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"   {script}.py: {seconds / 60:.1f} min", flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=("full", "small"), default="full")
    p.add_argument("--only", nargs="+", default=None, help="scripts to run (e.g. bench_dag); the others keep theirs")
    p.add_argument("--reuse-run", default=None, help="bench_default_run.py --reuse DIR (a finished make run)")
    p.add_argument("--fresh-run", action="store_true",
                   help="time a fresh default run even when this clone holds a complete one from `make run`")
    p.add_argument("--render", action="store_true", help="only rewrite RESULTS.md from the stored figures")
    args = p.parse_args(argv)
    ok = True
    if not args.render:
        chosen = scripts() if args.only is None else [s.removesuffix(".py") for s in args.only]
        unknown = sorted(set(chosen) - set(scripts()))
        if unknown:
            raise SystemExit(f"--only: no benchmark {unknown}; expected some of {scripts()}")
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="bench_all.") as tmp:
            for script in chosen:
                ok = run_script(script, args, Path(tmp)) and ok
        print(f"== all: {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    write_outputs()
    print(f"wrote {RESULTS_MD.relative_to(REPO)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
