import json

import numpy as np
import pytest

from golden.compiler import compile_matrix
from golden.config import PRESETS, ConfigError, SMEConfig, ceil_log2, preset
from golden.scheduler import issue_trace
from golden.splice import splice_accumulate, wrap_signed
from golden.xbar import trace_samples


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


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_accumulator_holds_the_extreme_tile_result(name):
    """The largest |y| a tile can produce (every weight +-max_magnitude, possible under the
    uniform pattern, on all tile_inputs rows; every input at its maximum), evaluated through the
    splice model whose accumulators wrap at accumulator_bits, comes out exact; one bit fewer
    would wrap it (the width is tight)."""
    cfg = preset(name).replace(pattern="uniform")
    k, n = cfg.tile_inputs, cfg.ou_cols
    x = np.full(k, cfg.max_input)
    for sign in (1, -1):
        q = np.full((k, n), sign * cfg.max_magnitude)
        p = compile_matrix(q, cfg, squeeze="row")
        acc, clips = splice_accumulate(cfg, trace_samples(p, issue_trace(p, x)))
        assert clips == 0 and acc[:n] == (x @ q).tolist()
    top = int(k * cfg.max_magnitude * cfg.max_input)
    assert wrap_signed(top, cfg.accumulator_bits - 1) != top


def test_ceil_log2():
    assert [ceil_log2(n) for n in (0, 1, 2, 3, 4, 5, 8, 9, 2**40, 2**40 + 1)] == \
        [1, 1, 1, 2, 2, 3, 3, 4, 40, 41]
