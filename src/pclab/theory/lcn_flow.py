r"""Gradient flows of linear convolutional networks, in parameter and in function space
(arXiv 2507.06367; conventions of :mod:`pclab.theory.lcn`).

* Parameter space: ẇ = −∇_w ℓ(μ(w)) for a loss ℓ of the end-to-end filter v = μ(w).
* Function space: v̇ = −K ∇_v ℓ(v), K = Dμ Dμᵀ evaluated at the parameter point on the fibre
  {μ(w) = v, δ(w) = δ(w(0))} that continues the previous one (:func:`pclab.theory.lcn.fibre_point`,
  warm-started from the last accepted step). Where K is a function of (v, δ) the two flows give
  the same v(t); where it is not (D = 1, stride 1) the fibre point chosen decides the flow.

Both are integrated by :func:`rk4`: classical RK4 with step-size control by step doubling (a step
of h against two of h/2; error ‖y_{h/2} − y_h‖_∞ / 15 per unit of atol + rtol·|y|; accepted
steps keep the two-half-step value; h ← h · clip(0.9 err^{−1/5}, 0.2, 5)), or fixed steps.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .lcn import _end_to_end, _fibre_point, _invariants, _jacobian, check_filters, end_to_end_filter, invariants


class RK4Result(NamedTuple):
    """States (len(ts), P) and auxiliary states (leading axis len(ts)) at the requested times,
    and the number of accepted steps."""

    ys: jax.Array
    aux: object
    steps: jax.Array


_RK4_TABLEAU = np.array([[0.0, 1 / 6], [0.5, 1 / 3], [0.5, 1 / 3], [1.0, 1 / 6]])  # (c_i, b_i)


def _rk4_step(f, y, aux, h):
    """One classical RK4 step; the four stages run in a ``scan`` so that f is compiled once."""

    def stage(carry, cb):
        k, acc = carry
        k = f(y + cb[0] * h * k, aux)
        return (k, acc + cb[1] * k), None

    (_, acc), _ = jax.lax.scan(stage, (jnp.zeros_like(y), jnp.zeros_like(y)), jnp.asarray(_RK4_TABLEAU, y.dtype))
    return y + h * acc


def _doubled_step(f, y, aux, h):
    """(one step of h, two steps of h/2) from y, as a ``scan`` over the three RK4 steps."""

    def sub(prev, spec):
        out = _rk4_step(f, jnp.where(spec[0] > 0, prev, y), aux, spec[1] * h)
        return out, out

    _, outs = jax.lax.scan(sub, y, jnp.asarray([[0.0, 1.0], [0.0, 0.5], [1.0, 0.5]], y.dtype))
    return outs[0], outs[2]


def rk4(f: Callable, y0: Float[Array, "P"], ts, *, dt0: float = 1e-2, adaptive: bool = True,
        rtol: float = 1e-8, atol: float = 1e-10, max_steps: int = 100_000, aux=None,
        update_aux: Callable | None = None) -> RK4Result:
    """Integrate ẏ = f(y, aux) from y(ts[0]) = y0 and return y at every time in ``ts`` (increasing).

    ``aux`` is carried state that f reads (e.g. a warm start) and ``update_aux(y, aux)`` refreshes
    after every accepted step. With ``adaptive=False``, equal steps of at most ``dt0`` between
    consecutive save times. At most ``max_steps`` steps in all."""
    ts = _check_times(ts, dt0)
    y0 = jnp.asarray(y0)
    return _integrate(f, y0, jnp.asarray(ts, y0.dtype), dt0, rtol, atol, adaptive, max_steps, aux, update_aux)


def _check_times(ts, dt0) -> np.ndarray:
    ts = np.asarray(ts, dtype=float)
    if ts.ndim != 1 or ts.size < 2 or np.any(np.diff(ts) <= 0):
        raise ValueError(f"ts must be an increasing 1-d sequence of at least 2 times; got {ts!r}")
    if not dt0 > 0:
        raise ValueError(f"dt0={dt0!r} is not valid; expected a step size > 0")
    return ts


def _integrate(f, y0, ts, dt0, rtol, atol, adaptive: bool, max_steps: int, aux, update_aux) -> RK4Result:
    update = update_aux or (lambda y, a: a)
    dt = y0.dtype
    slack = 1e-12 * jnp.maximum(1.0, jnp.abs(ts[-1]))

    def interval(carry, t_end):
        def cond(c):
            t, _, _, _, n = c
            return (t < t_end - slack) & (n < max_steps)

        def body(c):
            t, y, h, a, n = c
            h_eff = jnp.minimum(h, t_end - t)
            if not adaptive:  # equal steps of at most dt0 across the interval
                h_eff = (t_end - t) / jnp.maximum(jnp.ceil((t_end - t) / h - 1e-9), 1.0)
                y_new = _rk4_step(f, y, a, h_eff)
                return t + h_eff, y_new, h, update(y_new, a), n + 1
            big, half = _doubled_step(f, y, a, h_eff)
            err = jnp.max(jnp.abs(half - big) / (atol + rtol * jnp.abs(half))) / 15.0
            ok = err <= 1.0
            factor = jnp.clip(0.9 * jnp.maximum(err, 1e-10) ** -0.2, 0.2, 5.0)
            a_new = jax.lax.cond(ok, lambda: update(half, a), lambda: a)
            return (jnp.where(ok, t + h_eff, t), jnp.where(ok, half, y), h_eff * factor, a_new,
                    n + ok.astype(n.dtype))

        t, y, h, a, n = jax.lax.while_loop(cond, body, carry)
        return (t, y, h, a, n), (y, a)

    carry = (ts[0], y0, jnp.asarray(dt0, dt), aux, jnp.asarray(0))
    (*_, n), (ys, auxs) = jax.lax.scan(interval, carry, ts[1:])
    stack = lambda first, rest: jnp.concatenate([jnp.asarray(first)[None], rest])  # noqa: E731
    return RK4Result(stack(y0, ys), jax.tree_util.tree_map(stack, aux, auxs), n)


class LCNFlow(NamedTuple):
    """A gradient-flow trajectory: times (T,), end-to-end filters v (T, *v_shape), the filters
    (list of (T, *k_l)) — for the function-space flow the fibre points used — invariants (T, L−1),
    loss (T,) and the number of accepted steps."""

    ts: np.ndarray
    v: jax.Array
    filters: list
    invariants: jax.Array
    loss: jax.Array
    steps: int


def _unraveller(shapes: tuple[tuple[int, ...], ...]) -> Callable:
    sizes = np.cumsum([0] + [int(np.prod(sh)) for sh in shapes])
    return lambda th: [th[a:b].reshape(sh) for a, b, sh in zip(sizes[:-1], sizes[1:], shapes)]


def _cached(builder):
    """lru_cache keyed on (loss, strides, shapes, …); falls back to no caching for unhashable losses."""
    cached = functools.lru_cache(maxsize=32)(builder)

    def get(*key):
        try:
            return cached(*key)
        except TypeError:
            return builder(*key)

    return get


def _summary(ys_w, strides, shapes, loss):
    """(v, invariants, loss) along a trajectory of flat parameters (T, P)."""
    ws = jax.vmap(_unraveller(shapes))(ys_w)
    v = jax.vmap(lambda w: _end_to_end(w, strides))(ws)
    return ws, v, jax.vmap(_invariants)(ws), jax.vmap(loss)(v)


@_cached
def _parameter_runner(loss, strides, shapes, adaptive, max_steps):
    unravel = _unraveller(shapes)
    grad = jax.grad(lambda th: loss(_end_to_end(unravel(th), strides)))
    f = lambda th, _: -grad(th)  # noqa: E731

    def run(th, ts, dt0, rtol, atol):
        res = _integrate(f, th, ts, dt0, rtol, atol, adaptive, max_steps, None, None)
        return _summary(res.ys, strides, shapes, loss), res.steps

    return jax.jit(run)


@_cached
def _function_runner(loss, strides, shapes, v_shape, adaptive, max_steps, lift_steps):
    unravel = _unraveller(shapes)
    grad = jax.grad(loss)

    def run(v0, w0, delta, ts, dt0, rtol, atol):
        def lift(v_flat, w_flat):
            w, _ = _fibre_point(v_flat.reshape(v_shape), delta, unravel(w_flat), strides, lift_steps)
            return jnp.concatenate([x.ravel() for x in w])

        def f(v_flat, w_flat):
            J = _jacobian(unravel(lift(v_flat, w_flat)), strides)
            return -J @ (J.T @ grad(v_flat.reshape(v_shape)).ravel())

        res = _integrate(f, v0, ts, dt0, rtol, atol, adaptive, max_steps, w0, lift)
        ws, _, inv, _ = _summary(res.aux, strides, shapes, loss)
        v = res.ys.reshape((ts.shape[0],) + v_shape)
        return (ws, v, inv, jax.vmap(loss)(v)), res.steps

    return jax.jit(run)


def _options(**options):
    known = dict(dt0=1e-2, adaptive=True, rtol=1e-8, atol=1e-10, max_steps=100_000)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown integrator option(s) {unknown}; expected some of {sorted(known)}")
    o = {**known, **options}
    return o["dt0"], bool(o["adaptive"]), o["rtol"], o["atol"], int(o["max_steps"])


def parameter_flow(loss: Callable[[Array], Array], filters: Sequence[Array], strides: Sequence[int], ts,
                   **rk4_options) -> LCNFlow:
    """ẇ = −∇_w ℓ(μ(w)) from ``filters`` at ts[0]; ``loss`` maps v (its shape) to a scalar.
    Options as for :func:`rk4` (dt0, adaptive, rtol, atol, max_steps). Calls with the same
    ``loss`` object, strides and shapes reuse one compiled integrator."""
    ws, strides = check_filters(filters, strides)
    dt0, adaptive, rtol, atol, max_steps = _options(**rk4_options)
    ts = _check_times(ts, dt0)
    shapes = tuple(tuple(w.shape) for w in ws)
    flat = jnp.concatenate([w.ravel() for w in ws])
    run = _parameter_runner(loss, strides, shapes, adaptive, max_steps)
    (wt, v, inv, ls), steps = run(flat, jnp.asarray(ts, flat.dtype), dt0, rtol, atol)
    return LCNFlow(ts, v, list(wt), inv, ls, int(steps))


def function_space_flow(loss: Callable[[Array], Array], filters: Sequence[Array], strides: Sequence[int], ts,
                        lift_steps: int = 4, **rk4_options) -> LCNFlow:
    """v̇ = −K(w(v)) ∇_v ℓ(v) from v(ts[0]) = μ(filters), with w(v) the fibre point of (v, δ(filters))
    reached by ``lift_steps`` Levenberg–Marquardt steps from the last accepted fibre point. The returned
    ``filters`` are the fibre points at the save times."""
    ws, strides = check_filters(filters, strides)
    dt0, adaptive, rtol, atol, max_steps = _options(**rk4_options)
    ts = _check_times(ts, dt0)
    shapes = tuple(tuple(w.shape) for w in ws)
    flat = jnp.concatenate([w.ravel() for w in ws])
    v0 = end_to_end_filter(ws, strides)
    run = _function_runner(loss, strides, shapes, tuple(v0.shape), adaptive, max_steps, int(lift_steps))
    (wt, v, inv, ls), steps = run(v0.ravel(), flat, invariants(ws), jnp.asarray(ts, flat.dtype), dt0, rtol, atol)
    return LCNFlow(ts, v, list(wt), inv, ls, int(steps))
