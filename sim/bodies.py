"""Block test bodies written once and run on both simulators (as coreblocks does).

A body drives a block through a small port interface ``io`` and checks it against the golden
model; the same body runs in Amaranth's simulator (:class:`sim.amaranth_tile.AmaranthIO`, from
``tests/test_rtl_*.py``) and on the emitted Verilog under cocotb (:class:`sim.tb.CocotbIO`, from
the benches ``sim/bench_*.py``).  ``io`` offers, with ports named by their signature path
(``"ctrl.clear"``, ``"i_stream"``):

* ``set(path, value)``, ``get(path)`` (a payload comes back unpacked), ``await tick(n)``;
* ``await send(stream, payloads)``: every payload through a stream input, with the backend's
  idle pattern before each; ``await receive(stream, count)``: that many payloads from a stream
  output (unpacked), with the backend's backpressure;
* ``total(name)``: a per-cycle running count the backend keeps from the start of the run
  (``"clips"``: ``ctrl.clip_delta`` summed; ``"not_ready"``: cycles with ``i_stream.ready``
  low).
"""

from __future__ import annotations

from golden.scheduler import issue_trace
from golden.splice import splice_accumulate

from .models import decode_step
from .stimulus import descriptor_memory, rowlist_memory

__all__ = ["splice_body", "scheduler_body", "write_memory"]


async def splice_body(io, cfg, payloads, model, latency: int, label: str = "") -> None:
    """Clear the accumulators, send ``payloads`` (``sim.stimulus.random_sample_steps``), wait
    ``latency`` cycles and more; the accumulators and the clipped-sample count must equal
    :func:`golden.splice.splice_accumulate` of ``model``, ``busy`` must be low, and
    ``i_stream.ready`` must never have dropped (the splice takes a step every cycle)."""
    io.set("ctrl.clear", 1)
    await io.tick()
    io.set("ctrl.clear", 0)
    clips0, not_ready0 = io.total("clips"), io.total("not_ready")
    await io.send("i_stream", payloads)
    await io.tick(latency + 2)
    want, want_clips = splice_accumulate(cfg, model)
    got = [int(v) for v in io.get("ctrl.acc")]
    assert got == want, f"{label}: accumulators {got} != model {want}"
    clips = io.total("clips") - clips0
    assert clips == want_clips, f"{label}: clip_delta summed to {clips}, model {want_clips}"
    assert not io.get("ctrl.busy"), f"{label}: busy after the last sample"
    not_ready = io.total("not_ready") - not_ready0
    assert not_ready == 0, f"{label}: i_stream.ready dropped {not_ready} times"


async def write_memory(io, port: str, items: dict) -> None:
    """Write ``{(lane, addr): word}`` through the ``MemWriteSignature`` port ``port``, one
    item per cycle."""
    for (lane, addr), word in items.items():
        io.set(f"{port}.lane", lane)
        io.set(f"{port}.addr", addr)
        io.set(f"{port}.data", word)
        io.set(f"{port}.en", 1)
        await io.tick()
    io.set(f"{port}.en", 0)


async def scheduler_body(io, cfg, p, x, label: str = "") -> None:
    """Write program ``p``'s row-list memories through ``ctrl.wr_rowlist`` and its descriptor
    memory through ``ctrl.wr``, start a vector ``x``; the
    issued steps (``o_stream``, decoded by :func:`sim.models.decode_step`) must equal
    :func:`golden.scheduler.issue_trace`, in order, ``last`` on the final one only; afterwards
    nothing more is offered and ``ctrl.done`` is high."""
    expected = issue_trace(p, x)
    await write_memory(io, "ctrl.wr_rowlist", rowlist_memory(p))
    await write_memory(io, "ctrl.wr", descriptor_memory(p))    # zero words for idle lanes
    io.set("ctrl.x", [int(v) for v in x] + [0] * (cfg.tile_inputs - len(x)))
    io.set("ctrl.n_steps", p.n_steps)
    io.set("ctrl.start", 1)
    await io.tick()
    io.set("ctrl.start", 0)
    got = await io.receive("o_stream", len(expected))
    steps = [decode_step(s, cfg) for s in got]
    diff = next((i for i, (g, e) in enumerate(zip(steps, expected)) if g != e), None)
    where = (f"step {diff}: {steps[diff]} vs {expected[diff]}" if diff is not None
             else f"{len(steps)} steps vs {len(expected)}")
    assert steps == expected, f"{label}: issued steps differ from the golden trace at {where}"
    lasts = [int(s.last) for s in got]
    assert lasts == [0] * (len(got) - 1) + [1], f"{label}: last flags {lasts}"
    await io.tick(4)
    assert not io.get("o_stream.valid") and io.get("ctrl.done"), \
        f"{label}: scheduler kept issuing or is not done"
