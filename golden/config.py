"""The one frozen configuration that drives the golden model, the RTL and the benches.

Everything that sizes the hardware or changes a number lives here, validated once.  The module
is pure Python (no numpy, no Amaranth) so that every part of the project can import it.

A config is written as JSON beside every emitted Verilog file and inside every program file;
:meth:`SMEConfig.from_dict` reads it back and validates it again.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

__all__ = ["ConfigError", "SMEConfig", "PRESETS", "preset", "PATTERNS", "PATTERN_POINTS",
           "DEFAULT_POINT",
           "pattern_point", "check_range"]

PATTERNS = ("window", "max_ones", "uniform", "fragment")


class ConfigError(ValueError):
    """An impossible or unsupported combination of configuration fields."""


def ceil_log2(n: int) -> int:
    """Width of a field that holds 0 .. n-1: ceil(log2 n), at least 1 bit (exact integers, the
    project's one ceil-log2)."""
    return max(1, (int(n) - 1).bit_length())


@dataclasses.dataclass(frozen=True)
class SMEConfig:
    """Parameters of the SME design (SPEC section 2).  Frozen; validated on construction.

    Weight format
        ``weight_bits``: magnitude bits B of a quantized weight (sign kept in separate positive
        and negative crossbar sets).  ``pattern``: ``"window"`` (non-zero magnitude bits within
        ``window`` consecutive positions), ``"max_ones"`` (at most ``max_ones`` one-bits
        anywhere), ``"uniform"`` (every magnitude below 2^B) or ``"fragment"``: the weights of
        one *fragment* (the ``ou_cols`` outputs of one input row inside one output group, the
        unit that segment squeeze packs) share one exponent e and have ``fragment_bits``-bit
        mantissas, |q| = m * 2^e with m < 2^fragment_bits, so a fragment occupies at most
        ``fragment_bits`` bit planes per sign; with ``fragment_sign`` its non-zero weights also
        share one sign (one sign set per fragment).
    Array
        ``cell_bits`` bits per ReRAM cell (1 = SLC, 2 = MLC: a cell holds one base-2^cell_bits
        digit of the magnitude).  ``xbar_rows`` x ``xbar_cols`` cells per crossbar.
        ``ou_rows`` x ``ou_cols``: the operation unit, the wordlines x bitlines read together.
        Wordlines are activated in aligned windows of ``ou_rows`` (``[w*ou_rows, (w+1)*ou_rows)``),
        bitlines in column groups of ``ou_cols``.
    Converters
        ``adc_bits``: ADC resolution; ``None`` picks the smallest lossless value.  Smaller
        values clip, and every clipped sample is counted.  ``input_bits``: unsigned activation
        bits, applied one bit per step (1-bit DAC).
    Tile (RTL)
        ``tile_xbars`` physical crossbars per tile, ``tile_inputs`` / ``tile_outputs`` the longest
        input and output vectors a tile accepts.  ``tile_rowlists``: the depth of each lane's
        *row-list memory* (the lists of wordline input indices that descriptors point to, so
        that activations sharing one list store it once; ``golden/tile_image.py``).  ``None``
        (the default) means :attr:`tile_steps`: a lane holds at most one activation per step
        and an activation uses at most one row list, so every program whose steps fit the
        descriptor memory also fits the row-list memory, exactly as before row lists existed.
        A smaller value trades that guarantee for memory (programs that share row lists need
        fewer); :attr:`effective_tile_rowlists` is the value in force.
    """

    name: str = "custom"
    weight_bits: int = 8
    pattern: str = "window"
    window: int = 3
    max_ones: int = 2
    fragment_bits: int = 3
    fragment_sign: bool = False
    cell_bits: int = 1
    xbar_rows: int = 128
    xbar_cols: int = 128
    ou_rows: int = 9
    ou_cols: int = 8
    adc_bits: int | None = None
    input_bits: int = 8
    tile_xbars: int = 8
    tile_inputs: int = 128
    tile_outputs: int = 128
    tile_rowlists: int | None = None

    def __post_init__(self):
        def need(cond: bool, field: str, value: Any, allowed: str):
            if not cond:
                raise ConfigError(f"{field} must be {allowed}, not {value!r}")

        for field in ("weight_bits", "window", "max_ones", "fragment_bits", "cell_bits",
                      "xbar_rows", "xbar_cols", "ou_rows", "ou_cols", "input_bits", "tile_xbars",
                      "tile_inputs", "tile_outputs"):
            value = getattr(self, field)
            need(isinstance(value, int) and not isinstance(value, bool), field, value,
                 "an integer")
        need(1 <= self.weight_bits <= 16, "weight_bits", self.weight_bits, "between 1 and 16")
        need(self.pattern in PATTERNS, "pattern", self.pattern, f"one of {', '.join(PATTERNS)}")
        need(1 <= self.window <= self.weight_bits, "window", self.window,
             f"between 1 and weight_bits ({self.weight_bits})")
        need(1 <= self.max_ones <= self.weight_bits, "max_ones", self.max_ones,
             f"between 1 and weight_bits ({self.weight_bits})")
        need(1 <= self.fragment_bits <= self.weight_bits, "fragment_bits", self.fragment_bits,
             f"between 1 and weight_bits ({self.weight_bits})")
        need(isinstance(self.fragment_sign, bool), "fragment_sign", self.fragment_sign,
             "true or false")
        need(self.cell_bits in (1, 2, 4), "cell_bits", self.cell_bits, "1, 2 or 4")
        need(self.weight_bits % self.cell_bits == 0, "cell_bits", self.cell_bits,
             f"a divisor of weight_bits ({self.weight_bits})")
        need(1 <= self.xbar_rows <= 4096, "xbar_rows", self.xbar_rows, "between 1 and 4096")
        need(1 <= self.xbar_cols <= 4096, "xbar_cols", self.xbar_cols, "between 1 and 4096")
        need(1 <= self.ou_rows <= self.xbar_rows, "ou_rows", self.ou_rows,
             f"between 1 and xbar_rows ({self.xbar_rows})")
        need(self.ou_rows <= 32, "ou_rows", self.ou_rows, "at most 32")
        need(1 <= self.ou_cols <= self.xbar_cols, "ou_cols", self.ou_cols,
             f"between 1 and xbar_cols ({self.xbar_cols})")
        need(self.xbar_cols % self.ou_cols == 0, "ou_cols", self.ou_cols,
             f"a divisor of xbar_cols ({self.xbar_cols})")
        if self.adc_bits is not None:
            need(isinstance(self.adc_bits, int) and not isinstance(self.adc_bits, bool),
                 "adc_bits", self.adc_bits, "an integer or null")
            need(1 <= self.adc_bits <= 16, "adc_bits", self.adc_bits, "between 1 and 16")
        need(1 <= self.input_bits <= 16, "input_bits", self.input_bits, "between 1 and 16")
        need(1 <= self.tile_xbars <= 256, "tile_xbars", self.tile_xbars, "between 1 and 256")
        need(1 <= self.tile_inputs <= 65536, "tile_inputs", self.tile_inputs,
             "between 1 and 65536")
        need(1 <= self.tile_outputs <= 65536, "tile_outputs", self.tile_outputs,
             "between 1 and 65536")
        need(self.tile_outputs % self.ou_cols == 0, "tile_outputs", self.tile_outputs,
             f"a multiple of ou_cols ({self.ou_cols})")
        if self.tile_rowlists is not None:
            need(isinstance(self.tile_rowlists, int) and not isinstance(self.tile_rowlists, bool),
                 "tile_rowlists", self.tile_rowlists, "an integer or null")
            need(1 <= self.tile_rowlists <= self.tile_steps, "tile_rowlists", self.tile_rowlists,
                 f"between 1 and tile_steps ({self.tile_steps})")

    # ---- derived quantities -------------------------------------------------------------
    @property
    def max_magnitude(self) -> int:
        return (1 << self.weight_bits) - 1

    @property
    def max_input(self) -> int:
        return (1 << self.input_bits) - 1

    @property
    def planes(self) -> int:
        """Number of cell planes (digits of ``cell_bits`` bits) of a magnitude."""
        return self.weight_bits // self.cell_bits

    @property
    def cell_max(self) -> int:
        return (1 << self.cell_bits) - 1

    @property
    def lossless_adc_bits(self) -> int:
        """Smallest ADC resolution that never clips: ceil(log2(ou_rows*cell_max + 1))."""
        return ceil_log2(self.ou_rows * self.cell_max + 1)

    @property
    def effective_adc_bits(self) -> int:
        return self.lossless_adc_bits if self.adc_bits is None else self.adc_bits

    @property
    def adc_max(self) -> int:
        """Largest value the ADC reports; a column sum above it is clipped to it."""
        return (1 << self.effective_adc_bits) - 1

    @property
    def windows(self) -> int:
        """Wordline windows per crossbar: ceil(xbar_rows / ou_rows)."""
        return -(-self.xbar_rows // self.ou_rows)

    @property
    def colgroups(self) -> int:
        """Bitline groups per crossbar: xbar_cols / ou_cols."""
        return self.xbar_cols // self.ou_cols

    @property
    def max_shift(self) -> int:
        """Largest squeeze shift s of a row (a magnitude has at most weight_bits-1 trailing zeros)."""
        return self.weight_bits - 1

    @property
    def splice_shift_max(self) -> int:
        """Largest total shift t + plane*cell_bits + s applied by the splice adders."""
        return (self.input_bits - 1) + (self.planes - 1) * self.cell_bits + self.max_shift

    @property
    def accumulator_bits(self) -> int:
        """Signed accumulator width that no legal tile program and input can overflow.

        |y_j| <= tile_inputs * (2^B - 1) * (2^A - 1): each of at most tile_inputs inputs is
        counted once per weight, with magnitude at most max_magnitude and input at most
        max_input; clipping only lowers sums.  One more bit holds the sign.
        """
        bound = self.tile_inputs * self.max_magnitude * self.max_input
        return bound.bit_length() + 1

    @property
    def input_index_bits(self) -> int:
        return ceil_log2(self.tile_inputs)

    @property
    def tile_steps(self) -> int:
        """Descriptor-memory depth of a tile: xbar_rows * colgroups steps.

        A crossbar activates each (physical row, column group) segment once per input bit, and
        at most once per step, so a compactly scheduled program never needs more steps.
        """
        return self.xbar_rows * self.colgroups

    @property
    def effective_tile_rowlists(self) -> int:
        """Row-list memory depth per lane: ``tile_rowlists``, or :attr:`tile_steps` if None."""
        return self.tile_steps if self.tile_rowlists is None else self.tile_rowlists

    # ---- (de)serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "SMEConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"a config must be a JSON object, not {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        return cls(**d)

    def replace(self, **changes) -> "SMEConfig":
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, SMEConfig] = {
    # Small enough that every test and simulation runs in milliseconds.
    "tiny": SMEConfig(name="tiny", weight_bits=4, window=2, max_ones=2, xbar_rows=8, xbar_cols=8,
                      ou_rows=3, ou_cols=4, input_bits=4, tile_xbars=4, tile_inputs=16,
                      tile_outputs=8),
    # The same, with two-bit (MLC) cells.
    "tiny_mlc": SMEConfig(name="tiny_mlc", weight_bits=4, window=2, max_ones=2, cell_bits=2,
                          xbar_rows=8, xbar_cols=8, ou_rows=3, ou_cols=4, input_bits=4,
                          tile_xbars=4, tile_inputs=16, tile_outputs=8),
    # SPEC section 2 defaults.
    "default": SMEConfig(name="default"),
    # Sized for FPGA prototypes of the peripheral logic (fits an iCE40 UP5K / ECP5).
    "fpga_small": SMEConfig(name="fpga_small", xbar_rows=32, xbar_cols=32, ou_rows=9, ou_cols=8,
                            tile_xbars=4, tile_inputs=32, tile_outputs=16),
    # fpga_small needs about twice the logic cells and block RAMs of the iCE40 UP5K (iCEBreaker):
    # this one fits it (docs/FPGA.md), with the same 8-bit weights and inputs.
    "fpga_ice40": SMEConfig(name="fpga_ice40", xbar_rows=16, xbar_cols=16, ou_rows=3,
                            ou_cols=4, tile_xbars=2, tile_inputs=16, tile_outputs=8),
}


def preset(name: str) -> SMEConfig:
    """Look up a named preset, with a clear error listing the known names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") \
            from None


#: Named bit-pattern settings (config field changes) compared by ``sme report --frontier`` and
#: ``sme digits``: today's per-weight window-3 default first, then no pattern, max-ones-2 and the
#: fragment pattern (shared exponent per packing unit) with k-bit mantissas, two signs or one.
PATTERN_POINTS: dict[str, dict] = {
    "window-3": dict(pattern="window", window=3),
    "uniform": dict(pattern="uniform"),
    "max-ones-2": dict(pattern="max_ones", max_ones=2),
    **{f"fragment-{k}": dict(pattern="fragment", fragment_bits=k, fragment_sign=False)
       for k in (4, 3, 2)},
    **{f"fragment-{k}-sign": dict(pattern="fragment", fragment_bits=k, fragment_sign=True)
       for k in (4, 3, 2, 1)},
}


#: The project's default pattern point and quantizer (``sme report``, ``sme demo``): the
#: fragment-4 pattern with rate-distortion quantization for span packing, lambda 0.1
#: (``<point>-rd<lambda>``, parsed by :func:`sme.frontier.split_label`).  It is the point of
#: the real MobileNet-v2 frontier that meets issue 12's bar (docs/RESULTS.md section 11);
#: ``window-3`` is the per-weight pattern of the earlier default.
DEFAULT_POINT = "fragment-4-rd0.1"


def pattern_point(cfg: SMEConfig, label: str) -> SMEConfig:
    """``cfg`` with the pattern fields of the named :data:`PATTERN_POINTS` entry (a clear error
    naming the known labels otherwise)."""
    try:
        changes = PATTERN_POINTS[label]
    except KeyError:
        raise ConfigError(f"unknown pattern point {label!r}; known: "
                          f"{', '.join(PATTERN_POINTS)}") from None
    return cfg.replace(**changes)


def check_range(name: str, value, lo=None, hi=None, *, lo_open: bool = False):
    """Return ``value`` if ``lo <= value <= hi`` (``lo < value`` with ``lo_open``; NaN is never
    in range), else raise :class:`ConfigError` naming ``name`` and the range.  Command-line
    options and settings use it so that an out-of-range value fails before any work starts
    (``--idle 1.0`` would stall forever)."""
    ok = value == value and (lo is None or value > lo or (value == lo and not lo_open)) \
        and (hi is None or value <= hi)
    if not ok:
        if lo is not None and hi is not None:
            want = f"between {lo} and {hi}" if not lo_open else f"above {lo} and at most {hi}"
        elif lo is not None:
            want = f"{'above' if lo_open else 'at least'} {lo}"
        else:
            want = f"at most {hi}"
        raise ConfigError(f"{name} must be {want}, not {value!r}")
    return value
