"""pclab.io: atomic writes leave a complete file with the ordinary mode, or nothing."""

import os
import stat

import pytest

from pclab.io import atomic_write_bytes, atomic_write_csv, atomic_write_json


def test_written_file_has_the_umask_mode_and_no_temporary_left(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "sub" / "a.bin", b"abc")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"abc"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.bin"]


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = atomic_write_json(tmp_path / "x.json", {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_csv_columns_are_the_union_of_keys(tmp_path):
    path = atomic_write_csv(tmp_path / "r.csv", [{"a": 1}, {"b": 2, "a": 3}])
    assert path.read_text().splitlines() == ["a,b", "1,", "3,2"]
