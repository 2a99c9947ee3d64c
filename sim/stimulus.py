"""Stimulus for the RTL tests and benches: random layers, programs and input vectors.

The one place that draws them (numpy + the golden model only, so that benches, the ``sme sim``
harness, the benchmarks and the tests all use the same generators):

* :func:`random_q`: a trained-like integer layer on a config's bit pattern;
* :func:`fitting_layer`: a random layer whose compiled program fits one tile;
* :func:`random_program`: a hand-made valid program (random cells and descriptors, activations
  that share row lists), for block tests that need schedules the compiler would not produce;
* :func:`shared_rowlist_program`: a :func:`random_program` on every lane with much row-list
  sharing, bounded so that a tile's accumulators hold it;
* :func:`input_vectors`: input vectors with the extremes (all zero, all maximum) included;
* :func:`descriptor_memory`, :func:`rowlist_memory`: a program's descriptor-memory and
  row-list-memory words, as the controller writes them into the scheduler;
* :func:`stale_rowlist_frame`: a program's load frame with one active descriptor's row-list id
  set to N_ROWLISTS (a list the frame does not carry), re-checksummed: a bad frame only the
  descriptor check catches;
* :func:`random_sample_steps`: splice input (ADC samples with their tags), as payloads and as
  ``golden.splice`` model input.

Everything is drawn from a caller's ``numpy.random.Generator``, so one seed replays a case.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from golden import tile_image as ti
from golden.compiler import compile_matrix
from golden.config import SMEConfig
from golden.program import ACT_FIELDS, Program, validate
from golden.quantize import project_levels

__all__ = ["random_q", "fitting_layer", "random_program", "shared_rowlist_program",
           "input_vectors", "descriptor_memory", "rowlist_memory", "stale_rowlist_frame",
           "random_sample_steps"]


def random_q(rng: np.random.Generator, shape, cfg: SMEConfig, density: float,
             col0: int = 0) -> np.ndarray:
    """Trained-like integers on ``cfg``'s pattern: Laplace magnitudes (a random spread),
    projected onto the allowed levels; a fraction ``1 - density`` of them set to zero (zeroing
    keeps every pattern).  ``col0``: the first output column of this block in its layer (the
    ``fragment`` pattern's packing units depend on it)."""
    w = rng.laplace(0, cfg.max_magnitude / rng.uniform(2, 20), size=shape)
    q = project_levels(np.clip(w, -cfg.max_magnitude, cfg.max_magnitude), cfg, col0=col0)
    return np.where(rng.random(shape) < density, q, 0)


def fitting_layer(cfg: SMEConfig, rng: np.random.Generator, *, pattern_cfg: SMEConfig | None = None,
                  squeezes=("row", "segment"), k_max: int | None = None,
                  n_max: int | None = None, largest: bool = False) -> np.ndarray:
    """A random K x N layer (:func:`random_q` on ``pattern_cfg``'s pattern, default ``cfg``) whose
    program, compiled for ``pattern_cfg`` with every squeeze in ``squeezes``, fits one tile of
    ``cfg``; it has at least one non-zero weight.  K <= ``k_max`` and N <= ``n_max`` (default:
    the tile's inputs and outputs).

    ``largest``: try the full ``k_max x n_max`` first, at falling densities, then smaller
    shapes, and keep the first that fits (a tile filled as far as random layers fill it);
    otherwise K, N and the density are drawn uniformly, up to bounds that shrink while draws do
    not fit.  Raises ``RuntimeError`` if not even a 1 x 1 layer fits."""
    pattern_cfg = pattern_cfg or cfg
    k_max = k_max or cfg.tile_inputs
    n_max = n_max or cfg.tile_outputs
    densities = (0.8, 0.6, 0.45, 0.3, 0.2, 0.12, 0.08, 0.05)
    for i in range(8 * len(densities)):
        shrink = 1 + i // len(densities)        # 8 draws per size bound, then smaller
        kb, nb = max(1, k_max // shrink), max(1, n_max // shrink)
        if largest:
            k, n, density = kb, nb, densities[i % len(densities)]
        else:
            k, n = int(rng.integers(1, kb + 1)), int(rng.integers(1, nb + 1))
            density = rng.uniform(0.3, 0.8)
        q = random_q(rng, (k, n), pattern_cfg, density)
        if not q.any():                         # one weight at full scale, on the pattern
            w = q.astype(np.float64)
            w[rng.integers(k), rng.integers(n)] = pattern_cfg.max_magnitude
            q = project_levels(w, pattern_cfg)
        try:
            for sq in squeezes:
                ti.fits_tile(compile_matrix(q, pattern_cfg, squeeze=sq), cfg)
        except ti.TileImageError:
            continue
        return q
    raise RuntimeError(f"no random layer fits one {cfg.name} tile with squeeze "
                       f"{', '.join(squeezes)}")


def random_program(cfg: SMEConfig, rng: np.random.Generator, *, n_xbars: int | None = None,
                   n_steps: int | None = None, k: int | None = None, n: int | None = None,
                   density: float = 0.7, empty_steps: bool = False,
                   share: float = 0.5) -> Program:
    """A valid program with random cells and descriptors, drawn in one go (never rejected).

    Row lists: an activation joins (with probability ``share``) a row list that an earlier
    activation of its crossbar holds: it takes that activation's ``window`` and ``inputs``, and
    its ``rowlist`` id, while its column group, output group, plane, sign and shift stay its
    own (drawn independently), as "span" squeeze shares one fragment's wordlines between
    column-group blocks.  Whenever a crossbar has two activations or more, at least one of them
    shares (unless ``share`` is 0), so every program with a reused crossbar exercises sharing.
    Ids are numbered 0 .. n-1 in order of first use (``golden.program``'s ``rowlist`` field).

    ``n_steps`` steps over ``n_xbars`` crossbars; each (step, crossbar) slot holds an activation
    with probability ``density``, the last step always one.  Without ``empty_steps`` every step
    gets at least one activation; with it a step may stay empty (it still takes its issue
    cycle), as long as the program stays valid: ``golden.program.validate`` wants every step
    index below the activation count, so slots are added until there are ``n_steps`` of them."""
    n_xbars = n_xbars or int(rng.integers(1, cfg.tile_xbars + 1))
    n_steps = n_steps if n_steps is not None else int(rng.integers(1, 6))
    k = k or int(rng.integers(1, cfg.tile_inputs + 1))
    n = n or int(rng.integers(1, cfg.tile_outputs + 1))
    cells = rng.integers(0, cfg.cell_max + 1, size=(n_xbars, cfg.windows, cfg.colgroups,
                                                    cfg.ou_rows, cfg.ou_cols), dtype=np.uint8)
    taken = rng.random((n_steps, n_xbars)) < density
    if n_steps:
        for s in (range(n_steps) if not empty_steps else [n_steps - 1]):
            if not taken[s].any():
                taken[s, rng.integers(n_xbars)] = True
        missing = n_steps - int(taken.sum())
        if missing > 0:                             # only with empty_steps: pad free slots
            free = np.flatnonzero(~taken.ravel())
            taken.ravel()[rng.choice(free, size=missing, replace=False)] = True
    steps, xbars = np.nonzero(taken)                # row-major: sorted by (step, xbar)
    m = len(steps)
    acts = {f: np.zeros(m, dtype=dt) for f, dt in ACT_FIELDS.items()}
    acts["step"][:] = steps
    acts["xbar"][:] = xbars
    acts["window"][:] = rng.integers(0, cfg.windows, m)
    acts["colgroup"][:] = rng.integers(0, cfg.colgroups, m)
    acts["outgroup"][:] = rng.integers(0, -(-n // cfg.ou_cols), m)
    acts["plane"][:] = rng.integers(0, cfg.planes, m)
    acts["sign"][:] = rng.integers(0, 2, m)
    acts["shift"][:] = rng.integers(0, cfg.max_shift + 1, m)
    inputs = rng.integers(-1, k, size=(m, cfg.ou_rows)).astype(np.int32)
    joins = rng.random(m) < share
    rowlist = np.zeros(m, dtype=np.int32)
    users: dict[int, list[int]] = {}        # crossbar -> its earlier activations
    n_lists = 0
    for i in range(m):
        mine = users.setdefault(int(xbars[i]), [])
        # a crossbar's second activation always shares (unless share is 0)
        if mine and (joins[i] or (share > 0 and len(mine) == 1)):
            j = mine[int(rng.integers(len(mine)))]
            acts["window"][i], inputs[i], rowlist[i] = acts["window"][j], inputs[j], rowlist[j]
        else:
            rowlist[i], n_lists = n_lists, n_lists + 1
        mine.append(i)
    acts["rowlist"] = rowlist
    # No source weights: one zero block declares the K x N shape (validate wants the blocks to
    # cover the layer); what the program computes is golden.vmm.effective_weights(p).
    blocks = [(0, 0, np.zeros((k, n), dtype=np.int64))]
    p = Program(cfg=cfg, shape=(k, n), cells=cells, acts=acts, inputs=inputs, blocks=blocks)
    validate(p)
    return p


def shared_rowlist_program(cfg: SMEConfig, rng: np.random.Generator, *, n_steps: int = 6,
                           x_max: int = 3, share: float = 0.7) -> Program:
    """A :func:`random_program` over all ``tile_xbars`` lanes, ``n_steps`` steps, most slots
    taken and row lists shared with probability ``share``, drawn until no partial sum of any
    input vector in ``[0, x_max]`` can leave the tile's signed accumulators (a hand-made
    program is no layer: its sums are not bounded by ``accumulator_bits`` otherwise).
    ``meta["input_max"]`` records ``x_max`` (:func:`input_vectors` of such a program must stay
    below it)."""
    from golden.vmm import effective_weights

    x_max = min(x_max, cfg.max_input)
    for _ in range(50):
        p = random_program(cfg, rng, n_xbars=cfg.tile_xbars, n_steps=n_steps, density=0.9,
                           share=share)
        # every term counted positive bounds every partial sum, whatever the order
        unsigned = dataclasses.replace(p, acts={**p.acts, "sign": np.zeros(p.n_act, np.int32)})
        if x_max * np.abs(effective_weights(unsigned)).sum(axis=0).max() \
                < 1 << (cfg.accumulator_bits - 1):
            p.meta["input_max"] = x_max
            return p
    raise RuntimeError(f"no random program of {cfg.name} stays inside its accumulators")


def input_vectors(rng: np.random.Generator, cfg: SMEConfig, m: int, k: int,
                  x_max: int | None = None) -> np.ndarray:
    """``m`` input vectors of ``k`` elements in ``[0, x_max]`` (default ``max_input``); with
    ``m >= 2`` the first is all zero and the second all ``x_max`` (the extremes), the rest
    random."""
    x_max = cfg.max_input if x_max is None else x_max
    x = rng.integers(0, x_max + 1, size=(m, k))
    if m >= 2:
        x[0] = 0
        x[1] = x_max
    return x


def descriptor_memory(p: Program) -> dict[tuple[int, int], int]:
    """``{(lane, step): word}`` for every lane and step of ``p``: the image's descriptor items
    (``golden.tile_image.desc_items``; zero for a lane idle in a step) as integers."""
    items = ti.desc_items(p, p.cfg)
    return {(lane, s): sum(int(w) << (32 * i) for i, w in enumerate(items[s, lane]))
            for s in range(p.n_steps) for lane in range(p.cfg.tile_xbars)}


def rowlist_memory(p: Program) -> dict[tuple[int, int], int]:
    """``{(lane, id): word}`` for every row list of every lane of ``p``: the image's row-list
    items (``golden.tile_image.rowlist_items``, zero padding included) as integers."""
    items = ti.rowlist_items(p, p.cfg)
    return {(lane, j): sum(int(w) << (32 * i) for i, w in enumerate(items[lane, j]))
            for lane in range(items.shape[0]) for j in range(items.shape[1])}


def stale_rowlist_frame(p: Program, cfg: SMEConfig | None = None) -> np.ndarray:
    """``p``'s load frame (uint32) with the first activation's descriptor naming row list
    N_ROWLISTS, the CRC recomputed.  Needs N_ROWLISTS below 2**(rowlist field width), so that
    the id fits its field."""
    cfg = p.cfg if cfg is None else cfg
    words = ti.build_image(p, cfg).astype(np.uint32)
    n_rowlists, width = int(words[6]), dict(ti.desc_fields(cfg))["rowlist"]
    if p.n_act == 0 or n_rowlists >= 1 << width:
        raise ValueError(f"no room for a stale row-list id (N_ROWLISTS {n_rowlists}, "
                         f"{width}-bit field, {p.n_act} activations)")
    a, dw = p.acts, ti.desc_words(cfg)
    base = ti.frame_words(cfg, 0, n_rowlists) - 1 + (int(a["step"][0]) * cfg.tile_xbars
                                                     + int(a["xbar"][0])) * dw
    item = sum(int(w) << (32 * i) for i, w in enumerate(words[base:base + dw]))
    off = ti.desc_offsets(cfg)["rowlist"]
    item = item & ~(((1 << width) - 1) << off) | n_rowlists << off
    words[base:base + dw] = [item >> (32 * i) & 0xFFFFFFFF for i in range(dw)]
    words[-1] = ti.crc32_words(words[:-1])
    return words


def random_sample_steps(cfg: SMEConfig, rng: np.random.Generator, count: int,
                        extreme: bool = False) -> tuple[list[dict], list]:
    """``count`` random splice input steps: ``(payloads, model)``, the payloads as
    ``Layouts.samples`` dicts and the same steps as :func:`golden.splice.splice_accumulate`
    input.  Every lane is active with probability 0.8, samples and clip flags are uniform.
    ``extreme``: every lane active, the last input bit, the top plane, the largest shift,
    samples at ``adc_max``, sign positive (the largest terms)."""
    groups = cfg.tile_outputs // cfg.ou_cols
    payloads, model = [], []
    for i in range(count):
        t = cfg.input_bits - 1 if extreme else int(rng.integers(0, cfg.input_bits))
        lanes_p, lanes_m = [], []
        for _ in range(cfg.tile_xbars):
            active = 1 if extreme else int(rng.random() < 0.8)
            og = int(rng.integers(0, groups))
            plane = cfg.planes - 1 if extreme else int(rng.integers(0, cfg.planes))
            sign = 0 if extreme else int(rng.integers(0, 2))
            shift = cfg.max_shift if extreme else int(rng.integers(0, cfg.max_shift + 1))
            vals = [cfg.adc_max] * cfg.ou_cols if extreme else \
                [int(v) for v in rng.integers(0, cfg.adc_max + 1, cfg.ou_cols)]
            clips = [int(v) for v in rng.integers(0, 2, cfg.ou_cols)]
            lanes_p.append({"active": active, "samples": vals,
                            "clips": sum(c << j for j, c in enumerate(clips)),
                            "tag": {"outgroup": og, "plane": plane, "sign": sign,
                                    "shift": shift}})
            lanes_m.append((active, og, plane, sign, shift, vals, clips))
        payloads.append({"t": t, "last": int(i == count - 1), "lanes": lanes_p})
        model.append((t, lanes_m))
    return payloads, model
