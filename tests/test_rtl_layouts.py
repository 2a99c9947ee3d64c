"""The golden tile image packer and the RTL layouts agree bit for bit."""

import numpy as np
import pytest
from amaranth.lib import data

from golden import tile_image as ti
from golden.config import preset
from rtl.layouts import Layouts, TileError
from sim.stimulus import random_program

PRESETS = ["tiny", "tiny_mlc", "fpga_small", "default"]


def _item(words):
    return sum(int(w) << (32 * i) for i, w in enumerate(words))


@pytest.mark.parametrize("name", PRESETS)
def test_layout_sizes(name):
    cfg = preset(name)
    lay = Layouts(cfg)
    assert lay.desc.size == ti.desc_bits(cfg)
    assert lay.cell_word.size == ti.cell_bits_per_word(cfg)
    assert [m.value for m in TileError] == [e.value for e in ti.TileError]


@pytest.mark.parametrize("name", PRESETS)
def test_image_items_unpack_with_rtl_layouts(name):
    cfg = preset(name)
    lay = Layouts(cfg)
    rng = np.random.default_rng(7)
    p = random_program(cfg, rng, n_steps=3)
    img = ti.build_image(p)
    assert len(img) == ti.frame_words(cfg, p.n_steps)
    cells = ti.cell_items(p, cfg)
    for x in range(p.n_xbars):
        for w in range(cfg.windows):
            for g in range(cfg.colgroups):
                v = data.Const(lay.cell_word, _item(cells[x, w * cfg.colgroups + g]))
                got = [[v[r][c] for c in range(cfg.ou_cols)] for r in range(cfg.ou_rows)]
                assert got == p.cells[x, w, g].tolist(), (x, w, g)
    descs = ti.desc_items(p, cfg)
    a = p.acts
    seen = 0
    for s in range(p.n_steps):
        for lane in range(cfg.tile_xbars):
            d = data.Const(lay.desc, _item(descs[s, lane]))
            hit = np.flatnonzero((a["step"] == s) & (a["xbar"] == lane))
            if not len(hit):
                assert d.active == 0
                continue
            i, seen = hit[0], seen + 1
            assert d.active == 1
            for f in ("window", "colgroup", "outgroup", "plane", "sign", "shift"):
                assert getattr(d, f) == a[f][i], f
            for r in range(cfg.ou_rows):
                assert d.rows[r].en == (p.inputs[i, r] >= 0)
                if p.inputs[i, r] >= 0:
                    assert d.rows[r].index == p.inputs[i, r]
    assert seen == p.n_act


def test_fits_tile_messages():
    cfg = preset("tiny")
    rng = np.random.default_rng(1)
    p = random_program(cfg, rng)
    with pytest.raises(ti.TileImageError, match="another config"):
        ti.build_image(p, cfg.replace(adc_bits=1))
    big = random_program(cfg, rng, n_xbars=6, k=17, n_steps=cfg.tile_steps + 1)
    with pytest.raises(ti.TileImageError, match="6 crossbars.*K = 17.*17 steps"):
        ti.fits_tile(big)
