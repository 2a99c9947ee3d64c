"""Network layer tables and the mapping of a layer's weights onto the K x N layer matrix.

A :class:`Layer` is one weight layer (convolution or fully connected) described by its shape
only.  Batch norm, biases, pooling, activations and residual additions hold no crossbar weights
and are not listed; a residual block's projection shortcut (``downsample``) is its own layer.

Built-in tables follow the torchvision definitions (ResNet-50 v1.5: stride on the 3x3 conv of a
bottleneck; MobileNet-v2 width 1.0), for 224 x 224 inputs.  Layer names are the torchvision
parameter names without ``.weight``, so a torchvision state dict or an ``.npz`` written from one
lines up with the table by name.

**Layer matrix.**  A layer with ``groups`` g has g independent blocks.  Group i multiplies the
K_g = Cin/g * kh * kw inputs of its input channels by its N_g = Cout/g output columns, so the layer
is the block-diagonal matrix of shape (g * K_g, Cout) = (Cin*kh*kw, Cout) whose block i sits at
(i*K_g, i*N_g).  A depthwise layer is therefore 9 x 1 blocks along the diagonal and is never
unrolled densely (:func:`layer_blocks`).  Row order inside a block is (cin, kh, kw), the order of
PyTorch's ``weight.reshape(Cout, -1)`` (im2col order); the column is the output channel.

**ISAAC-style dense count** (:func:`isaac_dense_crossbars`, SPEC sections 4/5): the
B/cell_bits slices of a weight sit in adjacent columns, so a layer is a K x (N*B/cell_bits) grid
of R x C crossbar tiles per sign set.  Two conventions for grouped layers:

* ``"unrolled"``: the block-diagonal matrix stored densely, ceil(Cin*kh*kw / R) *
  ceil(Cout*B/cell_bits / C) per sign set (what a mapper that ignores groups would do);
* ``"tiles"``: only the tiles that intersect a group's block (what ``golden.baselines`` counts
  and the report uses).

ResNet-50 has no grouped layer, so both give the pinned 12,504 crossbars per sign set (25,008
with both).  They differ on MobileNet-v2 (default config): 22,017 unrolled, 2,899 tiles per
sign set; the report's ISAAC budget is the smaller, stronger ``"tiles"`` figure.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from golden.config import SMEConfig
from golden.fileio import check_size

__all__ = ["Layer", "Network", "NETWORKS", "network", "resnet50", "mobilenet_v2",
           "layer_blocks", "isaac_dense_crossbars", "conv_out"]


def conv_out(size: int, k: int, stride: int, pad: int | None = None) -> int:
    """Output size of a convolution; ``pad=None`` means k // 2 ('same'-style, torchvision)."""
    pad = k // 2 if pad is None else pad
    return (size + 2 * pad - k) // stride + 1


#: Largest output height or width of a layer (no feature map comes near it; a larger value in
#: a model file is corrupt or hostile).
MAX_OUT_SIZE = 1 << 16


