"""Energy, area and latency in physical units: a component model with cited constants.

Everything here is numpy only.  The technology is a JSON file (``golden/tech/*.json``, or a
user's file with the same fields) with one entry per component: energy per event, area per
instance and a ``source`` string saying where each number comes from.  Two files ship:
``isaac32`` (ISAAC's 32 nm table as reproduced in Accelergy's hwcomponents-library and the
PUMA simulator, the default) and ``neurram130`` (NeuRRAM's measured converters, for comparison).

API (what reports and sweeps call)
----------------------------------
``load_tech(name_or_path) -> Tech``
    Read and validate a technology file; any defect raises :class:`TechError` naming the file,
    the field and the value.
``program_events(program) -> dict`` / ``baselines.baseline_stats(...)[scheme]["events"]``
    Event counts **per input vector** (see *Events*).
``evaluate(stats_or_program, cfg, tech, pixels=1, periphery=None) -> dict``
    Energy (pJ per vector and per image, by component), area (um^2, by component), and latency
    (seconds per vector and per image) of one layer for one scheme.  ``stats_or_program`` is a
    :class:`~golden.program.Program` or a dict with ``events``, ``crossbars``, ``index_bits``,
    ``descriptor_bits`` and ``cycles`` (what :func:`layer_stats` returns).
``combine(results) -> dict``
    Sum per-layer results of one scheme (energy, area and sequential latency add up).

Events (per input vector, exactly as :func:`golden.vmm.run` executes a program)
-------------------------------------------------------------------------------
For every input bit t and every activation a (OU read) of the schedule:

* ``wordline_drives``: the enabled wordlines of a (1-bit DAC drives, whatever the bit value);
* ``adc_conversions``: the bitlines a reads that feed an output column (< N), one sample each;
  the same count of ``sample_holds`` and ``shift_adds`` (the splice adds every sample once);
* ``cell_reads``: enabled wordlines x read bitlines (the crossbar's read energy is per cell);
* ``index_bits_read``: the index entries of a's enabled wordlines plus its block's entry
  (:func:`golden.compiler.index_widths`); ``descriptor_bits_read``: the activation's address
  (active flag, window, column group: :func:`golden.tile_image.desc_fields`);
* ``input_register_bits`` = wordline drives (one input bit per enabled wordline).

Per vector, independent of t: ``buffer_bits`` = (K + N) x input_bits (inputs read from and
requantized outputs written to the tile buffer) and ``output_values`` = N.  Baselines count
the same events for their own mapping (:mod:`golden.baselines`).

Area
----
Per crossbar: the array (scaled by cells from the file's reference size), ``adc_per_xbar``
ADCs at the config's ADC resolution, one DAC per row, one sample-and-hold per column, input
and output registers; per ``xbars_per_edram`` crossbars one eDRAM buffer; index and
descriptor storage per bit; and the digital periphery (splice, scheduler, controller) per tile
of ``cfg.tile_xbars`` crossbars from yosys cell counts (``golden/tech/periphery_*.json``,
written by ``python -m rtl.synth_area``) x the file's ``logic_gate``/``flip_flop`` areas.

Latency
-------
One step (one OU read per crossbar) takes ``xbar_read_ns``; the ADC, splice and scheduler are
pipelined behind it (ISAAC's 1.2 GHz digital clock converts the ``ou_cols`` samples of a step in
``ou_cols / 1.2e9`` s < 100 ns).  A layer's vector takes ``cycles`` steps; an image takes
``cycles x pixels`` steps on one copy of the layer.  Network-level definitions (sequential,
pipelined at a budget, the legacy replication rule) are in :func:`network_latency`.
"""

from __future__ import annotations

import heapq
import json
import math
from pathlib import Path

import numpy as np

from .config import SMEConfig
from .program import Program

__all__ = ["TechError", "Tech", "load_tech", "TECH_DIR", "TECHS", "COMPONENTS", "program_events",
           "layer_stats", "evaluate", "combine", "periphery_counts", "load_periphery",
           "network_latency", "replicas", "isaac_peak", "EVENT_KEYS", "ISAAC_PUBLISHED"]

