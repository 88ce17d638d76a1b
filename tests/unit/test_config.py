import copy

import pytest
from snakemake.exceptions import WorkflowError

from prefsweep.config import STEP_KEYS, ConfigError, coerce_cli_strings, job_config
from prefsweep.experiment import check_experiment
from tests.conftest import REPO, load_config


def test_both_shipped_configs_validate_and_pass_checks(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")  # the paper config's LLM judge
    check_experiment(load_config())
    check_experiment(load_config("config/paper/base.yaml", "config/paper/shp.yaml"))


@pytest.mark.parametrize("source", ["multipref", "helpsteer2", "ultrafeedback", "prism", "hh"])
def test_dataset_source_configs_validate_and_name_their_hub_dataset(source):
    cfg = load_config("config/paper/base.yaml", f"config/paper/{source}.yaml")
    check_experiment(cfg)
    assert cfg["data"]["source"] == source and "/" in cfg["data"][source]["path"]  # a hub name
    assert cfg["eval"]["judge"]["type"] == "llm" and cfg["model"]["name_or_path"] == "EleutherAI/pythia-2.8b"


def test_schema_rejects_unknown_key():
    from snakemake.utils import validate

    cfg = load_config()
    cfg["dpo"]["learning_rat"] = 1e-3
    with pytest.raises(WorkflowError, match=r"(?s)learning_rat.*unexpected|Additional properties.*learning_rat"):
        validate(cfg, "workflow/schemas/config.schema.yaml")


def test_job_slices_leave_out_dag_shape_keys(default_config):
    dpo = job_config(default_config, "dpo")
    assert "seeds" not in dpo["dpo"]
    assert "sizes" not in job_config(default_config, "data")["data"]


@pytest.mark.parametrize("change", [("plots", "dpi", 300), ("dpo", "seeds", [1, 2, 3]), ("data", "sizes", [0, 64, 128, 256])])
def test_a_change_reaches_only_the_steps_that_read_it(default_config, change):
    section, key, value = change
    changed = copy.deepcopy(default_config)
    changed[section][key] = value
    touched = {s for s in STEP_KEYS if job_config(changed, s) != job_config(default_config, s)}
    assert touched == ({"plots"} if section == "plots" else set())


def test_training_hyperparameter_reruns_training_only(default_config):
    changed = copy.deepcopy(default_config)
    changed["dpo"]["beta"] = 0.2
    touched = {s for s in STEP_KEYS if job_config(changed, s) != job_config(default_config, s)}
    assert touched == {"dpo"}


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda c: c["data"].update(source="jsonl"), "data.jsonl.path"),
        (lambda c: c["model"].update(preset="hf"), "model.name_or_path"),
        (lambda c: c["model"]["tiny"].update(hidden_size=66), "model.tiny.hidden_size"),
        (lambda c: c["data"].update(source="shp"), "eval.judge.type"),
    ],
)
def test_cross_key_errors_name_the_key(default_config, mutate, key):
    cfg = copy.deepcopy(default_config)
    mutate(cfg)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_experiment(cfg)


def test_cli_strings_get_schema_types():
    import yaml

    schema = yaml.safe_load(open("workflow/schemas/config.schema.yaml"))
    # what Snakemake's YAML base loader makes of --config 'dpo={beta: 0.2, seeds: [1, 2], bf16: true}'
    cfg = {"experiment": "x", "dpo": {"beta": "0.2", "seeds": ["1", "2"], "bf16": "true", "loss_type": "sigmoid"},
           "sc": {"rule": "borda"}, "model": {"name_or_path": "null"}}
    coerce_cli_strings(cfg, schema)
    assert cfg["dpo"] == {"beta": 0.2, "seeds": [1, 2], "bf16": True, "loss_type": "sigmoid"}
    assert cfg["experiment"] == "x" and cfg["sc"]["rule"] == "borda" and cfg["model"]["name_or_path"] is None


