"""Which config a make target runs (prefsweep/config/files.py): CONFIG or SNAKEMAKE_ARGS, read
as Snakemake reads --configfile, and the report path of that experiment."""

from __future__ import annotations

import pytest

from prefsweep.config import ConfigError
from prefsweep.config.files import make_configfiles, make_report_path, snakemake_config_options


@pytest.mark.parametrize("argv, files, overrides", [
    (["--cores", "2"], [], []),
    (["--configfile", "a.yaml", "b.yaml", "--cores", "2"], ["a.yaml", "b.yaml"], []),
    # a second option replaces the first, as in Snakemake
    (["--configfile", "a.yaml", "--configfiles", "b.yaml"], ["b.yaml"], []),
    (["-C", "experiment=x", "dpo={beta: 0.2}", "-n"], [], ["experiment=x", "dpo={beta: 0.2}"]),
])
def test_snakemake_config_options(argv, files, overrides):
    assert snakemake_config_options(argv) == (files, overrides)


def test_the_report_goes_to_the_experiment_the_config_names(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("experiment: mine\n")
    assert make_report_path(str(mine)) == "results/mine/report.html"
    assert make_report_path("", f"--cores 2 --configfile {mine}") == "results/mine/report.html"
    assert make_report_path("", "--config experiment=other") == "results/other/report.html"
    assert make_report_path() == "results/default/report.html"


def test_config_files_given_twice_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"given twice.*CONFIG=\"a.yaml b.yaml\""):
        make_configfiles("a.yaml", "--configfile b.yaml")
    assert make_configfiles("a.yaml b.yaml", "--cores 4") == ["a.yaml", "b.yaml"]
