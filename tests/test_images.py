"""sme.workloads.images: the bundled natural-image set and user directories."""

import numpy as np
import pytest

from sme.workloads import images as I


def test_bundled_set_is_large_documented_and_deterministic():
    assert I.bundled_count() >= 500
    names = I.bundled_names()
    assert len(names) == I.bundled_count() == len(set(names))
    assert {n.split("/")[0] for n in names[:len(I.SOURCES)]} == set(I.SOURCES)
    a = I.bundled(3)
    b = I.bundled(3)
    assert a.shape == (3, 3, 224, 224) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], a[1])


def test_flip_and_normalization():
    n = len(I.SOURCES) * len(I.CROPS)                  # first mirrored image
    x = [I.bundled_image(0), I.bundled_image(n)]
    np.testing.assert_allclose(x[1], x[0][:, :, ::-1], atol=1e-5)
    img = I.load_source(I.SOURCES[0])
    side = min(img.shape[:2])
    raw = img[:side, (img.shape[1] - side) // 2:][:side, :side]
    un = x[0].transpose(1, 2, 0) * I.STD + I.MEAN     # back to [0, 1]
    assert un.min() >= -1e-3 and un.max() <= 1 + 1e-3
    assert abs(un.mean() - raw.mean() / 255) < 0.01


def test_directory(tmp_path):
    from skimage import io as skio
    rng = np.random.default_rng(0)
    skio.imsave(tmp_path / "b.png", rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    skio.imsave(tmp_path / "a.png", rng.integers(0, 255, (30, 30), dtype=np.uint8))
    (tmp_path / ".hidden").write_text("ignored")
    x, names = I.from_directory(tmp_path)
    assert names == ["a.png", "b.png"] and x.shape == (2, 3, 224, 224)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(I.ImageError, match="notes.txt: not a readable image"):
        I.from_directory(tmp_path)
    with pytest.raises(I.ImageError, match="not a directory"):
        I.from_directory(tmp_path / "a.png")


def test_preprocess_is_imagenet_normalization():
    img = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    want = ((img / 255.0 - I.MEAN) / I.STD).transpose(2, 0, 1)
    np.testing.assert_allclose(I.preprocess(img), want, atol=1e-4)   # same size: no resampling
    assert I.preprocess(np.zeros((500, 500, 3), np.uint8)).shape == (3, 224, 224)