@dataclasses.dataclass(frozen=True)
class Layer:
    """One weight layer.  ``kind`` is ``"conv"`` or ``"fc"`` (an fc layer has kh = kw = 1 and a
    1 x 1 output).  ``out_h`` x ``out_w`` output pixels = input vectors per image (0 = unknown).
    """

    name: str
    cin: int
    cout: int
    kh: int = 1
    kw: int = 1
    stride: int = 1
    groups: int = 1
    out_h: int = 1
    out_w: int = 1
    kind: str = "conv"

    def __post_init__(self):
        for f in ("cin", "cout", "kh", "kw", "stride", "groups"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"layer {self.name!r}: {f} must be a positive integer, not {v!r}")
        if self.cin % self.groups or self.cout % self.groups:
            raise ValueError(f"layer {self.name!r}: groups ({self.groups}) must divide cin "
                             f"({self.cin}) and cout ({self.cout})")
        if self.kind not in ("conv", "fc"):
            raise ValueError(f"layer {self.name!r}: kind must be 'conv' or 'fc', not {self.kind!r}")
        for f in ("out_h", "out_w"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or not 0 <= v <= MAX_OUT_SIZE:
                raise ValueError(f"layer {self.name!r}: {f} must be an integer between 0 "
                                 f"(unknown) and {MAX_OUT_SIZE}, not {v!r}")
        # A layer is materialized as weights (float64) by the report and the compiler.
        check_size(self.weights * 8, f"layer {self.name!r}: {self.weights} weights")

    @property
    def k_group(self) -> int:
        """Rows of one group's block: Cin/groups * kh * kw."""
        return self.cin // self.groups * self.kh * self.kw

    @property
    def n_group(self) -> int:
        return self.cout // self.groups

    @property
    def shape(self) -> tuple[int, int]:
        """(K, N) of the block-diagonal layer matrix."""
        return self.k_group * self.groups, self.cout

    @property
    def weights(self) -> int:
        return self.k_group * self.cout

    @property
    def pixels(self) -> int:
        """Input vectors per image (output pixels)."""
        return self.out_h * self.out_w

    @property
    def macs(self) -> int:
        return self.weights * self.pixels

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """PyTorch layout: (Cout, Cin/groups, kh, kw) for conv, (Cout, Cin) for fc."""
        if self.kind == "fc":
            return (self.cout, self.cin)
        return (self.cout, self.cin // self.groups, self.kh, self.kw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Network:
    name: str
    layers: tuple[Layer, ...]

    @property
    def weights(self) -> int:
        return sum(layer.weights for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"network {self.name!r} has no layer {name!r}")

    @property
    def unsized(self) -> list[str]:
        """Names of conv layers whose output size is unknown (0 x 0 output pixels)."""
        return [layer.name for layer in self.layers if layer.pixels == 0]

    def with_input_size(self, size: int) -> "Network":
        """Fill in unknown conv output sizes for a ``size`` x ``size`` input, layer by layer.

        A layer with a known size keeps it (and the next layer starts from it); an unknown one
        gets ``conv_out(previous, kh, stride)`` ('same' padding).  Bare weights carry no
        pooling or branching, so this assumes a plain chain without pooling: give ``@out_hw``
        (npz), ONNX shapes or a network table when the network pools.  fc layers stay 1 x 1.
        """
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"input size must be a positive integer, not {size!r}")
        h = w = size
        out = []
        for layer in self.layers:
            if layer.kind == "conv":
                if layer.pixels == 0:
                    layer = dataclasses.replace(layer, out_h=conv_out(h, layer.kh, layer.stride),
                                                out_w=conv_out(w, layer.kw, layer.stride))
                h, w = layer.out_h, layer.out_w
            out.append(layer)
        return Network(self.name, tuple(out))

    def subset(self, count: int) -> "Network":
        """The first ``count`` layers (for quick runs and tests)."""
        return Network(f"{self.name}[:{count}]", self.layers[:count])


#: torchvision ResNet-50 stages: (bottleneck width, blocks, stride of the first block).
RESNET50_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
#: torchvision MobileNet-v2 (width 1.0) inverted-residual settings: (expansion t, channels c,
#: repeats n, stride s of the first repeat).
MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                         (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _conv(name, cin, cout, k, stride, size_in, groups=1) -> tuple[Layer, int]:
    out = conv_out(size_in, k, stride)
    return Layer(name, cin, cout, k, k, stride, groups, out, out), out


def resnet50() -> Network:
    """torchvision ``resnet50``: 53 convolutions + fc, 224 x 224 input."""
    layers = []
    layer, size = _conv("conv1", 3, 64, 7, 2, 224)
    layers.append(layer)
    size = conv_out(size, 3, 2)                    # max pool 3x3 / 2, pad 1 -> 56
    cin = 64
    for stage, (planes, blocks, stride) in enumerate(RESNET50_STAGES, start=1):
        for b in range(blocks):
            s = stride if b == 0 else 1
            pre = f"layer{stage}.{b}"
            l1, _ = _conv(f"{pre}.conv1", cin, planes, 1, 1, size)
            l2, out = _conv(f"{pre}.conv2", planes, planes, 3, s, size)
            l3, _ = _conv(f"{pre}.conv3", planes, planes * 4, 1, 1, out)
            layers += [l1, l2, l3]
            if b == 0:
                ds, _ = _conv(f"{pre}.downsample.0", cin, planes * 4, 1, s, size)
                layers.append(ds)
            cin, size = planes * 4, out
    layers.append(Layer("fc", 2048, 1000, kind="fc"))
    return Network("resnet50", tuple(layers))


def mobilenet_v2() -> Network:
    """torchvision ``mobilenet_v2`` (width 1.0): 52 convolutions + classifier, 224 x 224."""
    layers = []
    layer, size = _conv("features.0.0", 3, 32, 3, 2, 224)
    layers.append(layer)
    cin, idx = 32, 1
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            pre, j = f"features.{idx}.conv", 0
            if t != 1:
                lyr, _ = _conv(f"{pre}.0.0", cin, hidden, 1, 1, size)
                layers.append(lyr)
                j = 1
            lyr, out = _conv(f"{pre}.{j}.0", hidden, hidden, 3, stride, size, groups=hidden)
            layers.append(lyr)
            lyr, _ = _conv(f"{pre}.{j + 1}", hidden, c, 1, 1, out)
            layers.append(lyr)
            cin, size, idx = c, out, idx + 1
    lyr, _ = _conv(f"features.{idx}.0", cin, 1280, 1, 1, size)
    layers.append(lyr)
    layers.append(Layer("classifier.1", 1280, 1000, kind="fc"))
    return Network("mobilenet_v2", tuple(layers))


NETWORKS = {"resnet50": resnet50, "mobilenet_v2": mobilenet_v2}


def network(name: str) -> Network:
    try:
        return NETWORKS[name]()
    except KeyError:
        raise ValueError(f"unknown built-in network {name!r}; known: {', '.join(NETWORKS)}") \
            from None


def layer_blocks(layer: Layer, w: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """Split a weight tensor in PyTorch layout into the (row0, col0, block) list of the layer's
    block-diagonal K x N matrix (see the module docstring).  Works for float and int arrays."""
    w = np.asarray(w)
    if w.shape != layer.weight_shape:
        if w.size == layer.weights and layer.kind == "fc" and w.ndim == 4:
            w = w.reshape(layer.weight_shape)
        else:
            raise ValueError(f"layer {layer.name!r}: weight shape {w.shape} does not match the "
                             f"layer's {layer.weight_shape} (Cout, Cin/groups, kh, kw)")
    flat = w.reshape(layer.cout, layer.k_group)
    kg, ng = layer.k_group, layer.n_group
    return [(g * kg, g * ng, np.ascontiguousarray(flat[g * ng:(g + 1) * ng].T))
            for g in range(layer.groups)]


def isaac_dense_crossbars(layer: Layer, cfg: SMEConfig, sign_sets: int = 1,
                          convention: str = "unrolled") -> int:
    """ISAAC-style dense crossbars of one layer (module docstring)."""
    R, C = cfg.xbar_rows, cfg.xbar_cols
    per = cfg.weight_bits // cfg.cell_bits
    if convention == "unrolled":
        k = layer.cin * layer.kh * layer.kw
        return sign_sets * math.ceil(k / R) * math.ceil(layer.cout * per / C)
    if convention != "tiles":
        raise ValueError(f"convention must be 'unrolled' or 'tiles', not {convention!r}")
    kg, ng, tiles = layer.k_group, layer.n_group * per, set()
    for g in range(layer.groups):
        for rb in range(g * kg // R, ((g + 1) * kg - 1) // R + 1):
            for cb in range(g * ng // C, ((g + 1) * ng - 1) // C + 1):
                tiles.add((rb, cb))
    return sign_sets * len(tiles)
