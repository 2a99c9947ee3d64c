"""Payload layouts and interface signatures of the SME tile, built from one :class:`SMEConfig`.

Every field width comes from ``golden/tile_image.py`` (the load image format), so the words the
golden packer writes and the views the RTL reads are the same bits; ``tests/test_rtl_layouts.py``
checks that they agree.
"""

from __future__ import annotations

from amaranth.hdl import unsigned, signed
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from golden import tile_image as ti
from golden.config import SMEConfig, ceil_log2

__all__ = ["TileError", "Layouts", "MemWriteSignature"]


class TileError(enum.Enum, shape=3):
    """Error code in the tile status; values equal :class:`golden.tile_image.TileError`."""
    NONE = int(ti.TileError.NONE)
    BAD_FRAME = int(ti.TileError.BAD_FRAME)
    CHECKSUM = int(ti.TileError.CHECKSUM)
    NO_PROGRAM = int(ti.TileError.NO_PROGRAM)
    BAD_CONFIG = int(ti.TileError.BAD_CONFIG)
    TOO_BIG = int(ti.TileError.TOO_BIG)


class Layouts:
    """All layouts of one configuration (attributes, read-only by convention).

    ``row``      one wordline of a row list: ``en``, ``index`` (input index)
    ``rowlist``  a row list as stored in a lane's row-list memory (the image's row-list item):
                 ou_rows x row
    ``desc``     an activation descriptor as stored in the descriptor memory (the image's
                 descriptor item): active, window, colgroup, outgroup, plane, sign, shift,
                 rowlist (the id of its row list in the lane's row-list memory)
    ``tag``      what the splice needs from a descriptor: outgroup, plane, sign, shift
    ``act``      one lane of an issued step: active, window, colgroup, ``bits`` (the input bit
                 of each wordline, 0 where the wordline is off), tag
    ``step``     the scheduler's output payload: t (input bit), last (final step of the
                 vector), lanes (tile_xbars x act)
    ``sample``   one lane of the emulator's output: active, tag, samples (ou_cols x clipped
                 ADC value), clips (ou_cols clip flags)
    ``samples``  the emulator's output payload: t, last, lanes (tile_xbars x sample)
    ``load``     a load-frame word: data (32 bits), last
    ``vin``      an input vector element: data (input_bits), last
    ``vout``     an output vector element: data (signed accumulator_bits), last
    ``status``   busy, loaded, error (:class:`TileError`), clip_count (32 bits, wraps)
    """

    def __init__(self, cfg: SMEConfig):
        self.cfg = cfg
        f = dict(ti.desc_fields(cfg))
        self.row = data.StructLayout({name: unsigned(w) for name, w in ti.row_fields(cfg)})
        self.rowlist = data.ArrayLayout(self.row, cfg.ou_rows)
        self.desc = data.StructLayout({name: unsigned(w) for name, w in ti.desc_fields(cfg)})
        self.tag = data.StructLayout({name: unsigned(f[name])
                                      for name in ("outgroup", "plane", "sign", "shift")})
        self.act = data.StructLayout({
            "active": 1, "window": f["window"], "colgroup": f["colgroup"],
            "bits": cfg.ou_rows, "tag": self.tag})
        self.t = unsigned(ceil_log2(cfg.input_bits))
        self.step = data.StructLayout({
            "t": self.t, "last": 1, "lanes": data.ArrayLayout(self.act, cfg.tile_xbars)})
        self.adc = unsigned(cfg.effective_adc_bits)
        self.sample = data.StructLayout({
            "active": 1, "tag": self.tag, "samples": data.ArrayLayout(self.adc, cfg.ou_cols),
            "clips": cfg.ou_cols})
        self.samples = data.StructLayout({
            "t": self.t, "last": 1, "lanes": data.ArrayLayout(self.sample, cfg.tile_xbars)})
        self.cell_word = data.ArrayLayout(
            data.ArrayLayout(unsigned(cfg.cell_bits), cfg.ou_cols), cfg.ou_rows)
        self.acc = signed(cfg.accumulator_bits)
        self.load = data.StructLayout({"data": 32, "last": 1})
        self.vin = data.StructLayout({"data": cfg.input_bits, "last": 1})
        self.vout = data.StructLayout({"data": self.acc, "last": 1})
        self.status = data.StructLayout({"busy": 1, "loaded": 1, "error": TileError,
                                         "clip_count": 32})
        self.x = data.ArrayLayout(unsigned(cfg.input_bits), cfg.tile_inputs)
        self.accs = data.ArrayLayout(self.acc, cfg.tile_outputs)
        self.lane = unsigned(ceil_log2(cfg.tile_xbars))
        self.cell_addr = unsigned(ceil_log2(cfg.windows * cfg.colgroups))
        self.step_addr = unsigned(ceil_log2(cfg.tile_steps))
        self.n_steps = unsigned((cfg.tile_steps).bit_length())
        self.rowlist_addr = unsigned(f["rowlist"])
        self.n_rowlists = unsigned(cfg.effective_tile_rowlists.bit_length())
        self.k = unsigned(cfg.tile_inputs.bit_length())
        self.n = unsigned(cfg.tile_outputs.bit_length())
        self.delta = unsigned((cfg.tile_xbars * cfg.ou_cols).bit_length())


class MemWriteSignature(wiring.Signature):
    """A write port into per-lane memories, driven by the controller while loading.

    Members (direction seen from the writer): ``lane``, ``addr``, ``data``, ``en`` (one write
    per cycle in which ``en`` is high).
    """

    def __init__(self, lane_shape, addr_shape, data_shape):
        super().__init__({"lane": Out(lane_shape), "addr": Out(addr_shape),
                          "data": Out(data_shape), "en": Out(1)})


def host_members(lay: Layouts) -> dict:
    """The tile's ports toward its host (shared by :class:`~rtl.tile.Tile` and the controller):
    ``i_load`` frame words, ``i_vec`` input elements, ``o_vec`` results, ``status``, ``abort``."""
    return {"i_load": In(stream.Signature(lay.load)), "i_vec": In(stream.Signature(lay.vin)),
            "o_vec": Out(stream.Signature(lay.vout)), "status": Out(lay.status),
            "abort": In(1)}


class TileComponent(wiring.Component):
    """A block of the tile built from one :class:`SMEConfig`: the config and its layouts,
    read-only.  ``members(lay)`` returns the block's signature members."""

    def __init__(self, cfg: SMEConfig, members):
        self._cfg = cfg
        self._lay = Layouts(cfg)
        super().__init__(members(self._lay))

    @property
    def cfg(self) -> SMEConfig:
        return self._cfg

    @property
    def layouts(self) -> Layouts:
        return self._lay
