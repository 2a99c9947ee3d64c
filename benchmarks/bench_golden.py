"""Golden-model benchmark: the largest ResNet-50 convolution (layer4 3x3, 4608 x 512).

Weights are SYNTHETIC (not trained): Laplace(0, b), b = sqrt(2)/sqrt(2*4608) (He-style std),
quantized per layer with the MSE scale onto the preset's pattern.  Prints compile time, peak
memory, golden VMM time per input vector and the crossbar / cycle figures of every design.

    .venv/bin/python benchmarks/bench_golden.py [--preset default] [--vectors 4] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import resource
import time
import tracemalloc

import numpy as np

from golden.baselines import baseline_stats
from golden.compiler import compile_matrix
from golden.config import preset
from golden.quantize import quantize
from golden.vmm import run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="default")
    ap.add_argument("--vectors", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg = preset(args.preset)
    rng = np.random.default_rng(args.seed)
    K, N = 4608, 512
    w = rng.laplace(0.0, math.sqrt(2.0) / math.sqrt(2 * K), size=(K, N))
    q, _ = quantize(w, cfg)
    X = rng.integers(0, cfg.max_input + 1, size=(args.vectors, K))
    print(f"layer {K}x{N}, preset {cfg.name}, pattern {cfg.pattern}; weights: synthetic "
          f"Laplace (seed {args.seed}), {np.mean(q == 0):.1%} zeros after quantization")
    print(f"{'design':<24}{'compile s':>10}{'peak MiB':>10}{'VMM s/vec':>10}"
          f"{'crossbars':>10}{'cycles/vec':>11}{'acts/vec':>10}{'floor xb':>9}")
    for squeeze in ("row", "segment"):
        tracemalloc.start()
        t0 = time.perf_counter()
        prog = compile_matrix(q, cfg, squeeze=squeeze)
        t_compile = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        t0 = time.perf_counter()
        Y, clipped = run(prog, X)
        t_vmm = (time.perf_counter() - t0) / len(X)
        assert np.array_equal(Y, X @ q) or clipped, "golden VMM differs from x @ W"
        s = prog.stats
        print(f"{'SME ' + squeeze + ' squeeze':<24}{t_compile:>10.2f}{peak:>10.0f}{t_vmm:>10.3f}"
              f"{s['crossbars']:>10}{s['cycles']:>11}{s['activations']:>10}"
              f"{s['floor_crossbars']:>9}")
    for name, b in baseline_stats(q, None, cfg).items():
        print(f"{'baseline ' + name:<24}{'':>10}{'':>10}{'':>10}{b['crossbars']:>10}"
              f"{b['cycles']:>11}{b['activations']:>10}")
    print(f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
