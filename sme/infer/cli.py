"""``sme infer``: a whole network on the float, golden or RTL backend, with fidelity figures.

One run evaluates every configuration in the product of ``--adc-bits`` and ``--faults`` (each a
value or a comma list) on the same images and prints one table row per configuration:

- ImageNet-style networks: top-1 agreement, top-5 overlap and mean KL divergence against the
  float model, and the lowest per-layer output SNR - a fidelity PROXY on natural images, not
  ImageNet accuracy (:mod:`sme.infer.fidelity`);
- ``digits``: also the true test accuracy of the float model and of the backend.

``--out DIR`` receives ``infer.json`` (everything, with the weight and image sources),
``infer.csv`` (the table), ``layers.csv`` (per-layer SNR per configuration),
``predictions.csv`` (top-1 class per image) and ``fidelity.png`` (per-layer SNR; fidelity vs
ADC bits and vs fault rate when those are swept).  The files are computed first and written as a
set: staged in ``DIR/.infer-staging-*`` and moved in only when all are complete, so bad input or
an interrupted run leaves no partial output.  Bad input (unknown layer type, a checkpoint that
does not match the network, a non-image file in ``--images DIR``, an impossible backend
configuration) is one line on stderr and exit code 2.

``--faults RATE`` is the fraction of stuck cells, half stuck-at-0 and half stuck-at-1, drawn
(seeded by ``--seed``) into every tile program; ``--adc-bits lossless`` is the preset's lossless
resolution.  The golden backend's ``--path`` defaults to ``fast`` when the ADC is lossless and to
``exact`` otherwise.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["register", "cmd_infer", "write_set", "parse_adc", "parse_faults", "InferError"]

BACKENDS = ("float", "golden", "rtl")


class InferError(ValueError):
    """Bad options or input of ``sme infer`` (a ``ValueError``: the CLI's boundary prints it
    and exits with 2, also under ``python -m sme.cli`` where ``sme.cli.UserError`` is a second
    class)."""


def parse_adc(text: str | None) -> list[int | None]:
    """``"4"``, ``"2,3,lossless"`` -> ADC bits per configuration (None = lossless)."""
    if text is None:
        return [None]
    out = []
    for part in text.split(","):
        part = part.strip()
        if part == "lossless":
            out.append(None)
            continue
        try:
            v = int(part)
        except ValueError:
            raise InferError(f"--adc-bits: {part!r} is not an integer or 'lossless'") from None
        if not 1 <= v <= 16:
            raise InferError(f"--adc-bits must be between 1 and 16, not {v}")
        out.append(v)
    return out


def parse_faults(text: str | None) -> list[float]:
    """``"1e-3"``, ``"0,1e-4,1e-3"`` -> stuck-cell fractions per configuration."""
    if text is None:
        return [0.0]
    out = []
    for part in text.split(","):
        try:
            v = float(part)
        except ValueError:
            raise InferError(f"--faults: {part.strip()!r} is not a number") from None
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise InferError(f"--faults must be a fraction in [0, 1], not {part.strip()}")
        out.append(v)
    return out


def write_set(out: str | os.PathLike, files: dict[str, bytes]) -> None:
    """Write every file of ``files`` into ``out`` or none: staged in a temporary directory
    inside ``out``, each moved into place with ``os.replace`` once all are written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out, prefix=".infer-staging-"))
    try:
        for name, data in files.items():
            with open(stage / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for name in files:
            os.replace(stage / name, out / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


class _Progress:
    """A one-line progress bar on stderr when it is a terminal (silent otherwise)."""

    def __init__(self, label: str, total: int, stream=None):
        self.label, self.total, self.t0 = label, max(total, 1), time.perf_counter()
        self.stream = stream or sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(self, done: int) -> None:
        if not self.live:
            return
        frac = done / self.total
        rate = done / max(time.perf_counter() - self.t0, 1e-9)
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total} {rate:.2f} img/s")
        self.stream.flush()
        if done >= self.total:
            self.stream.write("\n")


def _backend(args, cfg, adc, fault):
    if args.backend == "float":
        from .graph import FloatBackend
        return FloatBackend()
    try:
        from .hardware import GoldenBackend, RTLBackend
    except ImportError as e:                                # pragma: no cover
        raise InferError(f"backend {args.backend} not available yet ({e})") from None
    from golden.faults import FaultRates

    c = cfg.replace(adc_bits=adc)
    rates = FaultRates(fault / 2, fault / 2) if fault else None
    if args.backend == "rtl":
        import importlib.util
        if importlib.util.find_spec("sim.verilator_tile") is None:
            raise InferError("backend rtl not available yet (sim.verilator_tile is missing)")
        return RTLBackend(c, squeeze=args.squeeze, faults=rates, seed=args.seed)
    path = args.path or ("fast" if c.effective_adc_bits >= c.lossless_adc_bits else "exact")
    return GoldenBackend(c, squeeze=args.squeeze, path=path, faults=rates, seed=args.seed)


def cmd_infer(args) -> int:
    import numpy as np

    from golden.config import preset
    from . import fidelity as F
    from . import graph as G
    from .models import load_images, load_network

    adcs, faults = parse_adc(args.adc_bits), parse_faults(args.faults)
    if args.backend == "float" and (args.adc_bits is not None or args.faults is not None or
                                    args.pattern is not None or args.path is not None):
        raise InferError("--adc-bits, --faults, --pattern and --path apply to the golden and "
                        "rtl backends, not to float")
    cfg = preset(args.preset)
    if args.pattern:
        cfg = cfg.replace(pattern=args.pattern)
    # everything that can be wrong with the input is checked before the long computation
    graph = load_network(args.network, args.weights, args.seed)
    x, names, labels, calib_x, img_desc = load_images(graph, args.images, args.limit,
                                                      args.calib, args.seed)
    if len(x) == 0:
        raise InferError("no images to evaluate (--limit 0?)")
    backends = [(adc, f, _backend(args, cfg, adc, f)) for adc in adcs for f in faults]

    t = time.perf_counter()
    ref = G.run(graph, x, batch=args.batch, progress=_Progress("float", len(x)))
    float_ips = len(x) / (time.perf_counter() - t)
    ref_top = ref.argmax(1)
    onnx_check = _onnx_check(graph, x, ref, args.batch) if args.check_onnx else None

    rows, layers, reports, preds = [], {}, [], {"float": ref_top}
    for adc, fault, be in backends:
        label = _label(args.backend, cfg, adc, fault)
        t = time.perf_counter()
        be.prepare(graph.ops)
        if calib_x is not None and args.backend != "float":
            G.calibrate(graph, be, calib_x)
        prep_s = time.perf_counter() - t
        if args.backend == "float":                         # the reference itself: no rerun
            r, test, secs = ref, ref, len(x) / float_ips
            snr = F.LayerSNR()
            for op in graph.ops:
                snr.add(op.name, np.ones(1), np.ones(1))
        else:
            t = time.perf_counter()
            r, test, snr = F.compare(graph, x, be, batch=args.batch,
                                     progress=_Progress(label, len(x)))
            secs = time.perf_counter() - t
        row = {"config": label, "backend": args.backend, "pattern": cfg.pattern,
               "adc_bits": adc if adc is not None else cfg.lossless_adc_bits,
               "adc_lossless": adc is None or adc >= cfg.lossless_adc_bits,
               "faults": fault, **F.summarize(r, test)}
        db = snr.db()
        row["min_layer_snr_db"] = min(db.values())
        if labels is not None:
            row["float_accuracy"] = F.accuracy(r, labels)
            row["accuracy"] = F.accuracy(test, labels)
        row["prepare_s"] = round(prep_s, 2)
        # compare() runs the float model too; images/s of a hardware backend is the pair
        row["images_per_s"] = round(len(x) / secs, 3)
        rows.append(row)
        layers[label] = db
        preds[label] = test.argmax(1)
        if hasattr(be, "report"):
            reports.append({"config": label, "layers": be.report()})

    print(_table(graph, img_desc, rows, float_ips, labels is not None))
    if onnx_check is not None:
        print(f"float vs onnxruntime: max |logit difference| {onnx_check['max_abs_diff']:.2e} "
              f"(logits up to {onnx_check['max_abs_logit']:.1f}), top-1 equal on "
              f"{onnx_check['top1_equal']}/{len(x)} images")
    if args.out:
        files = _files(args, graph, img_desc, rows, layers, reports, names, preds, labels,
                       float_ips, cfg, onnx_check)
        write_set(args.out, files)
        print(f"wrote {', '.join(sorted(files))} to {args.out}")
    return 0


def _onnx_check(graph, x, ref, batch) -> dict:
    """The float outputs against onnxruntime on the ONNX export of the same weights."""
    import numpy as np

    from .onnx_export import run_onnxruntime, to_onnx

    ort = run_onnxruntime(to_onnx(graph), x, batch=4 * batch)
    return {"max_abs_diff": float(np.abs(ort - ref).max()),
            "max_abs_logit": float(np.abs(ort).max()),
            "top1_equal": int(np.sum(ort.argmax(1) == ref.argmax(1))), "images": len(x)}


def _label(backend, cfg, adc, fault) -> str:
    if backend == "float":
        return "float"
    a = f"adc{adc}" if adc is not None else f"adc{cfg.lossless_adc_bits}(lossless)"
    return f"{backend} {cfg.pattern} {a} faults={fault:g}"


def _fmt_db(v: float) -> str:
    return "inf" if v == math.inf else f"{v:.1f}"


def _table(graph, img_desc, rows, float_ips, labelled) -> str:
    from .fidelity import PROXY_LABEL

    lines = [f"Network: {graph.name}, {len(graph.ops)} conv/linear layers",
             f"Weights: {graph.source.get('describe', 'unknown')}",
             f"Images: {img_desc}", f"Float: {float_ips:.2f} images/s",
             "Fidelity: " + (PROXY_LABEL if not labelled else
                             "agreement with the float model; accuracy on labelled test images"),
             ""]
    head = f"{'configuration':<40} {'top-1 agr':>9} {'top-5 ovl':>9} {'mean KL':>9} " \
           f"{'min SNR dB':>10}"
    if labelled:
        head += f" {'float acc':>9} {'acc':>7}"
    head += f" {'img/s':>7}"
    lines.append(head)
    for r in rows:
        line = (f"{r['config']:<40} {100 * r['top1_agreement']:>8.2f}% "
                f"{100 * r['top5_overlap']:>8.2f}% {r['mean_kl']:>9.4f} "
                f"{_fmt_db(r['min_layer_snr_db']):>10}")
        if labelled:
            line += f" {100 * r['float_accuracy']:>8.2f}% {100 * r['accuracy']:>6.2f}%"
        lines.append(line + f" {r['images_per_s']:>7.2f}")
    return "\n".join(lines)


def _csv(header, rows) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode()


def _json_safe(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if hasattr(v, "item"):
        return _json_safe(v.item())
    return v


def _files(args, graph, img_desc, rows, layers, reports, names, preds, labels, float_ips,
           cfg, onnx_check=None) -> dict[str, bytes]:
    from .fidelity import PROXY_LABEL

    doc = {"network": graph.name, "weights": graph.source, "images": img_desc,
           "n_images": len(names), "metric": PROXY_LABEL if labels is None else
           "agreement with the float model; accuracy on labelled test images",
           "backend": args.backend, "config": cfg.to_dict(), "squeeze": args.squeeze,
           "seed": args.seed, "float_images_per_s": round(float_ips, 3),
           "command": "sme infer " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else None,
           "rows": rows, "layer_snr_db": layers, "backend_reports": reports,
           "float_vs_onnxruntime": onnx_check}
    files = {"infer.json": (json.dumps(_json_safe(doc), indent=2) + "\n").encode()}
    keys = list(rows[0])
    files["infer.csv"] = _csv(keys, [[r.get(k) for k in keys] for r in rows])
    lnames = [op.name for op in graph.ops]
    files["layers.csv"] = _csv(["layer"] + list(layers),
                               [[n] + [_fmt_db(layers[c][n]) for c in layers] for n in lnames])
    cols = list(preds)
    prow = []
    for i, n in enumerate(names):
        prow.append([n] + ([int(labels[i])] if labels is not None else []) +
                    [int(preds[c][i]) for c in cols])
    files["predictions.csv"] = _csv(["image"] + (["label"] if labels is not None else []) +
                                    cols, prow)
    files["fidelity.png"] = _plot(graph, rows, layers)
    return files


def _plot(graph, rows, layers) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    adcs = sorted({r["adc_bits"] for r in rows})
    flts = sorted({r["faults"] for r in rows})
    panels = 1 + (len(adcs) > 1) + (len(flts) > 1)
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
    ax = axes[0][0]
    for label, db in layers.items():
        vals = [min(v, 99.0) for v in db.values()]
        ax.plot(range(len(vals)), vals, marker=".", label=label)
    ax.set_xlabel("layer (network order)")
    ax.set_ylabel("output SNR vs float [dB] (inf shown as 99)")
    ax.set_title(f"{graph.name}: per-layer SNR")
    ax.legend(fontsize=6)
    k = 1
    for key, values, xlabel, logx in (("adc_bits", adcs, "ADC bits", False),
                                       ("faults", flts, "stuck-cell rate", True)):
        if len(values) < 2:
            continue
        ax = axes[0][k]
        k += 1
        other = "faults" if key == "adc_bits" else "adc_bits"
        for o in sorted({r[other] for r in rows}):
            sel = sorted((r for r in rows if r[other] == o), key=lambda r: r[key])
            xs = [max(r[key], 1e-5) if logx else r[key] for r in sel]
            ax.plot(xs, [r["top1_agreement"] for r in sel], marker="o",
                    label=f"top-1 agreement, {other}={o}")
            if "accuracy" in sel[0]:
                ax.plot(xs, [r["accuracy"] for r in sel], marker="s", ls="--",
                        label=f"accuracy, {other}={o}")
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel + (" (0 plotted at 1e-5)" if logx and values[0] == 0 else ""))
        ax.set_ylim(0, 1.02)
        ax.set_title(f"fidelity vs {xlabel} (proxy)")
        ax.legend(fontsize=6)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def register(subparsers) -> None:
    from golden.config import PATTERNS, PRESETS
    from sme.cli import nonnegative_int, positive_int

    p = subparsers.add_parser(
        "infer", help="run a whole network (float / golden / rtl backend); fidelity vs float")
    p.add_argument("--network", default="mobilenet_v2",
                   help="mobilenet_v2 | resnet50 | digits | FILE.onnx (default mobilenet_v2)")
    p.add_argument("--weights", default=None,
                   help="checkpoint (.pth/.pt zip or legacy, .safetensors, .npz) or 'random'; "
                        "default: real torchvision weights (mobilenet_v2), trained here "
                        "(digits); required for resnet50")
    p.add_argument("--images", default="bundled", help="'bundled' (504 natural images) or DIR")
    p.add_argument("--limit", type=nonnegative_int, default=None,
                   help="evaluate the first N images only")
    p.add_argument("--calib", type=positive_int, default=8,
                   help="calibration images for the activation scales (default 8)")
    p.add_argument("--backend", choices=BACKENDS, default="golden")
    p.add_argument("--path", choices=("fast", "exact"), default=None,
                   help="golden backend path (default: fast if the ADC is lossless)")
    p.add_argument("--adc-bits", default=None,
                   help="ADC resolution, or a comma list to sweep ('lossless' allowed)")
    p.add_argument("--faults", default=None,
                   help="stuck-cell rate (half stuck-at-0, half stuck-at-1), or a comma list")
    p.add_argument("--squeeze", choices=("row", "segment"), default="row")
    p.add_argument("--pattern", choices=PATTERNS, default=None)
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--batch", type=positive_int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check-onnx", action="store_true",
                   help="also run the ONNX export of the network on onnxruntime and report its "
                        "agreement with the float backend")
    p.add_argument("--out", default=None, help="directory for JSON/CSV/PNG (written as a set)")
    p.set_defaults(func=cmd_infer)
