"""cocotb bench of the grouped row scheduler on the emitted Verilog, against the golden issue
trace (the same stimulus and expectation as ``tests/test_rtl_scheduler.py``)."""

import pytest

from sim.harness import env_seed, run_bench

# scheduler_throughput always runs without backpressure; scheduler_trace takes the pattern.
RUNS = [("tiny", "periodic"), ("tiny", "random"), ("tiny_mlc", "random"),
        ("fpga_small", "random"), ("default", "random")]


@pytest.mark.parametrize("target,bp", RUNS, ids=[f"{t}-{b}" for t, b in RUNS])
def test_scheduler(target, bp):
    seed = env_seed()
    run_bench("bench_scheduler", "sme_scheduler", target, seed=seed,
              env={"SME_BACKPRESSURE": bp,
                   "SME_PROGRAMS_PER_RUN": 1 if target == "default" else 4},
              run=f"scheduler-{bp}-s{seed}").check()
