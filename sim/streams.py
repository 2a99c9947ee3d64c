"""cocotb stream driver and sink for Amaranth ``lib.stream`` ports in emitted Verilog.

An Amaranth stream member ``name`` becomes three Verilog ports: ``name__valid``, ``name__ready``
and ``name__payload`` (the payload flattened to bits).  Payloads are packed and unpacked with the
same ``data.Layout`` objects the RTL uses (``rtl/layouts.py``), never by slicing bits by hand:
:func:`pack` turns a dict / list / int into the layout's bits, :func:`unpack` turns bits back into
a ``data.Const`` view whose fields read like the RTL's.

Stream rules followed here (``amaranth.lib.stream``): a transfer happens on a rising clock edge
where both ``valid`` and ``ready`` are high; the driver raises ``valid`` without looking at
``ready`` and holds the payload until the transfer; the sink may drop ``ready`` at any time.

Idle and backpressure come from one :class:`Pattern` type: ``none`` (always go), ``periodic``
(``busy`` cycles out of every ``period``) or ``random`` (stall with probability ``p``, seeded).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cocotb
from cocotb.triggers import FallingEdge, First, RisingEdge

__all__ = ["Pattern", "PATTERNS", "pack", "unpack", "high", "StreamDriver", "StreamSink", "Monitor"]


# ---- payload packing ---------------------------------------------------------------------------

_PACKED: dict = {}


def _freeze(value):
    if isinstance(value, dict):
        return tuple((k, _freeze(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return int(value)


def pack(layout, value) -> int:
    """Bits of ``value`` (a dict/list for ``layout.const``, or an int taken as raw bits).

    Results are memoized per (layout, value): ``layout.const`` costs ~0.1 ms, and benches
    send the same load frames and vectors many times."""
    mask = (1 << layout.size) - 1
    if isinstance(value, int):
        return value & mask
    key = (id(layout), _freeze(value))
    bits = _PACKED.get(key)
    if bits is None:
        if len(_PACKED) > 200_000:
            _PACKED.clear()
        bits = _PACKED[key] = layout.const(value).as_value().value & mask
        _LAYOUTS[id(layout)] = layout             # keep the layout alive: ids stay unique
    return bits


_LAYOUTS: dict = {}


def unpack(layout, bits: int):
    """A ``data.Const`` view of ``bits`` (an int or a cocotb value) through ``layout``."""
    if hasattr(bits, "to_unsigned"):
        bits = bits.to_unsigned()
    return layout.from_bits(int(bits) & ((1 << layout.size) - 1))


# ---- idle / backpressure patterns --------------------------------------------------------------

@dataclass
class Pattern:
    """When a driver idles or a sink stalls, cycle by cycle.

    ``kind``: ``none`` | ``periodic`` | ``random``; ``period``/``busy``: with ``periodic``, the
    first ``busy`` cycles of every ``period`` stall; ``p``: stall probability with ``random``.
    """

    kind: str = "none"
    period: int = 4
    busy: int = 1
    p: float = 0.3
    seed: int = 0

    def __post_init__(self):
        if self.kind not in PATTERNS:
            raise ValueError(f"pattern must be one of {', '.join(PATTERNS)}, not {self.kind!r}")
        self._rng = random.Random(self.seed)
        self._n = 0

    @classmethod
    def parse(cls, kind: str, seed: int = 0) -> "Pattern":
        return cls(kind=kind, seed=seed)

    def stall(self) -> bool:
        """True if this cycle is a stall (called once per clock cycle)."""
        n, self._n = self._n, self._n + 1
        if self.kind == "periodic":
            return n % self.period < self.busy
        if self.kind == "random":
            return self._rng.random() < self.p
        return False


PATTERNS = ("none", "periodic", "random")


# ---- driver, sink, monitor ---------------------------------------------------------------------

def high(signal) -> bool:
    """A 1-bit signal is 1 (X or Z, e.g. before the first reset, reads as 0)."""
    return str(signal.value) == "1"


def _port(dut, name, member):
    return getattr(dut, f"{name}__{member}")


class StreamDriver:
    """Drives a stream input of the DUT: ``send(items)`` transfers every item in order.

    ``idle`` is the :class:`Pattern` of cycles in which ``valid`` stays low before an item.
    """

    def __init__(self, dut, name: str, layout, clk, idle: Pattern | None = None):
        self.valid = _port(dut, name, "valid")
        self.ready = _port(dut, name, "ready")
        self.payload = _port(dut, name, "payload")
        self.layout, self.clk = layout, clk
        self.idle = idle or Pattern()
        self.sent = 0
        self.valid.value = 0

    async def send(self, items) -> None:
        for item in items:
            while self.idle.stall():
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.payload.value = pack(self.layout, item)
            self.valid.value = 1
            await RisingEdge(self.clk)
            while not high(self.ready):
                await RisingEdge(self.clk)
            self.sent += 1
        self.valid.value = 0

    def stop(self) -> None:
        """Drop ``valid`` (after the coroutine running :meth:`send` was cancelled)."""
        self.valid.value = 0


class StreamSink:
    """Consumes a stream output of the DUT with ``backpressure`` (a :class:`Pattern` of cycles
    with ``ready`` low).  Received payloads (unpacked) go to :attr:`items`, with the cycle of
    the transfer (as counted by ``cycle()``) in :attr:`cycles`."""

    def __init__(self, dut, name: str, layout, clk, backpressure: Pattern | None = None,
                 cycle=None):
        self.valid = _port(dut, name, "valid")
        self.ready = _port(dut, name, "ready")
        self.payload = _port(dut, name, "payload")
        self.layout, self.clk = layout, clk
        self.backpressure = backpressure or Pattern()
        self.cycle = cycle or (lambda: 0)
        self.items, self.cycles = [], []
        self._task = None
        self.ready.value = 0

    def start(self) -> "StreamSink":
        self._task = cocotb.start_soon(self._run())
        return self

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.ready.value = 0

    async def _run(self):
        while True:
            if not high(self.valid):
                # Nothing to take: sleep until valid rises (right after a clock edge) instead
                # of waking every cycle; ``ready`` keeps the value the pattern gave it.
                await RisingEdge(self.valid)
            ready = 0 if self.backpressure.stall() else 1
            self.ready.value = ready
            await RisingEdge(self.clk)
            if ready and high(self.valid):
                self.items.append(unpack(self.layout, self.payload.value))
                self.cycles.append(self.cycle())

    async def take(self, count: int, timeout: int = 100_000):
        """Wait until ``count`` items are in :attr:`items`; pop and return them."""
        for _ in range(timeout):
            if len(self.items) >= count:
                out, self.items = self.items[:count], self.items[count:]
                self.cycles = self.cycles[count:]
                return out
            await RisingEdge(self.clk)
        raise TimeoutError(f"only {len(self.items)} of {count} items after {timeout} cycles")


class Monitor:
    """Watches a stream without driving it: records the cycle of every transfer (for example
    the scheduler's issue handshakes inside the tile)."""

    def __init__(self, valid, ready, clk, cycle):
        self.valid, self.ready, self.clk, self.cycle = valid, ready, clk, cycle
        self.transfers: list[int] = []
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            if not high(self.valid):
                await RisingEdge(self.valid)
            if high(self.ready):
                # valid and ready both high: transfers on every edge until one of them falls
                # (event driven, so a long burst costs two wake-ups, not one per cycle).
                first = self.cycle() + 1
                await First(FallingEdge(self.valid), FallingEdge(self.ready))
                last = self.cycle()          # the edge that closed the last transfer cycle
                self.transfers.extend(range(first, last + 1))
            else:
                await RisingEdge(self.clk)
                if high(self.valid) and high(self.ready):
                    self.transfers.append(self.cycle())

    def stop(self):
        self._task.cancel()
