"""FPGA prototype throughput: OU activations per second at each board's achieved clock.

For each board (its preset), a random layer that fills the tile is compiled; the RTL tile runs
one vector in Amaranth's simulator to measure cycles per vector (input elements in, all steps,
results out), which is compared with the golden model's issue-cycle count
(``input_bits * n_steps``).  Throughput = OU activations per vector / cycles per vector x clock,
at the Fmax from ``build/<board>/summary.json`` if that exists (else at the board clock), and the
UART host link's own bound at its baud rate.

    .venv/bin/python benchmarks/bench_fpga.py [--build build]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golden import compiler, vmm  # noqa: E402
from golden import frames  # noqa: E402
from golden.config import preset  # noqa: E402
from rtl.boards import BOARDS  # noqa: E402
from sim.amaranth_tile import simulate  # noqa: E402
from sim.stimulus import fitting_layer  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build", help="where build/<board>/summary.json live")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"{'board':<11} {'preset':<11} {'clock':>9} {'acts/vec':>8} {'golden':>7} "
          f"{'rtl':>6} {'OU act/s':>10} {'@board clk':>10} {'link vec/s':>10}")
    for name, spec in BOARDS.items():
        cfg = preset(spec.preset)
        prog = compiler.compile_matrix(
            fitting_layer(cfg, rng, squeezes=("segment",), largest=True), cfg, squeeze="segment")
        x = rng.integers(0, cfg.max_input + 1, size=prog.shape[0])
        golden_cycles = vmm.predicted_cycles(prog)
        run = simulate(prog, x[None])
        rtl_cycles, y = run.vector_cycles[0], run.outputs[0]
        want = vmm.run(prog, x)[0][0]
        assert (y == want).all(), f"RTL tile disagrees with the golden model: {y} vs {want}"
        summary = Path(args.build) / name / "summary.json"
        fmax = None
        if summary.exists():
            s = json.loads(summary.read_text())
            if s.get("preset") == cfg.name:
                fmax = s.get("fmax_sync_mhz")
        clock = fmax * 1e6 if fmax else spec.clock
        acts = prog.n_act * cfg.input_bits
        rate = acts / rtl_cycles * clock
        # Host link bound: RUN request + READ reply bytes per vector, 10 bits per byte.
        eb = frames.element_bytes(cfg)
        link_bytes = (6 + prog.shape[0] * eb) + 6 + 4 * prog.shape[1] + 2 * 6
        link_rate = frames.DEFAULT_BAUD / 10 / link_bytes
        label = f"{clock / 1e6:.1f}MHz" + ("*" if fmax else "")
        print(f"{name:<11} {cfg.name:<11} {label:>9} {acts:>8} {golden_cycles:>7} "
              f"{rtl_cycles:>6} {rate:>10.3g} {acts / rtl_cycles * spec.clock:>10.3g} "
              f"{link_rate:>10.1f}")
    print("clock: * = achieved Fmax from the build summary, else the board clock; golden = "
          "input_bits x steps issue cycles;\nrtl = measured cycles per vector including input "
          "and output transfer; link = vectors/s the UART link carries at "
          f"{frames.DEFAULT_BAUD} baud")
    return 0


if __name__ == "__main__":
    sys.exit(main())
