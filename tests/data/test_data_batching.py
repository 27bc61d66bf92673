"""Mini-batches from explicit PRNG keys, one-hot targets, train/validation split."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pclab.data import batches, num_batches, one_hot, train_val_split


def _order(n, b, key, drop_last):
    x = np.arange(n)
    return [xb.tolist() for xb, _ in batches(x, x, b, key=key, drop_last=drop_last)]


def test_same_key_same_batches_other_key_different():
    k0, k1 = jax.random.key(0), jax.random.key(1)
    assert _order(100, 10, k0, True) == _order(100, 10, k0, True)
    assert _order(100, 10, k0, True) != _order(100, 10, k1, True)
    assert _order(100, 10, k0, True) != [list(range(i, i + 10)) for i in range(0, 100, 10)]  # shuffled


@pytest.mark.parametrize("n,b", [(100, 10), (103, 10), (7, 7), (5, 8)])
def test_each_example_exactly_once_without_drop_last(n, b):
    got = _order(n, b, jax.random.key(3), drop_last=False)
    assert len(got) == num_batches(n, b, drop_last=False) == -(-n // b)
    assert sorted(i for batch in got for i in batch) == list(range(n))
    assert all(len(batch) == b for batch in got[:-1])


def test_drop_last_gives_full_batches_without_repeats():
    got = _order(103, 10, jax.random.key(4), drop_last=True)
    assert len(got) == num_batches(103, 10) == 10
    assert all(len(batch) == 10 for batch in got)
    flat = [i for batch in got for i in batch]
    assert len(set(flat)) == 100


def test_pairs_stay_aligned_and_jax_arrays_work():
    x = jnp.arange(20.0).reshape(10, 2)
    y = jnp.arange(10)
    for xb, yb in batches(x, y, 3, key=jax.random.key(0)):
        assert isinstance(xb, jax.Array)
        np.testing.assert_array_equal(np.asarray(xb[:, 0]), 2.0 * np.asarray(yb))
    xs = [xb for xb, yb in batches(np.ones((4, 3)), None, 2, key=jax.random.PRNGKey(0))]
    assert len(xs) == 2


def test_bad_arguments_fail_at_the_call():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="batch_size: expected at most n=10"):
        batches(x, x, 11, key=jax.random.key(0))  # no iteration needed
    assert len(list(batches(x, x, 11, key=jax.random.key(0), drop_last=False))) == 1
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="batch_size"):
            batches(x, x, bad, key=jax.random.key(0))
    with pytest.raises(ValueError, match="y: expected leading dimension 10"):
        batches(x, np.zeros(9), 2, key=jax.random.key(0))
    with pytest.raises(ValueError, match="n: expected an integer >= 0"):
        num_batches(-1, 2)


def test_one_hot():
    out = one_hot(np.array([2, 0, 1, 2]), 3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.eye(3, dtype=np.float32)[[2, 0, 1, 2]])
    with pytest.raises(ValueError, match=r"labels: expected values in \[0, 3\)"):
        one_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="labels"):
        one_hot(np.array([-1]), 3)
    with pytest.raises(ValueError, match="labels: expected integer"):
        one_hot(np.array([0.5]), 3)
    with pytest.raises(ValueError, match="num_classes"):
        one_hot(np.array([0]), 0)


def test_train_val_split():
    x = np.arange(50)
    xt, yt, xv, yv = train_val_split(x, x * 2, val_size=0.2, key=jax.random.key(0))
    assert len(xv) == 10 and len(xt) == 40
    assert sorted(np.concatenate([xt, xv]).tolist()) == list(range(50))
    np.testing.assert_array_equal(yv, 2 * xv)
    assert np.all(np.diff(xt) > 0)  # original order kept
    again = train_val_split(x, x * 2, val_size=10, key=jax.random.key(0))
    np.testing.assert_array_equal(again[2], xv)
    other = train_val_split(x, x * 2, val_size=10, key=jax.random.key(1))
    assert not np.array_equal(other[2], xv)
    for bad in (1.0, 50, -1):
        with pytest.raises(ValueError, match="val_size"):
            train_val_split(x, x, val_size=bad, key=jax.random.key(0))
