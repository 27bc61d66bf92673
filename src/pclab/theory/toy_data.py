r"""Small data sets for the theory experiments, as float arrays x (B, d_in), y (B, d_out).

* :func:`chain_data`: x ~ N(1, 0.1²) i.i.d., y = −x (the toy chains of 2408.11979).
* :func:`gaussian_regression`: x ~ N(0, I), y = x Tᵀ/√d_in + noise, T ~ N(0, 1).
* :func:`classification_data`: scikit-learn's 8×8 digits (pixels / 16, one-hot targets) or,
  when asked and available, ``pclab.data.load_dataset('mnist')``; falls back to digits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def chain_data(key: jax.Array, n: int, dim: int = 1, dtype=None) -> tuple[jax.Array, jax.Array]:
    """x ~ N(1, 0.1²) of shape (n, dim) and y = −x."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    x = 1.0 + 0.1 * jax.random.normal(key, (n, dim), dtype)
    return x, -x


def gaussian_regression(
    key: jax.Array, n: int, d_in: int, d_out: int, noise: float = 0.1, dtype=None
) -> tuple[jax.Array, jax.Array]:
    """A linear teacher: x ~ N(0, I_{d_in}), y = x Tᵀ/√d_in + noise·ε, shapes (n, d_in), (n, d_out)."""
    dtype = jnp.result_type(float) if dtype is None else dtype
    kx, kt, kn = jax.random.split(key, 3)
    x = jax.random.normal(kx, (n, d_in), dtype)
    t = jax.random.normal(kt, (d_out, d_in), dtype)
    return x, x @ t.T / np.sqrt(d_in) + noise * jax.random.normal(kn, (n, d_out), dtype)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data / 16.0, d.target


def _mnist() -> tuple[np.ndarray, np.ndarray]:
    from pclab.data import load_dataset  # written elsewhere; may be missing

    ds = load_dataset("mnist")
    return np.asarray(ds.x_train), np.asarray(ds.y_train)


def classification_data(n: int, *, mnist: bool = False, seed: int = 0, dtype=None) -> tuple[jax.Array, jax.Array, str]:
    """``n`` random training examples: x (n, d) in [0, 1]-ish, one-hot y (n, 10), and the set's name.

    ``mnist=True`` tries MNIST and silently falls back to scikit-learn digits if it fails.
    """
    dtype = jnp.result_type(float) if dtype is None else dtype
    name = "digits"
    if mnist:
        try:
            xs, labels = _mnist()
            name = "mnist"
        except Exception:  # noqa: BLE001 - any failure of the optional loader means: use digits
            xs, labels = _digits()
    else:
        xs, labels = _digits()
    idx = np.random.default_rng(seed).permutation(len(labels))[:n]
    y = np.eye(10)[np.asarray(labels)[idx].astype(int)]
    return jnp.asarray(xs[idx], dtype), jnp.asarray(y, dtype), name
