"""Board-level designs: :class:`BoardCore` (UART + host link + tile, no pins) and the tops for the
iCEBreaker (iCE40 UP5K) and the ULX3S (ECP5-85F) built on amaranth-boards.

The core is what the whole-board simulation runs; a board top only adds the clock (a PLL on the
ECP5), the reset button and the pins.  Status LEDs: 0 program loaded, 1 tile busy, 2 tile error,
3 host link active (stretched so that a short request is visible).

Each board has a preset that fits its device (:data:`BOARDS`); any other config may be built
too if it fits.
"""


import dataclasses

from amaranth.hdl import Cat, ClockDomain, ClockSignal, Elaboratable, Instance, Module
from amaranth.hdl import ResetInserter, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from golden import frames
from golden.config import SMEConfig, preset

from .hostlink import HostLink
from .skid import SkidBuffer
from .tile import Tile
from .uart import UART, baud_divisor

__all__ = ["BoardCore", "BoardSpec", "BOARDS", "board_top", "ecp5_pll_params"]


class BoardCore(wiring.Component):
    """UART, :class:`~rtl.hostlink.HostLink` and :class:`~rtl.tile.Tile` of one config.

    Members
    -------
    rx : In(1), tx : Out(1)    the serial lines (``divisor`` clocks per bit)
    reset_req : In(1)          synchronous reset of everything (a button)
    leds : Out(4)              loaded, busy, error, link active
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    reset_req: In(1)
    leds: Out(4)

    def __init__(self, cfg: SMEConfig, *, divisor: int, timeout_cycles: int | None = None,
                 max_payload: int = frames.MAX_PAYLOAD, result_depth: int = 256,
                 led_stretch: int = 1 << 20):
        self.cfg = cfg
        self.divisor = divisor
        # Default frame timeout: 64 byte times, so a host pausing for a few bytes is tolerated.
        self.timeout_cycles = timeout_cycles or 64 * 10 * divisor
        self.max_payload = max_payload
        self.result_depth = result_depth
        self.led_stretch = led_stretch
        super().__init__()
        self.uart = UART(divisor)
        self.link = HostLink(cfg, max_payload=max_payload, result_depth=result_depth,
                             timeout_cycles=self.timeout_cycles)
        self.tile = Tile(cfg)

    def elaborate(self, platform):
        m = Module()
        rst = self.reset_req
        uart, link, tile = self.uart, self.link, self.tile
        m.submodules.uart = ResetInserter(rst)(uart)
        m.submodules.link = ResetInserter(rst)(link)
        # The tile's input streams pass through register slices, reset with the tile: its
        # controller decodes ``valid`` and the payload deep into its next-state logic, and the
        # slices keep the link's FSM out of those paths (see rtl/skid.py).
        tile_rst = rst | link.tile_reset
        load_q = SkidBuffer(tile.i_load.payload.shape())
        vec_q = SkidBuffer(tile.i_vec.payload.shape())
        m.submodules.tile = ResetInserter(tile_rst)(tile)
        m.submodules.load_q = ResetInserter(tile_rst)(load_q)
        m.submodules.vec_q = ResetInserter(tile_rst)(vec_q)

        m.d.comb += [uart.rx.eq(self.rx), self.tx.eq(uart.tx)]
        wiring.connect(m, uart.o_stream, link.i_rx)
        wiring.connect(m, link.o_tx, uart.i_stream)
        wiring.connect(m, link.o_load, load_q.i)
        wiring.connect(m, load_q.o, tile.i_load)
        wiring.connect(m, link.o_vec, vec_q.i)
        wiring.connect(m, vec_q.o, tile.i_vec)
        wiring.connect(m, tile.o_vec, link.i_res)
        m.d.comb += link.tile_status.eq(tile.status)

        stretch = Signal(range(self.led_stretch + 1))
        with m.If(link.active):
            m.d.sync += stretch.eq(self.led_stretch)
        with m.Elif(stretch != 0):
            m.d.sync += stretch.eq(stretch - 1)
        m.d.comb += self.leds.eq(Cat(tile.status.loaded, tile.status.busy,
                                     tile.status.error.as_value() != 0,
                                     link.active | (stretch != 0)))
        return m


# ---- PLLs ------------------------------------------------------------------------------------

def ecp5_pll_params(f_in: float, f_out: float) -> dict:
    """EHXPLLL dividers for ``f_out`` from ``f_in`` (the search ``ecppll`` does): VCO 400-800 MHz,
    PFD >= 3.125 MHz, feedback from CLKOP.  Returns the dividers and the exact output freq.
    Raises ``ValueError`` unless a setting is within 0.1 % of ``f_out``: the UART's divisor is
    worked out from the board clock, so a silently different clock would break the baud rate."""
    best = None
    for clki in range(1, 129):
        pfd = f_in / clki
        if pfd < 3.125e6 or pfd > 400e6:
            continue
        for fb in range(1, 81):
            out = pfd * fb
            for op in range(1, 129):
                vco = out * op
                if 400e6 <= vco <= 800e6:
                    err = abs(out - f_out)
                    if best is None or err < best[0]:
                        best = (err, clki, fb, op, out, vco)
    if best is None:
        raise ValueError(f"no ECP5 PLL setting makes {f_out / 1e6:g} MHz from {f_in / 1e6:g} MHz")
    err, clki, fb, op, out, vco = best
    if err > 1e-3 * f_out:
        raise ValueError(f"no ECP5 PLL setting makes {f_out / 1e6:g} MHz from {f_in / 1e6:g} MHz "
                         f"within 0.1 % (closest: {out / 1e6:g} MHz)")
    return {"CLKI_DIV": clki, "CLKFB_DIV": fb, "CLKOP_DIV": op, "CLKOP_CPHASE": op // 2 - 1
            if op > 1 else 0, "freq": out, "vco": vco}


def _ulx3s_clocks(m: Module, platform, freq: float, button_in, clk25) -> None:
    """25 MHz oscillator -> EHXPLLL -> ``sync`` at ``freq``, defined in ``m`` (the top); reset
    until lock and while ``button`` is pressed."""
    p = ecp5_pll_params(25e6, freq)
    clk, lock = Signal(name="pll_clk"), Signal(name="pll_lock")
    m.submodules.pll = Instance(
        "EHXPLLL",
        a_FREQUENCY_PIN_CLKI="25", a_FREQUENCY_PIN_CLKOP=f"{p['freq'] / 1e6:g}",
        a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
        a_MFG_GMCREF_SEL="2",
        p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
        p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
        p_CLKI_DIV=p["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"],
        p_CLKOP_CPHASE=p["CLKOP_CPHASE"], p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
        p_CLKFB_DIV=p["CLKFB_DIV"],
        i_RST=0, i_STDBY=0, i_CLKI=clk25, o_CLKOP=clk, i_CLKFB=clk,
        i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
        i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=lock)
    m.domains.sync = cd_sync = ClockDomain("sync")
    m.d.comb += cd_sync.clk.eq(clk)
    # Hold reset for a while after lock (and while the button is pressed); the counter
    # lives in a reset-less domain on the same clock, or it would reset itself forever.
    m.domains.por = ClockDomain("por", reset_less=True)
    m.d.comb += ClockSignal("por").eq(clk)
    por = Signal(8, init=255)
    button = Signal()
    m.submodules.button_sync = FFSynchronizer(button_in, button, o_domain="por")
    with m.If(~lock | button):
        m.d.por += por.eq(255)
    with m.Elif(por != 0):
        m.d.por += por.eq(por - 1)
    # The domain reset reaches every flip-flop: it comes straight from a register.
    rst = Signal(init=1)
    m.d.por += rst.eq(por != 0)
    m.d.comb += cd_sync.rst.eq(rst)
    # No clock constraint here: nextpnr derives the PLL output's (from FREQUENCY_PIN_CLKOP and
    # the 25 MHz pin constraint); one on a net would be ignored, as yosys renames the net.


@dataclasses.dataclass(frozen=True)
class BoardSpec:
    """A supported board: its platform class, its preset and its ``sync`` clock."""
    name: str
    platform: str           # "module:Class" in amaranth_boards
    preset: str
    clock: float            # Hz
    device: str

    def make_platform(self):
        import importlib
        mod, cls = self.platform.split(":")
        return getattr(importlib.import_module(mod), cls)()


BOARDS: dict[str, BoardSpec] = {
    "icebreaker": BoardSpec("icebreaker", "amaranth_boards.icebreaker:ICEBreakerPlatform",
                            "fpga_ice40", 12e6, "iCE40UP5K-SG48"),
    # 100 MHz from the PLL; the timing history (75.5 MHz up to 109.6-114.1 MHz on seeds 1-3)
    # is in docs/FPGA.md.
    "ulx3s": BoardSpec("ulx3s", "amaranth_boards.ulx3s:ULX3S_85F_Platform", "fpga_small",
                       100e6, "LFE5U-85F-6BG381C"),
}


class _Top(Elaboratable):
    def __init__(self, spec: BoardSpec, cfg: SMEConfig, baud: int):
        self.spec, self.cfg, self.baud = spec, cfg, baud
        self.core = BoardCore(cfg, divisor=baud_divisor(spec.clock, baud),
                              led_stretch=int(spec.clock // 20))

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core

        def buf(name, direction, *resource):
            m.submodules[name] = b = io.Buffer(direction, platform.request(*resource, dir="-"))
            return b

        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.rx.eq(rx.i), tx.o.eq(core.tx)]
        if self.spec.name == "icebreaker":
            # 12 MHz straight from the oscillator: the design's Fmax leaves margin at this
            # clock, and the UART, not the tile, bounds the prototype's throughput.
            button = buf("button", "i", "button", 0)
            m.submodules.button_sync = FFSynchronizer(button.i, core.reset_req)
            green, red = buf("led_g", "o", "led_g", 0), buf("led_r", "o", "led_r", 0)
            m.d.comb += [green.o.eq(core.leds[0] | core.leds[3]), red.o.eq(core.leds[2])]
        else:
            button = buf("button", "i", "button_fire", 0)
            _ulx3s_clocks(m, platform, self.spec.clock, button.i,
                          buf("clk25", "i", "clk25", 0).i)
            for i in range(4):
                m.d.comb += buf(f"led{i}", "o", "led", i).o.eq(core.leds[i])
        return m


def board_top(board: str, cfg: SMEConfig | None = None, baud: int = frames.DEFAULT_BAUD):
    """The top-level elaboratable for ``board`` (its preset unless ``cfg`` is given)."""
    try:
        spec = BOARDS[board]
    except KeyError:
        raise ValueError(f"unknown board {board!r}; known boards: {', '.join(BOARDS)}") from None
    return spec, _Top(spec, cfg or preset(spec.preset), baud)