def test_config_file_exponents_are_numbers(tmp_path):
    """PyYAML reads 5e-7 (no dot) as a string; the schema's type makes it the number it means."""
    from prefsweep.config import load_config as load

    path = tmp_path / "lr.yaml"
    path.write_text("dpo: {learning_rate: 5e-7, per_device_train_batch_size: 1e1}\nsft: {learning_rate: 1E-5}\n")
    cfg = load(path, check=False)
    assert (cfg["dpo"]["learning_rate"], cfg["sft"]["learning_rate"]) == (5e-07, 1e-05)
    assert cfg["dpo"]["per_device_train_batch_size"] == 10 and type(cfg["dpo"]["per_device_train_batch_size"]) is int
    path.write_text("dpo: {learning_rate: 5e-7x, per_device_train_batch_size: 2.5e0}\n")
    with pytest.raises(ConfigError) as err:
        load(path, check=False)
    for needle in ("dpo.learning_rate: '5e-7x' has the wrong type; expected number; write a number",
                   "dpo.per_device_train_batch_size: '2.5e0' has the wrong type; expected integer; write a whole"):
        assert needle in str(err.value)


@pytest.mark.parametrize("path", sorted(p.name for p in (REPO / "config" / "paper").glob("*.yaml") if p.stem != "base"))
def test_paper_configs_train_with_the_dpo_papers_loss(path):
    """Every config merges over config/config.yaml, whose DPO adds the chosen responses' NLL for
    the tiny model; a paper-scale config must not inherit it silently."""
    from prefsweep.config import load_config as load

    dpo = load(REPO / "config" / "paper" / "base.yaml", REPO / "config" / "paper" / path, check=False)["dpo"]
    assert (dpo["loss_type"], dpo["loss_weights"]) == ("sigmoid", None)


def _validated(**overrides):
    """The default config with section overrides, through the schema and its defaults."""
    from prefsweep.config import validate_config
    from tests.conftest import load_config as load

    cfg = load()
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        cfg[section][key] = value
    return validate_config(cfg)


@pytest.mark.parametrize("overrides, needles", [
    ({"sc__rule": ["borda", "bordaa"]}, ["sc.rule", "'bordaa'", "all: ", "maximal_lottery"]),
    ({"sc__rule": ["borda", "maj"]}, ["sc.rule", "'maj' cannot name a rule arm"]),
    ({"sc__rule": ["borda", "copeland"], "data__reference_arm": "sc"},
     ["data.reference_arm", "'sc' is not an arm", "maj, borda, copeland"]),
    ({"data__reference_arm": "borda"}, ["data.reference_arm", "'borda' is not an arm", "maj, sc"]),
])
def test_arm_errors_at_config_time(overrides, needles):
    cfg = _validated(**overrides)
    with pytest.raises(ConfigError) as err:
        check_experiment(cfg)
    for needle in needles:
        assert needle in str(err.value)


