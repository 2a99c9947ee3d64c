"""Read PyTorch checkpoints and safetensors files without torch.

Contract: :func:`load_checkpoint` returns the checkpoint's object with every tensor replaced by a
``numpy.ndarray`` (a state dict becomes ``{key: array}`` in file order); :func:`load_state_dict`
also unwraps a training checkpoint that holds its weights under ``"state_dict"`` or ``"model"``
and insists on a flat ``{str: array}`` mapping.  Everything that cannot be read raises
:class:`CheckpointError` (a ``ValueError``) with one line that names the file and the problem.

Formats:

- **zip** (``torch.save`` since torch 1.6): ``<root>/data.pkl`` is a pickle whose persistent ids
  ``("storage", StorageType, key, location, numel)`` name the raw little-endian storages
  ``<root>/data/<key>``; ``<root>/byteorder`` may say ``big``.
- **legacy** (``torch.save(..., _use_new_zipfile_serialization=False)`` and every torch < 1.6,
  e.g. torchvision's ``mobilenet_v2-b0353104.pth``): five pickles in a row - the magic number
  ``0x1950a86a20f9469cfc6c``, the protocol version 1001, a ``sys_info`` dict (``little_endian``),
  the object with persistent ids ``("storage", StorageType, key, location, numel, view)``, and the
  list of storage keys - then, per key in that order, an int64 element count and the raw bytes.
- **safetensors** (``.safetensors``): read with ``safetensors.numpy``.

Security: a pickle can call any importable function.  Both pickle formats are read by a restricted
unpickler whose ``find_class`` resolves only the globals a state dict needs
(:data:`ALLOWED_GLOBALS`: ``collections.OrderedDict``, the tensor/parameter rebuild functions of
``torch._utils`` and the typed storage classes) to *our own* numpy stand-ins - torch itself is
never imported.  Any other global (``os.system``, ``builtins.eval``, ...) raises
:class:`UnsafeCheckpointError` before anything is called.  Tensor views are bounds-checked
against their storage, so a crafted offset/stride cannot read outside it.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

from golden.fileio import check_size

__all__ = ["CheckpointError", "UnsafeCheckpointError", "ALLOWED_GLOBALS", "load_checkpoint",
           "load_state_dict", "detect_format"]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read; the message names the file and the problem."""


class UnsafeCheckpointError(CheckpointError):
    """The pickle asks for a global outside :data:`ALLOWED_GLOBALS`; nothing was executed."""


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

