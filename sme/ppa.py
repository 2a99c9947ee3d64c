"""``sme ppa``: the technology's constants and sources, and a compiled program's energy, area and
latency in physical units (the model is :mod:`golden.ppa`).

    sme ppa --tech isaac32                    # constants, one per line, with their sources
    sme ppa --tech my_tech.json --program P --pixels 3136
"""

from __future__ import annotations

import json

from golden import ppa

__all__ = ["register", "format_result"]


def format_result(res: dict, what: str) -> str:
    """A per-component table of one :func:`golden.ppa.evaluate` result."""
    lines = [f"{what}: {res['crossbars']} crossbars, {res['cycles']} cycles per vector, "
             f"{res['pixels']} vectors per image",
             f"  energy per image  {res['energy_pj_total'] / 1e6:12.4f} uJ",
             f"  area              {res['area_um2_total'] / 1e6:12.4f} mm^2",
             f"  latency per image {res['latency_s_image'] * 1e6:12.3f} us "
             f"({res['latency_s_vector'] * 1e9:.0f} ns per vector)",
             "  component          energy uJ      area mm^2"]
    for k in sorted(set(res["energy_pj"]) | set(res["area_um2"])):
        e, a = res["energy_pj"].get(k), res["area_um2"].get(k)
        lines.append(f"  {k:<18} {'-' if e is None else f'{e / 1e6:10.4f}':>10} "
                     f"{'-' if a is None else f'{a / 1e6:12.5f}':>14}")
    return "\n".join(lines)


def _cmd(args) -> int:
    tech = ppa.load_tech(args.tech)
    if args.program is None:
        print(tech.describe())
        return 0
    from golden.program import load
    prog = load(args.program)
    periphery = ppa.load_periphery(prog.cfg)
    res = ppa.evaluate(prog, prog.cfg, tech, pixels=args.pixels, periphery=periphery)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(format_result(res, f"{args.program} ({prog.options.get('squeeze')} squeeze, "
                                 f"technology {tech.name})"))
        if periphery is None:
            print("  (no yosys counts for this config: digital periphery = ISAAC shift-and-add "
                  "units)")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ppa", help="energy/area/latency model: constants and sources, or a program's figures")
    p.add_argument("--tech", default="isaac32",
                   help=f"{' | '.join(ppa.TECHS)} | a technology JSON file")
    p.add_argument("--program", default=None, help="a compiled program file to evaluate")
    p.add_argument("--pixels", type=int, default=1, help="input vectors per image")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd)

