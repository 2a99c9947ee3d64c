"""``sme``: the project's command line.

Golden-model commands live here (``compile``, ``run``, ``stats``, ``simulate``, ``demo``); the
RTL, simulation, report and FPGA commands are registered by the modules in :data:`PLUGINS`
(each exposes ``register(subparsers)``).

The promise, kept by ONE error boundary in :func:`main` for every command: bad input (a bad
config, a corrupt or crafted file, malformed weights, out-of-range inputs or options, an output
path that cannot be written, a file declaring more data than the caps allow) prints one line
``sme <command>: error: <file>: <problem>`` on stderr and exits with 2, without a traceback; every
output file is written atomically, and SIGINT/SIGTERM leave no temporary file behind.  An
unexpected exception (a bug) prints one line and exits with 70; ``--debug`` (anywhere on the
command line, or ``SME_DEBUG=1``) shows its traceback instead.

Rules for a command (yours get the boundary for free, through ``set_defaults(func=...)``):

* raise :class:`UserError` (or any ``ValueError`` subclass) with a message that names the file
  or option and the problem; let ``OSError``, ``MemoryError`` and ``RecursionError`` escape -
  :func:`main` words them (:func:`explain`).  Do not catch ``Exception`` to print it yourself,
  and do not call ``sys.exit`` with a message;
* range-check options in the parser with the ``type=`` helpers here (:func:`probability`,
  :func:`positive_int`, ...), so that a bad value fails before any work starts;
* write outputs only through ``golden.fileio`` (atomic, umask, short temporary names); read
  ``.npy``/``.npz`` only through it (declared sizes checked before allocating);
* import heavy modules (amaranth, matplotlib, onnx) inside the command function, not at module
  level, so that every command starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from golden.config import (DEFAULT_POINT, PATTERNS, PRESETS, ConfigError, check_range,
                           pattern_point, preset)
from golden.fileio import MAX_BYTES_ENV, OutputSet, load_npy, npy_bytes, save_npy

__all__ = ["main", "UserError", "load_npy", "save_npy"]

#: Modules that add sub-commands with ``register(subparsers)``.
PLUGINS = ("rtl.verilog", "sim.cli", "sme.report", "rtl.fpga", "sme.hostclient", "sme.ppa",
           "sme.infer.cli", "sme.sweep")


class UserError(Exception):
    """Bad input from the user: printed without a traceback."""


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that ``finally`` blocks and the atomic writers
    remove their temporary files exactly as they do for SIGINT (``KeyboardInterrupt``)."""


#: Exit codes: 2 = bad input (any expected failure), 70 = internal error (a bug, EX_SOFTWARE),
#: 130 / 143 = interrupted by SIGINT / SIGTERM.
EXIT_USAGE, EXIT_BUG, EXIT_INT, EXIT_TERM = 2, 70, 130, 143


def explain(e: BaseException) -> str | None:
    """The one-line message for an expected failure class, or ``None`` for a bug."""
    import struct
    import zipfile
    import zlib

    if isinstance(e, (UserError, ValueError)):         # ConfigError, ProgramError, ...
        return str(e) or type(e).__name__
    if isinstance(e, OSError):
        what = e.strerror or str(e) or type(e).__name__
        names = [repr(str(f)) for f in (e.filename, e.filename2) if f is not None]
        return f"{' -> '.join(names)}: {what}" if names else what
    if isinstance(e, MemoryError):
        return ("out of memory: the input needs more memory than this machine or process "
                "allows (see SME_MAX_BYTES and --max-bytes in docs/VERIFICATION.md)")
    if isinstance(e, RecursionError):
        return "input nested too deeply to process"
    if isinstance(e, (zipfile.BadZipFile, zlib.error, EOFError, struct.error)):
        return f"malformed file ({type(e).__name__}: {e})"
    if isinstance(e, OverflowError):
        return f"a number in the input is out of range ({e})"
    return None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ---- option types: range checks at parse time --------------------------------------------

