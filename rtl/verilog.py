"""Verilog emission: one file per top per preset, with a JSON sidecar (config + ports).

``sme verilog [--preset NAME | --all-presets] [-o DIR]`` (or ``python -m rtl.verilog``) writes
``DIR/<preset>/<top>.v`` and ``DIR/<preset>/<top>.json``.  Output is reproducible: no source
locations (``emit_src=False``), sorted JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import data, wiring

from golden import tile_image as ti
from golden.config import PRESETS, SMEConfig, preset

__all__ = ["TOPS", "emit", "emit_preset", "port_list", "register", "main"]


def _tops():
    from .tile import Tile
    return {"sme_tile": Tile}


TOPS = ("sme_tile",)


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


def emit(cfg: SMEConfig, top: str = "sme_tile") -> tuple[str, dict]:
    """Verilog text and sidecar dict of one top for one config."""
    component = _tops()[top](cfg)
    text = verilog.convert(component, name=top, emit_src=False)
    sidecar = {
        "top": top, "config": cfg.to_dict(),
        "derived": {"tile_steps": cfg.tile_steps, "accumulator_bits": cfg.accumulator_bits,
                    "adc_max": cfg.adc_max, "config_id": ti.config_id(cfg),
                    "image_version": ti.VERSION, "cell_words": ti.cell_words(cfg),
                    "desc_words": ti.desc_words(cfg), "latency": component.latency},
        "ports": port_list(component),
        "payloads": {name: layout_fields(getattr(component.layouts, lay)) for name, lay in
                     (("i_load", "load"), ("i_vec", "vin"), ("o_vec", "vout"),
                      ("status", "status"))},
        "errors": {e.name: e.value for e in ti.TileError},
    }
    return text, sidecar


def emit_preset(name: str, out_dir: str | Path) -> list[Path]:
    cfg = preset(name)
    out = Path(out_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for top in TOPS:
        text, sidecar = emit(cfg, top)
        (out / f"{top}.v").write_text(text)
        (out / f"{top}.json").write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
        written += [out / f"{top}.v", out / f"{top}.json"]
    return written


def _add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--preset", default=None, help=f"one of {', '.join(PRESETS)} (default: "
                   "default)")
    g.add_argument("--all-presets", action="store_true", help="every preset")
    p.add_argument("-o", "--out", default="build/verilog", help="output directory "
                   "(default: build/verilog)")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``verilog`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser("verilog", help="emit Verilog + JSON sidecar per preset",
                              description=__doc__.splitlines()[0])
    _add_arguments(p)
    p.set_defaults(func=main)
    return p


def main(args) -> int:
    names = list(PRESETS) if args.all_presets else [args.preset or "default"]
    for name in names:
        try:
            preset(name)
        except ValueError as e:
            print(f"sme verilog: {e}", file=sys.stderr)
            return 2
    for name in names:
        for path in emit_preset(name, args.out):
            print(path)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m rtl.verilog", description=__doc__)
    _add_arguments(parser)
    sys.exit(main(parser.parse_args()))
