"""IDX reader: round trips (raw and gzip) and every malformed-file check."""

import gzip

import numpy as np
import pytest

from pclab.data import IDXFormatError, read_idx, write_idx
from pclab.data.idx import parse_idx


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([7, 0, 255], dtype=np.uint8),
        np.array([[-5, 70000], [1, -1]], dtype=np.int32),
        np.array([1.5, -2.25], dtype=np.float32),
        np.array([[np.pi]], dtype=np.float64),
    ],
)
def test_round_trip(tmp_path, array, compress):
    path = tmp_path / ("a.gz" if compress else "a")
    write_idx(path, array, compress=compress)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == compress
    out = read_idx(path)
    assert out.dtype == array.dtype and out.shape == array.shape
    np.testing.assert_array_equal(out, array)


def test_header_is_big_endian_mnist_layout(tmp_path):
    write_idx(tmp_path / "f", np.zeros((60000, 28, 28), np.uint8))
    head = (tmp_path / "f").read_bytes()[:16]
    assert head == bytes.fromhex("00000803" "0000ea60" "0000001c" "0000001c")


def test_gzip_detected_from_content_not_name(tmp_path):
    a = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "plain.gz", a, compress=False)
    write_idx(tmp_path / "zipped", a, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "zipped"), a)


def _payload(array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.tobytes()


def test_truncated_raw_file(tmp_path):
    data = _payload(np.ones((5, 4, 4), np.uint8))
    (tmp_path / "t").write_bytes(data[:-3])
    with pytest.raises(IDXFormatError, match="truncated"):
        read_idx(tmp_path / "t")


def test_truncated_gzip_file(tmp_path):
    data = gzip.compress(_payload(np.arange(4000, dtype=np.uint32).astype(np.uint8).reshape(40, 100)))
    (tmp_path / "t.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(IDXFormatError, match="gzip"):
        read_idx(tmp_path / "t.gz")


def test_gzip_of_truncated_payload(tmp_path):
    (tmp_path / "t.gz").write_bytes(gzip.compress(_payload(np.ones((3, 3), np.uint8))[:-1]))
    with pytest.raises(IDXFormatError, match="truncated"):
        read_idx(tmp_path / "t.gz")


def test_trailing_bytes(tmp_path):
    (tmp_path / "t").write_bytes(_payload(np.ones(3, np.uint8)) + b"\0")
    with pytest.raises(IDXFormatError, match="trailing"):
        read_idx(tmp_path / "t")


@pytest.mark.parametrize("bad", [b"\x01\x00\x08\x01", b"\x00\x01\x08\x01", b"\x1f\x00\x08\x01"])
def test_bad_magic(bad):
    with pytest.raises(IDXFormatError, match="magic"):
        parse_idx(bad + np.asarray([1], ">u4").tobytes() + b"\x05")


def test_unknown_type_code_and_short_header():
    with pytest.raises(IDXFormatError, match="type code 0x07"):
        parse_idx(b"\x00\x00\x07\x01" + np.asarray([1], ">u4").tobytes() + b"\x05")
    with pytest.raises(IDXFormatError, match="header"):
        parse_idx(b"\x00\x00\x08\x03\x00\x00\x00\x01")
    with pytest.raises(IDXFormatError, match="too short"):
        parse_idx(b"\x00\x00")
    with pytest.raises(IDXFormatError, match="0 dimensions"):
        parse_idx(b"\x00\x00\x08\x00")
