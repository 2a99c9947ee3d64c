"""Preprocessed natural images for whole-network inference, without ImageNet.

ImageNet cannot be downloaded here, so the bundled set is made of the natural photographs that
ship inside the scikit-image wheel (``skimage.data``) and scikit-learn
(``sklearn.datasets.load_sample_images``).  It is an input distribution for *fidelity* (does the
hardware agree with the float model?), not a labelled test set: nothing here measures ImageNet
accuracy.

**The bundled set** (:func:`bundled`): :data:`SOURCES` (18 photographs; grey ones are replicated
to three channels) x :data:`CROPS` (14 square crops: the full centre square, then crops of 80 %,
60 % and 40 % of the short side at fixed anchors) x 2 (as is, mirrored left-right) =
**504 images**, deterministic (no random numbers).  Image ``i`` is source ``i % 18``, variant
``i // 18``, so any prefix (``--limit N``) spans all sources.  Each crop is resized to 224 x 224
(bilinear with anti-aliasing, :func:`skimage.transform.resize`), scaled to [0, 1] and normalized
with the ImageNet mean/std (torchvision's): ``(x - MEAN) / STD``, layout (N, 3, 224, 224)
float32.

**A user's directory** (:func:`from_directory`): every file in it, sorted by name (hidden files
and subdirectories skipped), read with scikit-image; each image's centre square is resized and
normalized as above.  A file that is not a readable image raises :class:`ImageError` naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["ImageError", "SOURCES", "CROPS", "MEAN", "STD", "SIZE", "bundled", "bundled_count",
           "bundled_names", "bundled_image", "from_directory", "preprocess", "load_source"]

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
SIZE = 224

#: (name, loader description): skimage.data photographs and scikit-learn's two sample images.
SOURCES = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right",
           "hubble_deep_field", "immunohistochemistry", "retina", "sklearn_china",
           "sklearn_flower", "camera", "coins", "clock", "moon", "grass", "gravel", "brick")

#: (fraction of the short side, vertical anchor, horizontal anchor); anchors 0 = top/left,
#: 0.5 = centre, 1 = bottom/right.
CROPS = ((1.0, .5, .5),
         (0.8, .5, .5), (0.8, 0, 0), (0.8, 0, 1), (0.8, 1, 0), (0.8, 1, 1),
         (0.6, .5, .5), (0.6, 0, 0), (0.6, 0, 1), (0.6, 1, 0), (0.6, 1, 1),
         (0.4, .5, .5), (0.4, .25, .25), (0.4, .75, .75))


class ImageError(ValueError):
    """An image file or directory that cannot be used; the message names it."""


def bundled_count() -> int:
    return len(SOURCES) * len(CROPS) * 2


def load_source(name: str) -> np.ndarray:
    """The original photograph ``name`` as uint8 (H, W, 3)."""
    if name.startswith("sklearn_"):
        from sklearn.datasets import load_sample_image
        img = load_sample_image(name[len("sklearn_"):] + ".jpg")
    else:
        from skimage import data
        if name.startswith("motorcycle_"):
            left, right, _disp = data.stereo_motorcycle()
            img = left if name.endswith("left") else right
        else:
            img = getattr(data, name)()
    return _rgb(np.asarray(img), name)


def _rgb(img: np.ndarray, what: str) -> np.ndarray:
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    elif img.ndim == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ImageError(f"{what}: not a grey, RGB or RGBA image (array shape {img.shape})")
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img >> 8).astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating) or img.dtype == bool:
        return (np.clip(img.astype(np.float64), 0, 1) * 255 + 0.5).astype(np.uint8)
    raise ImageError(f"{what}: unsupported pixel type {img.dtype}")


def _crop(img: np.ndarray, frac: float, ay: float, ax: float) -> np.ndarray:
    h, w = img.shape[:2]
    side = max(1, int(round(frac * min(h, w))))
    y0 = int(round(ay * (h - side)))
    x0 = int(round(ax * (w - side)))
    return img[y0:y0 + side, x0:x0 + side]


def preprocess(img: np.ndarray, size: int = SIZE) -> np.ndarray:
    """A square uint8 (S, S, 3) image -> float32 (3, size, size), ImageNet-normalized."""
    from skimage.transform import resize
    x = resize(img.astype(np.float32) / 255.0, (size, size), order=1, anti_aliasing=True,
               preserve_range=True).astype(np.float32)
    return ((x - MEAN) / STD).transpose(2, 0, 1)


def bundled_names(limit: int | None = None) -> list[str]:
    """``source/crop-k[/flip]`` of each bundled image, in order."""
    n = bundled_count() if limit is None else min(limit, bundled_count())
    out = []
    for i in range(n):
        src, var = SOURCES[i % len(SOURCES)], i // len(SOURCES)
        crop, flip = var % len(CROPS), var // len(CROPS)
        out.append(f"{src}/crop{crop}" + ("/flip" if flip else ""))
    return out


def bundled_image(i: int, size: int = SIZE, _cache: dict | None = None) -> np.ndarray:
    """Bundled image ``i`` (0 <= i < :func:`bundled_count`), float32 (3, size, size)."""
    if not 0 <= i < bundled_count():
        raise ImageError(f"bundled image index {i} out of range 0..{bundled_count() - 1}")
    src, var = SOURCES[i % len(SOURCES)], i // len(SOURCES)
    crop, flip = CROPS[var % len(CROPS)], var // len(CROPS)
    cache = {} if _cache is None else _cache
    if src not in cache:
        cache[src] = load_source(src)
    sq = _crop(cache[src], *crop)
    return preprocess(sq[:, ::-1] if flip else sq, size)


def bundled(limit: int | None = None, size: int = SIZE) -> np.ndarray:
    """The first ``limit`` (default all 504) bundled images, float32 (N, 3, size, size)."""
    if limit is not None and limit < 0:
        raise ImageError(f"--limit must be >= 0, not {limit}")
    n = bundled_count() if limit is None else min(limit, bundled_count())
    cache: dict[str, np.ndarray] = {}
    out = np.empty((n, 3, size, size), dtype=np.float32)
    for i in range(n):
        out[i] = bundled_image(i, size, cache)
    return out


def from_directory(path: str | os.PathLike, limit: int | None = None,
                   size: int = SIZE) -> tuple[np.ndarray, list[str]]:
    """``(images (N, 3, size, size) float32, file names)`` of every image file in ``path``."""
    d = Path(path)
    if not d.is_dir():
        raise ImageError(f"{d}: not a directory")
    files = sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ImageError(f"{d}: no image files")
    if limit is not None:
        files = files[:limit]
    from skimage import io as skio
    out = np.empty((len(files), 3, size, size), dtype=np.float32)
    for i, f in enumerate(files):
        try:
            img = skio.imread(f)
        except Exception as e:                              # imageio/PIL raise many types
            raise ImageError(f"{f}: not a readable image ({type(e).__name__})") from None
        img = _rgb(np.asarray(img), str(f))
        out[i] = preprocess(_crop(img, 1.0, .5, .5), size)
    return out, [f.name for f in files]
