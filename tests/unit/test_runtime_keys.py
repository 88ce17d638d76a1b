"""Runtime keys (prefsweep.config.RUNTIME_KEYS) are in no job's slice; the training job reads
them back from PREFSWEEP_RUNTIME, or the schema's default for a script run by hand, and they
stay out of the checkpoints' fingerprint (a changed logging_steps must not restart training)."""

from __future__ import annotations

import json

import pytest

from prefsweep.config import RUNTIME_ENV, ConfigError, job_config, runtime_env_value, runtime_values, schema_node
from prefsweep.train.training import build_dpo_config, build_sft_config, resolve_section


def test_a_job_reads_its_runtime_keys_from_the_environment(default_config, tmp_path, monkeypatch):
    changed = {**default_config, "dpo": {**default_config["dpo"], "logging_steps": 3},
               "sft": {**default_config["sft"], "logging_steps": 7}}
    monkeypatch.setenv(RUNTIME_ENV, runtime_env_value(changed))
    dpo = job_config(changed, "dpo")["dpo"]
    args = build_dpo_config(dpo, output_dir=tmp_path, seed=1, run_name="r", report_to="none")
    assert args.logging_steps == 3
    sft = build_sft_config(job_config(changed, "sft")["sft"], output_dir=tmp_path, run_name="r", report_to="none")
    assert sft.logging_steps == 7


def test_a_hand_run_without_the_variable_gets_the_schema_default(default_config, tmp_path, monkeypatch):
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    args = build_dpo_config(job_config(default_config, "dpo")["dpo"], output_dir=tmp_path, seed=1, run_name="r",
                            report_to="none")
    assert args.logging_steps == schema_node("dpo.logging_steps")["default"]
    # a slice written by hand with the key keeps its own value
    assert runtime_values({"logging_steps": 2}, "dpo", env={}) == {"logging_steps": 2}


def test_runtime_keys_stay_out_of_the_fingerprint(default_config):
    section = job_config(default_config, "dpo")["dpo"]
    assert resolve_section({**section, "logging_steps": 1}, "dpo") == resolve_section(section, "dpo")


@pytest.mark.parametrize("value, needle", [("{not json", "not a JSON object"),
                                           (json.dumps({"dpo.logging_steps": 0}), "dpo.logging_steps")])
def test_a_bad_variable_is_an_error_naming_it(value, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        runtime_values({}, "dpo", env={RUNTIME_ENV: value})
    assert RUNTIME_ENV in str(err.value)
