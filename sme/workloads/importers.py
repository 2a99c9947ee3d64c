"""Network front-ends: ONNX, ``.npz``, PyTorch state dicts and safetensors (no torch needed) and
NeuroSim-style network CSV files.

Every loader returns an :class:`Imported`: a :class:`~sme.workloads.networks.Network` (shapes), the
float weights by layer name in PyTorch layout (``None`` for shape-only sources) and a
``source`` dict that says where the weights came from (file name and sha256), which the report
prints in its header.

**ONNX** (:func:`load_onnx`): every ``Conv`` (2-D, grouped and depthwise included), ``Gemm`` and
``MatMul`` whose weight operand is an initializer (or a ``Constant``) becomes a layer, in graph
order.  Output sizes come from ONNX shape inference when the graph input has a static shape
(otherwise they are 0 = unknown).  Nodes without crossbar weights (activations, pooling, norms,
additions, ...) are skipped.  Weight-carrying operators that cannot be mapped (ConvTranspose,
recurrent and quantized operators), 1-D/3-D convolutions, run-time weights and inconsistent
shapes raise :class:`ImportError_` naming the node.

**.npz** (:func:`load_npz`): one array per layer in PyTorch layout, ``(Cout, Cin/groups, kh, kw)``
for a convolution and ``(Cout, Cin)`` for a fully connected layer.  With a network table given
(``network=resnet50()``), the key of a layer is its table name, optionally followed by
``.weight`` (so ``np.savez(f, **{k: v.numpy() for k, v in model.state_dict().items()})`` of a
torchvision model works as is; other arrays are ignored).  Without a table, every array whose
key has no ``@`` is a layer, in file order, and optional scalar/pair arrays
``<name>@groups``, ``<name>@stride`` and ``<name>@out_hw`` give what the weight shape cannot
(defaults 1, 1 and unknown); :func:`save_npz` writes that form.

**PyTorch / safetensors** (:func:`load_state_dict`): a state dict (or a checkpoint dict holding
one under ``"state_dict"`` or ``"model"``) read by :mod:`sme.workloads.checkpoints` - both torch
formats, through a restricted unpickler that refuses anything but tensors - then the ``.npz``
rules above.  Torch is not needed.

**NeuroSim CSV** (:func:`load_neurosim_csv`): one row per layer,
``IFM H, IFM W, Cin, kH, kW, Cout, pool flag, stride`` (the NeuroSim ``NetWork_*.csv`` columns),
with an optional 9th column ``groups`` (our extension); a header line is allowed.  Convolutions
use 'same' padding (kh // 2), as NeuroSim assumes; the pool flag pools *after* the layer, so it
does not change that layer's output size.  A 1 x 1 input with a 1 x 1 kernel is an fc layer.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import math
import os
from pathlib import Path

import numpy as np

from .networks import Layer, Network, conv_out, network as builtin_network
from golden.fileio import ArrayFileError, atomic_write_bytes, check_size
from golden.fileio import load_npz as load_npz_arrays

__all__ = ["ImportError_", "Imported", "load", "load_onnx", "read_onnx", "load_npz", "save_npz",
           "load_state_dict", "load_neurosim_csv", "file_source", "describe_source"]


class ImportError_(ValueError):
    """A model file that cannot be read or mapped, with the offending node or entry named."""


@dataclasses.dataclass
class Imported:
    network: Network
    weights: dict[str, np.ndarray] | None
    source: dict


def file_source(path: str | os.PathLike, fmt: str) -> dict:
    """``{"kind": "file", "format", "file", "sha256"}`` of a weight file (hashed in chunks: a
    large file is never held in memory for it)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"kind": "file", "format": fmt, "file": Path(path).name, "sha256": h.hexdigest()}


def describe_source(source: dict) -> str:
    """One line for a report header; never calls synthetic weights real."""
    kind = source.get("kind")
    if kind == "file":
        return f"{source['format']} file {source['file']} (sha256 {source['sha256']})"
    if kind == "trained":
        return f"trained here: {source.get('detail', '')}".rstrip(": ")
    if kind == "synthetic":
        params = ", ".join(f"{k}={v}" for k, v in source.get("params", {}).items())
        return f"SYNTHETIC weights, not trained: {source.get('distribution', '?')} ({params})"
    return f"unknown weight source {source!r}"


# ---- ONNX -----------------------------------------------------------------------------------

