import json

import pytest

from golden.config import PRESETS, ConfigError, SMEConfig, preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_valid_and_roundtrip(name):
    cfg = preset(name)
    assert SMEConfig.from_dict(json.loads(cfg.to_json())) == cfg


def test_default_matches_spec():
    cfg = preset("default")
    assert (cfg.weight_bits, cfg.window, cfg.cell_bits, cfg.xbar_rows, cfg.xbar_cols,
            cfg.ou_rows, cfg.ou_cols, cfg.input_bits) == (8, 3, 1, 128, 128, 9, 8, 8)
    assert cfg.effective_adc_bits == 4          # ceil(log2(9*1+1))
    assert cfg.windows == 15 and cfg.colgroups == 16


@pytest.mark.parametrize("changes, field", [
    ({"ou_rows": 200}, "ou_rows"),
    ({"ou_cols": 256}, "ou_cols"),
    ({"ou_cols": 3}, "ou_cols"),             # does not divide 128
    ({"window": 9}, "window"),
    ({"cell_bits": 3}, "cell_bits"),
    ({"weight_bits": 6, "cell_bits": 4}, "cell_bits"),
    ({"adc_bits": 0}, "adc_bits"),
    ({"pattern": "ternary"}, "pattern"),
    ({"input_bits": 0}, "input_bits"),
    ({"xbar_rows": 1.5}, "xbar_rows"),
])
def test_impossible_configs_name_the_field(changes, field):
    with pytest.raises(ConfigError, match=field):
        preset("default").replace(**changes)


def test_error_message_gives_value_and_range():
    with pytest.raises(ConfigError, match=r"ou_rows must be between 1 and xbar_rows \(128\), "
                                          r"not 200"):
        preset("default").replace(ou_rows=200)


def test_unknown_preset_and_field():
    with pytest.raises(ConfigError, match="known presets"):
        preset("huge")
    with pytest.raises(ConfigError, match="unknown config field"):
        SMEConfig.from_dict({"bogus": 1})


def test_accumulator_width_covers_worst_case():
    for cfg in PRESETS.values():
        worst = cfg.tile_inputs * cfg.max_magnitude * cfg.max_input
        assert -worst >= -(1 << (cfg.accumulator_bits - 1))
        assert worst <= (1 << (cfg.accumulator_bits - 1)) - 1