def _ranged(kind, lo=None, hi=None, lo_open=False):
    """An argparse ``type=`` that parses ``kind`` and applies :func:`check_range`."""
    def parse(text: str):
        try:
            return check_range("the value", kind(text), lo, hi, lo_open=lo_open)
        except ValueError as e:                                 # ConfigError included
            msg = str(e) if isinstance(e, ConfigError) else \
                f"{text!r} is not {'an integer' if kind is int else 'a number'}"
            raise argparse.ArgumentTypeError(msg) from None
    return parse


#: ``type=`` helpers for options (module docstring); plugins below sme/ use check_range.
probability = _ranged(float, 0.0, 0.9)            # 1.0 would stall a stream forever
positive_int = _ranged(int, 1)
nonnegative_int = _ranged(int, 0)
positive_float = _ranged(float, 0.0, 1e15, lo_open=True)
fraction = _ranged(float, 0.0, 1.0)


def byte_size(text: str) -> str:
    """A size in bytes, or with a K/M/G/T suffix (the ``--max-bytes`` cap)."""
    from golden.fileio import LimitError, parse_size
    try:
        parse_size(text)
    except LimitError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with the usage error on ONE line (the same shape as every other error)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {_one_line(message)} "
                              f"(see {self.prog} --help)\n")


def _config(args) -> "SMEConfig":  # noqa: F821
    cfg = preset(args.preset)
    changes = {}
    if getattr(args, "pattern", None):
        changes["pattern"] = args.pattern
    if getattr(args, "adc_bits", None) is not None:
        changes["adc_bits"] = args.adc_bits
    if getattr(args, "fragment_bits", None) is not None:
        changes["fragment_bits"] = args.fragment_bits
    if getattr(args, "fragment_sign", False):
        changes["fragment_sign"] = True
    return cfg.replace(**changes) if changes else cfg


# ---- compile ----------------------------------------------------------------------------------

def cmd_compile(args) -> int:
    from golden.compiler import compile_matrix
    from golden.program import save
    from golden.quantize import PatternError, check_pattern

    cfg = _config(args)
    w = load_npy(args.weights, "weights")
    where = f"weights file {args.weights!r}"
    if w.ndim != 2 or w.shape[0] == 0 or w.shape[1] == 0:
        raise UserError(f"{where}: a non-empty 2-D K x N matrix expected, got shape {w.shape}")
    if not (np.issubdtype(w.dtype, np.integer) or np.issubdtype(w.dtype, np.floating)):
        raise UserError(f"{where}: numbers expected, got dtype {w.dtype}")
    if np.issubdtype(w.dtype, np.floating) and not np.all(np.isfinite(w)):
        raise UserError(f"{where}: contains NaN or infinite values")
    meta = {"source": Path(args.weights).name}
    mu = 0.0
    if args.point:
        from sme.frontier import split_label
        if args.pattern:
            raise UserError("give --point or --pattern, not both")
        base, mu = split_label(args.point)
        cfg = pattern_point(cfg, base)
        meta["point"] = args.point
    if args.integer:
        try:
            check_pattern(w, cfg)
        except PatternError as e:
            raise UserError(f"{where}: --integer weights rejected: {e}") from None
        q = w.astype(np.int64)
    else:
        q, alpha, lam = quantize_point(w, cfg, mu, axis=1 if args.per_channel else None)
        if mu:
            meta["rd_lambda"] = lam
        scales = np.ravel(alpha).tolist()
        meta["scale"] = scales if args.per_channel else scales[0]
    prog = compile_matrix(q, cfg, squeeze=args.squeeze, reorder=not args.no_reorder,
                          balance=not args.no_balance, meta=meta)
    save(prog, args.output)
    s = prog.stats
    print(f"compiled {q.shape[0]}x{q.shape[1]} ({cfg.name}, {cfg.pattern}, {args.squeeze} "
          f"squeeze): {s['crossbars']} crossbars, {s['cycles']} cycles/vector, "
          f"{s['activations']} OU activations/vector -> {args.output}")
    return 0


# ---- run --------------------------------------------------------------------------------------

