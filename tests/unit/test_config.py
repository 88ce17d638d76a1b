import copy

import pytest
from snakemake.exceptions import WorkflowError

from prefsweep.config import STEP_KEYS, ConfigError, check_config, coerce_cli_strings, job_config
from tests.conftest import REPO, load_config


def test_both_shipped_configs_validate_and_pass_checks(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")  # the paper config's LLM judge
    check_config(load_config())
    check_config(load_config("config/pythia-2.8b-shp.yaml"))


@pytest.mark.parametrize("source", ["multipref", "helpsteer2", "ultrafeedback", "prism", "hh"])
def test_dataset_source_configs_validate_and_name_their_hub_dataset(source):
    cfg = load_config(f"config/pythia-2.8b-{source}.yaml")
    check_config(cfg)
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
        check_config(cfg)


def test_cli_strings_get_schema_types():
    import yaml

    schema = yaml.safe_load(open("workflow/schemas/config.schema.yaml"))
    # what Snakemake's YAML base loader makes of --config 'dpo={beta: 0.2, seeds: [1, 2], bf16: true}'
    cfg = {"experiment": "x", "dpo": {"beta": "0.2", "seeds": ["1", "2"], "bf16": "true", "loss_type": "sigmoid"},
           "sc": {"rule": "borda"}, "model": {"name_or_path": "null"}}
    coerce_cli_strings(cfg, schema)
    assert cfg["dpo"] == {"beta": 0.2, "seeds": [1, 2], "bf16": True, "loss_type": "sigmoid"}
    assert cfg["experiment"] == "x" and cfg["sc"]["rule"] == "borda" and cfg["model"]["name_or_path"] is None


@pytest.mark.parametrize("path", sorted(p.name for p in (REPO / "config").glob("pythia-*.yaml")))
def test_paper_configs_train_with_the_dpo_papers_loss(path):
    """Every config merges over config/config.yaml, whose DPO adds the chosen responses' NLL for
    the tiny model; a paper-scale config must not inherit it silently."""
    from prefsweep.config import load_config as load

    dpo = load(REPO / "config" / path, check=False)["dpo"]
    assert (dpo["loss_type"], dpo["loss_weights"]) == ("sigmoid", None)
