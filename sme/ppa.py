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


def format_isaac_peak(tech: "ppa.Tech") -> str:
    """ISAAC-CE rebuilt from the component file at peak, next to the published figures."""
    r = ppa.isaac_peak(tech)
    pub = ppa.ISAAC_PUBLISHED
    lines = [f"ISAAC-CE at peak from {tech.path}: {r['ops_per_s'] / 1e12:.2f} TOP/s",
             f"{'component':<18} {'area mm^2':>10} {'power W':>9}"]
    for k in r["area_mm2"]:
        p = r["power_w"].get(k)
        lines.append(f"{k:<18} {r['area_mm2'][k]:>10.3f} {'-' if p is None else f'{p:.3f}':>9}")
    lines += [f"{'total':<18} {r['area_mm2_total']:>10.2f} {r['power_w_total']:>9.2f}"
              f"   (ISAAC Table 1: {pub['chip_area_mm2']} mm^2, {pub['chip_power_w']} W)",
              f"CE {r['ce_gops_per_mm2']:.1f} GOP/s/mm^2 (published {pub['ce_gops_per_mm2']}), "
              f"PE {r['pe_gops_per_w']:.1f} GOP/s/W (published {pub['pe_gops_per_w']})"]
    return "\n".join(lines)


def markdown_tables(rep: dict, labels: dict | None = None) -> str:
    """Markdown tables of a report's ``ppa`` section (docs/RESULTS.md is made with this)."""
    labels = labels or {}
    net = rep["ppa"]
    sch, sp = net["schemes"], net["speedup"]
    out = ["| scheme | energy / image (uJ) | area (mm^2) | crossbars | index share of energy | "
           "index share of area | latency, sequential (ms) | throughput, pipelined at "
           "ISAAC's area (images/s) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s, v in sch.items():
        pa = v["pipelined_area"]
        tput = "over area" if pa["over_budget"] else f"{pa['throughput_ips']:,.1f}"
        out.append(f"| {labels.get(s, s)} | {v['energy_uj']:,.1f} | {v['area_mm2']:,.1f} | "
                   f"{v['crossbars']:,} | {100 * v['index_share']['energy']:.1f} % | "
                   f"{100 * v['index_share']['area']:.1f} % | {v['latency_sequential_ms']:,.2f} "
                   f"| {tput} |")
    b = net.get("budgets")
    if b:
        out += ["", f"Pipeline budgets: {b['area_mm2']:,.1f} mm^2 (pipelined_area), "
                    f"{b['crossbars']:,} crossbars (pipelined_crossbars)."]
    out += ["", "| speedup vs ISAAC-style dense | " + " | ".join(labels.get(s, s) for s in sch)
            + " | paper |", "|---|" + "---:|" * (len(sch) + 1)]
    for d in DEFINITIONS:
        out.append(f"| {d} | " + " | ".join(_fmt(sp[d][s], ".2f", "x") for s in sch)
                   + f" | {net['paper_speedup']}x |")
    for key, unit in (("energy_by_component_uj", "energy per image, uJ"),
                      ("area_by_component_mm2", "area, mm^2")):
        comps = list(dict.fromkeys(c for v in sch.values() for c in v[key]))
        out += ["", f"| {unit} | " + " | ".join(labels.get(s, s) for s in sch) + " |",
                "|---|" + "---:|" * len(sch)]
        for c in comps:
            out.append(f"| {c} | " + " | ".join(f"{sch[s][key].get(c, 0.0):,.2f}" for s in sch)
                       + " |")
    return "\n".join(out)


def _cmd(args) -> int:
    if args.report_json is not None:
        from pathlib import Path
        try:
            rep = json.loads(Path(args.report_json).read_text())
            text = markdown_tables(rep, _labels())
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"{args.report_json}: not a report.json with a ppa section "
                             f"({type(e).__name__}: {e})") from None
        print(text)
        return 0
    tech = ppa.load_tech(args.tech)
    if args.isaac_peak:
        print(format_isaac_peak(tech))
        return 0
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
    p.add_argument("--report-json", default=None,
                   help="print the energy/area/latency tables of an sme report's report.json "
                        "as Markdown")
    p.add_argument("--isaac-peak", action="store_true",
                   help="rebuild ISAAC-CE from the file; peak CE and PE vs the published ones")
    p.set_defaults(func=_cmd)



# ---- whole networks (sme report) --------------------------------------------------------------

#: Schemes with a physical design to price (the floor has none: it is a count, not a chip).
PPA_SCHEMES = ("row", "segment", "span", "planes", "isaac", "sre")
#: The paper's speedup claim (SME ICCD'21 / SoBS-X abstract: "average 3.1x speed up").
PAPER_SPEEDUP = 3.1
#: Latency definitions, in report order (sme.ppa.network_ppa).
DEFINITIONS = {
    "sequential": "one image, layers in sequence, one copy of each layer",
    "pipelined_area": "ISAAC-style layer pipeline; replicas of the slowest layers within the "
                      "area budget (default: ISAAC-style dense's area); throughput ratio",
    "pipelined_crossbars": "ISAAC-style layer pipeline; replicas within the crossbar budget "
                           "(default: ISAAC-style dense's crossbars); throughput ratio",
    "legacy_replication": "the earlier report rule: replicas within ISAAC's crossbar count, "
                          "sum of replicated layer times (over-budget designs keep one copy)",
}


