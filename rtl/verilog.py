"""Verilog emission: one file per top per preset, with a JSON sidecar (config + ports).

``sme verilog [--preset NAME | --all-presets] [-o DIR]`` (or ``python -m rtl.verilog``) writes
``DIR/<preset>/<top>.v`` and ``DIR/<preset>/<top>.json`` for the tile top; ``--top`` also emits
the blocks, or ``sme_board_core``: UART + host link + tile with pins ``rx``, ``tx``,
``reset_req`` and ``leds``, for a board of your own in any vendor flow (``--clock`` and
``--baud`` set its UART divisor).  Output is reproducible: no source locations
(``emit_src=False``), sorted JSON; files are written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import data, wiring

from golden import frames
from golden import tile_image as ti
from golden.config import PRESETS, SMEConfig, check_range, preset
from golden.fileio import OutputSet

__all__ = ["TOPS", "ALL_TOPS", "emit", "top_files", "write_top", "emit_preset", "port_list",
           "payload_fields", "layout_fields", "register", "main"]


#: Board core defaults: the ULX3S clock and the host link's default baud rate.
BOARD_CLOCK = 100e6


def _board_core(cfg: SMEConfig, clock: float = BOARD_CLOCK, baud: int = frames.DEFAULT_BAUD):
    from .boards import BoardCore
    from .uart import baud_divisor
    return BoardCore(cfg, divisor=baud_divisor(clock, baud), led_stretch=int(clock // 20))


def _tops():
    from .controller import Controller
    from .scheduler import Scheduler
    from .splice import Splice
    from .tile import Tile
    from .xbar_emulator import XbarEmulator
    return {"sme_tile": Tile, "sme_scheduler": Scheduler, "sme_xbar_emulator": XbarEmulator,
            "sme_splice": Splice, "sme_controller": Controller, "sme_board_core": _board_core}


#: Tops written by default (``--top`` adds the blocks, for block-level benches, and the board
#: core).
TOPS = ("sme_tile",)
ALL_TOPS = ("sme_tile", "sme_scheduler", "sme_xbar_emulator", "sme_splice", "sme_controller",
            "sme_board_core")


def port_list(component: wiring.Component) -> list[dict]:
    """Verilog ports of a component: name (members joined by ``__``), direction, width."""
    ports = [{"name": "clk", "dir": "input", "width": 1},
             {"name": "rst", "dir": "input", "width": 1}]
    for path, member, value in component.signature.flatten(component):
        ports.append({"name": "__".join(str(p) for p in path),
                      "dir": "input" if member.flow == wiring.In else "output",
                      "width": len(value.as_value()) if hasattr(value, "as_value")
                      else len(value)})
    return ports


def layout_fields(layout, prefix="") -> dict:
    """Flattened ``{field path: [offset, width]}`` of a struct/array layout (for benches that
    pack payloads without Amaranth)."""
    out = {}
    for key, field in layout:
        name = f"{prefix}{key}"
        sub = field.shape
        if isinstance(sub, (data.StructLayout, data.ArrayLayout)):
            for k, (o, w) in layout_fields(sub, f"{name}.").items():
                out[k] = [field.offset + o, w]
        else:
            out[name] = [field.offset, field.width]
    return out


def payload_fields(component: wiring.Component) -> dict:
    """``{verilog port: {field path: [offset, width]}}`` for every port with a layout."""
    out = {}
    for path, _, value in component.signature.flatten(component):
        if isinstance(value, data.View) and isinstance(
                value.shape(), (data.StructLayout, data.ArrayLayout)):
            out["__".join(str(p) for p in path)] = layout_fields(value.shape())
    return out


def emit(cfg: SMEConfig, top: str = "sme_tile", *, clock: float = BOARD_CLOCK,
         baud: int = frames.DEFAULT_BAUD) -> tuple[str, dict]:
    """Verilog text and sidecar dict of one top for one config (``clock`` and ``baud`` matter
    to ``sme_board_core`` only)."""
    if top == "sme_board_core":
        component = _board_core(cfg, clock, baud)
    else:
        component = _tops()[top](cfg)
    text = verilog.convert(component, name=top, emit_src=False)
    sidecar = {
        "top": top, "config": cfg.to_dict(),
        "derived": {"tile_steps": cfg.tile_steps, "tile_rowlists": cfg.effective_tile_rowlists,
                    "rowlist_words": ti.rowlist_words(cfg),
                    "accumulator_bits": cfg.accumulator_bits,
                    "adc_max": cfg.adc_max, "config_id": ti.config_id(cfg),
                    "image_version": ti.VERSION, "cell_words": ti.cell_words(cfg),
                    "desc_words": ti.desc_words(cfg),
                    "latency": getattr(component, "latency", None)},
        "ports": port_list(component),
        "payloads": payload_fields(component),
        "errors": {e.name: e.value for e in ti.TileError},
    }
    if top == "sme_board_core":
        sidecar["board_core"] = {
            "clock_hz": clock, "baud": baud, "divisor": component.divisor,
            "timeout_cycles": component.timeout_cycles, "max_payload": component.max_payload,
            "result_depth": component.result_depth, "protocol_version": frames.VERSION,
            "leds": ["loaded", "busy", "error", "link active"]}
    return text, sidecar


def top_files(cfg: SMEConfig, top: str, *, clock: float = BOARD_CLOCK,
              baud: int = frames.DEFAULT_BAUD) -> dict[str, bytes]:
    """``{"<top>.v": Verilog, "<top>.json": sidecar}`` of one top: the one place a sidecar is
    serialized (every writer of emitted Verilog goes through here)."""
    text, sidecar = emit(cfg, top, clock=clock, baud=baud)
    return {f"{top}.v": text.encode(),
            f"{top}.json": (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode()}


def write_top(cfg: SMEConfig, top: str, out: str | Path, *, clock: float = BOARD_CLOCK,
              baud: int = frames.DEFAULT_BAUD) -> tuple[Path, Path]:
    """Write ``out/<top>.v`` and its sidecar ``out/<top>.json`` (:func:`top_files`) together
    or not at all (one :class:`~golden.fileio.OutputSet`).  A file whose content is unchanged
    is left alone, so its timestamp does not trigger a simulator rebuild (the cocotb harness's
    cache)."""
    out = Path(out)
    with OutputSet() as files:
        for name, data in top_files(cfg, top, clock=clock, baud=baud).items():
            path = out / name
            if not path.exists() or path.read_bytes() != data:
                files.add(path, data)
    return out / f"{top}.v", out / f"{top}.json"


def emit_preset(name: str, out_dir: str | Path, tops=TOPS, *, clock: float = BOARD_CLOCK,
                baud: int = frames.DEFAULT_BAUD, files: OutputSet | None = None) -> list[Path]:
    """Write ``<out_dir>/<name>/<top>.v`` and ``<top>.json`` for every top: all of them or none
    (staged in ``files`` if given, committed by its owner, else in a set of their own)."""
    if files is None:
        with OutputSet() as files:
            return emit_preset(name, out_dir, tops, clock=clock, baud=baud, files=files)
    cfg = preset(name)
    out = Path(out_dir) / name
    written = []
    for top in tops:
        for fname, data in top_files(cfg, top, clock=clock, baud=baud).items():
            files.add(out / fname, data)
            written.append(out / fname)
    return written


def _add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--preset", default=None, help=f"one of {', '.join(PRESETS)} (default: "
                   "default)")
    g.add_argument("--all-presets", action="store_true", help="every preset")
    p.add_argument("-o", "--out", default="build/verilog", help="output directory "
                   "(default: build/verilog)")
    p.add_argument("--top", action="append", choices=ALL_TOPS, default=None,
                   help="top to emit (repeatable; default: sme_tile)")
    p.add_argument("--clock", type=float, default=BOARD_CLOCK,
                   help="sme_board_core: clock in Hz (default: 100e6)")
    p.add_argument("--baud", type=int, default=frames.DEFAULT_BAUD,
                   help=f"sme_board_core: UART baud rate (default: {frames.DEFAULT_BAUD})")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``verilog`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser("verilog", help="emit Verilog + JSON sidecar per preset",
                              description=__doc__.splitlines()[0])
    _add_arguments(p)
    p.set_defaults(func=main)
    return p


def main(args) -> int:
    """``sme verilog``: bad presets and options raise ``ValueError`` (the CLI reports them);
    the files of every preset and top are written together or not at all."""
    check_range("--clock", args.clock, 0.0, 1e10, lo_open=True)
    check_range("--baud", args.baud, 1)
    if not args.out:
        raise ValueError("-o '': an empty output directory name")
    names = list(PRESETS) if args.all_presets else [args.preset or "default"]
    for name in names:
        preset(name)
    if "sme_board_core" in (args.top or ()):
        from .uart import baud_divisor
        baud_divisor(args.clock, args.baud)         # refuses a baud rate it cannot make
    with OutputSet() as files:
        for name in names:                  # an output that cannot be written fails first
            for top in args.top or TOPS:
                for ext in (".v", ".json"):
                    files.reserve(Path(args.out) / name / f"{top}{ext}")
        written = [path for name in names for path in emit_preset(
            name, args.out, tuple(args.top or TOPS), clock=args.clock, baud=args.baud,
            files=files)]
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m rtl.verilog", description=__doc__)
    _add_arguments(parser)
    sys.exit(main(parser.parse_args()))
