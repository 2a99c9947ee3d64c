"""Support for the cocotb bench modules (runs inside the simulator).

The config comes from the JSON sidecar written beside the Verilog (``SME_SIDECAR``), so the bench
always checks the design it simulates; layouts come from ``rtl/layouts.py`` built from that
config.  ``SME_SEED`` seeds all stimulus; every assertion message starts with the seed.
"""

from __future__ import annotations

import json
import os

import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, RisingEdge

from golden.config import SMEConfig
from rtl.layouts import Layouts

from .streams import Pattern, StreamDriver, StreamSink, high, pack, unpack

__all__ = ["CLOCK_NS", "Bench", "CocotbIO", "env_int", "env_str"]

CLOCK_NS = 10


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


class Bench:
    """Clock, reset, config, layouts, seeded RNG and pattern factory of one cocotb test."""

    def __init__(self, dut, salt: int = 0):
        self.dut = dut
        with open(os.environ["SME_SIDECAR"]) as f:
            self.sidecar = json.load(f)
        self.cfg = SMEConfig.from_dict(self.sidecar["config"])
        self.lay = Layouts(self.cfg)
        self.seed = env_int("SME_SEED", 0)
        self.rng = np.random.default_rng([self.seed, salt])
        self.clk = dut.clk
        Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()

    def check_ports(self, layouts: dict) -> None:
        """Fail early if the Verilog's payload ports are not as wide as this bench's layouts
        (the RTL or config changed between emission and this run)."""
        ports = {p["name"]: p["width"] for p in self.sidecar["ports"]}
        for name, layout in layouts.items():
            width = len(getattr(self.dut, name))
            assert width == layout.size == ports[name], self.msg(
                f"port {name} is {width} bits in the simulation, {ports[name]} in the sidecar, "
                f"{layout.size} in rtl/layouts.py: rebuild (stale build/sim?)")

    def pattern(self, var: str, default: str = "none", salt: int = 0) -> Pattern:
        """The idle/backpressure :class:`Pattern` named by environment variable ``var``."""
        return Pattern(kind=env_str(var, default).split(",")[0], seed=self.seed * 1000 + salt)

    def cycle(self) -> int:
        return int(get_sim_time("ns")) // CLOCK_NS

    def msg(self, what: str) -> str:
        return f"[seed {self.seed}, {self.cfg.name}] {what}"

    async def reset(self, cycles: int = 2) -> None:
        self.dut.rst.value = 1
        await ClockCycles(self.clk, cycles)
        self.dut.rst.value = 0
        await RisingEdge(self.clk)

    def get(self, port, layout):
        """The value of ``port`` unpacked with ``layout``."""
        return unpack(layout, port.value)


class CocotbIO:
    """``io`` of a :mod:`sim.bodies` body on the emitted Verilog: ports by signature path
    (``ctrl.clear`` is the Verilog port ``ctrl__clear``), values packed and unpacked with
    ``layouts`` ({path: layout}); stream inputs driven with the ``idle`` pattern, the stream
    outputs named in ``outputs`` taken with the ``backpressure`` pattern; ``counters``
    ({name: (path, f)}) summed at every rising clock edge from :meth:`start` on."""

    def __init__(self, b: Bench, layouts: dict, counters: dict | None = None,
                 idle: Pattern | None = None, outputs=(), backpressure: Pattern | None = None):
        self.b, self.layouts, self.counters = b, layouts, counters or {}
        self._totals = {name: 0 for name in self.counters}
        self._drivers = {path: StreamDriver(b.dut, path.replace(".", "__"), layout, b.clk, idle)
                         for path, layout in layouts.items()
                         if self._is_stream(path) and path not in outputs}
        self._sinks = {path: StreamSink(b.dut, path.replace(".", "__"), layouts[path], b.clk,
                                        backpressure, b.cycle) for path in outputs}

    def _is_stream(self, path: str) -> bool:
        return hasattr(self.b.dut, path.replace(".", "__") + "__valid")

    def _port(self, path: str):
        return getattr(self.b.dut, path.replace(".", "__"))

    def start(self) -> None:
        """Start the counters and the stream sinks (call once, after reset)."""
        import cocotb

        for sink in self._sinks.values():
            sink.start()

        async def count():
            ports = [(name, self._port(path), f) for name, (path, f) in self.counters.items()]
            while True:
                await RisingEdge(self.b.clk)
                for name, port, f in ports:
                    self._totals[name] += int(f(port))
        cocotb.start_soon(count())

    def set(self, path: str, value) -> None:
        self._port(path).value = pack(self.layouts[path], value) if path in self.layouts \
            else value

    def get(self, path: str):
        port = self._port(path)
        if path in self.layouts:
            return unpack(self.layouts[path], port.value)
        return int(high(port)) if len(port) == 1 else int(port.value)

    async def tick(self, n: int = 1) -> None:
        await ClockCycles(self.b.clk, n)

    async def send(self, path: str, payloads) -> None:
        await self._drivers[path].send(payloads)

    async def receive(self, path: str, count: int) -> list:
        return await self._sinks[path].take(count)

    def total(self, name: str) -> int:
        return self._totals[name]
