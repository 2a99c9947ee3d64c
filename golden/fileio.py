"""Files in and out: atomic writes and safe reading of array files (numpy only).

Every output of the project goes through :func:`atomic_write_bytes`, so that a reader sees the old
file or the whole new one, never half of it (an interrupted run leaves nothing half-written).
:func:`load_npy` reads a ``.npy`` array without unpickling anything and turns every way the file
can be wrong into one :class:`ArrayFileError` sentence.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_write_bytes", "load_npy", "save_npy", "ArrayFileError"]


class ArrayFileError(ValueError):
    """An array file that is missing, unreadable or not a ``.npy`` array."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.
    Missing parent directories are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load_npy(path: str | os.PathLike, what: str) -> np.ndarray:
    """The array in the ``.npy`` file ``path`` (``what`` names it in error messages).  Pickled
    object arrays are refused; anything else wrong raises :class:`ArrayFileError`."""
    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise ArrayFileError(f"{what} file {str(path)!r} is not a .npy file (no NumPy "
                                     f"header; save arrays with numpy.save)")
            f.seek(0)
            return np.load(f, allow_pickle=False)
    except FileNotFoundError:
        raise ArrayFileError(f"{what} file {str(path)!r} does not exist") from None
    except ArrayFileError:
        raise
    except (ValueError, OSError, EOFError) as e:
        raise ArrayFileError(f"{what} file {str(path)!r} is not a valid .npy array ({e})") \
            from None


def save_npy(path: str | os.PathLike, arr: np.ndarray) -> None:
    """Write ``arr`` as a ``.npy`` file atomically (no pickles)."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())
