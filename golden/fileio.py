"""Files in and out: atomic output sets and safe reading of array files (numpy only).

Writing
    Every output of the project goes through :class:`OutputSet` (or :func:`atomic_write_bytes` for
    one file).  The files of a set appear all together or not at all: each is first written in full
    under a short temporary name (``.sme-`` + 8 random characters + ``.tmp``, so a legal 255-byte
    output name still works) beside its target, or inside a staging directory when the target's
    directory does not exist yet; only when every file is complete are they renamed into place (a
    new directory by one rename).  Files and directories are created with mode 0666/0777 minus the
    umask.  On any exception, including ``KeyboardInterrupt`` and the CLI's SIGTERM exception, every
    temporary file and staging directory is removed.  An *optional* member (a sidecar such as
    ``P.lastrun.json``) that cannot be written is dropped with a message in
    :attr:`OutputSet.warnings`; it never turns a finished result into an error.

Reading
    :func:`load_npy` and :func:`load_npz` read the ``.npy`` header (of the file, or of every
    ``.npz`` member) first, refuse pickles, strings, complex numbers and other non-numeric
    dtypes, and compare the size the header declares with the bytes present (the member size
    the zip directory declares, for ``.npz``) and with the cap of :func:`max_bytes` *before*
    anything is allocated or decompressed.  Decompression never produces more than a member's
    declared size, so a zip bomb costs at most the cap.  Every failure is one
    :class:`ArrayFileError` sentence naming the file.

The cap
    ``SME_MAX_BYTES`` (environment; bytes, or with a ``K``/``M``/``G`` suffix; the CLI's
    ``--max-bytes`` sets it) bounds the data of any one array read or produced (a layer's
    weights, an input batch, an output) and the total of one ``.npz``.  Default
    :data:`DEFAULT_MAX_BYTES` = 256 MiB: the largest layer of ResNet-50 is 16 MiB as float64, the
    whole network 195 MiB.
"""

from __future__ import annotations

import errno
import io
import math
import os
import secrets
import shutil
import zipfile
import zlib
from pathlib import Path

import numpy as np

__all__ = ["atomic_write_bytes", "OutputSet", "load_npy", "load_npz", "save_npy",
           "read_npy_bytes", "npy_bytes", "ArrayFileError", "LimitError", "max_bytes",
           "parse_size", "check_size",
           "DEFAULT_MAX_BYTES", "MAX_BYTES_ENV", "format_bytes"]

DEFAULT_MAX_BYTES = 256 << 20
MAX_BYTES_ENV = "SME_MAX_BYTES"
#: dtype kinds an array file may hold: bool, signed and unsigned integers, floats.
NUMERIC_KINDS = "biuf"
_KIND_NAMES = {"c": "complex numbers", "U": "strings", "S": "byte strings", "O": "Python objects",
               "V": "structured records", "M": "dates", "m": "time spans"}


class ArrayFileError(ValueError):
    """An array file that is missing, unreadable, malformed or larger than allowed."""


class LimitError(ArrayFileError):
    """A declared or computed size above the cap of :func:`max_bytes`."""


def format_bytes(n: int) -> str:
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit}"
    return f"{n} bytes"


