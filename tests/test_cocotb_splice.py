"""cocotb bench of the bit-splice adders on the emitted Verilog, against
``golden.splice.splice_accumulate``."""

import pytest

from sim.harness import env_seed, run_bench

RUNS = [("tiny", "random"), ("tiny_mlc", "periodic"), ("fpga_small", "random"),
        ("default", "random")]


@pytest.mark.parametrize("target,idle", RUNS, ids=[f"{t}-{i}" for t, i in RUNS])
def test_splice(target, idle):
    seed = env_seed()
    run_bench("bench_splice", "sme_splice", target, seed=seed,
              env={"SME_IDLE": idle, "SME_VECTORS": 2 if target == "default" else 4},
              run=f"splice-{idle}-s{seed}").check()
