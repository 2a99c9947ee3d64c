"""golden/fileio.py: output sets appear together or not at all, short temporary names, the
umask, SIGTERM cleanup; safe .npy/.npz reading (the hostile cases are in test_hostile.py)."""

import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from golden import fileio
from golden.fileio import ArrayFileError, LimitError, OutputSet, load_npy, load_npz

ROOT = Path(__file__).resolve().parents[1]


def test_set_appears_together_or_not_at_all(tmp_path):
    with OutputSet() as out:
        out.add(tmp_path / "a.txt", b"a")
        out.add(tmp_path / "new" / "deep" / "b.txt", b"b")
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == []
    assert (tmp_path / "a.txt").read_bytes() == b"a"
    assert (tmp_path / "new/deep/b.txt").read_bytes() == b"b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "new"]
    (tmp_path / "c").mkdir()
    with pytest.raises(OSError, match="is a directory"):
        with OutputSet() as out:
            out.add(tmp_path / "x.txt", b"x")
            out.add(tmp_path / "new2" / "y.txt", b"y")
            out.add(tmp_path / "c", b"c")                  # the third member fails
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "c", "new"]


def test_an_exception_in_the_block_discards_everything(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with OutputSet() as out:
            out.add(tmp_path / "a.txt", b"a")
            out.reserve(tmp_path / "sub" / "b.txt")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_optional_member_only_warns(tmp_path):
    (tmp_path / "side.json").mkdir()
    with OutputSet() as out:
        out.add(tmp_path / "y.npy", b"y")
        out.add(tmp_path / "side.json", b"{}", optional=True)
    assert (tmp_path / "y.npy").read_bytes() == b"y"
    assert len(out.warnings) == 1 and "side.json" in out.warnings[0]


def test_long_names_and_the_umask(tmp_path):
    name = "x" * 250                                   # legal: NAME_MAX is 255
    old = os.umask(0o027)
    try:
        fileio.atomic_write_bytes(tmp_path / name, b"data")
        fileio.atomic_write_bytes(tmp_path / "d" / "f", b"data")
    finally:
        os.umask(old)
    assert (tmp_path / name).read_bytes() == b"data"
    assert (tmp_path / name).stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "d" / "f").stat().st_mode & 0o777 == 0o640


def test_cli_accepts_a_250_character_output_name(tmp_path):
    from sme.cli import main
    np.save(tmp_path / "w.npy", np.random.default_rng(0).laplace(size=(12, 5)))
    name = tmp_path / ("p" * 250)
    assert main(["compile", str(tmp_path / "w.npy"), "-o", str(name), "--preset", "tiny"]) == 0
    assert name.stat().st_size > 0


def test_sigterm_removes_temporaries(tmp_path):
    """SIGTERM in the middle of an output set: exit 143, nothing written, nothing left."""
    code = f"""
import os, signal, sys
from pathlib import Path
from golden.fileio import OutputSet
import sme.cli as cli
def cmd(args):
    with OutputSet() as out:
        out.add(Path({str(tmp_path)!r}) / "a.bin", b"a" * 1000)
        out.add(Path({str(tmp_path)!r}) / "new" / "b.bin", b"b")
        os.kill(os.getpid(), signal.SIGTERM)
        out.add(Path({str(tmp_path)!r}) / "c.bin", b"c")
    return 0
cli.cmd_stats = cmd
parser = cli.build_parser
def build(*a, **k):
    ap = parser(*a, **k)
    ap._subparsers._group_actions[0].choices["stats"].set_defaults(func=cmd)
    return ap
cli.build_parser = build
sys.exit(cli.main(["stats", "x"]))
"""
    r = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 143, r.stderr
    assert r.stderr.strip() == "sme stats: terminated"
    assert list(tmp_path.iterdir()) == []


def test_npy_reading_checks_before_allocating(tmp_path, monkeypatch):
    a = np.arange(12, dtype=np.int16).reshape(3, 4)
    np.save(tmp_path / "a.npy", a)
    assert np.array_equal(load_npy(tmp_path / "a.npy"), a)
    np.save(tmp_path / "f.npy", np.asfortranarray(a))
    assert np.array_equal(load_npy(tmp_path / "f.npy"), a)
    monkeypatch.setenv(fileio.MAX_BYTES_ENV, "16")
    with pytest.raises(LimitError, match="above the 16 bytes cap .SME_MAX_BYTES"):
        load_npy(tmp_path / "a.npy")
    monkeypatch.setenv(fileio.MAX_BYTES_ENV, "1K")
    assert fileio.max_bytes() == 1024
    monkeypatch.setenv(fileio.MAX_BYTES_ENV, "-3")
    with pytest.raises(LimitError, match="SME_MAX_BYTES"):
        fileio.max_bytes()


def test_npz_reading(tmp_path):
    buf = io.BytesIO()
    np.savez_compressed(buf, w=np.ones((4, 3)), b=np.arange(3))
    (tmp_path / "m.npz").write_bytes(buf.getvalue())
    got = load_npz(tmp_path / "m.npz")
    assert list(got) == ["w", "b"] and np.array_equal(got["b"], np.arange(3))
    with zipfile.ZipFile(tmp_path / "z.npz", "w", zipfile.ZIP_BZIP2) as z:
        z.writestr("w.npy", buf.getvalue()[:10])
    with pytest.raises(ArrayFileError, match="compression method"):
        load_npz(tmp_path / "z.npz")
    (tmp_path / "j.npz").write_text(json.dumps({}))
    with pytest.raises(ArrayFileError, match="not a readable .npz"):
        load_npz(tmp_path / "j.npz")