@pytest.mark.parametrize("overrides, key", [
    ({"dpo__init": ["sft", "sft"]}, "dpo.init"),
    ({"dpo__init": []}, "dpo.init"),
    ({"dpo__init": ["sft", "instruct"]}, "dpo.init"),
    ({"sc__rule": []}, "sc.rule"),
    ({"sc__rule": ["Borda"]}, "sc.rule"),
])
def test_list_forms_checked_by_the_schema(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _validated(**overrides)


def test_list_forms_pass_and_scalar_forms_keep_working():
    check_experiment(_validated(dpo__init=["sft", "base"], sc__rule=["borda", "copeland", "schulze", "maximal_lottery"]))
    check_experiment(_validated(dpo__init="base", sc__rule="maximal_lottery"))
    check_experiment(_validated(sc__rule=["borda", "copeland"], data__reference_arm="copeland"))


def test_data_jobs_see_only_their_rule(default_config):
    """Adding a rule or an init reruns no existing job: each data job's slice holds its arm's
    rule only, and a list dpo.init is in the DPO paths, not the slices."""
    from prefsweep.config import job_config_json

    listed = copy.deepcopy(default_config)
    listed["sc"]["rule"] = ["borda", "copeland"]
    more = copy.deepcopy(listed)
    more["sc"]["rule"] = ["borda", "copeland", "maximal_lottery"]
    more["dpo"]["init"] = ["sft", "base"]
    listed["dpo"]["init"] = ["sft"]
    for step, arm in [("data", "maj"), ("data", "borda"), ("data", "copeland"), ("data", None), ("ballots", None),
                      ("ref_logps", None), ("split", None)]:
        assert job_config_json(listed, step, arm) == job_config_json(more, step, arm), (step, arm)
    # a DPO job's slice holds its own init: the same as under the scalar form
    assert job_config_json(listed, "dpo", init="sft") == job_config_json(more, "dpo", init="sft") \
        == job_config_json(default_config, "dpo")
    assert job_config(more, "dpo", init="base")["dpo"]["init"] == "base"
    assert job_config(listed, "data", "copeland")["sc"]["rule"] == ["copeland"]
    assert "sc" not in job_config(listed, "data", "maj")
    assert job_config(listed, "data")["sc"]["rule"] == ["borda"]  # SFT corpus, reference answers: the first rule
    # the scalar form's slices are what they always were
    assert job_config(default_config, "data", "sc")["sc"] == {"rule": "borda", "pairs": "winner_loser"}
    assert job_config(default_config, "dpo")["dpo"]["init"] == "sft"
    with pytest.raises(ConfigError, match="arm 'borda': not an arm"):
        job_config(default_config, "data", "borda")


#: (dotted key, new value, the steps whose slice changes: the jobs a change reruns). Runtime
#: keys (prefsweep.config.RUNTIME_KEYS: how often a job logs, never what it computes) and the
#: judge's client settings rerun nothing; save_steps decides which checkpoints exist: it reruns.
RERUNS = [
    ("dpo.logging_steps", 5, set()),
    ("sft.logging_steps", 5, set()),
    ("pretrain.logging_steps", 5, set()),
    ("eval.judge.parallel", 8, set()),
    ("model.n_params", 1e9, set()),
    ("dpo.beta", 0.2, {"dpo"}),
    ("dpo.save_steps", 4, {"dpo"}),
    ("dpo.learning_rate", 5e-7, {"dpo"}),
    ("dpo.max_length", 128, {"ref_logps", "dpo", "pair_accuracy"}),
    ("sft.learning_rate", 1e-3, {"sft"}),
    ("sft.save_steps", 50, {"sft"}),
    ("pretrain.learning_rate", 1e-3, {"base_model"}),
    ("eval.generation.max_new_tokens", 64, {"answers"}),
    ("eval.judge.temperature", 0.5, {"judge"}),
    ("plots.dpi", 300, {"plots"}),
]


@pytest.mark.parametrize("dotted, value, steps", RERUNS, ids=[r[0] for r in RERUNS])
def test_which_steps_a_key_reruns(default_config, dotted, value, steps):
    from prefsweep.config import job_config_json

    changed = copy.deepcopy(default_config)
    node = changed
    *parents, key = dotted.split(".")
    for part in parents:
        node = node[part]
    assert node[key] != value
    node[key] = value
    touched = {s for s in STEP_KEYS if job_config_json(changed, s) != job_config_json(default_config, s)}
    assert touched == steps


def test_runtime_keys_are_in_no_slice_and_reach_jobs_in_the_environment(default_config):
    import json

    from prefsweep.config import RUNTIME_ENV, RUNTIME_KEYS, runtime_env_value

    assert set(RUNTIME_KEYS) >= {"pretrain.logging_steps", "sft.logging_steps", "dpo.logging_steps"}
    assert "save_steps" not in " ".join(RUNTIME_KEYS)  # decides the checkpoints: part of the result
    for step in STEP_KEYS:
        assert "logging_steps" not in json.dumps(job_config(default_config, step)), step
    changed = copy.deepcopy(default_config)
    changed["dpo"]["logging_steps"] = 5
    assert json.loads(runtime_env_value(changed))["dpo.logging_steps"] == 5
    assert RUNTIME_ENV == "PREFSWEEP_RUNTIME"
