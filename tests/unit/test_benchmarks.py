"""benchmarks/RESULTS.md and the README's Benchmarks table name exactly the figures that the
benchmark scripts declare (no stale rows, none missing); the harness refuses a script that
reports other figures than it declares. Reads files only: no benchmark runs here."""

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
    return re.findall(r"^\| `([\w.-]+)`: ", text, flags=re.M)


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


def test_readme_quotes_the_results_table():
    ra = run_all()
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Benchmarks", 1)[1].split("\n## ", 1)[0]
    quoted = section.split(ra.BEGIN, 1)[1].split(ra.END, 1)[0].strip().splitlines()
    assert quoted == ra.table(ra.load_results())
    assert "\n".join(quoted) in (BENCH / "RESULTS.md").read_text()


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