TECH_DIR = Path(__file__).resolve().parent / "tech"
TECHS = ("isaac32", "neurram130")

#: Component name -> numeric fields it must have (besides ``unit`` and ``source``).
COMPONENTS = {
    "adc": ("by_bits",), "dac": ("energy_pj", "area_um2"),
    "xbar": ("energy_pj", "area_um2", "rows", "cols"), "sample_hold": ("energy_pj", "area_um2"),
    "shift_add": ("energy_pj", "area_um2"),
    "input_register": ("energy_pj", "area_um2", "bits"),
    "output_register": ("energy_pj", "area_um2"),
    "edram": ("energy_pj", "area_um2", "bits", "capacity_bits"),
    "index_memory": ("energy_pj", "area_um2"), "descriptor_memory": ("energy_pj", "area_um2"),
    "logic_gate": ("energy_pj", "area_um2"), "flip_flop": ("energy_pj", "area_um2"),
    "router": ("energy_pj", "area_um2"), "edram_bus": ("energy_pj", "area_um2"),
    "chip_link": ("energy_pj", "area_um2"),
}
TIMING = ("xbar_read_ns", "digital_clock_hz")
ORGANIZATION = ("adc_per_xbar", "xbars_per_edram", "xbars_per_tile", "shift_add_per_xbar")
#: Fields that must be strictly positive (a zero would divide or make the model meaningless).
POSITIVE = {"rows", "cols", "bits", "capacity_bits", "xbar_read_ns", "digital_clock_hz",
            "xbars_per_edram", "xbars_per_tile"}

EVENT_KEYS = ("cell_reads", "wordline_drives", "adc_conversions", "sample_holds", "shift_adds",
              "index_bits_read", "descriptor_bits_read", "input_register_bits", "buffer_bits",
              "output_values")

#: ISAAC-CE's published peak figures (Shafiee et al., ISCA 2016, Sec. VIII / Table 6, as quoted
#: with these values by PipeLayer, Song et al., HPCA 2017, Sec. 6.6) and its chip totals
#: (ISAAC Table 1).  See docs/PPA.md for how the model compares.
ISAAC_PUBLISHED = {"ce_gops_per_mm2": 479.0, "pe_gops_per_w": 380.7, "chip_area_mm2": 85.4,
                   "chip_power_w": 65.8, "tiles": 168}


class TechError(ValueError):
    """A technology file that cannot be used: missing field, bad value, unknown component."""


# ---- technology file -----------------------------------------------------------------------

class Tech:
    """A validated technology: ``components[name]`` dicts, ``timing`` and ``organization``
    values (plain floats), their ``sources``, the file ``path`` and ``name``."""

    def __init__(self, data: dict, path: str):
        self.path = path
        self.name = data["name"]
        self.description = data.get("description", "")
        self.components = data["components"]
        self.timing = {k: float(v["value"]) for k, v in data["timing"].items()}
        self.organization = {k: float(v["value"]) for k, v in data["organization"].items()}
        self.sources = {f"timing.{k}": v["source"] for k, v in data["timing"].items()}
        self.sources.update({f"organization.{k}": v["source"]
                             for k, v in data["organization"].items()})
        self.sources.update({f"components.{k}": v["source"] for k, v in self.components.items()})

    def e(self, name: str) -> float:
        """Energy per event of a component, pJ."""
        return float(self.components[name]["energy_pj"])

    def a(self, name: str) -> float:
        """Area per instance of a component, um^2."""
        return float(self.components[name]["area_um2"])

    def adc(self, bits: int) -> tuple[float, float]:
        """(energy pJ, area um^2) of one ADC of ``bits`` resolution.  A resolution the file
        lacks is priced at the smallest listed one above it (a converter with more bits can
        do the job: an upper bound); none above it raises :class:`TechError`."""
        table = self.components["adc"]["by_bits"]
        fits = sorted(int(b) for b in table if int(b) >= bits)
        if not fits:
            raise TechError(f"{self.path}: components.adc.by_bits has no entry for {bits}-bit "
                            f"ADCs or more (the config needs it); entries: {', '.join(table)}")
        ent = table[str(fits[0])]
        return float(ent["energy_pj"]), float(ent["area_um2"])

    def describe(self) -> str:
        """The constants and their sources, as text (``sme ppa --tech``)."""
        lines = [f"technology {self.name} ({self.path})", self.description, ""]
        for k in TIMING:
            lines.append(f"timing.{k} = {self.timing[k]:g}    [{self.sources['timing.' + k]}]")
        for k in ORGANIZATION:
            lines.append(f"organization.{k} = {self.organization[k]:g}    "
                         f"[{self.sources['organization.' + k]}]")
        lines.append("")
        for name, c in self.components.items():
            lines.append(f"{name}: per {c['unit']}")
            if "by_bits" in c:
                for b, ent in c["by_bits"].items():
                    lines.append(f"    {b:>2} bit: {ent['energy_pj']:g} pJ, "
                                 f"{ent['area_um2']:g} um^2")
            else:
                extra = ", ".join(f"{k} {c[k]:g}" for k in COMPONENTS[name]
                                  if k not in ("energy_pj", "area_um2"))
                lines.append(f"    {c['energy_pj']:g} pJ, {c['area_um2']:g} um^2"
                             + (f", {extra}" if extra else ""))
            lines.append(f"    source: {c['source']}")
        return "\n".join(lines)


