"""sme.workloads.pretrained: pip fetch into a cache, sha256 pinning."""

import dataclasses
import hashlib

import pytest

from sme.workloads import pretrained
from sme.workloads.pretrained import WEIGHTS, WeightsError, fetch, sha256_file


def test_pinned_hash_matches_torchvision_name():
    w = WEIGHTS["mobilenet_v2"]
    # torchvision names its checkpoints <name>-<first 8 hex of sha256>.pth
    assert w.filename == f"mobilenet_v2-{w.sha256[:8]}.pth"


def test_cached_file_verifies(mobilenet_v2_checkpoint):
    assert sha256_file(mobilenet_v2_checkpoint) == WEIGHTS["mobilenet_v2"].sha256


def test_wrong_sha256_of_cached_file_is_an_error(tmp_path, monkeypatch):
    w = WEIGHTS["mobilenet_v2"]
    (tmp_path / w.filename).write_bytes(b"not the weights")
    with pytest.raises(WeightsError, match="sha256"):
        fetch("mobilenet_v2", cache=tmp_path)


def test_wrong_sha256_of_download_is_an_error(tmp_path, monkeypatch, mobilenet_v2_checkpoint):
    bad = dataclasses.replace(WEIGHTS["mobilenet_v2"], sha256=hashlib.sha256(b"x").hexdigest())
    monkeypatch.setitem(pretrained.WEIGHTS, "mobilenet_v2", bad)
    with pytest.raises(WeightsError, match="downloaded checkpoint .* has sha256 b0353104"):
        fetch("mobilenet_v2", cache=tmp_path)
    assert list(tmp_path.iterdir()) == []              # nothing half-written in the cache


def test_unknown_name():
    with pytest.raises(WeightsError, match="no pretrained weights named"):
        fetch("alexnet")
