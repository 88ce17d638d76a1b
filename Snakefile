# prefsweep: one preference-learning experiment as one DAG.
#
#   snakemake --cores 2                     # the embedded default (config/config.yaml)
#   snakemake --profile profiles/slurm --configfile config/paper/base.yaml config/paper/shp.yaml
#   snakemake data_all | train_all | eval_all | plots_all
#
# Stages live in workflow/rules/*.smk, logic in the prefsweep package, one CLI per heavy
# step in scripts/. See README.md.
import sys

from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, workflow.basedir)
from prefsweep.config import coerce_cli_strings, load_schema, validate_config


configfile: workflow.source_path("config/config.yaml")


# `--config 'dpo={beta: 0.2}'` arrives as strings, and PyYAML reads `learning_rate: 5e-7` in a
# config file as a string (YAML 1.1): give values their schema types, then validate
# against workflow/schemas/config.schema.yaml and fill its defaults (unknown keys and bad values
# stop the run here, naming the key and what is allowed, before any job).
coerce_cli_strings(config, load_schema())
validate_config(config)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/sft.smk"
include: "workflow/rules/dpo.smk"
include: "workflow/rules/convert.smk"
include: "workflow/rules/answers.smk"
include: "workflow/rules/judge.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/accuracy.smk"
include: "workflow/rules/plots.smk"


rule all:
    default_target: True
    input:
        all_targets(),