def _number(path: str, field: str, v, positive: bool = False) -> float:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if not ok:
        raise TechError(f"{path}: {field} must be a number, not {v!r}")
    if v < 0 or (positive and v == 0):
        raise TechError(f"{path}: {field} must be {'positive' if positive else 'non-negative'}"
                        f", not {v!r}")
    return float(v)


def _fields(path: str, where: str, d, required, optional=()) -> None:
    if not isinstance(d, dict):
        raise TechError(f"{path}: {where} must be a JSON object, not {d!r}")
    for k in required:
        if k not in d:
            raise TechError(f"{path}: {where}.{k} is missing" if where else f"{path}: {k} is "
                            "missing")
    unknown = sorted(set(d) - set(required) - set(optional))
    if unknown:
        raise TechError(f"{path}: unknown field {(where + '.' if where else '') + unknown[0]}"
                        f" = {d[unknown[0]]!r}")


def _source(path: str, field: str, v) -> None:
    if not isinstance(v, str) or not v.strip():
        raise TechError(f"{path}: {field} must be a non-empty string citing the value's source,"
                        f" not {v!r}")


def validate_tech(data, path: str) -> None:
    """Raise :class:`TechError` on the first defect of a technology dict (read from ``path``)."""
    _fields(path, "", data, ("name", "timing", "organization", "components"), ("description",))
    if not isinstance(data["name"], str) or not data["name"]:
        raise TechError(f"{path}: name must be a non-empty string, not {data['name']!r}")
    for section, keys in (("timing", TIMING), ("organization", ORGANIZATION)):
        _fields(path, section, data[section], keys)
        for k in keys:
            ent = data[section][k]
            _fields(path, f"{section}.{k}", ent, ("value", "source"))
            _number(path, f"{section}.{k}.value", ent["value"], k in POSITIVE)
            _source(path, f"{section}.{k}.source", ent["source"])
    comps = data["components"]
    if not isinstance(comps, dict):
        raise TechError(f"{path}: components must be a JSON object, not {comps!r}")
    for name in comps:
        if name not in COMPONENTS:
            raise TechError(f"{path}: unknown component components.{name} (known: "
                            f"{', '.join(COMPONENTS)})")
    for name, fields in COMPONENTS.items():
        if name not in comps:
            raise TechError(f"{path}: components.{name} is missing")
        c = comps[name]
        where = f"components.{name}"
        _fields(path, where, c, fields + ("unit", "source"))
        _source(path, f"{where}.source", c["source"])
        if not isinstance(c["unit"], str):
            raise TechError(f"{path}: {where}.unit must be a string, not {c['unit']!r}")
        for f in fields:
            if f == "by_bits":
                table = c[f]
                if not isinstance(table, dict) or not table:
                    raise TechError(f"{path}: {where}.by_bits must be a non-empty object "
                                    f"(resolution -> costs), not {table!r}")
                for b, ent in table.items():
                    if not b.isdigit() or not 1 <= int(b) <= 16:
                        raise TechError(f"{path}: {where}.by_bits key must be a resolution "
                                        f"1..16, not {b!r}")
                    _fields(path, f"{where}.by_bits.{b}", ent, ("energy_pj", "area_um2"))
                    for k in ("energy_pj", "area_um2"):
                        _number(path, f"{where}.by_bits.{b}.{k}", ent[k])
            else:
                _number(path, f"{where}.{f}", c[f], f in POSITIVE)