def network_ppa(layers: list[dict], cfg, tech: "ppa.Tech", periphery: dict | None = None,
                schemes=PPA_SCHEMES, *, area_budget_mm2: float | None = None,
                crossbar_budget: int | None = None) -> dict:
    """Energy, area, latency and speedups of every scheme of a network.

    ``layers``: one dict per layer with ``name``, ``pixels`` (input vectors per image, >= 1)
    and ``stats[scheme]`` (:func:`golden.ppa.layer_stats` of its program, or a baseline's
    stats with ``events``).  Every layer has its own crossbars (weights stay in place).

    Returns ``{"tech", "step_s", "schemes": {s: totals}, "speedup": {definition: {s: x}},
    "layers": [per layer and scheme rows]}``; energies in uJ per image, areas in mm^2,
    latencies in ms, throughput in images/s.  Speedups are against ``isaac``.
    ``area_budget_mm2`` / ``crossbar_budget``: the budgets of the pipelined definitions (default:
    ISAAC-style dense's own area and crossbars, where it has nothing spare; a larger budget
    lets every design, ISAAC included, replicate its slowest layers).
    """
    step = tech.timing["xbar_read_ns"] * 1e-9
    res = {s: [ppa.evaluate(L["stats"][s], cfg, tech, pixels=L["pixels"], periphery=periphery)
               for L in layers] for s in schemes}
    pixels = [max(1, int(L["pixels"])) for L in layers]
    out = {"tech": tech.name, "tech_file": tech.path, "step_s": step,
           "periphery": None if periphery is None else periphery.get("file"),
           "definitions": DEFINITIONS, "paper_speedup": PAPER_SPEEDUP, "schemes": {},
           "speedup": {d: {} for d in DEFINITIONS}, "layers": []}
    isaac_area = sum(r["area_um2_total"] for r in res["isaac"])
    isaac_xbars = sum(r["crossbars"] for r in res["isaac"])
    area_budget = isaac_area if area_budget_mm2 is None else float(area_budget_mm2) * 1e6
    xbar_budget = isaac_xbars if crossbar_budget is None else int(crossbar_budget)
    out["budgets"] = {"area_mm2": area_budget / 1e6, "crossbars": xbar_budget}
    for s in schemes:
        tot = ppa.combine(res[s])
        cyc = [r["cycles"] for r in res[s]]
        areas = [r["area_um2_total"] for r in res[s]]
        xbars = [r["crossbars"] for r in res[s]]
        by_area = ppa.network_latency(cyc, pixels, step, sizes=areas, budget=area_budget)
        by_xbar = ppa.network_latency(cyc, pixels, step, sizes=xbars, budget=xbar_budget)
        legacy_xbar = by_xbar if crossbar_budget is None else ppa.network_latency(
            cyc, pixels, step, sizes=xbars, budget=isaac_xbars)
        # the earlier rule: replicas at ISAAC's crossbar count, latency = sum of the replicated
        # layer times; a design over that count kept one copy of each layer
        legacy = by_area["sequential_s"] if legacy_xbar["over_budget"] \
            else legacy_xbar["pipelined_latency_s"]
        e_tot, a_tot = tot["energy_pj_total"], tot["area_um2_total"]
        out["schemes"][s] = {
            "energy_uj": e_tot / 1e6, "area_mm2": a_tot / 1e6, "crossbars": tot["crossbars"],
            "energy_by_component_uj": {k: v / 1e6 for k, v in tot["energy_pj"].items()},
            "area_by_component_mm2": {k: v / 1e6 for k, v in tot["area_um2"].items()},
            "index_share": {"energy": tot["energy_pj"]["index"] / e_tot if e_tot else 0.0,
                            "area": tot["area_um2"]["index"] / a_tot if a_tot else 0.0},
            "latency_sequential_ms": by_area["sequential_s"] * 1e3,
            "pipelined_area": _pipe(by_area), "pipelined_crossbars": _pipe(by_xbar),
            "legacy_replication": {"latency_ms": legacy * 1e3,
                                   "over_budget": legacy_xbar["over_budget"]},
        }
        for i, (L, r) in enumerate(zip(layers, res[s])):
            row = {"layer": L["name"], "scheme": s, "pixels": r["pixels"],
                   "crossbars": r["crossbars"], "cycles_per_vector": r["cycles"],
                   "latency_ms": r["latency_s_image"] * 1e3,
                   "energy_uj": r["energy_pj_total"] / 1e6, "area_mm2": r["area_um2_total"] / 1e6,
                   "replicas_area_budget": (by_area["replicas"] or [None] * len(layers))[i]}
            row.update({f"energy_uj_{k}": v / 1e6 for k, v in r["energy_pj"].items()})
            row.update({f"area_mm2_{k}": v / 1e6 for k, v in r["area_um2"].items()})
            out["layers"].append(row)
    base = out["schemes"]["isaac"]
    for s, v in out["schemes"].items():
        sp = out["speedup"]
        sp["sequential"][s] = _ratio(base["latency_sequential_ms"], v["latency_sequential_ms"])
        for d in ("pipelined_area", "pipelined_crossbars"):
            sp[d][s] = _ratio(base[d]["period_ms"], v[d]["period_ms"])
        sp["legacy_replication"][s] = _ratio(base["legacy_replication"]["latency_ms"],
                                             v["legacy_replication"]["latency_ms"])
    return out


