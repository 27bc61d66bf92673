r"""Approximation lower-bound rates for piecewise-polynomial networks, and Monte-Carlo L^p errors.

Setting (arXiv 2206.04360): G is the set of functions computed by a feed-forward network with a
piecewise-polynomial activation (ReLU: piecewise linear), W parameters and L layers; F is a
class of targets on [0,1]^d; the quantity bounded below is sup_{f∈F} inf_{g∈G} ‖f − g‖_{L^p(μ)}.
The paper's general bound uses the packing number of F, the range of F and the fat-shattering
dimension of G (≤ its pseudo-dimension). **Only shapes are known: the constants are not, so every
function here returns a rate up to an unknown constant factor** (and up to log factors where
the paper says so), or an exponent.

* Pseudo-dimension of piecewise-linear networks: O(W·L·log W) (Bartlett, Harvey, Liaw &
  Mehrabian, arXiv 1703.02930): :func:`pseudo_dimension_shape`.
* Hölder ball of smoothness α on [0,1]^d: (W·L·log W)^{−α/d}, for every p ∈ [1, ∞] — the L^p
  lower bound has the same shape as the sup-norm one (arXiv 2206.04360, answering DeVore, Hanin
  & Petrova, arXiv 2012.14501): :func:`holder_rate`.
* Monotone functions [0,1]^d → [0,1]: here L^p and sup norm differ. In sup norm there is no rate
  at all: a monotone function may jump, and no continuous g (a ReLU network) is closer than half
  the jump (exponent 0, [derived], elementary). For p < ∞ the exponent returned is 1/κ_p with
  κ_p the metric-entropy exponent of the class in L^p (log N(ε) ≍ ε^{−κ_p}: κ = 1 for d = 1;
  κ = max(d, p(d−1)) for d ≥ 2, Gao & Wellner 2007, with an extra log at p = d/(d−1)), i.e. the
  shape (W·L·log W)^{−1/κ_p} that the general bound gives with that entropy. **[derived, open]**:
  the paper's monotone corollary could not be read in full; treat this exponent as the shape
  implied by its general theorem, not as a quotation: :func:`monotone_rate`.

:func:`lp_error` estimates ‖f − g‖_{L^p(μ)} = (E_μ|f − g|^p)^{1/p} by Monte Carlo.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


def _count(v, name: str, lo: int) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not v >= lo \
            or not math.isfinite(v):
        raise ValueError(f"{name}={v!r} is not valid; expected a finite number >= {lo}")
    return float(v)


def _p(p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or math.isnan(p) or p < 1:
        raise ValueError(f"p={p!r} is not valid; expected p >= 1 (L^p is a norm only for p >= 1) or p = inf")
    return float(p)


def pseudo_dimension_shape(n_params, n_layers):
    """W·L·log W (natural log), the shape of the pseudo-dimension bound O(W L log W) of
    piecewise-linear networks; the constant is unknown. W ≥ 2 parameters, L ≥ 1 layers."""
    W, L = _count(n_params, "n_params", 2), _count(n_layers, "n_layers", 1)
    return W * L * math.log(W)


def holder_exponent(alpha, d, p=math.inf) -> float:
    """α/d: the Hölder rate is (W L log W)^{−α/d}, the same for every p ∈ [1, ∞]."""
    _p(p)
    a, dim = float(alpha), _count(d, "d", 1)
    if not (a > 0 and math.isfinite(a)):
        raise ValueError(f"alpha={alpha!r} is not valid; expected a finite smoothness > 0")
    return a / dim


def holder_rate(n_params, n_layers, alpha, d, p=math.inf) -> float:
    r"""(W·L·log W)^{−α/d}: the shape of inf_g sup_f ‖f − g‖_{L^p} over the Hölder-α ball on [0,1]^d,
    for any p ∈ [1, ∞] (arXiv 2206.04360), up to an unknown constant."""
    return pseudo_dimension_shape(n_params, n_layers) ** (-holder_exponent(alpha, d, p))


def monotone_exponent(d, p) -> float:
    """The exponent e of the monotone-class shape (W L log W)^{−e}: 0 for p = ∞ (no uniform rate);
    1 for d = 1 and p < ∞; 1/max(d, p(d−1)) for d ≥ 2 ([derived, open]: see the module docstring)."""
    p, dim = _p(p), int(_count(d, "d", 1))
    if math.isinf(p):
        return 0.0
    return 1.0 if dim == 1 else 1.0 / max(dim, p * (dim - 1))


def monotone_rate(n_params, n_layers, d, p) -> float:
    """(W·L·log W)^{−monotone_exponent(d, p)} (1 for p = ∞), up to an unknown constant."""
    return pseudo_dimension_shape(n_params, n_layers) ** (-monotone_exponent(d, p))


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x (≥ 2 positive points)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2 or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError(f"x and y must be 1-d, of equal length >= 2, and positive; got {x.shape} and {y.shape}")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


class LpError(NamedTuple):
    """Monte-Carlo estimate of ‖f − g‖_{L^p(μ)}, its standard error (NaN for p = ∞), p and n."""

    value: float
    stderr: float
    p: float
    n: int


def lp_error(f: Callable, g: Callable, p, sampler: Callable, n: int, key: jax.Array) -> LpError:
    r"""Estimate ‖f − g‖_{L^p(μ)} from n i.i.d. samples x_i = ``sampler(key, n)`` ~ μ.

    p < ∞: m̂ = (1/n) Σ |f(x_i) − g(x_i)|^p, value m̂^{1/p}; standard error by the delta method,
    se = (1/p) m̂^{1/p − 1} · sd(|f − g|^p)/√n. p = ∞: max_i |f(x_i) − g(x_i)|, a **lower
    estimate** of the essential sup (no standard error: NaN). ``f``, ``g`` map the (n, d) samples
    to (n,) or (n, 1) values. p < 1 is refused (not a norm).
    """
    p = _p(p)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n={n!r} is not valid; expected an integer >= 2 samples")
    x = sampler(key, int(n))
    fx, gx = jnp.asarray(f(x)), jnp.asarray(g(x))
    if fx.size != n or gx.size != n:
        raise ValueError(f"f and g must return one value per sample, shape (n,) or (n, 1); got shapes "
                         f"{tuple(fx.shape)} and {tuple(gx.shape)} for {n} samples")
    diff = np.abs(np.asarray(fx.reshape(n) - gx.reshape(n), np.float64))
    if math.isinf(p):
        return LpError(float(diff.max()), math.nan, p, int(n))
    powers = diff ** p
    m = float(powers.mean())
    if m == 0.0:
        return LpError(0.0, 0.0, p, int(n))
    se_m = float(powers.std(ddof=1)) / math.sqrt(n)
    return LpError(m ** (1.0 / p), (1.0 / p) * m ** (1.0 / p - 1.0) * se_m, p, int(n))


def uniform_sampler(d: int) -> Callable:
    """μ = uniform on [0,1]^d: ``sampler(key, n)`` → (n, d) in the default float dtype."""
    dim = int(_count(d, "d", 1))
    return lambda key, n: jax.random.uniform(key, (n, dim), jnp.result_type(float))
