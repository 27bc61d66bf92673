"""The verified npz cache: reuse, corruption detection, rebuild, atomic writes."""

import json
import os

import numpy as np
import pytest

from pclab.data import CacheWarning, cached_arrays, resolve_cache_dir
from pclab.data.cache import MANIFEST_KEY, CacheCorrupt, load_arrays, save_arrays


def _fresh():
    rng = np.random.default_rng(1)
    return {
        "x_train": rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, size=50).astype(np.uint8),
    }


class CountingSource:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return _fresh()


def _assert_fresh(arrays):
    expected = _fresh()
    assert sorted(arrays) == sorted(expected)
    for k in expected:
        np.testing.assert_array_equal(arrays[k], expected[k])
        assert arrays[k].dtype == expected[k].dtype


def test_builds_once_then_reads_cache(tmp_path):
    source = CountingSource()
    _assert_fresh(cached_arrays("toy", source, cache_dir=tmp_path))
    _assert_fresh(cached_arrays("toy", source, cache_dir=tmp_path))
    assert source.calls == 1
    assert [p.name for p in tmp_path.iterdir()] == ["toy.npz"]  # no temporary files left


def _flip_byte_in_array_data(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside x_train's bytes
    path.write_bytes(bytes(data))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])


def _garbage(path):
    path.write_bytes(b"not a zip file at all")


def _consistent_zip_wrong_digest(path):
    # A well-formed npz (valid CRCs) whose array differs from what the manifest hashed.
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["x_train"] = arrays["x_train"].copy()
    arrays["x_train"][0, 0, 0] ^= 1
    np.savez(path, **arrays)


def _drop_manifest(path):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files if k != MANIFEST_KEY}
    np.savez(path, **arrays)


@pytest.mark.parametrize(
    "corrupt", [_flip_byte_in_array_data, _truncate, _garbage, _consistent_zip_wrong_digest, _drop_manifest]
)
def test_corrupt_cache_is_detected_deleted_and_rebuilt(tmp_path, corrupt):
    source = CountingSource()
    cached_arrays("toy", source, cache_dir=tmp_path)
    path = tmp_path / "toy.npz"
    corrupt(path)
    with pytest.raises(CacheCorrupt):
        load_arrays(path)
    with pytest.warns(CacheWarning, match="corrupt"):
        arrays = cached_arrays("toy", source, cache_dir=tmp_path)
    assert source.calls == 2
    _assert_fresh(arrays)  # never the corrupt contents
    rebuilt, manifest = load_arrays(path)  # and the file on disk is valid again
    _assert_fresh(rebuilt)


def test_manifest_records_source_and_shapes(tmp_path):
    save_arrays(tmp_path / "a.npz", _fresh(), source="unit test")
    arrays, manifest = load_arrays(tmp_path / "a.npz")
    assert manifest["source"] == "unit test"
    assert manifest["arrays"]["x_train"] == {"dtype": "|u1", "shape": [50, 28, 28]}
    assert len(manifest["sha256"]) == 64
    with np.load(tmp_path / "a.npz") as npz:
        assert json.loads(npz[MANIFEST_KEY].tobytes())["sha256"] == manifest["sha256"]


def test_different_required_source_rebuilds(tmp_path):
    source = CountingSource()
    cached_arrays("toy", source, cache_dir=tmp_path, source="A", require_source=True)
    cached_arrays("toy", source, cache_dir=tmp_path, source="A", require_source=True)
    assert source.calls == 1
    cached_arrays("toy", source, cache_dir=tmp_path, source="B", require_source=True)
    assert source.calls == 2
    cached_arrays("toy", source, cache_dir=tmp_path, source="C", require_source=False)
    assert source.calls == 2


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.warns(CacheWarning, match="could not write"):
        arrays = cached_arrays("toy", CountingSource(), cache_dir=tmp_path)
    _assert_fresh(arrays)
    assert list(tmp_path.iterdir()) == []


def test_cache_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("PCLAB_DATA_DIR", str(tmp_path / "env"))
    assert resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_cache_dir() == tmp_path / "env"
    monkeypatch.delenv("PCLAB_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_cache_dir() == tmp_path / "home" / ".cache" / "pclab" / "data"


def test_bad_names_rejected(tmp_path):
    with pytest.raises(ValueError, match="name"):
        cached_arrays("../escape", CountingSource(), cache_dir=tmp_path)
    with pytest.raises(ValueError, match="object dtype"):
        save_arrays(tmp_path / "o.npz", {"a": np.array([None])}, source="")
