"""sme.workloads.checkpoints: PyTorch zip/legacy and safetensors without torch, and refusal of
pickles that would run code."""

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from sme.workloads.checkpoints import (CheckpointError, UnsafeCheckpointError, detect_format,
                                       load_checkpoint, load_state_dict)

# ---- a writer of torch's two pickle formats, following torch/serialization.py ----------------
# (torch is not installed here; these mirror torch.save's _save and _legacy_save byte layout:
# protocol-2 pickles, storages as persistent ids, tensors as _rebuild_tensor_v2 reductions)


class _Global:
    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self):                              # pickle insists on a callable
        raise AssertionError("never called")


class _Store:
    def __init__(self, key, arr):
        self.key, self.arr = key, np.ascontiguousarray(arr).ravel()

    @property
    def stype(self):
        return {np.float32: "FloatStorage", np.int64: "LongStorage", np.float64: "DoubleStorage",
                np.float16: "HalfStorage"}[self.arr.dtype.type]


class _Tensor:
    def __init__(self, store, offset, size, stride):
        self.store, self.offset, self.size, self.stride = store, offset, size, stride

    def __reduce__(self):
        return (_Global("torch._utils", "_rebuild_tensor_v2"),
                (self.store, self.offset, self.size, self.stride, False,
                 collections.OrderedDict()))


class _Pickler(pickle._Pickler):
    dispatch = pickle._Pickler.dispatch.copy()

    def _save_global(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())

    dispatch[_Global] = _save_global

    def __init__(self, f, legacy):
        super().__init__(f, protocol=2)
        self.legacy, self.stores = legacy, {}

    def persistent_id(self, obj):
        if isinstance(obj, _Store):
            self.stores[obj.key] = obj
            pid = ("storage", _Global("torch", obj.stype), obj.key, "cpu", obj.arr.size)
            return pid + (None,) if self.legacy else pid
        return None


def _tensors(arrays):
    """{name: array} -> OrderedDict of _Tensor, one storage each (plus a shared-storage view)."""
    sd = collections.OrderedDict()
    for i, (k, a) in enumerate(arrays.items()):
        a = np.asarray(a)
        st = _Store(str(i), a)
        strides = [int(np.prod(a.shape[d + 1:])) for d in range(a.ndim)]
        sd[k] = _Tensor(st, 0, tuple(a.shape), tuple(strides))
    return sd


def save_zip(path, obj, root="archive"):
    buf = io.BytesIO()
    p = _Pickler(buf, legacy=False)
    p.dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{root}/data.pkl", buf.getvalue())
        z.writestr(f"{root}/byteorder", "little")
        for key in sorted(p.stores):
            z.writestr(f"{root}/data/{key}", p.stores[key].arr.astype(
                p.stores[key].arr.dtype.newbyteorder("<")).tobytes())
        z.writestr(f"{root}/version", "3\n")


def save_legacy(path, obj, body=None):
    with open(path, "wb") as f:
        for head in (0x1950A86A20F9469CFC6C, 1001,
                     {"protocol_version": 1001, "little_endian": True,
                      "type_sizes": {"short": 2, "int": 4, "long": 4}}):
            pickle.dump(head, f, protocol=2)
        buf = io.BytesIO()
        p = _Pickler(buf, legacy=True)
        p.dump(obj)
        f.write(body if body is not None else buf.getvalue())
        keys = sorted(p.stores)
        pickle.dump(keys, f, protocol=2)
        for k in keys:
            arr = p.stores[k].arr
            f.write(struct.pack("<q", arr.size))
            f.write(arr.tobytes())


ARRAYS = {
    "conv.weight": np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3) / 7,
    "bn.running_var": np.array([0.5, 2.0], dtype=np.float32),
    "bn.num_batches_tracked": np.array(12, dtype=np.int64),
    "fc.weight": np.random.default_rng(0).normal(size=(4, 5)),
    "half": np.array([1.5, -2.25], dtype=np.float16),
}


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_round_trip(tmp_path, fmt):
    path = tmp_path / "m.pth"
    (save_zip if fmt == "zip" else save_legacy)(path, _tensors(ARRAYS))
    assert detect_format(path) == fmt
    sd = load_state_dict(path)
    assert list(sd) == list(ARRAYS)
    for k, a in ARRAYS.items():
        assert sd[k].dtype == a.dtype and sd[k].shape == a.shape
        np.testing.assert_array_equal(sd[k], a)


