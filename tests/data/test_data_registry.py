"""`load_dataset` names and options, the `Dataset` type, and Fashion-MNIST from fake IDX files."""

import numpy as np
import pytest

from pclab.data import DATASETS, Dataset, DatasetUnavailable, dataset_size, load_dataset, write_idx
from pclab.data.fashion_mnist import SYSTEM_FASHION_DIR


def test_names():
    assert {"mnist", "fashion-mnist", "digits", "synthetic", "cifar10"} <= set(DATASETS)
    with pytest.raises(ValueError, match="valid names: mnist, fashion-mnist, cifar10, digits"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['path'\]"):
        load_dataset("digits", path="x")


@pytest.mark.parametrize("name", ["digits", "synthetic", "blobs", "mnist"])
def test_dataset_size_matches_the_loaded_set(name):
    """The sizes sweeps estimate from, known without loading, are those of the loaded set."""
    try:
        ds = load_dataset(name)
    except DatasetUnavailable:
        pytest.skip(f"{name} is not available on this machine")
    assert dataset_size(name) == ds.x_train.shape
    with pytest.raises(ValueError, match="valid names: mnist"):
        dataset_size("imagenet")


def _fake_fashion(folder, n_train=30, n_test=10, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for i, (stem, a) in enumerate(arrays.items()):
        compress = gz and i % 2 == 0  # a mix of .gz and raw files
        write_idx(folder / (stem + ".gz" if compress else stem), a, compress=compress)
    return arrays


def test_fashion_mnist_from_idx_files(tmp_path):
    arrays = _fake_fashion(tmp_path / "fm")
    ds = load_dataset("fashion-mnist", path=tmp_path / "fm", cache_dir=tmp_path / "c", normalise=False)
    assert ds.image_shape == (28, 28) and ds.x_train.shape == (30, 784)
    np.testing.assert_allclose(ds.x_train * 255, arrays["train-images-idx3-ubyte"].reshape(30, -1), atol=1e-4)
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])
    norm = load_dataset("fashion-mnist", path=tmp_path / "fm", cache_dir=tmp_path / "c")
    assert abs(norm.x_train.mean()) < 1e-5 and abs(norm.x_train.std() - 1) < 1e-5


def test_fashion_mnist_env_var_and_missing_message(tmp_path, monkeypatch):
    monkeypatch.setenv("PCLAB_FASHION_MNIST_DIR", str(tmp_path / "empty"))
    with pytest.raises(DatasetUnavailable) as err:
        load_dataset("fashion-mnist", cache_dir=tmp_path / "c")
    message = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "PCLAB_FASHION_MNIST_DIR" in message and "train-images-idx3-ubyte" in message
    _fake_fashion(tmp_path / "empty", gz=False)
    assert load_dataset("fashion-mnist", cache_dir=tmp_path / "c").n_train == 30


def test_fashion_mnist_truncated_file_is_an_error(tmp_path):
    _fake_fashion(tmp_path / "fm", gz=False)
    f = tmp_path / "fm" / "train-labels-idx1-ubyte"
    f.write_bytes(f.read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated"):
        load_dataset("fashion-mnist", path=tmp_path / "fm", cache_dir=tmp_path / "c")
    assert not (tmp_path / "c" / "fashion-mnist.npz").exists()


def _tiny(**changes):
    fields = dict(
        name="t",
        x_train=np.zeros((4, 6), np.float32),
        y_train=np.array([0, 1, 2, 1]),
        x_test=np.zeros((2, 6), np.float32),
        y_test=np.array([0, 2]),
        num_classes=3,
        image_shape=(2, 3),
    )
    fields.update(changes)
    return Dataset(**fields)


def test_dataset_type():
    ds = _tiny()
    assert ds.dim == 6 and ds.n_train == 4 and ds.n_test == 2
    np.testing.assert_array_equal(ds.one_hot("test"), [[1, 0, 0], [0, 0, 1]])
    assert ds.images().shape == (4, 2, 3)
    with pytest.raises(AttributeError):
        ds.num_classes = 5  # frozen
    with pytest.raises(ValueError, match="split"):
        ds.one_hot("val")
    with pytest.raises(ValueError, match="x_train: expected shape"):
        _tiny(x_train=np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match="y_test: expected labels in"):
        _tiny(y_test=np.array([0, 3]))
    with pytest.raises(ValueError, match="float32"):
        _tiny(x_test=np.zeros((2, 6)))


def test_full_size_fashion_mnist_must_match_its_checksum():
    """A full-size set that is not the published one (here all zeros) is refused by name;
    subsets are not checksummed (the fake sets above pass)."""
    from pclab.data import ChecksumMismatch
    from pclab.data.fashion_mnist import verify_full_set

    full = {"x_train": np.zeros((60_000, 28, 28), np.uint8), "y_train": np.zeros(60_000, np.uint8),
            "x_test": np.zeros((10_000, 28, 28), np.uint8), "y_test": np.zeros(10_000, np.uint8)}
    with pytest.raises(ChecksumMismatch, match="Fashion-MNIST train-images.gz: the decoded data's SHA-256"):
        verify_full_set(full, {"x_train": "train-images.gz"})
    verify_full_set({k: v[:100] for k, v in full.items()})  # a subset: not checked


@pytest.mark.skipif(not SYSTEM_FASHION_DIR.is_dir(), reason="the dataset-fashion-mnist package is not installed")
def test_installed_fashion_mnist_matches_its_checksum():
    from pclab.data.fashion_mnist import read_fashion_mnist_dir

    arrays = read_fashion_mnist_dir(SYSTEM_FASHION_DIR)  # raises ChecksumMismatch on a mismatch
    assert arrays["x_train"].shape == (60_000, 28, 28)
