"""The golden tile image packer and the RTL layouts agree bit for bit."""

import numpy as np
import pytest
from amaranth.hdl import Shape
from amaranth.lib import data

from golden import tile_image as ti
from golden.config import preset
from rtl.layouts import Layouts, TileError
from sim.stimulus import random_program

PRESETS = ["tiny", "tiny_mlc", "fpga_small", "default"]


def _item(words):
    return sum(int(w) << (32 * i) for i, w in enumerate(words))


@pytest.mark.parametrize("name", PRESETS)
def test_layout_fields_hold_their_range_in_fewest_bits(name):
    """Every index field of the RTL layouts holds its largest legal value (taken from the
    config, not from the width function that built the layouts), in as few bits as that
    needs; the descriptor is as wide as the image's descriptor item."""
    cfg = preset(name)
    lay = Layouts(cfg)
    d = lay.desc.members
    largest = {"window": (d["window"], cfg.windows - 1),
               "colgroup": (d["colgroup"], cfg.colgroups - 1),
               "outgroup": (d["outgroup"], cfg.tile_outputs // cfg.ou_cols - 1),
               "plane": (d["plane"], cfg.planes - 1), "shift": (d["shift"], cfg.max_shift),
               "row index": (lay.row.members["index"], cfg.tile_inputs - 1),
               "input bit t": (lay.t, cfg.input_bits - 1),
               "lane": (lay.lane, cfg.tile_xbars - 1),
               "cell address": (lay.cell_addr, cfg.windows * cfg.colgroups - 1),
               "step address": (lay.step_addr, cfg.tile_steps - 1),
               "row-list id": (d["rowlist"], cfg.tile_steps - 1),
               "row-list address": (lay.rowlist_addr, cfg.tile_steps - 1),
               "row-list count": (lay.n_rowlists, cfg.tile_steps)}
    for what, (shape, top) in largest.items():
        w = Shape.cast(shape).width
        assert top < 2 ** w, f"{what}: {top} does not fit {w} bits"
        assert w == 1 or top >= 2 ** (w - 1), f"{what}: {w} bits where {top} needs fewer"
    assert lay.desc.size == ti.desc_bits(cfg)
    assert lay.rowlist.size == ti.rowlist_bits(cfg) == cfg.ou_rows * (1 + cfg.input_index_bits)
    assert lay.cell_word.size == cfg.ou_rows * cfg.ou_cols * cfg.cell_bits
    assert {m.name: m.value for m in TileError} == {e.name: e.value for e in ti.TileError}


@pytest.mark.parametrize("name", PRESETS)
def test_image_items_unpack_with_rtl_layouts(name):
    cfg = preset(name)
    lay = Layouts(cfg)
    rng = np.random.default_rng(7)
    p = random_program(cfg, rng, n_steps=3)
    img = ti.build_image(p)
    assert len(img) == ti.frame_words(cfg, p.n_steps, int(ti.lane_rowlists(p)[1].max()))
    cells = ti.cell_items(p, cfg)
    for x in range(p.n_xbars):
        for w in range(cfg.windows):
            for g in range(cfg.colgroups):
                v = data.Const(lay.cell_word, _item(cells[x, w * cfg.colgroups + g]))
                got = [[v[r][c] for c in range(cfg.ou_cols)] for r in range(cfg.ou_rows)]
                assert got == p.cells[x, w, g].tolist(), (x, w, g)
    # row lists: lane-major in the frame, right after the cells; ids renumbered per lane
    rls = ti.rowlist_items(p, cfg)
    off = ti.HEADER_WORDS + cells.size
    assert img[6] == rls.shape[1] and np.array_equal(img[off:off + rls.size], rls.ravel())
    table = {}
    for lane in range(cfg.tile_xbars):
        for j in range(rls.shape[1]):
            v = data.Const(lay.rowlist, _item(rls[lane, j]))
            table[lane, j] = [v[r].index if v[r].en else -1 for r in range(cfg.ou_rows)]
    descs = ti.desc_items(p, cfg)
    assert np.array_equal(img[off + rls.size:-1], descs.ravel())
    a = p.acts
    assert len(set(a["rowlist"].tolist())) < p.n_act, "random_program shared no row list"
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
            assert table[lane, d.rowlist] == p.inputs[i].tolist()
            # activations of one lane share a memory entry exactly when they share an id
            same = np.flatnonzero((a["xbar"] == lane) & (a["rowlist"] == a["rowlist"][i]))
            assert {int(ti.lane_rowlists(p)[0][j]) for j in same} == {d.rowlist}
    assert seen == p.n_act
    # check_image's descriptor reader (golden offsets) sees the fields the RTL layout sees
    mine = ti.frame_descriptors(img, cfg)
    views = [data.Const(lay.desc, _item(d)) for d in descs.reshape(-1, descs.shape[-1])]
    for f, _ in ti.desc_fields(cfg):
        assert mine[f].tolist() == [getattr(v, f) for v in views], f


def test_fits_tile_messages():
    cfg = preset("tiny")
    rng = np.random.default_rng(1)
    p = random_program(cfg, rng)
    with pytest.raises(ti.TileImageError, match="another config"):
        ti.build_image(p, cfg.replace(adc_bits=1))
    big = random_program(cfg, rng, n_xbars=6, k=17, n_steps=cfg.tile_steps + 1)
    with pytest.raises(ti.TileImageError, match="6 crossbars.*K = 17.*17 steps"):
        ti.fits_tile(big)