def load_tech(name_or_path: str | Path = "isaac32") -> Tech:
    """A shipped technology by name (:data:`TECHS`) or a JSON file by path, validated."""
    p = Path(name_or_path)
    if str(name_or_path) in TECHS:
        p = TECH_DIR / f"{name_or_path}.json"
    path = str(name_or_path)
    try:
        text = p.read_text()
    except OSError as e:
        raise TechError(f"{path}: cannot read technology file ({e.strerror}); shipped: "
                        f"{', '.join(TECHS)}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise TechError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    validate_tech(data, path)
    return Tech(data, path)


# ---- events -----------------------------------------------------------------------------------

def _desc_bits(cfg: SMEConfig) -> int:
    """Bits of an activation's address: active flag, window and column group."""
    from .tile_image import desc_fields
    return sum(w for name, w in desc_fields(cfg) if name in ("active", "window", "colgroup"))


def program_events(p: Program) -> dict:
    """Event counts per input vector of a compiled program (module docstring, *Events*)."""
    from .compiler import index_widths

    cfg = p.cfg
    A, cu = cfg.input_bits, cfg.ou_cols
    K, N = p.shape
    rows = (p.inputs >= 0).sum(axis=1).astype(np.int64)                       # n_act
    cols = np.clip(N - p.acts["outgroup"].astype(np.int64) * cu, 0, cu)       # read bitlines
    per_row, per_block = index_widths(cfg, p.shape, p.options.get("squeeze", "row"),
                                      bool(p.options.get("reorder", True)))
    wl = int(rows.sum())
    conv = int(cols.sum())
    return {
        "cell_reads": A * int((rows * cols).sum()),
        "wordline_drives": A * wl,
        "adc_conversions": A * conv,
        "sample_holds": A * conv,
        "shift_adds": A * conv,
        "index_bits_read": A * (wl * per_row + p.n_act * per_block),
        "descriptor_bits_read": A * p.n_act * _desc_bits(cfg),
        "input_register_bits": A * wl,
        "buffer_bits": (K + N) * cfg.input_bits,
        "output_values": N,
    }


def layer_stats(p: Program) -> dict:
    """What :func:`evaluate` needs of a program, without its arrays."""
    return {"events": program_events(p), "crossbars": p.n_xbars,
            "index_bits": int(p.stats.get("index_bits", 0)),
            "descriptor_bits": p.n_act * _desc_bits(p.cfg),
            "cycles": p.cycles_per_vector(), "shape": list(p.shape)}


# ---- energy, area, latency --------------------------------------------------------------------

def periphery_counts(data: dict) -> tuple[int, int]:
    """(logic gates, flip-flops) of one tile from a ``periphery_*.json`` dict: every yosys cell
    whose type names a flip-flop (``DFF``) counts as one flip-flop, every other ``$_..._`` gate
    as one gate; memories (``$mem_v2``) are storage and are excluded."""
    gates = ffs = 0
    for block in data["blocks"].values():
        for cell, n in block["cells"].items():
            if "DFF" in cell:
                ffs += n
            elif cell.startswith("$_"):
                gates += n
    return gates, ffs


def load_periphery(cfg: SMEConfig) -> dict | None:
    """The shipped yosys counts for ``cfg``'s hardware, or None when none matches."""
    from .tile_image import HARDWARE_FIELDS
    for f in sorted(TECH_DIR.glob("periphery_*.json")):
        data = json.loads(f.read_text())
        other = SMEConfig.from_dict(data["config"])
        if all(getattr(other, k) == getattr(cfg, k) for k in HARDWARE_FIELDS) \
                and other.effective_adc_bits == cfg.effective_adc_bits:
            data["file"] = f.name
            return data
    return None


def _stats_of(obj) -> dict:
    return layer_stats(obj) if isinstance(obj, Program) else obj


def energy_pj(events: dict, cfg: SMEConfig, tech: Tech) -> dict:
    """Energy per input vector by component (pJ) for ``events``."""
    x = tech.components["xbar"]
    e_cell = tech.e("xbar") / (float(x["rows"]) * float(x["cols"]))
    e_adc, _ = tech.adc(cfg.effective_adc_bits)
    ir = tech.components["input_register"]
    ed = tech.components["edram"]
    return {
        "xbar": events["cell_reads"] * e_cell,
        "dac": events["wordline_drives"] * tech.e("dac"),
        "adc": events["adc_conversions"] * e_adc,
        "sample_hold": events["sample_holds"] * tech.e("sample_hold"),
        "shift_add": events["shift_adds"] * tech.e("shift_add"),
        "input_register": events["input_register_bits"] * tech.e("input_register")
        / float(ir["bits"]),
        "output_register": events["output_values"] * tech.e("output_register"),
        "edram": events["buffer_bits"] * tech.e("edram") / float(ed["bits"]),
        "index": events["index_bits_read"] * tech.e("index_memory"),
        "descriptor": events["descriptor_bits_read"] * tech.e("descriptor_memory"),
    }


def area_um2(crossbars: int, index_bits: int, descriptor_bits: int, cfg: SMEConfig, tech: Tech,
             periphery: dict | None = None) -> dict:
    """Area by component (um^2) of ``crossbars`` crossbars with their periphery and storage."""
    X = int(crossbars)
    org = tech.organization
    x = tech.components["xbar"]
    cells = cfg.xbar_rows * cfg.xbar_cols / (float(x["rows"]) * float(x["cols"]))
    _, a_adc = tech.adc(cfg.effective_adc_bits)
    ref_rows = float(tech.components["input_register"]["bits"])
    out = {
        "xbar": X * tech.a("xbar") * cells,
        "adc": X * org["adc_per_xbar"] * a_adc,
        "dac": X * cfg.xbar_rows * tech.a("dac"),
        "sample_hold": X * cfg.xbar_cols * tech.a("sample_hold"),
        "input_register": X * tech.a("input_register") * cfg.xbar_rows / ref_rows,
        "output_register": X * tech.a("output_register") * cfg.xbar_cols / float(x["cols"]),
        "edram": math.ceil(X / org["xbars_per_edram"]) * tech.a("edram") if X else 0.0,
        "index": index_bits * tech.a("index_memory"),
        "descriptor": descriptor_bits * tech.a("descriptor_memory"),
    }
    if periphery is not None:
        gates, ffs = periphery_counts(periphery)
        tiles = -(-X // cfg.tile_xbars)
        out["digital_periphery"] = tiles * (gates * tech.a("logic_gate")
                                            + ffs * tech.a("flip_flop"))
    else:   # no synthesized RTL for this config: the ISAAC shift-and-add units stand in
        out["digital_periphery"] = X * org["shift_add_per_xbar"] * tech.a("shift_add")
    return out


def evaluate(stats_or_program, cfg: SMEConfig, tech: Tech, pixels: int = 1,
             periphery: dict | None = None) -> dict:
    """Energy, area and latency of one layer for one scheme (module docstring).

    Returns ``{"energy_pj": {component: pJ per image}, "energy_pj_total", "energy_pj_vector",
    "area_um2": {component: um^2}, "area_um2_total", "latency_s_vector", "latency_s_image",
    "cycles", "pixels", "crossbars"}``.  ``pixels`` = input vectors per image (>= 1).
    """
    st = _stats_of(stats_or_program)
    pixels = max(1, int(pixels))
    ev = energy_pj(st["events"], cfg, tech)
    ar = area_um2(st["crossbars"], st.get("index_bits", 0), st.get("descriptor_bits", 0), cfg,
                  tech, periphery)
    step = tech.timing["xbar_read_ns"] * 1e-9
    per_vec = sum(ev.values())
    return {"energy_pj": {k: v * pixels for k, v in ev.items()},
            "energy_pj_total": per_vec * pixels, "energy_pj_vector": per_vec,
            "area_um2": ar, "area_um2_total": sum(ar.values()),
            "latency_s_vector": st["cycles"] * step,
            "latency_s_image": st["cycles"] * pixels * step,
            "cycles": int(st["cycles"]), "pixels": pixels, "crossbars": int(st["crossbars"])}


def combine(results: list[dict]) -> dict:
    """Sum per-layer :func:`evaluate` results of one scheme (layers in sequence)."""
    out = {"energy_pj": {}, "area_um2": {}}
    for r in results:
        for sect in ("energy_pj", "area_um2"):
            for k, v in r[sect].items():
                out[sect][k] = out[sect].get(k, 0.0) + v
    out["energy_pj_total"] = sum(out["energy_pj"].values())
    out["area_um2_total"] = sum(out["area_um2"].values())
    out["latency_s_image"] = sum(r["latency_s_image"] for r in results)
    out["crossbars"] = sum(r["crossbars"] for r in results)
    return out


# ---- network latency ---------------------------------------------------------------------------

def replicas(sizes, cycles, pixels, spare: float) -> list[int]:
    """Replicas per layer: repeatedly give one more replica to the slowest layer (largest
    cycles x ceil(P / r), ties to the earlier layer) while its size fits in ``spare`` and it has
    fewer replicas than vectors; a layer that does not fit is final (later spare is only
    smaller).  ISAAC's balancing of a layer pipeline; ``sizes`` in any unit (crossbars, um^2)."""
    reps = [1] * len(sizes)
    t = lambda i: int(cycles[i]) * -(-int(pixels[i]) // reps[i])  # noqa: E731
    heap = [(-t(i), i) for i in range(len(sizes)) if cycles[i] > 0]
    heapq.heapify(heap)
    while heap:
        _, i = heapq.heappop(heap)
        if reps[i] >= pixels[i] or sizes[i] > spare:
            continue
        reps[i] += 1
        spare -= sizes[i]
        heapq.heappush(heap, (-t(i), i))
    return reps


def network_latency(cycles, pixels, step_s: float, *, sizes=None, budget=None) -> dict:
    """Latency definitions for one scheme of a network (every layer has its own crossbars).

    ``cycles[l]``: steps per input vector of layer l; ``pixels[l]``: vectors per image.

    * ``sequential_s``: one image, layers one after the other, one copy each:
      sum_l cycles_l x pixels_l x step.
    * with ``sizes`` (area or crossbars per copy of each layer) and ``budget`` (same unit):
      ISAAC-style inter-layer pipeline with replication.  Spare budget (budget - sum sizes)
      buys replicas of the slowest layer while they fit (:func:`replicas`); a replica splits
      the image's vectors.  ``period_s`` = max_l cycles_l x ceil(P_l / r_l) x step (one image
      leaves the pipeline per period; throughput = 1 / period), ``pipelined_latency_s`` =
      sum of the replicated layer times (an upper bound on one image's latency: overlap inside
      an image is not modelled).  Over budget (sum sizes > budget): no replicas, ``period_s``
      and ``pipelined_latency_s`` are None (the design does not fit the budget).
    """
    pixels = [max(1, int(p)) for p in pixels]
    seq = sum(int(c) * p for c, p in zip(cycles, pixels)) * step_s
    out = {"sequential_s": seq, "unpipelined_period_s": max(
        (int(c) * p for c, p in zip(cycles, pixels)), default=0) * step_s}
    if sizes is not None:
        spare = float(budget) - float(sum(sizes))
        if spare < 0:
            out.update(period_s=None, pipelined_latency_s=None, replicas=None, over_budget=True)
        else:
            reps = replicas(sizes, cycles, pixels, spare)
            times = [int(c) * -(-p // r) for c, p, r in zip(cycles, pixels, reps)]
            out.update(period_s=max(times, default=0) * step_s,
                       pipelined_latency_s=sum(times) * step_s, replicas=reps,
                       over_budget=False, used=float(sum(s * r for s, r in zip(sizes, reps))))
    return out


# ---- ISAAC's peak efficiency ------------------------------------------------------------------

def isaac_peak(tech: Tech, adc_bits: int = 8) -> dict:
    """ISAAC-CE's chip rebuilt from the component file, at its peak operation rate.

    ISAAC-CE (ISCA 2016): 168 tiles x 12 IMAs x 8 crossbars of 128 x 128 2-bit cells holding
    16-bit weights (8 cells each), 16-bit inputs fed 1 bit per 100 ns read, one 8-bit ADC per
    crossbar converting its 128 bitlines per read, 4 shift-and-add units per IMA, one 64 KB
    eDRAM and one eDRAM bus per tile (bus area per IMA), one router per 4 tiles, 4 HyperTransport
    links.  Peak ops/s = crossbars x 128 rows x 16 weights x 2 ops / (16 reads x 100 ns).
    Power = each component's energy x its event rate at peak; area = sum of instances.
    Returns area/power by component, totals, CE (GOP/s/mm^2) and PE (GOP/s/W).
    Components ISAAC has but the file does not (sigmoid, max-pool and tile output-register units)
    are left out; docs/PPA.md compares line by line.
    """
    t = ISAAC_PUBLISHED["tiles"]
    imas, per_ima, rows, cols = t * 12, 8, 128, 128
    X = imas * per_ima
    read = tech.timing["xbar_read_ns"] * 1e-9
    reads_per_s = 1.0 / read
    e_adc, a_adc = tech.adc(adc_bits)
    x = tech.components["xbar"]
    ops_per_s = X * rows * (cols * 2 // 16) * 2 / (16 * read)
    conv_per_s = X * cols * reads_per_s
    # eDRAM traffic at peak (Accelergy's derivation): each IMA consumes 128 x 8 16-bit inputs per
    # 16 reads and produces 128 16-bit outputs; read + write through eDRAM, bus and router.
    bits_in = imas * per_ima * rows * 16 / (16 * read)
    bits_out = imas * cols * 16 / (16 * read)
    buf_bits = bits_in + bits_out
    power = {   # W
        "xbar": X * reads_per_s * tech.e("xbar") * (rows * cols) / (float(x["rows"]) * x["cols"])
        * 1e-12,
        "adc": conv_per_s * e_adc * 1e-12,
        "dac": X * rows * reads_per_s * tech.e("dac") * 1e-12,
        "sample_hold": conv_per_s * tech.e("sample_hold") * 1e-12,
        "shift_add": conv_per_s * tech.e("shift_add") * 1e-12,
        "input_register": X * rows * reads_per_s * tech.e("input_register")
        / tech.components["input_register"]["bits"] * 1e-12,
        "output_register": conv_per_s / 8 * tech.e("output_register") * 1e-12,
        "edram": 2 * buf_bits / tech.components["edram"]["bits"] * tech.e("edram") * 1e-12,
        "edram_bus": 2 * buf_bits * tech.e("edram_bus") * 1e-12,
        "router": buf_bits / 256 * tech.e("router") * 1e-12,
    }
    area = {   # mm^2
        "xbar": X * tech.a("xbar") * 1e-6,
        "adc": X * a_adc * 1e-6,
        "dac": X * rows * tech.a("dac") * 1e-6,
        "sample_hold": X * cols * tech.a("sample_hold") * 1e-6,
        "shift_add": imas * 4 * tech.a("shift_add") * 1e-6,
        "input_register": X * tech.a("input_register") * 1e-6,
        "output_register": X * tech.a("output_register") * 1e-6,
        "edram": t * tech.a("edram") * 1e-6,
        "edram_bus": imas * tech.a("edram_bus") * 1e-6,
        "router": t / 4 * tech.a("router") * 1e-6,
        "chip_link": tech.a("chip_link") * 1e-6,
    }
    a_tot, p_tot = sum(area.values()), sum(power.values())
    return {"ops_per_s": ops_per_s, "area_mm2": area, "power_w": power,
            "area_mm2_total": a_tot, "power_w_total": p_tot,
            "ce_gops_per_mm2": ops_per_s / 1e9 / a_tot,
            "pe_gops_per_w": ops_per_s / 1e9 / p_tot}
