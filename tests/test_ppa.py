"""golden.ppa: technology files, event counts against direct counts, energy/area/latency,
ISAAC's peak efficiency, and the ``sme ppa`` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden import ppa
from golden.baselines import baseline_stats
from golden.compiler import compile_blocks
from golden.config import preset
from sim.stimulus import random_q
from tests.strategies import configs, layers


def _clog2(n: int) -> int:
    return max(1, math.ceil(math.log2(n))) if n > 1 else 1


# ---- technology files ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ppa.TECHS)
def test_shipped_technologies_load_and_cite_every_value(name):
    tech = ppa.load_tech(name)
    assert set(tech.components) == set(ppa.COMPONENTS)
    for key, src in tech.sources.items():
        assert len(src) > 20, key
    text = tech.describe()
    assert "source:" in text and "xbar_read_ns" in text


def _raw():
    return json.loads((ppa.TECH_DIR / "isaac32.json").read_text())


def _mut(path, value):
    """Set (or with value=KeyError delete) the field at a dotted path of a raw tech dict."""
    d = _raw()
    keys = path.split(".")
    node = d
    for k in keys[:-1]:
        node = node[k]
    if value is KeyError:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return d


BAD = [
    ("components.adc", KeyError, "components.adc is missing"),
    ("components.dac.energy_pj", KeyError, "components.dac.energy_pj is missing"),
    ("components.dac.source", KeyError, "components.dac.source is missing"),
    ("components.xbar.area_um2", -25.0, "components.xbar.area_um2 must be non-negative, not -25.0"),
    ("components.shift_add.energy_pj", "0.021", "must be a number, not '0.021'"),
    ("components.shift_add.energy_pj", True, "must be a number, not True"),
    ("components.adc.by_bits.4.energy_pj", None, "components.adc.by_bits.4.energy_pj must be a"),
    ("components.xbar.rows", 0, "components.xbar.rows must be positive, not 0"),
    ("components.flux_capacitor", {"energy_pj": 1, "area_um2": 1, "unit": "x", "source": "y"},
     "unknown component components.flux_capacitor"),
    ("components.dac.colour", "red", "unknown field components.dac.colour = 'red'"),
    ("timing.xbar_read_ns.value", -100, "timing.xbar_read_ns.value must be positive, not -100"),
    ("organization.adc_per_xbar", KeyError, "organization.adc_per_xbar is missing"),
    ("components.edram.source", "", "components.edram.source must be a non-empty string"),
]


@pytest.mark.parametrize("path,value,message", BAD)
def test_bad_technology_file_names_file_field_and_value(tmp_path, path, value, message):
    f = tmp_path / "bad_tech.json"
    f.write_text(json.dumps(_mut(path, value)))
    with pytest.raises(ppa.TechError) as e:
        ppa.load_tech(f)
    assert str(f) in str(e.value) and message in str(e.value)


def test_unreadable_and_malformed_technology_files(tmp_path):
    with pytest.raises(ppa.TechError, match="cannot read"):
        ppa.load_tech(tmp_path / "nope.json")
    f = tmp_path / "t.json"
    f.write_text("{ not json")
    with pytest.raises(ppa.TechError, match="not valid JSON"):
        ppa.load_tech(f)


def test_adc_resolution_missing_from_the_file():
    tech = ppa.load_tech("isaac32")
    assert tech.adc(3) == tech.adc(4) == (0.79, 361.04)      # priced as the next one up
    with pytest.raises(ppa.TechError, match="no entry for 11-bit ADCs or more"):
        tech.adc(11)


# ---- event counts against direct counts ----------------------------------------------------

def direct_program_events(p):
    """Walk the schedule the way golden.vmm.run executes it: every input bit, every activation;
    count what the hardware touches."""
    cfg = p.cfg
    K, N = p.shape
    squeeze, reorder = p.options["squeeze"], p.options["reorder"]
    if squeeze == "row":
        per_row = _clog2(cfg.weight_bits) + 1 + (_clog2(K) if reorder else 0)
        per_block = 0
    else:
        per_row = _clog2(K)
        per_block = _clog2(-(-N // cfg.ou_cols)) + _clog2(cfg.planes) + 1
    desc = 1 + _clog2(cfg.windows) + _clog2(cfg.colgroups)
    c = dict.fromkeys(ppa.EVENT_KEYS, 0)
    for _t in range(cfg.input_bits):
        for a in range(p.n_act):
            og = int(p.acts["outgroup"][a])
            on = [r for r in range(cfg.ou_rows) if p.inputs[a, r] >= 0]
            read = [j for j in range(cfg.ou_cols) if og * cfg.ou_cols + j < N]
            c["wordline_drives"] += len(on)
            c["input_register_bits"] += len(on)
            c["cell_reads"] += len(on) * len(read)
            c["adc_conversions"] += len(read)
            c["sample_holds"] += len(read)
            c["shift_adds"] += len(read)
            c["index_bits_read"] += len(on) * per_row + per_block
            c["descriptor_bits_read"] += desc
    c["buffer_bits"] = (K + N) * cfg.input_bits
    c["output_values"] = N
    return c


@settings(max_examples=40, deadline=None)
@given(data=st.data(), squeeze=st.sampled_from(["row", "segment", "span"]),
       reorder=st.booleans())
def test_program_events_equal_direct_counts(data, squeeze, reorder):
    cfg = data.draw(configs())
    blocks, shape = data.draw(layers(cfg))
    p = compile_blocks(blocks, shape, cfg, squeeze=squeeze, reorder=reorder)
    assert ppa.program_events(p) == direct_program_events(p)


def test_segment_squeeze_index_reads_are_priced():
    """The index of segment squeeze is read on every activation; forgetting it must show."""
    cfg = preset("default")
    q = random_q(np.random.default_rng(3), (300, 40), cfg, 0.6)
    p = compile_blocks(q, None, cfg, squeeze="segment")
    ev = ppa.program_events(p)
    assert ev["index_bits_read"] == direct_program_events(p)["index_bits_read"] > 0
    res = ppa.evaluate(p, cfg, ppa.load_tech("isaac32"))
    assert res["energy_pj"]["index"] == pytest.approx(ev["index_bits_read"] * 0.0798828125)
    assert res["area_um2"]["index"] == pytest.approx(p.stats["index_bits"] * 0.158309937)


def _digit_matrix(q, cfg, sign):
    """ISAAC layout of one sign set, built directly: (K, N * planes) digits, weight-major."""
    mag = np.where(np.sign(q) == sign, np.abs(q), 0)
    cols = [(mag >> (p * cfg.cell_bits)) & cfg.cell_max for p in range(cfg.planes)]
    return np.stack(cols, axis=2).reshape(q.shape[0], -1)


def direct_dense_events(q, cfg, planes: bool):
    K, N = q.shape
    width = N if planes else N * cfg.planes
    sets = 2 * cfg.planes if planes else 2
    R, C, ru, cu = cfg.xbar_rows, cfg.xbar_cols, cfg.ou_rows, cfg.ou_cols
    c = dict.fromkeys(ppa.EVENT_KEYS, 0)
    for r0 in range(0, K, R):
        for c0 in range(0, width, C):
            r, w = min(R, K - r0), min(C, width - c0)
            for i in range(-(-r // ru)):
                for g in range(-(-w // cu)):
                    rows, cols = min(ru, r - i * ru), min(cu, w - g * cu)
                    c["cell_reads"] += rows * cols
                    c["wordline_drives"] += rows
                    c["adc_conversions"] += cols
    for k in ("cell_reads", "wordline_drives", "adc_conversions"):
        c[k] *= cfg.input_bits * sets
    c["sample_holds"] = c["shift_adds"] = c["adc_conversions"]
    c["input_register_bits"] = c["wordline_drives"]
    c["buffer_bits"], c["output_values"] = (K + N) * cfg.input_bits, N
    return c


def direct_sre_events(q, cfg):
    K, N = q.shape
    R, ru, cu = cfg.xbar_rows, cfg.ou_rows, cfg.ou_cols
    c = dict.fromkeys(ppa.EVENT_KEYS, 0)
    for sign in (1, -1):
        d = _digit_matrix(q, cfg, sign)
        for r0 in range(0, K, R):
            for g0 in range(0, d.shape[1], cu):
                grp = d[r0:r0 + R, g0:g0 + cu]
                n = int(np.count_nonzero(grp.any(axis=1)))
                c["cell_reads"] += n * grp.shape[1]
                c["wordline_drives"] += n
                c["adc_conversions"] += -(-n // ru) * grp.shape[1]
                c["index_bits_read"] += n * _clog2(R)
    for k in ("cell_reads", "wordline_drives", "adc_conversions", "index_bits_read"):
        c[k] *= cfg.input_bits
    c["sample_holds"] = c["shift_adds"] = c["adc_conversions"]
    c["input_register_bits"] = c["wordline_drives"]
    c["buffer_bits"], c["output_values"] = (K + N) * cfg.input_bits, N
    return c


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_baseline_events_equal_direct_counts(data):
    cfg = data.draw(configs())
    k, n = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 20))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    q = random_q(rng, (k, n), cfg, data.draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])))
    base = baseline_stats(q, None, cfg)
    assert base["isaac"]["events"] == direct_dense_events(q, cfg, planes=False)
    assert base["planes"]["events"] == direct_dense_events(q, cfg, planes=True)
    assert base["sre"]["events"] == direct_sre_events(q, cfg)


# ---- energy, area, latency -------------------------------------------------------------------

def test_evaluate_prices_every_event_and_scales_with_pixels():
    cfg = preset("default")
    tech = ppa.load_tech("isaac32")
    q = random_q(np.random.default_rng(1), (200, 30), cfg, 0.8)
    p = compile_blocks(q, None, cfg, squeeze="row")
    one = ppa.evaluate(p, cfg, tech, pixels=1)
    many = ppa.evaluate(p, cfg, tech, pixels=49)
    assert many["energy_pj_total"] == pytest.approx(49 * one["energy_pj_total"])
    assert many["area_um2_total"] == one["area_um2_total"]
    assert one["latency_s_vector"] == pytest.approx(p.cycles_per_vector() * 100e-9)
    assert many["latency_s_image"] == pytest.approx(49 * one["latency_s_vector"])
    ev = ppa.program_events(p)
    e_adc = tech.components["adc"]["by_bits"][str(cfg.effective_adc_bits)]["energy_pj"]
    assert one["energy_pj"]["adc"] == pytest.approx(ev["adc_conversions"] * e_adc)
    assert one["energy_pj"]["xbar"] == pytest.approx(ev["cell_reads"] * 30.0 / 16384)
    assert all(v >= 0 for v in one["energy_pj"].values())
    # area: every crossbar brings its converters; the periphery comes from the yosys counts
    assert one["area_um2"]["xbar"] == pytest.approx(p.n_xbars * 25.0)
    assert one["area_um2"]["adc"] == pytest.approx(p.n_xbars * 361.04)


def test_periphery_counts_come_from_the_yosys_file():
    data = ppa.load_periphery(preset("default"))
    assert data is not None and "rtl.synth_area" in data["command"]
    gates, ffs = ppa.periphery_counts(data)
    assert gates > 1000 and ffs > 100
    assert ppa.load_periphery(preset("default").replace(xbar_rows=64)) is None
    cfg = preset("default")
    area = ppa.area_um2(16, 0, 0, cfg, ppa.load_tech("isaac32"), data)
    assert area["digital_periphery"] == pytest.approx(2 * (gates * 1.112 + ffs * 3.8272))


def test_network_latency_definitions():
    cyc, pix = [10, 40, 5], [4, 1, 8]
    lat = ppa.network_latency(cyc, pix, 1e-7, sizes=[2, 3, 1], budget=9)
    assert lat["sequential_s"] == pytest.approx((40 + 40 + 40) * 1e-7)
    # spare 3: layer 0 (time 40, size 2) gets one replica, then none fits the remaining 1
    # except layer 2 (size 1): times 20, 40, 20 after replicas [2, 1, 2]
    assert lat["replicas"] == [2, 1, 2]
    assert lat["period_s"] == pytest.approx(40e-7)
    assert lat["pipelined_latency_s"] == pytest.approx(80e-7)
    over = ppa.network_latency(cyc, pix, 1e-7, sizes=[5, 5, 5], budget=9)
    assert over["over_budget"] and over["period_s"] is None


# ---- ISAAC's published peak efficiency ---------------------------------------------------------

def test_isaac_peak_rate_and_power_match_the_paper_and_the_gaps_are_the_documented_ones():
    """docs/PPA.md section 3 explains CE and PE line by line; this test pins those lines."""
    r = ppa.isaac_peak(ppa.load_tech("isaac32"))
    pub = ppa.ISAAC_PUBLISHED
    # the peak op rate: the published CE times the published chip area, within 1 %
    assert r["ops_per_s"] == pytest.approx(pub["ce_gops_per_mm2"] * 1e9 * pub["chip_area_mm2"],
                                           rel=0.01)
    # power: the file's components at peak; the chip links are priced per transfer only, so
    # their power is not in the roll-up: 57.1 W against the chip's 65.8 W
    assert r["power_w_total"] == pytest.approx(57.09, rel=0.01)
    assert "chip_link" not in r["power_w"] and r["area_mm2"]["chip_link"] == 23.0
    # area: without PUMA's input/output registers (per-crossbar register files, far larger
    # than ISAAC's shared IMA registers) the file's components give 79.0 mm^2
    regs = r["area_mm2"]["input_register"] + r["area_mm2"]["output_register"]
    assert r["area_mm2_total"] - regs == pytest.approx(79.03, rel=0.01)
    assert r["ce_gops_per_mm2"] == pytest.approx(396.3, rel=0.01)
    assert r["pe_gops_per_w"] == pytest.approx(723.2, rel=0.01)


# ---- command line ------------------------------------------------------------------------------

def test_cli_ppa_prints_constants_and_sources(capsys):
    from sme.cli import main
    assert main(["ppa", "--tech", "isaac32"]) == 0
    out = capsys.readouterr().out
    assert "isaac.py IsaacADC" in out and "0.79 pJ" in out


def test_cli_ppa_bad_file_exit_2_one_line(tmp_path, capsys):
    from sme.cli import main
    f = tmp_path / "t.json"
    f.write_text(json.dumps(_mut("components.adc.by_bits.8.area_um2", -1)))
    assert main(["ppa", "--tech", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "components.adc.by_bits.8.area_um2" in err[0] and "-1" in err[0]



# ---- whole networks (sme.ppa) --------------------------------------------------------------------

def _small_network():
    from golden.baselines import baseline_stats
    cfg = preset("default")
    rng = np.random.default_rng(7)
    layers = []
    for i, (k, n, pix) in enumerate([(150, 40, 64), (360, 64, 16), (576, 10, 1)]):
        q = random_q(rng, (k, n), cfg, 0.7)
        stats = {m: ppa.layer_stats(compile_blocks(q, None, cfg, squeeze=m))
                 for m in ("row", "segment", "span")}
        stats.update(baseline_stats(q, None, cfg))
        layers.append({"name": f"l{i}", "pixels": pix, "stats": stats})
    return cfg, layers


def test_network_ppa_totals_speedups_and_outputs():
    from sme import ppa as sppa
    cfg, layers = _small_network()
    tech = ppa.load_tech("isaac32")
    net = sppa.network_ppa(layers, cfg, tech, ppa.load_periphery(cfg))
    isaac = net["schemes"]["isaac"]
    # sequential latency: sum over layers of cycles x pixels x 100 ns
    cyc = [L["stats"]["isaac"]["cycles"] * L["pixels"] for L in layers]
    assert isaac["latency_sequential_ms"] == pytest.approx(sum(cyc) * 1e-4)
    for s, v in net["schemes"].items():
        assert v["energy_uj"] == pytest.approx(sum(v["energy_by_component_uj"].values()))
        assert v["area_mm2"] == pytest.approx(sum(v["area_by_component_mm2"].values()))
        assert net["speedup"]["sequential"][s] == pytest.approx(
            isaac["latency_sequential_ms"] / v["latency_sequential_ms"])
    assert net["speedup"]["sequential"]["isaac"] == 1.0
    assert net["schemes"]["isaac"]["index_share"]["energy"] == 0.0
    assert net["schemes"]["segment"]["index_share"]["area"] > 0.0
    # ISAAC itself has no spare area: its pipeline period is its slowest layer
    assert isaac["pipelined_area"]["period_ms"] == pytest.approx(max(cyc) * 1e-4)
    rows = sppa.ppa_csv(net).decode().splitlines()
    assert len(rows) == 1 + 3 * len(sppa.PPA_SCHEMES) and "energy_uj_adc" in rows[0]
    assert "legacy_replication" in sppa.format_ppa(net)
    assert sppa.ppa_plot(net, "small")[:4] == b"\x89PNG"


def test_network_ppa_budgets_let_every_design_replicate():
    from sme import ppa as sppa
    cfg, layers = _small_network()
    tech = ppa.load_tech("isaac32")
    base = sppa.network_ppa(layers, cfg, tech)
    isaac_area = base["schemes"]["isaac"]["area_mm2"]
    big = sppa.network_ppa(layers, cfg, tech, area_budget_mm2=3 * isaac_area,
                           crossbar_budget=3 * base["schemes"]["isaac"]["crossbars"])
    assert big["budgets"]["area_mm2"] == pytest.approx(3 * isaac_area)
    for d in ("pipelined_area", "pipelined_crossbars"):
        isaac = big["schemes"]["isaac"][d]
        assert not isaac["over_budget"] and max(isaac["replicas"]) > 1
        assert isaac["period_ms"] < base["schemes"]["isaac"][d]["period_ms"]
    # the legacy rule keeps ISAAC's own crossbar count whatever the budgets
    assert big["speedup"]["legacy_replication"] == base["speedup"]["legacy_replication"]
    assert "pipeline budgets" in sppa.format_ppa(big)


def test_cli_isaac_peak(capsys):
    from sme.cli import main
    assert main(["ppa", "--isaac-peak"]) == 0
    out = capsys.readouterr().out
    assert "published 479.0" in out and "CE 396.3" in out


def test_cli_ppa_program(tmp_path, capsys):
    from golden.program import save
    from sme.cli import main
    cfg = preset("default")
    p = compile_blocks(random_q(np.random.default_rng(2), (100, 20), cfg, 0.5), None, cfg,
                       squeeze="segment")
    path = tmp_path / "p.smeprog"
    save(p, path)
    assert main(["ppa", "--program", str(path), "--pixels", "4", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    want = ppa.evaluate(p, cfg, ppa.load_tech("isaac32"), pixels=4,
                        periphery=ppa.load_periphery(cfg))
    assert res["energy_pj_total"] == pytest.approx(want["energy_pj_total"])
    assert res["area_um2"]["digital_periphery"] > 0
    assert main(["ppa", "--program", str(path)]) == 0
    assert "energy per image" in capsys.readouterr().out