#: Storage class name -> numpy dtype.  bfloat16 is widened to float32 (numpy has no bfloat16).
_STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"), "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"), "BFloat16Storage": np.dtype("<u2"),
    "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"), "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"), "BoolStorage": np.dtype("?"),
    "UntypedStorage": np.dtype("u1"),
}


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` & co.: only its element type matters."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage:
    """One storage: a flat array, filled when the data is read (legacy: after the pickle)."""

    def __init__(self, stype: _StorageType, numel: int):
        self.stype, self.numel, self.data = stype, numel, None


class _TensorRef:
    """A tensor waiting for its storage's data: resolved after the whole file is read."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    """Stand-in for ``torch._utils._rebuild_tensor(_v2)``; requires_grad, hooks are dropped."""
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"tensor rebuilt from {type(storage).__name__}, not a storage")
    try:
        size = tuple(int(s) for s in size)
        stride = tuple(int(s) for s in stride)
        offset = int(storage_offset)
    except (TypeError, ValueError):
        raise CheckpointError("tensor with a malformed size/stride/offset") from None
    if len(size) != len(stride):
        raise CheckpointError(f"tensor size {size} and stride {stride} differ in length")
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *_state):
    """Stand-in for ``torch._utils._rebuild_parameter(_with_state)``: a parameter is its data."""
    return data


#: ``(module, name)`` -> the object the restricted unpickler returns for it.
ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", n): _StorageType(n) for n in _STORAGE_DTYPES},
    ("torch.storage", "UntypedStorage"): _StorageType("UntypedStorage"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, f, where: str, persistent_load):
        super().__init__(f)
        self._where = where
        self._persistent = persistent_load

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeCheckpointError(
                f"{self._where}: refusing to load global {module}.{name} (a state dict needs only "
                "OrderedDict, tensor rebuild functions and storage types; this file may run "
                "code when loaded)") from None

    def persistent_load(self, pid):
        return self._persistent(pid)


def _unpickle(f, where: str, persistent_load=None):
    def no_persistent(pid):
        raise CheckpointError(f"{where}: unexpected persistent id {pid!r}")

    try:
        return _RestrictedUnpickler(f, where, persistent_load or no_persistent).load()
    except CheckpointError:
        raise
    except Exception as e:                                  # pickle raises many types
        raise CheckpointError(f"{where}: corrupt pickle data ({type(e).__name__}: {e})") from None


def _storage_from_pid(pid, where: str, legacy: bool):
    if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
        raise CheckpointError(f"{where}: unsupported persistent id {pid!r}")
    want = 6 if legacy else 5
    if len(pid) != want:
        raise CheckpointError(f"{where}: storage id {pid!r} has {len(pid)} fields, not {want}")
    stype, key, _location, numel = pid[1], pid[2], pid[3], pid[4]
    if not isinstance(stype, _StorageType) or not isinstance(numel, int) or numel < 0:
        raise CheckpointError(f"{where}: malformed storage id {pid!r}")
    return str(key), _Storage(stype, numel)


def _resolve(obj, where: str, big_endian: bool):
    """Replace every :class:`_TensorRef` in containers by a bounds-checked numpy copy."""
    if isinstance(obj, _TensorRef):
        st = obj.storage
        if st.data is None:
            raise CheckpointError(f"{where}: a tensor's storage data is missing")
        data = st.data
        if any(s < 0 for s in obj.size) or any(s < 0 for s in obj.stride) or obj.offset < 0:
            raise CheckpointError(f"{where}: tensor with negative size/stride/offset")
        if all(obj.size):
            last = obj.offset + sum((n - 1) * s for n, s in zip(obj.size, obj.stride))
            if last >= data.size:
                raise CheckpointError(f"{where}: tensor view (offset {obj.offset}, size "
                                      f"{obj.size}, stride {obj.stride}) exceeds its storage of "
                                      f"{data.size} elements")
            item = data.itemsize
            arr = np.lib.stride_tricks.as_strided(
                data[obj.offset:], shape=obj.size, strides=[s * item for s in obj.stride],
                writeable=False).copy()
        else:
            arr = np.zeros(obj.size, dtype=data.dtype)
        if big_endian:
            arr = arr.byteswap()
        if st.stype.name == "BFloat16Storage":             # upper half of a float32
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        return arr.astype(arr.dtype.newbyteorder("="))
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _resolve(v, where, big_endian)
        return out
    if isinstance(obj, list):
        return [_resolve(v, where, big_endian) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve(v, where, big_endian) for v in obj)
    if isinstance(obj, _Storage):
        raise CheckpointError(f"{where}: bare storages (not tensors) are not supported")
    return obj


def _load_zip(path: Path) -> object:
    where = str(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{where}: not a readable zip checkpoint ({e})") from None
    with zf:
        names = zf.namelist()
        # Declared member sizes bound what zf.read inflates (zipfile stops at the declared
        # size); PyTorch stores members uncompressed.
        check_size(sum(i.file_size for i in zf.infolist()), f"{where}: the checkpoint's data")
        if any(i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
               for i in zf.infolist()):
            raise CheckpointError(f"{where}: members must be stored or deflated")
        pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise CheckpointError(f"{where}: a zip but not a PyTorch checkpoint "
                                  "(no <root>/data.pkl)")
        root = pkl[0][:-len("data.pkl")]
        big = False
        if root + "byteorder" in names:
            order = zf.read(root + "byteorder").decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise CheckpointError(f"{where}: unknown byte order {order!r}")
            big = order == "big"
        storages: dict[str, _Storage] = {}

        def persistent_load(pid):
            key, st = _storage_from_pid(pid, where, legacy=False)
            if key in storages:
                return storages[key]
            member = f"{root}data/{key}"
            if member not in names:
                raise CheckpointError(f"{where}: storage {member} is missing")
            raw = zf.read(member)
            dt = st.stype.dtype
            if len(raw) < st.numel * dt.itemsize:
                raise CheckpointError(f"{where}: storage {member} holds {len(raw)} bytes, "
                                      f"{st.numel} x {dt.itemsize} expected")
            st.data = np.frombuffer(raw, dtype=dt, count=st.numel)
            storages[key] = st
            return st

        obj = _unpickle(io.BytesIO(zf.read(pkl[0])), where, persistent_load)
    return _resolve(obj, where, big)


def _load_legacy(path: Path) -> object:
    where = str(path)
    with open(path, "rb") as f:
        magic = _unpickle(f, where)
        if magic != LEGACY_MAGIC:
            raise CheckpointError(f"{where}: not a PyTorch checkpoint (bad magic number)")
        version = _unpickle(f, where)
        if version != LEGACY_PROTOCOL:
            raise CheckpointError(f"{where}: unsupported legacy protocol version {version!r}")
        sys_info = _unpickle(f, where)
        big = isinstance(sys_info, dict) and sys_info.get("little_endian") is False
        storages: dict[str, _Storage] = {}
        views: list[tuple[_Storage, str, int, int]] = []

        def persistent_load(pid):
            if isinstance(pid, tuple) and pid and pid[0] == "module":
                return None                                 # saved module source: ignored
            key, st = _storage_from_pid(pid, where, legacy=True)
            view = pid[5]
            if view is not None:                            # (view_key, offset, view_size)
                try:
                    vkey, voff, vsize = str(view[0]), int(view[1]), int(view[2])
                except (TypeError, ValueError, IndexError):
                    raise CheckpointError(f"{where}: malformed storage view {view!r}") from None
                if vkey not in storages:
                    vst = _Storage(st.stype, vsize)
                    storages[vkey] = vst
                    views.append((vst, key, voff, vsize))
                storages.setdefault(key, st)
                return storages[vkey]
            return storages.setdefault(key, st)

        obj = _unpickle(f, where, persistent_load)
        keys = _unpickle(f, where)
        if not isinstance(keys, list):
            raise CheckpointError(f"{where}: storage key list missing")
        for key in keys:
            st = storages.get(str(key))
            if st is None:
                raise CheckpointError(f"{where}: data for unknown storage {key!r}")
            head = f.read(8)
            if len(head) != 8:
                raise CheckpointError(f"{where}: truncated (storage {key} has no length)")
            numel = struct.unpack(">q" if big else "<q", head)[0]
            dt = st.stype.dtype
            if numel != st.numel:               # checked before a read of that size
                raise CheckpointError(f"{where}: storage {key} declares {numel} elements, "
                                      f"its tensor {st.numel}")
            check_size(max(numel, 0) * dt.itemsize, f"{where}: storage {key}")
            raw = f.read(numel * dt.itemsize) if numel >= 0 else b""
            if numel != st.numel or len(raw) != numel * dt.itemsize:
                raise CheckpointError(f"{where}: truncated or inconsistent data for storage "
                                      f"{key} ({len(raw)} bytes read, {st.numel} elements "
                                      "expected)")
            st.data = np.frombuffer(raw, dtype=dt)
        for vst, key, off, size in views:
            base = storages[key].data
            if base is None or off < 0 or off + size > base.size:
                raise CheckpointError(f"{where}: storage view outside storage {key}")
            vst.data = base[off:off + size]
    return _resolve(obj, where, big)


def detect_format(path: str | os.PathLike) -> str:
    """``"zip"``, ``"legacy"``, ``"safetensors"`` or ``"unknown"``, from the first bytes."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:4] == b"PK\x03\x04":
        return "zip"
    if head[:1] == b"\x80" and len(head) >= 2 and head[1] <= 5:
        return "legacy"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    return "unknown"


def load_checkpoint(path: str | os.PathLike) -> object:
    """The object stored in a PyTorch checkpoint or safetensors file, tensors as numpy arrays."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        fmt = detect_format(path)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror})") from None
    if fmt == "zip":
        return _load_zip(path)
    if fmt == "legacy":
        return _load_legacy(path)
    if fmt == "safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError:                                 # pragma: no cover
            raise CheckpointError(f"{path}: reading safetensors needs the 'safetensors' "
                                  "package (pip install safetensors)") from None
        try:
            return dict(load_file(str(path)))
        except Exception as e:                              # safetensors raises its own types
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    raise CheckpointError(f"{path}: not a PyTorch checkpoint (zip or legacy) or safetensors file")


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A flat ``{name: array}`` state dict (see the module docstring)."""
    obj = load_checkpoint(path)
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a state dict, found {type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        if not isinstance(v, np.ndarray):
            raise CheckpointError(f"{path}: entry {k!r} is a {type(v).__name__}, not a tensor")
        out[str(k)] = v
    return out


if __name__ == "__main__":                                  # pragma: no cover
    for p in sys.argv[1:]:
        for k, v in load_state_dict(p).items():
            print(f"{k:50s} {v.dtype} {v.shape}")
