"""Measured accuracy of bit-pattern quantization: a small CNN trained here on scikit-learn's
bundled digits (offline), then quantized by plain rounding and by ADMM for each pattern.

Data: ``sklearn.datasets.load_digits`` (1,797 8 x 8 grey images, 10 classes, pixel values
0..16 scaled to [0, 1]); a stratified held-out split (``test_size``, default 25 %, seeded).
The held-out images are never used for training, for choosing scales or for stopping.

Model (pure numpy, float64): conv 3x3 1->c1 (pad 1) - ReLU - 2x2 average pool - conv 3x3
c1->c2 (pad 1) - ReLU - 2x2 average pool - fc (4*c2 -> 10), softmax cross-entropy, Adam.

Quantization: the three weight tensors are quantized with one scale per output channel
(``choose_scale(axis=0)``, MSE search); biases stay in float (they are added digitally after the
crossbar).  For each pattern of the config (``window``, ``max_ones``, ``uniform``):

* **float + fine-tune** (control): the float model trained for the same ``admm_epochs +
  bias_epochs`` extra epochs without any penalty, so that the ADMM figures are not credited with
  the extra training;
* **rounding**: the trained float weights projected to the nearest allowed level;
* **ADMM**: starting from the float model, ``admm_epochs`` epochs of Adam on
  loss + rho/2 ||W - Z + U||^2 using :class:`golden.quantize.ADMMState` exactly as a user's own
  training loop would (``penalty_grad`` added to the gradient; ``update`` once per epoch, with rho
  growing by ``rho_growth``), then W = Z (``finalize``: every weight on the pattern, checked with
  :func:`golden.quantize.check_pattern`), then ``bias_epochs`` epochs that train only the float
  biases with the weights frozen.

**Bit density** = one-bits among all magnitude bits of the quantized weights:
sum(popcount|q|) / (number of weights * weight_bits).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from golden.config import PATTERNS, SMEConfig, pattern_point, preset
from golden.fileio import OutputSet
from golden.quantize import (ADMMState, check_pattern, fragment_planes, layer_rd_lambda,
                             project_rd, quantize)

__all__ = ["load_data", "init_params", "forward", "loss_and_grads", "accuracy", "train",
           "bit_density", "run", "format_table", "register", "main", "FAST", "FULL"]

WEIGHTS = ("w1", "w2", "w3")
FULL = dict(epochs=40, admm_epochs=30, bias_epochs=3, c1=16, c2=32)
FAST = dict(epochs=6, admm_epochs=4, bias_epochs=1, c1=8, c2=16)


def load_data(seed: int = 0, test_size: float = 0.25):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = (d.images / 16.0)[:, None, :, :]
    return train_test_split(x, d.target, test_size=test_size, random_state=seed,
                            stratify=d.target)


def init_params(rng: np.random.Generator, c1: int = 16, c2: int = 32) -> dict[str, np.ndarray]:
    he = lambda fan, shape: rng.normal(0, np.sqrt(2.0 / fan), size=shape)  # noqa: E731
    return {"w1": he(9, (c1, 1, 3, 3)), "b1": np.zeros(c1),
            "w2": he(9 * c1, (c2, c1, 3, 3)), "b2": np.zeros(c2),
            "w3": he(4 * c2, (10, 4 * c2)), "b3": np.zeros(10)}


def _im2col(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N*H*W, C*9), 3x3 windows with padding 1, column order (c, kh, kw)."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    v = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))  # N,C,H,W,3,3
    return v.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * 9)


def _col2im(dcols: np.ndarray, shape) -> np.ndarray:
    n, c, h, w = shape
    d = dcols.reshape(n, h, w, c, 3, 3)
    dxp = np.zeros((n, c, h + 2, w + 2))
    for i in range(3):
        for j in range(3):
            dxp[:, :, i:i + h, j:j + w] += d[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dxp[:, :, 1:-1, 1:-1]


def _conv(x, w, b):
    n, _, h, wd = x.shape
    cols = _im2col(x)
    out = cols @ w.reshape(w.shape[0], -1).T + b
    return out.reshape(n, h, wd, -1).transpose(0, 3, 1, 2), cols


def _pool(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def _unpool(d):
    return np.repeat(np.repeat(d, 2, axis=2), 2, axis=3) / 4.0


def forward(p: dict, x: np.ndarray, cache: bool = False):
    a1, cols1 = _conv(x, p["w1"], p["b1"])
    r1 = np.maximum(a1, 0)
    p1 = _pool(r1)
    a2, cols2 = _conv(p1, p["w2"], p["b2"])
    r2 = np.maximum(a2, 0)
    p2 = _pool(r2)
    flat = p2.reshape(len(x), -1)
    logits = flat @ p["w3"].T + p["b3"]
    if cache:
        return logits, (x, a1, cols1, p1, a2, cols2, p2, flat)
    return logits


def loss_and_grads(p: dict, x: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    logits, (x, a1, cols1, p1, a2, cols2, p2, flat) = forward(p, x, cache=True)
    z = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(z)
    prob /= prob.sum(axis=1, keepdims=True)
    n = len(x)
    loss = float(-np.mean(np.log(prob[np.arange(n), y] + 1e-12)))
    d = prob
    d[np.arange(n), y] -= 1.0
    d /= n
    g = {"w3": d.T @ flat, "b3": d.sum(0)}
    dp2 = (d @ p["w3"]).reshape(p2.shape)
    da2 = _unpool(dp2) * (a2 > 0)
    d2 = da2.transpose(0, 2, 3, 1).reshape(-1, a2.shape[1])
    g["w2"] = (d2.T @ cols2).reshape(p["w2"].shape)
    g["b2"] = d2.sum(0)
    dp1 = _col2im(d2 @ p["w2"].reshape(p["w2"].shape[0], -1), p1.shape)
    da1 = _unpool(dp1) * (a1 > 0)
    d1 = da1.transpose(0, 2, 3, 1).reshape(-1, a1.shape[1])
    g["w1"] = (d1.T @ cols1).reshape(p["w1"].shape)
    g["b1"] = d1.sum(0)
    return loss, g


def accuracy(p: dict, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(forward(p, x), axis=1) == y))


class _Adam:
    def __init__(self, lr: float):
        self.lr, self.m, self.v, self.t = lr, {}, {}, 0

    def step(self, p: dict, g: dict, keys):
        self.t += 1
        for k in keys:
            m = self.m[k] = 0.9 * self.m.get(k, 0) + 0.1 * g[k]
            v = self.v[k] = 0.999 * self.v.get(k, 0) + 0.001 * g[k] ** 2
            mh, vh = m / (1 - 0.9 ** self.t), v / (1 - 0.999 ** self.t)
            p[k] = p[k] - self.lr * mh / (np.sqrt(vh) + 1e-8)


def train(p: dict, x, y, epochs: int, rng: np.random.Generator, lr: float = 1e-2,
          batch: int = 64, keys=None, admm: dict | None = None, rho_growth: float = 1.3) -> dict:
    """Adam training.  ``admm``: {weight name: ADMMState}; their penalty gradients are added and
    their Z/U updates run at the end of each epoch."""
    p = {k: v.copy() for k, v in p.items()}
    keys = list(p) if keys is None else list(keys)
    opt = _Adam(lr)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            _, g = loss_and_grads(p, x[idx], y[idx])
            for k, st in (admm or {}).items():
                g[k] = g[k] + st.penalty_grad(p[k])
            opt.step(p, g, keys)
        for k, st in (admm or {}).items():
            st.update(p[k])
            st.rho *= rho_growth
    return p


def bit_density(qs, cfg: SMEConfig) -> float:
    ones = total = 0
    for q in qs:
        mag = np.abs(np.asarray(q, dtype=np.int64))
        for b in range(cfg.weight_bits):
            ones += int(((mag >> b) & 1).sum())
        total += mag.size * cfg.weight_bits
    return ones / total


def run(cfg: SMEConfig | None = None, seed: int = 0, epochs: int = FULL["epochs"],
        admm_epochs: int = FULL["admm_epochs"], bias_epochs: int = FULL["bias_epochs"],
        c1: int = FULL["c1"], c2: int = FULL["c2"], rho: float = 1e-3,
        patterns=("window", "max_ones", "uniform"), log=None) -> dict:
    """The whole experiment; returns a JSON-able dict of the measured figures."""
    cfg = cfg or preset("default")
    log = log or (lambda msg: None)
    try:        # tiny matrices: BLAS threads only contend with each other (10x slower on 2 cores)
        from threadpoolctl import threadpool_limits
    except ImportError:                                    # pragma: no cover
        return _run(cfg, seed, epochs, admm_epochs, bias_epochs, c1, c2, rho, patterns, log)
    with threadpool_limits(1):
        return _run(cfg, seed, epochs, admm_epochs, bias_epochs, c1, c2, rho, patterns, log)


def _run(cfg, seed, epochs, admm_epochs, bias_epochs, c1, c2, rho, patterns, log) -> dict:
    t0 = time.perf_counter()
    xtr, xte, ytr, yte = load_data(seed)
    rng = np.random.default_rng(seed)
    p = train(init_params(rng, c1, c2), xtr, ytr, epochs, rng)
    res = {"dataset": f"scikit-learn digits: {len(xtr)} train / {len(xte)} held-out test images "
                      f"(stratified split, seed {seed})",
           "weights": f"trained here (numpy CNN conv{c1}-conv{c2}-fc, {epochs} epochs, "
                      f"seed {seed})",
           "config": cfg.to_dict(), "seed": seed,
           "schedule": dict(epochs=epochs, admm_epochs=admm_epochs, bias_epochs=bias_epochs,
                            c1=c1, c2=c2, rho=rho),
           "n_train": len(xtr), "n_test": len(xte),
           "float_train_acc": accuracy(p, xtr, ytr), "float_acc": accuracy(p, xte, yte),
           "patterns": {}}
    # Control: the same extra epochs as ADMM + bias tuning, without the penalty, in float.
    pf = train(p, xtr, ytr, admm_epochs + bias_epochs, np.random.default_rng([seed, 1]), lr=1e-3)
    res["float_finetuned_acc"] = accuracy(pf, xte, yte)
    log(f"float: test accuracy {res['float_acc']:.4f}, after the same fine-tuning without "
        f"ADMM {res['float_finetuned_acc']:.4f}")
    for pat in patterns:
        pc, mu = _pattern(cfg, pat)
        rounded, qs, lams = dict(p), [], {}
        for k in WEIGHTS:
            q, alpha = quantize(p[k], pc, axis=0)
            if mu:                                 # rate-distortion, lambda per layer
                lams[k] = layer_rd_lambda(p[k] / alpha, mu)
                q = project_rd(p[k] / alpha, pc, lams[k], out_axis=0)
            rounded[k] = q * alpha
            qs.append(q)
        entry = {"rounding_acc": accuracy(rounded, xte, yte),
                 "rounding_density": bit_density(qs, pc)}
        if mu:
            entry["rd_lambda"] = mu
            entry["rd_layer_lambdas"] = lams
        if pc.pattern == "fragment":    # span-packing rate: fragment-row planes
            entry["rounding_planes"] = int(sum(fragment_planes(q, pc, out_axis=0) for q in qs))
        states = {k: ADMMState(p[k], pc, rho=rho, axis=0, rd_lambda=lams.get(k, 0.0))
                  for k in WEIGHTS}
        arng = np.random.default_rng([seed, 1])
        pa = train(p, xtr, ytr, admm_epochs, arng, lr=1e-3, admm=states)
        for k in WEIGHTS:
            pa[k] = states[k].finalize(pa[k])
        qs = [states[k].integers(pa[k]) for k in WEIGHTS]
        for q in qs:
            check_pattern(q, pc, out_axis=0)        # raises if any weight is off the pattern
        entry["admm_proj_acc"] = accuracy(pa, xte, yte)
        if bias_epochs:
            pa = train(pa, xtr, ytr, bias_epochs, arng, lr=1e-3, keys=("b1", "b2", "b3"))
        entry["admm_acc"] = accuracy(pa, xte, yte)
        entry["admm_density"] = bit_density(qs, pc)
        entry["admm_zero_fraction"] = float(np.mean(np.concatenate([q.ravel() for q in qs]) == 0))
        if pc.pattern == "fragment":    # span-packing rate: fragment-row planes
            entry["admm_planes"] = int(sum(fragment_planes(q, pc, out_axis=0) for q in qs))
        res["patterns"][pat] = entry
        log(f"{pat}: rounding {entry['rounding_acc']:.4f}, ADMM {entry['admm_acc']:.4f}")
    res["seconds"] = round(time.perf_counter() - t0, 2)
    return res


def _pattern(cfg: SMEConfig, pat: str) -> tuple[SMEConfig, float]:
    """(config, rate-distortion mu) of a pattern name, a label of
    golden.config.PATTERN_POINTS (fragment patterns, ...) or ``<fragment label>-rd<mu>``
    (:func:`sme.frontier.split_label`; mu as in :func:`golden.quantize.layer_rd_lambda`)."""
    if pat in PATTERNS:
        return cfg.replace(pattern=pat), 0.0
    from ..frontier import split_label
    base, mu = split_label(pat)
    return pattern_point(cfg, base), mu


def format_table(res: dict) -> str:
    cfg = res["config"]
    lines = [f"Weights: {res['weights']}", f"Data: {res['dataset']}",
             f"Config: {cfg['weight_bits']}-bit magnitudes, window {cfg['window']}, "
             f"max_ones {cfg['max_ones']}; scale per output channel",
             f"Float test accuracy: {100 * res['float_acc']:.2f} % "
             f"({100 * res['float_finetuned_acc']:.2f} % after the same "
             f"{res['schedule']['admm_epochs'] + res['schedule']['bias_epochs']} extra epochs "
             "as ADMM, without the penalty)",
             f"One test image = {100 / res['n_test']:.2f} % of accuracy", "",
             f"{'pattern':<16} {'rounding acc':>13} {'density':>8} {'ADMM acc':>9} "
             f"{'density':>8} {'ADMM drop vs float+ft':>22}"]
    for pat, e in res["patterns"].items():
        name = {"window": f"window({cfg['window']})",
                "max_ones": f"max_ones({cfg['max_ones']})"}.get(pat, pat)
        lines.append(f"{name:<16} {100 * e['rounding_acc']:>12.2f}% {e['rounding_density']:>8.4f} "
                     f"{100 * e['admm_acc']:>8.2f}% {e['admm_density']:>8.4f} "
                     f"{100 * (res['float_finetuned_acc'] - e['admm_acc']):>21.2f}%")
    return "\n".join(lines)


def _cmd(args) -> int:
    """``sme digits``: a bad config raises (the CLI's error boundary reports it); the two output
    files appear together or not at all."""
    cfg = preset(args.preset)
    if args.weight_bits is not None:
        cfg = cfg.replace(weight_bits=args.weight_bits,
                          window=min(cfg.window, args.weight_bits),
                          max_ones=min(cfg.max_ones, args.weight_bits),
                          fragment_bits=min(cfg.fragment_bits, args.weight_bits))
    patterns = tuple(p for p in args.patterns.split(",") if p)
    for pat in patterns:                    # fail before any training
        _pattern(cfg, pat)
    sched = dict(FAST if args.fast else FULL)
    if args.epochs is not None:
        sched["epochs"] = args.epochs
    with OutputSet() as files:
        if args.out:                        # an output that cannot be written fails first
            out = Path(args.out)
            files.reserve(out / "digits.json")
            files.reserve(out / "digits.txt")
        res = run(cfg, seed=args.seed, log=lambda m: print(m, file=sys.stderr),
                  patterns=patterns, **sched)
        print(format_table(res))
        if args.out:
            files.add(out / "digits.json", json.dumps(res, indent=2).encode())
            files.add(out / "digits.txt", (format_table(res) + "\n").encode())
    if args.out:
        print(f"wrote {out / 'digits.json'} and {out / 'digits.txt'}")
    return 0


def register(subparsers) -> None:
    """Add ``digits`` to an argparse subparsers object (``sme digits``); a no-op if present."""
    if "digits" in subparsers.choices:
        return
    p = subparsers.add_parser("digits", help="measured accuracy of float / rounding / ADMM "
                              "bit patterns on a small CNN trained on scikit-learn digits")
    p.add_argument("--preset", default="default")
    p.add_argument("--weight-bits", type=int, default=None,
                   help="override the preset's weight_bits")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="float training epochs")
    p.add_argument("--fast", action="store_true", help="the reduced form run by the tests")
    p.add_argument("--patterns", default="window,max_ones,uniform",
                   help="comma-separated pattern names or pattern points of "
                        "golden.config.PATTERN_POINTS (e.g. fragment-3,fragment-2-sign), a "
                        "fragment point also as <label>-rd<mu> (rate-distortion quantization)")
    p.add_argument("--out", default=None, help="directory for digits.json and digits.txt")
    p.set_defaults(func=_cmd)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sme.workloads.digits")
    sub = ap.add_subparsers(dest="cmd", required=True)
    register(sub)
    args = ap.parse_args(["digits"] + list(sys.argv[1:] if argv is None else argv))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
