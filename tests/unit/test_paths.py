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
    assert ids[0] == "sft" and len(ids) == len(set(ids))
    assert len(ids) == 1 + len(series_cells(default_config)) * len(default_config["dpo"]["seeds"])
