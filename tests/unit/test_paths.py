import pytest

from prefsweep.paths import (
    data_matching,
    dpo_model_id,
    final_model_ids,
    parse_model_id,
    series_cells,
    zero_point_id,
)


def test_model_id_round_trip():
    mid = dpo_model_id("sc", "prompt", 2000, 3)
    assert mid == "dpo-sc-prompt-n2000-seed3"
    cell = parse_model_id(mid)
    assert (cell.kind, cell.arm, cell.matching, cell.size, cell.seed, cell.step) == ("dpo", "sc", "prompt", 2000, 3, None)
    ck = parse_model_id(dpo_model_id("maj", "shared", 64, 1, step=20))
    assert (ck.kind, ck.step) == ("checkpoint", 20)
    assert parse_model_id("baseline-pythia-6.9b").baseline == "pythia-6.9b"


@pytest.mark.parametrize("bad", ["dpo-maj", "sft2", "dpo-maj-shared-n1-seedx", "baseline-"])
def test_bad_model_id_is_an_error(bad):
    with pytest.raises(ValueError, match="model id"):
        parse_model_id(bad)


def test_reference_arm_series_are_shared_between_matchings(default_config):
    cells = series_cells(default_config)
    sizes = [s for s in default_config["data"]["sizes"] if s > 0]
    assert data_matching("maj", "prompt", "maj") == data_matching("maj", "size", "maj") == "shared"
    assert [c for c in cells if c[0] == "maj"] == [("maj", "shared", s) for s in sizes]
    assert [c for c in cells if c[0] == "sc"] == [("sc", m, s) for m in ("prompt", "size") for s in sizes]


def test_zero_point_is_the_init_model(default_config):
    assert zero_point_id(default_config) == "sft"
    ids = final_model_ids(default_config)
    assert ids[:2] == ["sft", "base"] and len(ids) == len(set(ids))  # base and SFT, whatever the init
    assert len(ids) == 2 + len(series_cells(default_config)) * len(default_config["dpo"]["seeds"])


def _with(config, **sections):
    import copy

    cfg = copy.deepcopy(config)
    for dotted, value in sections.items():
        section, key = dotted.split("__")
        cfg[section][key] = value
    return cfg


def test_scalar_forms_keep_ids_and_paths(default_config):
    from prefsweep.paths import Layout, arm_names, dpo_cells, dpo_inits

    assert arm_names(default_config) == ["maj", "sc"] and dpo_inits(default_config) == [None]
    cell = dpo_cells(default_config)[0]
    assert cell.model_id == "dpo-maj-shared-n64-seed1"
    assert Layout("x").dpo_model(*cell) == "results/x/train/dpo/maj/shared/n64/seed1/final"
    assert Layout("x").ref_logps("maj") == "results/x/ref_logps/maj.parquet"


def test_list_forms_put_init_and_rule_into_ids_and_paths(default_config):
    from prefsweep.paths import Layout, arm_names, arm_rule, dpo_cells, init_models, model_init

    cfg = _with(default_config, dpo__init=["sft", "base"], sc__rule=["borda", "schulze", "maximal_lottery"])
    assert arm_names(cfg) == ["maj", "borda", "schulze", "maximal_lottery"]
    assert arm_rule(cfg, "schulze") == "schulze" and arm_rule(cfg, "maj") is None
    with pytest.raises(ValueError, match="arm 'sc': not an arm of this config"):
        arm_rule(cfg, "sc")
    cells = dpo_cells(cfg)
    # 2 inits x (maj shared + 3 rules x 2 matchings) x 2 sizes x 2 seeds
    assert len(cells) == 2 * 7 * 2 * 2 and {c.init for c in cells} == {"sft", "base"}
    cell = next(c for c in cells if (c.init, c.arm, c.matching) == ("base", "maximal_lottery", "size"))
    assert cell.model_id == "dpo-base-maximal_lottery-size-n64-seed1"
    assert Layout("x").dpo_model(*cell) == "results/x/train/dpo/base/maximal_lottery/size/n64/seed1/final"
    assert Layout("x").ref_logps("borda", "base") == "results/x/ref_logps/base/borda.parquet"
    parsed = parse_model_id(dpo_model_id("maximal_lottery", "size", 64, 1, step=8, init="base"))
    assert (parsed.kind, parsed.init, parsed.arm, parsed.step) == ("checkpoint", "base", "maximal_lottery", 8)
    assert parsed.run == "dpo/base/maximal_lottery/size/n64/seed1"
    assert init_models(cfg) == ["sft", "base"] and zero_point_id(cfg) == "sft"
    assert model_init(cfg, parsed) == "base" and model_init(default_config, parse_model_id("dpo-sc-size-n4-seed1")) == "sft"
    ids = final_model_ids(cfg)
    assert ids[:2] == ["sft", "base"] and len(ids) == 2 + len(cells)
