"""Block test bodies written once and run on both simulators (as coreblocks does).

A body drives a block through a small port interface ``io`` and checks it against the golden
model; the same body runs in Amaranth's simulator (:class:`sim.amaranth_tile.AmaranthIO`, from
``tests/test_rtl_*.py``) and on the emitted Verilog under cocotb (:class:`sim.tb.CocotbIO`, from
the benches ``sim/bench_*.py``).  ``io`` offers, with ports named by their signature path
(``"ctrl.clear"``, ``"i_stream"``):

* ``set(path, value)``, ``get(path)`` (a payload comes back unpacked), ``await tick(n)``;
* ``await send(stream, payloads)``: every payload through a stream input, with the backend's
  idle pattern before each;
* ``total(name)``: a per-cycle running count the backend keeps from the start of the run
  (``"clips"``: ``ctrl.clip_delta`` summed; ``"not_ready"``: cycles with ``i_stream.ready``
  low).
"""

from __future__ import annotations

from golden.splice import splice_accumulate

__all__ = ["splice_body"]


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
