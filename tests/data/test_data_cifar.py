"""CIFAR-10 loader on a small fake ``cifar-10-batches-py`` folder in the real format."""

import os
import pickle

import numpy as np
import pytest

from pclab.data import DatasetUnavailable, load_dataset, read_cifar_batch
from pclab.data.cifar10 import CIFAR10_TEST_FILES, CIFAR10_TRAIN_FILES

N_PER_BATCH = 4
N_TEST = 6


def _batch(rng, n, name):
    return {
        b"batch_label": name.encode(),
        b"labels": [int(v) for v in rng.integers(0, 10, size=n)],
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


@pytest.fixture
def cifar_dir(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for name in CIFAR10_TRAIN_FILES + CIFAR10_TEST_FILES:
        batches[name] = _batch(rng, N_TEST if name == "test_batch" else N_PER_BATCH, name)
        with open(folder / name, "wb") as f:
            pickle.dump(batches[name], f, protocol=2)  # like the original files
    return folder, batches


def test_layout_conversion_and_labels(cifar_dir, tmp_path):
    folder, raw = cifar_dir
    ds = load_dataset("cifar10", path=folder, cache_dir=tmp_path / "cache", normalise=False)
    assert ds.image_shape == (32, 32, 3)
    assert ds.x_train.shape == (5 * N_PER_BATCH, 3072) and ds.x_test.shape == (N_TEST, 3072)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    data = np.concatenate([raw[n][b"data"] for n in CIFAR10_TRAIN_FILES])
    labels = np.concatenate([raw[n][b"labels"] for n in CIFAR10_TRAIN_FILES])
    np.testing.assert_array_equal(ds.y_train, labels)
    np.testing.assert_array_equal(ds.y_test, raw["test_batch"][b"labels"])
    img = ds.images("train")
    # pixel (row r, column c, channel ch) is entry ch*1024 + r*32 + c of the row
    for i, r, c, ch in [(0, 0, 0, 0), (3, 5, 7, 1), (17, 31, 30, 2), (9, 12, 0, 2)]:
        assert img[i, r, c, ch] == pytest.approx(data[i, ch * 1024 + r * 32 + c] / 255.0)


def test_per_channel_standardisation(cifar_dir, tmp_path):
    folder, _ = cifar_dir
    ds = load_dataset("cifar10", path=folder, cache_dir=tmp_path / "cache")
    per_channel = ds.images("train").reshape(-1, 3)
    np.testing.assert_allclose(per_channel.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(per_channel.std(axis=0), 1.0, atol=1e-5)
    assert ds.mean.shape == (3,) and ds.std.shape == (3,)
    raw = load_dataset("cifar10", path=folder, cache_dir=tmp_path / "cache", normalise=False)
    np.testing.assert_allclose(ds.unnormalise(ds.x_test), raw.x_test, atol=1e-6)


def test_parent_folder_and_cache_reuse(cifar_dir, tmp_path):
    folder, _ = cifar_dir
    cache = tmp_path / "cache"
    first = load_dataset("cifar10", path=folder.parent, cache_dir=cache)
    assert (cache / "cifar10.npz").is_file()
    for name in os.listdir(folder):
        os.remove(folder / name)
    again = load_dataset("cifar10", cache_dir=cache)  # no path needed once cached
    np.testing.assert_array_equal(first.x_train, again.x_train)


def test_missing_files_are_listed(cifar_dir, tmp_path):
    folder, _ = cifar_dir
    os.remove(folder / "data_batch_3")
    os.remove(folder / "test_batch")
    with pytest.raises(DatasetUnavailable, match="data_batch_3, test_batch") as err:
        load_dataset("cifar10", path=folder, cache_dir=tmp_path / "cache")
    assert "data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5, test_batch" in str(err.value)
    with pytest.raises(DatasetUnavailable, match="path="):
        load_dataset("cifar10", cache_dir=tmp_path / "empty-cache")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_batch_is_refused(cifar_dir, tmp_path):
    folder, raw = cifar_dir
    marker = tmp_path / "executed"
    evil = {**raw["data_batch_2"], b"labels": _Evil(marker)}
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump(evil, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system"):
        load_dataset("cifar10", path=folder, cache_dir=tmp_path / "cache")
    assert not marker.exists()
    assert not (tmp_path / "cache" / "cifar10.npz").exists()


def test_wrong_content_is_rejected(tmp_path):
    bad = tmp_path / "b"
    with open(bad, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f, protocol=2)
    with pytest.raises(ValueError, match="3072"):
        read_cifar_batch(bad)
    with open(bad, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, f, protocol=2)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        read_cifar_batch(bad)


@pytest.mark.parametrize("kind", ["random bytes", "hostile pickle"])
def test_cli_refuses_a_bad_cifar_folder_in_one_line(cifar_dir, tmp_path, capsys, kind):
    """``pclab train --dataset cifar10`` on a corrupt or hostile file: one line naming the
    file, exit status 2, no run folder, and the hostile call never runs."""
    from pclab.cli import main

    folder, raw = cifar_dir
    marker = tmp_path / "executed"
    if kind == "random bytes":
        (folder / "data_batch_1").write_bytes(np.random.default_rng(0).bytes(1000))
    else:
        with open(folder / "data_batch_1", "wb") as f:
            pickle.dump({**raw["data_batch_1"], b"labels": _Evil(marker)}, f, protocol=2)
    out = tmp_path / "run"
    code = main(["train", "--dataset", "cifar10", "--cifar-path", str(folder), "--out", str(out),
                 "--data-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "data_batch_1" in err[0], err
    assert not out.exists() and not marker.exists()
