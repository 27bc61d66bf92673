"""The restricted unpickler loads numpy data and refuses everything that could run code."""

import builtins
import os
import pickle

import numpy as np
import pytest

from pclab.data import safe_loads


class _CallsSystem:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _CallsEval:
    def __reduce__(self):
        return (builtins.eval, ("__import__('os').getpid()",))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_loads_numpy_and_plain_values(protocol):
    obj = {
        b"data": np.arange(12, dtype=np.uint8).reshape(3, 4),
        b"labels": [1, 2, 3],
        "f": np.linspace(0, 1, 5, dtype=np.float32),
        "s": np.int64(7),
        "t": (None, True, 1.5, "x", b"y"),
    }
    out = safe_loads(pickle.dumps(obj, protocol=protocol), encoding="bytes")
    np.testing.assert_array_equal(out[b"data"], obj[b"data"])
    assert out[b"data"].dtype == np.uint8
    np.testing.assert_array_equal(out["f"], obj["f"])
    assert out[b"labels"] == [1, 2, 3] and out["t"] == obj["t"] and out["s"] == 7


def test_legacy_numpy_module_name_is_resolved():
    raw = pickle.dumps(np.arange(5, dtype=np.int16), protocol=2)
    assert b"numpy._core.multiarray" in raw
    legacy = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    np.testing.assert_array_equal(safe_loads(legacy), np.arange(5, dtype=np.int16))


def test_python2_style_string_keys_become_bytes():
    raw = b"\x80\x02}q\x00U\x04dataq\x01K\x05s."  # {'data': 5} as Python 2 writes it
    assert safe_loads(raw, encoding="bytes") == {b"data": 5}


@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_refuses_os_system_without_running_it(tmp_path, protocol):
    marker = tmp_path / "pwned"
    raw = pickle.dumps({b"data": _CallsSystem(marker)}, protocol=protocol)
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        safe_loads(raw, encoding="bytes")
    assert not marker.exists()


def test_refuses_eval_and_arbitrary_classes():
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        safe_loads(pickle.dumps(_CallsEval()))
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        safe_loads(pickle.dumps(_CallsEval))  # a class reference is a global too


def test_codecs_encode_only_latin1():
    ok = pickle.dumps(b"\xff\x00abc", protocol=2)
    assert safe_loads(ok) == b"\xff\x00abc"
    evil = ok.replace(b"latin1", b"rot_13")
    with pytest.raises(pickle.UnpicklingError, match="encoding"):
        safe_loads(evil)


def test_the_malicious_pickle_really_runs_code_with_plain_pickle(tmp_path):
    # Proves the refusal tests above use a pickle that would execute if loaded.
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_CallsSystem(marker), protocol=2))
    assert marker.exists()