def parse_size(text: str) -> int:
    """Bytes from ``"1048576"``, ``"512K"``, ``"256M"``, ``"2G"`` or ``"1T"`` (at least 1)."""
    text = text.strip()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(text[-1:].upper(), 1)
    try:
        value = int(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        value = 0
    if value < 1:
        raise LimitError(f"{text!r} is not a size (bytes, or a number with K, M, G or T)")
    return value


def max_bytes() -> int:
    """The cap (module docstring): ``SME_MAX_BYTES`` if set, else :data:`DEFAULT_MAX_BYTES`."""
    text = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    try:
        return parse_size(text)
    except LimitError as e:
        raise LimitError(f"{MAX_BYTES_ENV}: {e}") from None


def check_size(nbytes: int, what: str) -> None:
    """Raise :class:`LimitError` if ``what`` would need more than the cap."""
    cap = max_bytes()
    if nbytes > cap:
        raise LimitError(f"{what} would need {format_bytes(nbytes)}, above the "
                         f"{format_bytes(cap)} cap ({MAX_BYTES_ENV} or --max-bytes raises it)")


# ---- writing ------------------------------------------------------------------------------

def _tmp_name() -> str:
    return f".sme-{secrets.token_hex(4)}.tmp"


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (must not exist) with mode 0666 minus the umask; fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        _remove(path)
        raise


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


class OutputSet:
    """Files written together or not at all (module docstring).  Use as a context manager::

        with OutputSet() as out:
            out.add("y.npy", data)                         # required
            out.add("p.lastrun.json", side, optional=True) # a sidecar
        print(*out.warnings)

    Data is written when :meth:`add` is called (so a failure surfaces early, before later
    work); the renames happen when the ``with`` block ends without an exception.
    """

    def __init__(self):
        self._files: list[tuple[Path, Path, bool]] = []       # (temporary, target, optional)
        self._dirs: list[tuple[Path, Path, bool]] = []        # (staged tree, new dir, optional)
        self._staging: list[Path] = []                        # staging roots to remove
        self._in_dirs: list[tuple[Path, Path]] = []           # (new dir, file inside it)
        self._staged: dict[Path, Path] = {}                   # target -> its staged file
        self.warnings: list[str] = []
        self.written: list[Path] = []

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()

    def reserve(self, path: str | os.PathLike, optional: bool = False) -> None:
        """Stage an empty placeholder for ``path`` now, so that an output that cannot be
        written fails before the work that produces it; :meth:`add` fills it in later."""
        self.add(path, b"", optional)

    def add(self, path: str | os.PathLike, data: bytes, optional: bool = False) -> None:
        """Stage ``data`` for ``path`` (replacing what a :meth:`reserve` or an earlier
        :meth:`add` staged).  An ``OSError`` for a required file propagates (with the target
        named); for an optional one it becomes a warning."""
        target = Path(path)
        try:
            if not str(path):
                raise OSError(errno.ENOENT, "an empty output file name", str(path))
            staged = self._staged.get(target)
            if staged is not None:
                with open(staged, "r+b") as f:
                    f.truncate(0)
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            else:
                self._stage(target, data, optional)
        except OSError as e:
            err = OSError(e.errno, e.strerror or str(e), str(path))
            if not optional:
                self.discard()
                raise err from None
            self.warnings.append(f"{target} not written ({err.strerror})")

    def _stage(self, target: Path, data: bytes, optional: bool) -> None:
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(target))
        parent = target.parent
        if parent.is_dir():
            tmp = parent / _tmp_name()
            _write_new(tmp, data)
            self._files.append((tmp, target, optional))
            self._staged[target] = tmp
            return
        # The directory does not exist: build the new part of the tree in a staging directory
        # inside the nearest existing ancestor, and move it into place with one rename.
        anc = parent
        while not anc.exists():
            if anc.parent == anc:
                break
            anc = anc.parent
        if not anc.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(anc))
        first = Path(*parent.relative_to(anc).parts[:1])
        for staged, new, _ in self._dirs:
            if new == anc / first:
                root = staged.parent
                break
        else:
            root = anc / _tmp_name()
            os.mkdir(root, 0o777)
            self._staging.append(root)
            self._dirs.append((root / first, anc / first, optional))
        inner = root / parent.relative_to(anc)
        inner.mkdir(parents=True, exist_ok=True)
        _write_new(inner / target.name, data)
        self._in_dirs.append((anc / first, target))
        self._staged[target] = inner / target.name

    def discard(self) -> None:
        """Remove everything staged (idempotent)."""
        for tmp, _, _ in self._files:
            _remove(tmp)
        for root in self._staging:
            _remove(root)
        self._files, self._dirs, self._staging, self._in_dirs = [], [], [], []
        self._staged = {}

    def commit(self) -> None:
        """Rename every staged file and directory into place."""
        try:
            for tmp, target, optional in self._files:
                try:
                    os.replace(tmp, target)
                    self.written.append(target)
                except OSError as e:
                    if not optional:
                        raise OSError(e.errno, e.strerror, str(target)) from None
                    _remove(tmp)
                    self.warnings.append(f"{target} not written ({e.strerror})")
            for staged, new, optional in self._dirs:
                try:
                    os.rename(staged, new)
                    self.written += [t for d, t in self._in_dirs if d == new]
                except OSError as e:
                    if not optional:
                        raise OSError(e.errno, e.strerror, str(new)) from None
                    self.warnings.append(f"{new} not written ({e.strerror})")
        finally:
            self.discard()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.
    Missing parent directories are created (and appear only with the file)."""
    with OutputSet() as out:
        out.add(path, data)


def save_npy(path: str | os.PathLike, arr: np.ndarray) -> None:
    """Write ``arr`` as a ``.npy`` file atomically (no pickles)."""
    atomic_write_bytes(path, npy_bytes(arr))


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


# ---- reading ------------------------------------------------------------------------------

def _read_header(f, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the ``.npy`` stream ``f`` positioned at its start."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, SyntaxError, TypeError, EOFError, MemoryError, RecursionError,
            OverflowError, UnicodeDecodeError) as e:
        raise ArrayFileError(f"{where}: not a valid .npy array (bad header: "
                             f"{' '.join(str(e).split())[:120]})") from None
    except Exception as e:                       # tokenizer errors of a mangled header dict
        raise ArrayFileError(f"{where}: not a valid .npy array (bad header: "
                             f"{type(e).__name__})") from None
    if dtype.kind not in NUMERIC_KINDS or dtype.hasobject:
        what = _KIND_NAMES.get(dtype.kind, f"dtype {dtype}")
        raise ArrayFileError(f"{where}: holds {what}; numbers (integers or real floats) "
                             f"expected")
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ArrayFileError(f"{where}: bad shape {shape} in the header")
    return shape, fortran, dtype


def _read_body(f, shape, fortran, dtype, present: int, where: str) -> np.ndarray:
    """The array data after the header: declared size checked against ``present`` bytes and
    the cap before one byte is allocated."""
    declared = math.prod(shape) * dtype.itemsize
    if declared != present:
        raise ArrayFileError(f"{where}: the header declares shape {shape} of {dtype} "
                             f"({format_bytes(declared)}) but {format_bytes(present)} of data "
                             f"follow")
    check_size(declared, f"{where}: shape {shape} of {dtype}")
    data = f.read(declared)
    if len(data) != declared:
        raise ArrayFileError(f"{where}: truncated ({len(data)} of {declared} bytes)")
    a = np.frombuffer(data, dtype=dtype)
    return a.reshape(shape, order="F" if fortran else "C")


def read_npy_bytes(data: bytes, where: str) -> np.ndarray:
    """An array from the bytes of a ``.npy`` file (same checks as :func:`load_npy`)."""
    f = io.BytesIO(data)
    shape, fortran, dtype = _read_header(f, where)
    return _read_body(f, shape, fortran, dtype, len(data) - f.tell(), where)


def load_npy(path: str | os.PathLike, what: str = "array") -> np.ndarray:
    """The array in the ``.npy`` file ``path`` (``what`` names it in error messages).  Only
    numeric dtypes; header checked against the file size and the cap before reading."""
    where = f"{what} file {str(path)!r}"
    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise ArrayFileError(f"{where} is not a .npy file (no NumPy header; save "
                                     f"arrays with numpy.save)")
            f.seek(0)
            shape, fortran, dtype = _read_header(f, where)
            present = os.fstat(f.fileno()).st_size - f.tell()
            return _read_body(f, shape, fortran, dtype, present, where)
    except FileNotFoundError:
        raise ArrayFileError(f"{where} does not exist") from None
    except OSError as e:
        raise ArrayFileError(f"{where}: cannot read ({e.strerror or e})") from None


def load_npz(path: str | os.PathLike, what: str = "archive") -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` file by name (``.npy`` suffix dropped), in file order.

    The zip directory's declared member sizes are checked against the cap (each and in total)
    before anything is decompressed, each member's ``.npy`` header against its declared size,
    and decompression stops at the declared size.  Pickles and non-numeric dtypes refused.
    """
    where = f"{what} file {str(path)!r}"
    try:
        z = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ArrayFileError(f"{where} does not exist") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise ArrayFileError(f"{where}: not a readable .npz (zip) file ({e})") from None
    with z:
        infos = z.infolist()
        check_size(sum(i.file_size for i in infos), f"{where}: {len(infos)} member(s)")
        out = {}
        for info in infos:
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                # bzip2 and lzma members decompress without an output bound; numpy never
                # writes them
                raise ArrayFileError(f"{where}: member {info.filename!r} uses compression "
                                     f"method {info.compress_type} (stored or deflated expected)")
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            member = f"{where}, member {info.filename!r}"
            try:
                with z.open(info) as f:
                    shape, fortran, dtype = _read_header(f, member)
                    present = info.file_size - f.tell()
                    out[name] = _read_body(f, shape, fortran, dtype, present, member)
            except ArrayFileError:
                raise
            # zipfile raises RuntimeError for an encrypted member and NotImplementedError for a
            # compression method it does not support: both are malformed input here, not stubs.
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError,
                    RuntimeError, NotImplementedError) as e:
                raise ArrayFileError(f"{member}: cannot be read ({e})") from None
        return out