def cmd_run(args) -> int:
    from golden.program import load
    from golden.vmm import InputError, run

    prog = load(args.program)
    X = load_npy(args.inputs, "inputs")
    try:
        Y, clipped = run(prog, X)
    except InputError as e:
        raise UserError(f"inputs file {args.inputs!r}: {e}") from None
    record = {"inputs": str(args.inputs), "vectors": int(Y.shape[0]), "clipped": int(clipped),
              "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    # Y and the program's sidecar appear together; a sidecar that cannot be written (a
    # read-only folder) only warns: the result is complete.
    with OutputSet() as out:
        out.add(args.output, npy_bytes(Y))
        out.add(str(args.program) + ".lastrun.json", json.dumps(record).encode(), optional=True)
    for w in out.warnings:
        print(f"sme run: warning: {w}", file=sys.stderr)
    note = f", {clipped} clipped ADC samples (result differs from x @ W)" if clipped else \
        ", no clipped samples"
    print(f"ran {Y.shape[0]} vector(s){note} -> {args.output}")
    return 0


# ---- stats ------------------------------------------------------------------------------------

def program_report(prog) -> dict:
    """Everything ``sme stats`` prints: SME (grouped and naive), baselines, floors."""
    from golden.baselines import baseline_stats
    from golden.compiler import compile_blocks

    naive = compile_blocks(prog.blocks, prog.shape, prog.cfg, squeeze=prog.options["squeeze"],
                           reorder=False, balance=False, check=False)
    s = prog.stats
    return {
        "config": prog.cfg.to_dict(), "options": prog.options, "shape": list(prog.shape),
        "sme": {k: s[k] for k in ("crossbars", "activations", "cycles", "index_bits")},
        "sme_naive": {k: naive.stats[k] for k in ("crossbars", "activations", "cycles",
                                                  "index_bits")},
        "baselines": baseline_stats(prog.blocks, prog.shape, prog.cfg),
        "floor": {"crossbars": s["floor_crossbars"], "activations": s["floor_activations"],
                  "cycles": s["floor_cycles"]},
    }


def cmd_stats(args) -> int:
    from golden.program import load

    prog = load(args.program)
    rep = program_report(prog)
    last = Path(str(args.program) + ".lastrun.json")
    if last.exists():
        try:
            rep["last_run"] = json.loads(last.read_text())
        except ValueError:
            rep["last_run"] = {"error": f"{last} is unreadable"}
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    k, n = rep["shape"]
    print(f"layer {k}x{n}, preset {prog.cfg.name}, pattern {prog.cfg.pattern}, "
          f"{rep['options']['squeeze']} squeeze")
    rows = [("SME (grouped)", rep["sme"]), ("SME (naive order)", rep["sme_naive"])]
    rows += [(f"baseline {name}", v) for name, v in rep["baselines"].items()]
    rows += [("floor", dict(rep["floor"], index_bits=None))]
    print(f"{'design':<20}{'crossbars':>11}{'cycles/vec':>12}{'OU acts/vec':>13}"
          f"{'index bits':>12}")
    for name, v in rows:
        ib = "-" if v.get("index_bits") is None else v["index_bits"]
        print(f"{name:<20}{v['crossbars']:>11}{v['cycles']:>12}{v['activations']:>13}{ib:>12}")
    if "last_run" in rep:
        lr = rep["last_run"]
        print(f"last run: {lr.get('vectors')} vector(s), {lr.get('clipped')} clipped samples")
    return 0


# ---- simulate (RTL tile in Amaranth's simulator) -----------------------------------------------

def check_on_tile(prog, X, p_idle: float = 0.0, seed: int = 0) -> tuple[bool, str]:
    """Run ``X`` through the RTL tile (Amaranth simulator) and compare with the golden model:
    outputs, clipped samples and issue cycles per vector.  Returns (ok, one-line summary)."""
    from golden.tile_image import TileError
    from golden.vmm import predicted_cycles, run
    from sim.amaranth_tile import simulate

    res = simulate(prog, X, p_idle=p_idle, seed=seed)
    if res.error:
        return False, f"the tile refused the program: {TileError(res.error).name}"
    Y, clipped = run(prog, X)
    want = predicted_cycles(prog)
    same = np.array_equal(res.outputs, Y)
    cycles_ok = all(c == want for c in res.issue_cycles)
    clip_ok = res.clipped == clipped
    return same and cycles_ok and clip_ok, (
        f"RTL outputs equal golden: {same}; issue cycles/vector RTL {sorted(set(res.issue_cycles))}"
        f" vs model {want}; clipped RTL {res.clipped} vs golden {clipped}; "
        f"{res.sim_cycles} cycles simulated")


def cmd_simulate(args) -> int:
    from golden.program import load
    from golden.tile_image import TileImageError
    from golden.vmm import InputError, check_inputs

    prog = load(args.program)
    X = load_npy(args.inputs, "inputs")
    try:
        X = check_inputs(X, prog)
    except InputError as e:
        raise UserError(f"inputs file {args.inputs!r}: {e}") from None
    try:
        ok, summary = check_on_tile(prog, X, p_idle=args.idle, seed=args.seed)
    except TileImageError as e:
        raise UserError(f"{args.program}: {e}") from None
    print(summary)
    return 0 if ok else 1


# ---- demo -------------------------------------------------------------------------------------

def cmd_demo(args) -> int:
    """Built-in example: a synthetic trained-like layer, compiled both ways, run and checked."""
    with OutputSet() as files:          # every file of the demo, or none
        return _demo(args, files)


#: The config fields of a weight pattern (what a pattern point sets).
PATTERN_FIELDS = ("pattern", "window", "max_ones", "fragment_bits", "fragment_sign")


def quantize_point(w: np.ndarray, cfg, mu: float, axis: int | None = None):
    """``(q, alpha, lambda)``: MSE scale(s) of a K x N matrix (one, or one per output column with
    ``axis=1``), then projection onto ``cfg``'s pattern, or with ``mu`` > 0 rate-distortion
    projection at the layer's lambda (:func:`golden.quantize.layer_rd_lambda`; the ``-rd<mu>`` of
    a pattern point)."""
    from golden.quantize import choose_scale, layer_rd_lambda, project_levels, project_rd
    alpha = choose_scale(w, cfg, axis=axis)
    v = np.asarray(w, dtype=np.float64) / alpha
    if mu:
        lam = layer_rd_lambda(v, mu)
        return project_rd(v, cfg, lam), alpha, lam
    return project_levels(v, cfg), alpha, 0.0


def _demo(args, files: OutputSet) -> int:
    from golden.compiler import SQUEEZE_MODES, compile_matrix
    from golden.program import dumps
    from golden.vmm import run, run_blocks
    from sme.frontier import DEFAULT_SQUEEZE, split_label

    cfg = _config(args)
    # The pattern point (and rate-distortion lambda) unless --pattern picks a pattern itself.
    base, mu = split_label(args.point)
    if not args.pattern:
        cfg = pattern_point(cfg, base)
    else:
        mu = 0.0
    if not args.out:
        raise UserError("--out '': an empty output directory name")
    out = Path(args.out)
    names = (*(f"demo_{m}.smeprog" for m in SQUEEZE_MODES), "demo_inputs.npy",
             "demo_weights_q.npy", "demo_tile.smeprog")
    for name in names:
        files.reserve(out / name)       # an output that cannot be written fails first
    rng = np.random.default_rng(args.seed)
    K, N = 576, 64             # a 3x3x64 -> 64 convolution unrolled
    # Synthetic, trained-like: Laplace(0, 1) weights, not real trained weights.
    w = rng.laplace(0.0, 1.0, size=(K, N))
    q, _, lam = quantize_point(w, cfg, mu)
    X = rng.integers(0, cfg.max_input + 1, size=(8, K))
    point_name = None if args.pattern else args.point
    point = f"point {args.point}, " if not args.pattern else ""
    print(f"demo: synthetic Laplace(0,1) layer {K}x{N} (seed {args.seed}), preset {cfg.name}, "
          f"{point}pattern {cfg.pattern}")
    ok = True
    for squeeze in SQUEEZE_MODES:
        prog = compile_matrix(q, cfg, squeeze=squeeze, meta={"source": "synthetic demo",
                                                             "point": point_name,
                                                             "rd_lambda": lam})
        files.add(out / f"demo_{squeeze}.smeprog", dumps(prog))
        Y, clipped = run(prog, X)
        exact = np.array_equal(Y, X @ q)
        if clipped:
            # A clipping ADC: x @ W no longer applies; check against the block models'
            # issue-by-issue evaluation (same outputs, same clipped samples).  It runs in
            # Python, so on the first two vectors only.
            Y_ref, clipped_ref = run_blocks(prog, X[:2])
            agree = np.array_equal(Y[:2], Y_ref) and clipped_ref == run(prog, X[:2])[1]
            ok &= agree
            check = (f"{clipped} clipped samples, x @ W {'holds' if exact else 'differs'}; "
                     f"vectors 0-1 match the block models with clipping: {agree}")
        else:
            ok &= exact
            check = f"0 clipped samples, matches x @ W: {exact}"
        s = prog.stats
        print(f"  {squeeze:>7} squeeze: {s['crossbars']:4d} crossbars (floor "
              f"{s['floor_crossbars']}), index {s['index_bits'] / q.size:5.2f} bits/weight, "
              f"{s['cycles']:5d} cycles/vector, {check}")
    files.add(out / "demo_inputs.npy", npy_bytes(X))
    files.add(out / "demo_weights_q.npy", npy_bytes(q))
    from golden.baselines import baseline_stats
    b = baseline_stats(q, None, cfg)
    print(f"  baseline ISAAC dense: {b['isaac']['crossbars']} crossbars, "
          f"{b['isaac']['cycles']} cycles/vector; SRE: {b['sre']['cycles']} cycles/vector")
    print(f"  programs and inputs in {out}/ (try: sme stats {out}/demo_row.smeprog)")

    # The same flow on the RTL: a layer small enough for one tile of the `fpga_small` preset
    # (4 crossbars of 32 x 32), run on the Amaranth tile with random stalls on every stream.
    small = preset("fpga_small")
    small = small.replace(**{f: getattr(cfg, f) for f in PATTERN_FIELDS})
    # 18 inputs (a 3x3x2 convolution unrolled): two OU windows, so that span packing fits the
    # 4 small crossbars for every seed
    w = rng.laplace(0.0, 1.0, size=(18, 16))
    w[np.abs(w) < np.quantile(np.abs(w), 0.5)] = 0            # half the weights pruned
    qt, _, lam_t = quantize_point(w, small, mu)
    prog = compile_matrix(qt, small, squeeze=DEFAULT_SQUEEZE,
                          meta={"source": "synthetic demo", "point": point_name,
                                "rd_lambda": lam_t})
    files.add(out / "demo_tile.smeprog", dumps(prog))
    Xt = rng.integers(0, small.max_input + 1, size=(3, w.shape[0]))
    tile_ok, summary = check_on_tile(prog, Xt, p_idle=0.3, seed=args.seed)
    print(f"RTL tile (preset fpga_small, {w.shape[0]}x{w.shape[1]} layer, {DEFAULT_SQUEEZE} "
          f"squeeze, random stalls):\n  {summary}")
    return 0 if ok and tile_ok else 1


# ---- entry point ------------------------------------------------------------------------------

#: Commands defined in this module (the others come from :data:`PLUGINS`).
BUILTIN = ("compile", "run", "stats", "simulate", "demo")


def build_parser(plugins: bool = True) -> argparse.ArgumentParser:
    """The parser of every command; ``plugins=False``: the built-in commands only (no plugin
    module, and so no Amaranth, is imported: a golden-model command starts in ~0.2 s)."""
    ap = ArgumentParser(prog="sme", description=__doc__.splitlines()[0])
    ap.add_argument("--debug", action="store_true",
                    help="show the traceback of an unexpected error")
    ap.add_argument("--max-bytes", type=byte_size, default=None, metavar="SIZE",
                    help=f"cap on the data of any one array read or produced (default 256M; "
                         f"sets {MAX_BYTES_ENV})")
    sub = ap.add_subparsers(dest="command", required=True)

    def add_cfg(p):
        p.add_argument("--preset", default="default", choices=sorted(PRESETS))
        p.add_argument("--pattern", choices=PATTERNS)
        p.add_argument("--fragment-bits", type=positive_int,
                       help="fragment pattern: mantissa bits shared-exponent fragments keep")
        p.add_argument("--fragment-sign", action="store_true",
                       help="fragment pattern: one sign per fragment")
        p.add_argument("--adc-bits", type=positive_int,
                       help="override the preset's ADC resolution")

    p = sub.add_parser("compile", help="quantize and compile a K x N weight matrix")
    p.add_argument("weights", help="K x N .npy matrix (floats, or integers with --integer)")
    p.add_argument("-o", "--output", required=True, help="program file to write")
    add_cfg(p)
    p.add_argument("--integer", action="store_true",
                   help="weights are already quantized integers on the pattern")
    p.add_argument("--per-channel", action="store_true", help="one scale per output column")
    p.add_argument("--point", default=None,
                   help=f"pattern point and quantizer instead of --pattern, e.g. {DEFAULT_POINT} "
                        "(the default of sme report and sme demo) or window-3; recorded in the "
                        "program's meta")
    from golden.compiler import SQUEEZE_MODES
    p.add_argument("--squeeze", choices=list(SQUEEZE_MODES), default="row")
    p.add_argument("--no-reorder", action="store_true", help="keep rows in input order")
    p.add_argument("--no-balance", action="store_true",
                   help="fill crossbars in order instead of balancing (segment and span "
                        "squeeze)")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("run", help="run input vectors through a program (golden VMM)")
    p.add_argument("program")
    p.add_argument("--inputs", required=True, help="M x K .npy of unsigned integers")
    p.add_argument("-o", "--output", required=True, help="M x N int64 .npy to write")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("stats", help="crossbars, cycles and index bits vs baselines and floor")
    p.add_argument("program")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("simulate", help="run a program on the RTL tile (Amaranth simulator) "
                                        "and check it against the golden model")
    p.add_argument("program")
    p.add_argument("--inputs", required=True, help="M x K .npy of unsigned integers")
    p.add_argument("--idle", type=probability, default=0.0,
                   help="probability of an idle cycle before each stream transfer (0..0.9)")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("demo", help="compile, run and check a built-in example layer")
    p.add_argument("--point", default=DEFAULT_POINT,
                   help="pattern point and quantizer (as `sme report --point`; default: the "
                        "point that meets issue 12's bar); --pattern overrides it")
    add_cfg(p)
    p.add_argument("--out", default="build/demo")
    p.add_argument("--seed", type=nonnegative_int, default=1)
    p.set_defaults(func=cmd_demo)

    for name in PLUGINS if plugins else ():
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name not in (name, name.rsplit(".", 1)[0]):
                raise
            continue
        if hasattr(mod, "register"):
            mod.register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run one command; the error boundary of every command (module docstring)."""
    import os
    import signal
    import traceback

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("SME_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    words = [a for i, a in enumerate(argv) if not a.startswith("-")
             and (i == 0 or argv[i - 1] != "--max-bytes")]
    ap = build_parser(plugins=not words or words[0] not in BUILTIN or "-h" in argv
                      or "--help" in argv)
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:             # --help, or a usage error already printed
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    name = f"{ap.prog} {args.command}"
    if args.max_bytes is not None:
        os.environ[MAX_BYTES_ENV] = args.max_bytes

    def on_sigterm(signum, frame):
        raise Terminated()

    try:
        old = signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:                  # not the main thread: leave signals alone
        old = None
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INT
    except Terminated:
        print(f"{name}: terminated", file=sys.stderr)
        return EXIT_TERM
    except SystemExit:
        raise
    except Exception as e:                                  # noqa: BLE001 - the boundary
        msg = explain(e)
        if debug:
            traceback.print_exc()
        if msg is None:
            print(f"{name}: internal error: {type(e).__name__}: {_one_line(e)} (a bug; "
                  f"rerun with --debug for the traceback)", file=sys.stderr)
            return EXIT_BUG
        print(f"{name}: error: {_one_line(msg)}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":
    sys.exit(main())