def _labels() -> dict:
    """The report's scheme labels (imported late: sme.report imports this module)."""
    from .report import LABELS
    return LABELS


def _pipe(lat: dict) -> dict:
    period = lat["period_s"]
    return {"period_ms": None if period is None else period * 1e3,
            "throughput_ips": None if not period else 1.0 / period,
            "latency_ms": None if lat["pipelined_latency_s"] is None
            else lat["pipelined_latency_s"] * 1e3,
            "over_budget": lat["over_budget"], "replicas": lat["replicas"]}


def _ratio(a, b):
    return None if a is None or not b else a / b


def ppa_csv(net: dict) -> bytes:
    """Per layer and scheme: crossbars, cycles, latency, energy and area with components."""
    import csv
    import io
    rows = net["layers"]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    wr = csv.DictWriter(buf, keys, lineterminator="\n")
    wr.writeheader()
    wr.writerows(rows)
    return buf.getvalue().encode()


def _fmt(x, spec=".2f", suffix="") -> str:
    return "-" if x is None else f"{x:{spec}}{suffix}"


def format_ppa(net: dict, labels: dict | None = None) -> str:
    """The terminal table of :func:`network_ppa`."""
    labels = labels or {}
    sch, sp = net["schemes"], net["speedup"]
    lines = [f"Energy, area, latency (technology {net['tech']}: {net['tech_file']}; one OU read "
             f"per crossbar per {net['step_s'] * 1e9:.0f} ns; digital periphery from "
             f"{net['periphery'] or 'ISAAC shift-and-add units (no yosys counts for config)'})",
             f"{'scheme':<24} {'energy/img':>11} {'area':>9} {'index E/A':>11} "
             f"{'latency seq':>12} {'throughput':>11} {'speedup seq/pipe-A/pipe-X/legacy':>34}",
             f"{'':<24} {'uJ':>11} {'mm^2':>9} {'%':>11} {'ms':>12} {'img/s':>11}"]
    for s, v in sch.items():
        share = v["index_share"]
        pa = v["pipelined_area"]
        spd = "/".join(_fmt(sp[d][s], ".2f") for d in DEFINITIONS)
        lines.append(
            f"{labels.get(s, s):<24} {v['energy_uj']:>11,.1f} {v['area_mm2']:>9,.1f} "
            f"{100 * share['energy']:>5.1f}/{100 * share['area']:<5.1f} "
            f"{v['latency_sequential_ms']:>12,.3f} "
            f"{_fmt(pa['throughput_ips'], ',.1f') if not pa['over_budget'] else 'over area':>11} "
            f"{spd:>34}")
    b = net.get("budgets", {})
    lines.append(f"Speedups vs ISAAC-style dense under each definition (paper: "
                 f"{net['paper_speedup']}x average); pipeline budgets {b.get('area_mm2', 0):,.1f}"
                 f" mm^2 and {b.get('crossbars', 0):,} crossbars:")
    for d, text in net["definitions"].items():
        lines.append(f"  {d}: {text}")
    return "\n".join(lines)


def ppa_plot(net: dict, title: str, labels: dict | None = None) -> bytes:
    """PNG: energy per image and area, stacked by component, one bar per scheme."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or {}
    sch = net["schemes"]
    names = list(sch)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    for ax, key, unit in ((axes[0], "energy_by_component_uj", "energy per image (uJ)"),
                          (axes[1], "area_by_component_mm2", "area (mm^2)")):
        comps = list(dict.fromkeys(c for s in names for c in sch[s][key]))
        bottom = [0.0] * len(names)
        cmap = plt.get_cmap("tab20")
        for i, c in enumerate(comps):
            vals = [sch[s][key].get(c, 0.0) for s in names]
            ax.bar(range(len(names)), vals, bottom=bottom, label=c, color=cmap(i % 20))
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([labels.get(s, s) for s in names], rotation=20, ha="right",
                           fontsize=8)
        ax.set_ylabel(unit)
        ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.3))
    fig.suptitle(f"{title} - technology {net['tech']}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