_UNMAPPABLE = {"ConvTranspose", "LSTM", "GRU", "RNN", "QLinearConv", "ConvInteger",
               "MatMulInteger", "QLinearMatMul", "DeformConv", "Einsum"}


def read_onnx(path: str | os.PathLike):
    """``(model, consts)``: the ONNX ``ModelProto`` at ``path`` and its constant tensors
    (initializers and ``Constant`` nodes) by name, as numpy arrays.  Raises
    :class:`ImportError_` for an unreadable file."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:                                    # pragma: no cover
        raise ImportError_("reading ONNX needs the 'onnx' package (pip install onnx)") from None
    try:
        model = onnx.load(str(path))
    except Exception as e:                                 # protobuf errors vary by version
        raise ImportError_(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") \
            from None
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(a.t)
    return model, consts


def load_onnx(path: str | os.PathLike) -> Imported:
    import onnx

    model, consts = read_onnx(path)
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:                                      # shapes are optional
        inferred = model
    g = model.graph
    dims = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + \
            list(inferred.graph.input):
        shp = vi.type.tensor_type.shape
        dims[vi.name] = [d.dim_value if d.HasField("dim_value") else 0 for d in shp.dim]

    layers, weights, used = [], {}, set()
    for i, node in enumerate(g.node):
        label = node.name or (node.output[0] if node.output else f"#{i}")
        where = f"{path}: node {label!r} ({node.op_type})"

        def fail(msg):
            raise ImportError_(f"{where}: {msg}")

        if node.op_type in _UNMAPPABLE:
            fail("this operator carries weights but cannot be mapped onto crossbars "
                 "(supported: Conv, Gemm, MatMul)")
        if node.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        name = label
        while name in used:
            name += "_"
        used.add(name)
        if node.op_type == "Conv":
            if len(node.input) < 2 or not node.input[1]:
                fail("a Conv needs a weight input")
            if node.input[1] not in consts:
                fail(f"weight {node.input[1]!r} is not an initializer or Constant "
                     "(weights computed at run time are not supported)")
            w = np.asarray(consts[node.input[1]], dtype=np.float64)
            if w.ndim != 4:
                fail(f"only 2-D convolutions are supported; weight has shape {w.shape}")
            group = int(attrs.get("group", 1))
            cout, cpg, kh, kw = w.shape
            if group < 1 or cout % group:
                fail(f"group={group} does not divide the {cout} output channels")
            ks = list(attrs.get("kernel_shape", [kh, kw]))
            if ks != [kh, kw]:
                fail(f"kernel_shape {ks} disagrees with the weight shape {w.shape}")
            strides = list(attrs.get("strides", [1, 1]))
            if len(strides) != 2 or strides[0] != strides[1] or strides[0] < 1:
                fail(f"strides {strides} are not supported (equal strides >= 1 expected)")
            xin = dims.get(node.input[0], [])
            if len(xin) == 4 and xin[1] and xin[1] != cpg * group:
                fail(f"input has {xin[1]} channels but weight {w.shape} with group={group} "
                     f"expects {cpg * group}")
            out = dims.get(node.output[0], [])
            oh, ow = (out[2], out[3]) if len(out) == 4 else (0, 0)
            layer = Layer(name, cpg * group, cout, kh, kw, strides[0], group, oh, ow)
        else:
            if node.op_type == "Gemm":
                if len(node.input) < 2 or node.input[1] not in consts:
                    fail("the B operand must be an initializer or Constant")
                b = np.asarray(consts[node.input[1]], dtype=np.float64)
                if b.ndim != 2:
                    fail(f"B must be a matrix, not shape {b.shape}")
                wt = b if attrs.get("transB", 0) else b.T          # (N, K)
            else:
                if len(node.input) != 2:
                    fail("a MatMul needs exactly two inputs")
                if node.input[1] in consts:
                    b = np.asarray(consts[node.input[1]], dtype=np.float64)
                    if b.ndim != 2:
                        fail(f"weight must be a matrix, not shape {b.shape}")
                    wt = b.T
                elif node.input[0] in consts:
                    fail("a constant left operand (W @ x) is not supported; use x @ W")
                else:
                    fail("neither operand is a constant weight (activation x activation "
                         "products cannot be stored in crossbars)")
            out = dims.get(node.output[0], [])
            rows = int(np.prod(out[:-1])) if len(out) > 2 and all(out[:-1]) else 1
            layer = Layer(name, wt.shape[1], wt.shape[0], kind="fc", out_h=rows, out_w=1)
            w = wt
        layers.append(layer)
        weights[name] = w.reshape(layer.weight_shape)
    if not layers:
        raise ImportError_(f"{path}: no Conv, Gemm or MatMul layer with constant weights found")
    return Imported(Network(Path(path).stem, tuple(layers)), weights, file_source(path, "ONNX"))


# ---- arrays (.npz, state dicts) -------------------------------------------------------------

def _from_arrays(arrays: dict[str, np.ndarray], net: Network | None, where: str,
                 name: str) -> tuple[Network, dict[str, np.ndarray]]:
    if net is not None:
        weights, missing = {}, []
        for layer in net.layers:
            key = next((k for k in (layer.name, layer.name + ".weight") if k in arrays), None)
            if key is None:
                missing.append(layer.name)
                continue
            w = np.asarray(arrays[key], dtype=np.float64)
            if w.shape != layer.weight_shape:
                raise ImportError_(f"{where}: array {key!r} has shape {w.shape}, layer "
                                   f"{layer.name!r} of {net.name} needs {layer.weight_shape}")
            weights[layer.name] = w
        if missing:
            raise ImportError_(f"{where}: no array for {len(missing)} layer(s) of {net.name}: "
                               + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
        return net, weights
    layers, weights = [], {}
    for key, a in arrays.items():
        if "@" in key:
            continue

        def meta(tag, default):
            v = arrays.get(f"{key}@{tag}")
            if v is None:
                return default
            v = np.ravel(v)
            if len(v) != len(default) or not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
                raise ImportError_(f"{where}: {key}@{tag} must be {len(default)} whole "
                                   f"number(s), not {v.tolist()[:4]}")
            return [int(x) for x in v]

        w = np.asarray(a, dtype=np.float64)
        if w.ndim == 2:
            layer = Layer(key, w.shape[1], w.shape[0], kind="fc")
        elif w.ndim == 4:
            (groups,), (stride,) = meta("groups", [1]), meta("stride", [1])
            oh, ow = meta("out_hw", [0, 0])
            try:
                layer = Layer(key, w.shape[1] * groups, w.shape[0], w.shape[2], w.shape[3],
                              stride, groups, oh, ow)
            except ValueError as e:
                raise ImportError_(f"{where}: array {key!r}: {e}") from None
        else:
            raise ImportError_(f"{where}: array {key!r} has shape {w.shape}; a layer needs "
                               "(Cout, Cin/groups, kh, kw) or (Cout, Cin)")
        layers.append(layer)
        weights[key] = w
    if not layers:
        raise ImportError_(f"{where}: no weight arrays found")
    return Network(name, tuple(layers)), weights


def load_npz(path: str | os.PathLike, network: Network | None = None) -> Imported:
    """Member sizes are checked against the bytes present and the cap of
    :func:`golden.fileio.max_bytes` before anything is decompressed; only numeric arrays."""
    try:
        arrays = load_npz_arrays(path, "weights")
    except ArrayFileError as e:
        raise ImportError_(str(e)) from None
    net, weights = _from_arrays(arrays, network, str(path), Path(path).stem)
    return Imported(net, weights, file_source(path, ".npz"))


def save_npz(path: str | os.PathLike, net: Network, weights: dict[str, np.ndarray]) -> None:
    """Write weights in the table-free ``.npz`` form (with ``@`` metadata), atomically."""
    arrays = {}
    for layer in net.layers:
        arrays[layer.name] = np.asarray(weights[layer.name]).reshape(layer.weight_shape)
        if layer.kind == "conv":
            arrays[f"{layer.name}@groups"] = np.array(layer.groups)
            arrays[f"{layer.name}@stride"] = np.array(layer.stride)
            arrays[f"{layer.name}@out_hw"] = np.array([layer.out_h, layer.out_w])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_state_dict(path: str | os.PathLike, network: Network | None = None) -> Imported:
    """A PyTorch checkpoint (zip or legacy) or safetensors file, read without torch by
    :func:`sme.workloads.checkpoints.load_state_dict` (restricted unpickler), then the ``.npz``
    rules: every 2-D or 4-D ``*.weight`` tensor is a layer."""
    from .checkpoints import load_state_dict as read

    try:
        sd = read(path)
    except ValueError as e:                                 # CheckpointError
        raise ImportError_(str(e)) from None
    arrays = {}
    for k, v in sd.items():
        if v.ndim in (2, 4) and k.endswith(".weight") and np.issubdtype(v.dtype, np.floating):
            arrays[k if network is not None else k[:-len(".weight")]] = v.astype(np.float64)
    net, weights = _from_arrays(arrays, network, str(path), Path(path).stem)
    fmt = "safetensors" if Path(path).suffix.lower() == ".safetensors" else "PyTorch state dict"
    return Imported(net, weights, file_source(path, fmt))


# ---- NeuroSim CSV ---------------------------------------------------------------------------

def load_neurosim_csv(path: str | os.PathLike) -> Network:
    """Shapes only (see the module docstring)."""
    try:
        with open(path, "rb") as f:
            check_size(os.fstat(f.fileno()).st_size, f"{path}: a network table")
            text = f.read().decode()
    except UnicodeDecodeError:
        raise ImportError_(f"{path}: not a text (UTF-8) CSV file") from None
    except OSError as e:
        raise ImportError_(f"{path}: cannot read ({e.strerror})") from None
    layers = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row if c.strip()]
        if not cells or cells[0].startswith("#"):
            continue
        try:
            floats = [float(c) for c in cells]
        except ValueError:
            if not layers and lineno == 1:
                continue                                   # header
            raise ImportError_(f"{path}:{lineno}: non-numeric field in {row}") from None
        if len(floats) not in (8, 9):
            raise ImportError_(f"{path}:{lineno}: expected 8 fields (IFM H, IFM W, Cin, kH, kW, "
                               f"Cout, pool, stride) or 9 (+ groups), found {len(floats)}")
        # Every field is a whole number: sizes, channels, stride and groups at least 1, the
        # pool flag 0 or 1 (inf, NaN, 0 and negative values are refused before any arithmetic).
        names = ("IFM H", "IFM W", "Cin", "kH", "kW", "Cout", "pool", "stride", "groups")
        for field, v in zip(names, floats):
            lo = 0 if field == "pool" else 1
            if not (math.isfinite(v) and v == int(v) and lo <= v <= (1 if lo == 0 else 1 << 31)):
                want = "0 or 1" if field == "pool" else "a whole number between 1 and 2^31"
                raise ImportError_(f"{path}:{lineno}: {field} must be {want}, not {v:g}")
        vals = [int(v) for v in floats]
        h, w, cin, kh, kw, cout, _pool, stride = vals[:8]
        groups = vals[8] if len(vals) == 9 else 1
        name = f"layer{len(layers) + 1}"
        try:
            if h == w == kh == kw == 1:
                layers.append(Layer(name, cin, cout, kind="fc"))
            else:
                layers.append(Layer(name, cin, cout, kh, kw, stride, groups,
                                    conv_out(h, kh, stride), conv_out(w, kw, stride)))
        except ValueError as e:
            raise ImportError_(f"{path}:{lineno}: {e}") from None
    if not layers:
        raise ImportError_(f"{path}: no layers")
    return Network(Path(path).stem, tuple(layers))


# ---- dispatch -------------------------------------------------------------------------------

def load(path: str | os.PathLike, network: Network | str | None = None) -> Imported:
    """Load a model or weight file by its extension (.onnx, .npz, .pt/.pth/.bin,
    .safetensors, .csv)."""
    if isinstance(network, str):
        network = builtin_network(network)
    suffix = Path(path).suffix.lower()
    if not Path(path).exists():
        raise ImportError_(f"{path}: no such file")
    if suffix == ".onnx":
        imp = load_onnx(path)
    elif suffix == ".npz":
        return load_npz(path, network)
    elif suffix in (".pt", ".pth", ".bin", ".safetensors"):
        return load_state_dict(path, network)
    elif suffix == ".csv":
        return Imported(load_neurosim_csv(path), None, file_source(path, "NeuroSim CSV"))
    else:
        raise ImportError_(f"{path}: unknown model format {suffix!r} "
                           "(expected .onnx, .npz, .pt/.pth/.bin, .safetensors or .csv)")
    if network is not None:
        got = [layer.weight_shape for layer in imp.network.layers]
        want = [layer.weight_shape for layer in network.layers]
        if got != want:
            raise ImportError_(f"{path}: its {len(got)} layers do not match the {len(want)} "
                               f"layers of {network.name}")
        imp = Imported(network, {new.name: imp.weights[old.name] for old, new in
                                 zip(imp.network.layers, network.layers)}, imp.source)
    return imp
