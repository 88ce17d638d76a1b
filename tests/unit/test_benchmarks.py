"""benchmarks/RESULTS.md names exactly the figures that the benchmark scripts declare (no stale
rows, none missing) and is the one home of them (docs/benchmarks.md links it, copying no row);
the harness refuses a script that reports other figures than it declares. Reads files only: no
benchmark runs here."""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest

from tests.conftest import REPO

BENCH = REPO / "benchmarks"


def run_all():
    spec = importlib.util.spec_from_file_location("bench_run_all", BENCH / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def harness():
    sys.path.insert(0, str(BENCH))
    try:
        import harness as module
    finally:
        sys.path.remove(str(BENCH))
    return module


def table_names(text: str) -> list[str]:
    """Figure names of a figures table: the backticked name opening each row's first cell."""
    return re.findall(r"^\| `([\w.-]+)`: ", text, flags=re.MULTILINE)


def test_every_script_is_run_and_declares_figures():
    ra = run_all()
    on_disk = sorted(p.stem for p in BENCH.glob("bench_*.py"))
    assert sorted(ra.scripts()) == on_disk and set(ra.ORDER) == set(on_disk)
    names = [n for s in on_disk for n in ra.declared_figures(s)]
    assert names and len(names) == len(set(names)), "figure names must be unique across scripts"


def test_results_md_names_every_declared_figure_and_no_other():
    ra = run_all()
    declared = [n for s in ra.scripts() for n in ra.declared_figures(s)]
    rows = table_names((BENCH / "RESULTS.md").read_text())
    assert sorted(rows) == sorted(declared), (
        f"stale rows {sorted(set(rows) - set(declared))}, missing {sorted(set(declared) - set(rows))}: "
        "rerun `make bench` (or benchmarks/run_all.py --only <script>)")


def test_results_md_is_what_the_stored_figures_render():
    ra = run_all()
    assert (BENCH / "RESULTS.md").read_text() == ra.render(ra.load_results()), \
        "RESULTS.md was edited by hand or its figures changed: rerun benchmarks/run_all.py --render"


def test_docs_link_the_results_table_and_copy_none_of_it():
    """One home per fact: the benchmarks page links RESULTS.md; neither it nor the README
    repeats a row (a copy would go stale at the next `make bench`)."""
    page = (REPO / "docs" / "benchmarks.md").read_text()
    assert "(../benchmarks/RESULTS.md)" in page
    for doc in (REPO / "README.md", REPO / "docs" / "benchmarks.md"):
        assert table_names(doc.read_text()) == [], f"{doc.name} copies rows of benchmarks/RESULTS.md"


def test_emit_refuses_undeclared_figures(tmp_path):
    h = harness()
    fig = h.Figure(name="x.a", label="a", value="1 s")
    with pytest.raises(SystemExit, match="declares FIGURES"):
        h.emit([fig], ("x.a", "x.b"), None)
    h.emit([fig], ("x.a",), str(tmp_path / "out.json"))
    assert '"name": "x.a"' in (tmp_path / "out.json").read_text()


def test_spread_and_ratios():
    h = harness()
    assert h.ratios([4.0, 9.0], [2.0, 3.0]) == [2.0, 3.0]
    assert h.spread([1.0, 3.0, 2.0], lambda x: f"{x:g}x", "ratio") == "ratio median of 3, min-max 1x-3x"
    assert h.spread([1.0]) == "1 run (no spread)"
    assert h.job_counts("Job stats:\njob  count\n---  ---\ndpo  3\nall  1\ntotal  4\n\n") == {"dpo": 3, "all": 1}


def test_default_run_reuse_reads_benchmark_files_and_log(tmp_path):
    """--reuse: per-stage sums of the benchmark files and the wall time of the run's log."""
    import os
    from datetime import datetime

    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_default_run", BENCH / "bench_default_run.py")
        bdr = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bdr)  # type: ignore[union-attr]
    finally:
        sys.path.remove(str(BENCH))
    bench = tmp_path / "results" / "default" / "benchmarks"
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for rel, s in (("train/base.tsv", 30.0), ("train/dpo/maj/shared/n64/seed1.tsv", 12.5),
                   ("train/dpo/sc/size/n64/seed1.tsv", 7.5), ("eval/model_answer/sft.jsonl.tsv", 4.0)):
        (bench / rel).parent.mkdir(parents=True, exist_ok=True)
        (bench / rel).write_text(header + f"{s}\t0:00:{int(s):02d}\t100\t1\t1\t1\t0\t0\t50\t{s / 2}\n")
    sums = bdr.stage_sums(tmp_path)
    assert sums == {"pretraining": (1, 30.0, 15.0), "DPO": (2, 20.0, 10.0), "answers": (1, 4.0, 2.0)}
    logs = tmp_path / ".snakemake" / "log"
    logs.mkdir(parents=True)
    (logs / "2026-12-01T100000.000000.snakemake.log").write_text(
        "SNAKEMAKE\n=========\n  Date: 2026-12-01 10:00:00\n...\n122 of 122 steps (100%) done\n")
    end = datetime(2026, 12, 1, 10, 8, 30).timestamp()
    os.utime(logs / "2026-12-01T100000.000000.snakemake.log", (end, end))
    (logs / "2026-12-01T110000.000000.snakemake.log").write_text("  Date: 2026-12-01 11:00:00\n3 of 9 steps (33%) done\n")
    assert bdr.logged_wall(tmp_path) == (510.0, 122)
