"""cocotb benches of the whole SME tile on the emitted Verilog (Icarus by default, ``SIM=verilator``
for Verilator), against the golden model; programs come from ``sme compile``.

Every item is one simulator run and fails unless at least one cocotb test ran and none failed.
"""

import pytest

from sim.harness import env_seed, run_bench, run_tile

SWEEP = "none,periodic,random"

# (target, idle patterns, backpressure patterns (paired), vectors per program, programs, small)
VECTOR_RUNS = [
    ("tiny", SWEEP, SWEEP, 3, 2, False),                    # the idle / backpressure sweep
    ("tiny_mlc", "random", "random", 4, 2, False),
    ("tiny_adc1", "random", "periodic", 4, 2, False),       # clipping ADC: clip counts
    ("fpga_small", "random", "random", 3, 2, False),
    ("fpga_ice40", "random", "random", 3, 2, False),      # the iCEBreaker's preset
    # default: one load is ~6,000 frame words on a slow-to-simulate design; keep it short.
    ("default", "none", "random", 2, 1, True),
]


@pytest.mark.parametrize("target,idle,bp,vectors,programs,small", VECTOR_RUNS,
                         ids=[r[0] for r in VECTOR_RUNS])
def test_tile_vectors(target, idle, bp, vectors, programs, small):
    run_tile(target, ["tile_vectors"], seed=env_seed(), idle=idle, backpressure=bp,
             vectors=vectors, programs=programs, small=small).check()


@pytest.mark.parametrize("target", ["tiny", "tiny_mlc"])
def test_tile_bad_frames_and_reset(target):
    """Corrupt frames, vector without program, rst/abort mid-vector (fpga_small and default
    run these in `sme sim --matrix`)."""
    run_tile(target, ["tile_bad_frames", "tile_reset_mid_vector"], seed=env_seed(),
             idle="random", backpressure="random", programs=1).check()


def test_tile_runs_a_partitioned_layer():
    """Every tile program of a partition file (a layer beyond one tile, clipping ADC)."""
    import numpy as np

    from golden import partition
    from golden.fileio import atomic_write_bytes
    from sim.harness import build_dir, sim_name, target_config
    from sim.stimulus import random_q

    cfg = target_config("tiny_adc1")
    part = partition.partition_layer(random_q(np.random.default_rng(3), (20, 10), cfg, 0.8),
                                     None, cfg)
    assert part.n_parts > 1
    path = build_dir(sim_name(), "tiny_adc1") / "programs" / "layer-s3.smepart"
    atomic_write_bytes(path, partition.dumps(part))
    res = run_bench("bench_tile", "sme_tile", "tiny_adc1", tests=["tile_vectors"],
                    env={"SME_PROGRAMS": str(path), "SME_IDLE": "random",
                         "SME_BACKPRESSURE": "random", "SME_VECTORS": 2},
                    run="tile-partition-s3", seed=env_seed())
    res.check()


def test_tile_bench_can_fail():
    """A deliberately wrong expectation (one output off by one) must fail the bench."""
    r = run_tile("tiny", ["tile_vectors"], seed=env_seed(), vectors=1,
                 env={"SME_MUTATE": "1"}, run="tile-mutated-expectation")
    assert r.n_tests == 1 and r.n_failed == 1, f"the mutated bench did not fail: {r.summary()}"
    with pytest.raises(AssertionError, match="outputs"):
        r.check()


def test_zero_cocotb_tests_is_a_failure():
    """A run that selects no cocotb test must not pass silently."""
    r = run_bench("bench_tile", "sme_tile", "tiny", tests=["no_such_test"],
                  run="tile-zero-tests")
    assert r.n_tests == 0
    with pytest.raises(AssertionError, match="no cocotb test ran"):
        r.check()
