r"""The activity Hessian of a deep linear PCN and the dense (brute-force) equilibrium.

For one example the energy E(z) = ½Σ_{l<L}‖z_l − B_l z_{l−1}‖² + ½λ‖y − B_L z_{L−1}‖² is a
convex quadratic in z = (z_1, …, z_{L−1}) (size P = Σ_l n_l): E = ½ zᵀ H z − bᵀ z + c with the
block-tridiagonal Hessian (blocks indexed by hidden layer l = 1..L−1)

    H_ll     = I + B_{l+1}ᵀ B_{l+1}     (l < L−1),      H_{L−1,L−1} = I + λ B_Lᵀ B_L,
    H_{l,l+1} = −B_{l+1}ᵀ,               H_{l+1,l} = −B_{l+1},

and b = (B_1 x, 0, …, 0, λ B_Lᵀ y) (both terms in one block when L = 2). H does not depend on
x, y, nor on the batch convention (it is one example's Hessian; inference step sizes compare
to it directly). GD inference z ← z − η∇E converges iff η < 2/λ_max(H), at a rate set by
κ(H) = λ_max/λ_min.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from ._validate import as_maps, check_precision, check_problem


def _offsets(maps) -> list[int]:
    widths = [b.shape[0] for b in maps[:-1]]
    return list(np.concatenate([[0], np.cumsum(widths)]).astype(int))


def activity_hessian(maps: Sequence[jax.Array], precision=1.0) -> jax.Array:
    """Dense H of the module docstring, shape (P, P), P = Σ_{l=1}^{L−1} n_l (layer-major order:
    z_1's entries first)."""
    check_precision(precision)
    return _build_hessian(as_maps(maps), precision)


@jax.jit
def _build_hessian(maps: list[jax.Array], precision) -> jax.Array:
    m = len(maps) - 1  # hidden layers
    widths = [b.shape[0] for b in maps[:-1]]
    dt = maps[0].dtype
    rows = []
    for l in range(m):  # block row of hidden layer l+1; its outgoing map is maps[l+1]
        nxt = maps[l + 1]
        weight = precision if l == m - 1 else 1.0
        row = []
        for k in range(m):
            if k == l:
                row.append(jnp.eye(widths[l], dtype=dt) + weight * nxt.T @ nxt)
            elif k == l + 1:
                row.append(-nxt.T)
            elif k == l - 1:
                row.append(-maps[l])
            else:
                row.append(jnp.zeros((widths[l], widths[k]), dt))
        rows.append(row)
    return jnp.block(rows)


def _is_traced(a) -> bool:
    return isinstance(a, jax.core.Tracer)


def activity_eigenvalues(maps: Sequence[jax.Array], precision=1.0) -> jax.Array:
    """Eigenvalues of H in ascending order, shape (P,).

    Outside of tracing this calls LAPACK through SciPy on one BLAS thread (several times
    faster on CPU than ``jnp.linalg.eigvalsh`` for P in the thousands); under ``jit``/``grad``
    it uses JAX.
    """
    h = activity_hessian(maps, precision)
    if _is_traced(h):
        return jnp.linalg.eigvalsh(h)
    return jnp.asarray(_host_eigvalsh(np.asarray(h)), h.dtype)


def _host_eigvalsh(h: np.ndarray) -> np.ndarray:
    """LAPACK ``syevr`` on one BLAS thread: on a small or shared CPU, multi-threaded BLAS in
    this routine can be 10-50x slower than one thread (measured 0.1 s vs 7 s at P = 1024)."""
    try:
        from threadpoolctl import threadpool_limits  # a scikit-learn dependency
    except ImportError:  # pragma: no cover
        return scipy.linalg.eigvalsh(h, driver="evr")
    with threadpool_limits(1, user_api="blas"):
        return scipy.linalg.eigvalsh(h, driver="evr")


def activity_condition_number(maps: Sequence[jax.Array], precision=1.0) -> jax.Array:
    """κ(H) = λ_max(H)/λ_min(H) (a scalar ≥ 1) by a dense symmetric eigendecomposition,
    O(P³): fine up to P of a few thousand. Use float64 for large κ."""
    ev = activity_eigenvalues(maps, precision)
    return ev[-1] / ev[0]


def dense_equilibrium_activities(
    maps: Sequence[jax.Array], x: jax.Array, y: jax.Array, precision=1.0
) -> list[jax.Array]:
    """Brute-force z* = H⁻¹ b by one dense solve of size P (for checking the closed forms).

    Returns L−1 arrays of shapes (B, n_l), like :func:`pclab.theory.equilibrium_activities`.
    """
    maps, x, y = check_problem(maps, x, y, precision)
    return _dense_solve(maps, x, y, precision)


@jax.jit
def _dense_solve(maps, x, y, precision):
    off = _offsets(maps)
    h = _build_hessian(maps, precision)
    b = jnp.zeros((x.shape[0], off[-1]), h.dtype)
    b = b.at[:, off[0]:off[1]].add(x @ maps[0].T)
    b = b.at[:, off[-2]:off[-1]].add(precision * y @ maps[-1])
    z = jnp.linalg.solve(h, b.T).T
    return [z[:, off[l]:off[l + 1]] for l in range(len(maps) - 1)]