def test_views_transposed_and_offset(tmp_path):
    base = np.arange(24, dtype=np.float32)
    st = _Store("0", base)
    obj = collections.OrderedDict(
        t=_Tensor(st, 0, (4, 6), (1, 4)),            # a transposed (6, 4) view
        s=_Tensor(st, 5, (3,), (2,)))                # shares the storage, offset and stride
    save_zip(tmp_path / "v.pt", obj)
    sd = load_state_dict(tmp_path / "v.pt")
    np.testing.assert_array_equal(sd["t"], base.reshape(6, 4).T)
    np.testing.assert_array_equal(sd["s"], base[5:11:2])


def test_checkpoint_wrapper_and_nested(tmp_path):
    obj = {"epoch": 3, "state_dict": _tensors({"w": np.ones((2, 2), np.float32)})}
    save_zip(tmp_path / "c.pth", obj)
    assert load_checkpoint(tmp_path / "c.pth")["epoch"] == 3
    assert list(load_state_dict(tmp_path / "c.pth")) == ["w"]


def test_out_of_bounds_view_refused(tmp_path):
    st = _Store("0", np.zeros(4, np.float32))
    save_zip(tmp_path / "oob.pt", {"w": _Tensor(st, 2, (4,), (1,))})
    with pytest.raises(CheckpointError, match="exceeds its storage"):
        load_state_dict(tmp_path / "oob.pt")


def test_safetensors(tmp_path):
    from safetensors.numpy import save_file
    save_file({"a": np.eye(3, dtype=np.float32)}, str(tmp_path / "m.safetensors"))
    sd = load_state_dict(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(sd["a"], np.eye(3))


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_malicious_pickle_refused_and_runs_nothing(tmp_path, fmt):
    target = tmp_path / "pwned"
    payload = pickle.dumps({"w": _Evil(target)}, protocol=2)
    # the payload is live: an ordinary unpickler really runs the command
    pickle.loads(payload)
    assert target.exists()
    target.unlink()

    path = tmp_path / "evil.pth"
    if fmt == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", payload)
    else:
        save_legacy(path, {}, body=payload)
    with pytest.raises(UnsafeCheckpointError, match=r"refusing to load global (posix|os)\.system"):
        load_checkpoint(path)
    assert not target.exists()


def test_bad_files(tmp_path):
    (tmp_path / "t.pth").write_text("hello")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_state_dict(tmp_path / "t.pth")
    with pytest.raises(CheckpointError, match="no such file"):
        load_state_dict(tmp_path / "none.pth")
    good = tmp_path / "g.pth"
    save_legacy(good, _tensors(ARRAYS))
    (tmp_path / "trunc.pth").write_bytes(good.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="truncated"):
        load_state_dict(tmp_path / "trunc.pth")
    with zipfile.ZipFile(tmp_path / "z.pth", "w") as z:
        z.writestr("x.txt", "x")
    with pytest.raises(CheckpointError, match="data.pkl"):
        load_state_dict(tmp_path / "z.pth")


def test_real_mobilenet_v2_legacy_checkpoint(mobilenet_v2_checkpoint, mobilenet_v2_state_dict):
    assert detect_format(mobilenet_v2_checkpoint) == "legacy"
    sd = mobilenet_v2_state_dict
    assert len(sd) == 314
    assert sd["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert sd["features.1.conv.0.0.weight"].shape == (32, 1, 3, 3)       # depthwise
    assert sd["classifier.1.weight"].shape == (1000, 1280)
    assert sd["features.0.1.num_batches_tracked"].dtype == np.int64
    conv_fc = sum(v.size for k, v in sd.items() if k.endswith("weight") and v.ndim in (2, 4))
    assert conv_fc == 3_469_760                       # SPEC.md's MobileNet-v2 weight count
    assert np.all(sd["features.0.1.running_var"] > 0)


def test_matches_torch_when_installed(tmp_path):
    torch = pytest.importorskip("torch")
    sd = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),
          "b": torch.ones(3, dtype=torch.int64)}
    for legacy in (False, True):
        torch.save(sd, tmp_path / "t.pt", _use_new_zipfile_serialization=not legacy)
        got = load_state_dict(tmp_path / "t.pt")
        for k, v in sd.items():
            np.testing.assert_array_equal(got[k], v.numpy())
