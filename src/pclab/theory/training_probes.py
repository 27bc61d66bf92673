r"""What changes while a PCN trains: the activity Hessian's conditioning, the reach of inference
and the PC–BP alignment, measured at checkpoints (arXiv 2505.13124 pathology 1; 2602.07697).

* :func:`activity_hessians` — the per-example Hessian ∂²E_i/∂z_i² of the energy in the
  activities of *any* dense PCN (linear or not), by ``jax.hessian`` at given activities
  (default: the feedforward pass, where inference starts). z_i is flattened layer-major
  (z_1's entries first), the order of :func:`pclab.theory.activity_hessian`, which it equals
  for a linear model. For ReLU, φ'' = 0 almost everywhere, so the Hessian is the
  Gauss–Newton-like block-tridiagonal matrix with diagonal masks D_l = diag(φ'(z_l)).
* :func:`activity_conditioning` — κ(H_z) = λ_max/λ_min per example (host LAPACK).
* :func:`train_with_probes` — trains with :func:`pclab.make_train_step` on mini-batches of a
  fixed pool and calls ``probe(model)`` at the requested steps (before the update of that
  step, so step 0 is the initialisation).
* Probes: :func:`conditioning_probe` (median/max κ over a few examples), :func:`reach_probe`
  (per-layer cos(PC grad, BP grad) after T inference steps from the feedforward pass, as in
  ``mupc-reach``), :func:`alignment_probe` (exact-equilibrium cosine, F*/L and ‖S − I‖₂ of a
  linear model). Probes return flat dicts of floats (and per-layer tuples).
"""

from __future__ import annotations

from typing import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from ..energy import EnergySpec, example_energies
from ..inference import AbstractSolver
from ..learning import InferenceConfig, make_train_step
from ..nn.dense import PCN, layer_maps
from ..progress import progress_bar
from .activity_hessian import _host_eigvalsh, activity_eigenvalues
from .alignment import pc_bp_alignment
from .equilibrium import equilibrated_energy
from .linear import linear_loss
from .rescaling import rescaling_deviation


def _example(tree, i):
    """Example i of an activities pytree whose leaves are (K, B, ...), kept as (K, 1, ...)."""
    return jax.tree_util.tree_map(lambda a: jax.lax.dynamic_slice_in_dim(a, i, 1, axis=1), tree)


@eqx.filter_jit
def _hessians(model, z, x, y, spec):
    def one(i):
        zi = _example(z, i)
        flat, unravel = ravel_pytree(zi)
        xi, yi = jax.lax.dynamic_slice_in_dim(x, i, 1), jax.lax.dynamic_slice_in_dim(y, i, 1)
        f = lambda v: example_energies(model, unravel(v), xi, yi, spec)[0]  # noqa: E731
        return jax.hessian(f)(flat)

    return jax.lax.map(one, jnp.arange(x.shape[0]))


def activity_hessians(model, x: jax.Array, y: jax.Array, spec: EnergySpec = EnergySpec(), z=None) -> jax.Array:
    """∂²E_i/∂z_i² for every example, shape (B, P, P), P = Σ_l n_l, at activities ``z``
    (default: ``model.activities(x)``, the feedforward pass). Batch-size free (one example's
    energy, the convention of pclab's inference)."""
    model.check_batch(x, y)
    z = model.activities(x) if z is None else z
    return _hessians(model, z, x, y, spec)


def activity_conditioning(model, x: jax.Array, y: jax.Array, spec: EnergySpec = EnergySpec(), z=None) -> np.ndarray:
    """κ(H_z) = λ_max/λ_min of each example's activity Hessian, shape (B,). For a linear
    bias-free :class:`pclab.PCN` with MSE output the Hessian does not depend on the example
    and :func:`pclab.theory.activity_eigenvalues` of its layer maps is used (same value, cheaper)."""
    if isinstance(model, PCN) and model.linear and model.b_in is None and spec.loss.value == "mse":
        ev = np.asarray(activity_eigenvalues(layer_maps(model), spec.precision))
        return np.full(x.shape[0], ev[-1] / ev[0])
    hs = np.asarray(activity_hessians(model, x, y, spec, z))
    out = np.empty(hs.shape[0])
    for i, h in enumerate(hs):
        ev = _host_eigvalsh(0.5 * (h + h.T))
        out[i] = ev[-1] / ev[0]
    return out


def conditioning_probe(x: jax.Array, y: jax.Array, spec: EnergySpec = EnergySpec()) -> Callable[[PCN], dict]:
    """probe(model) → {'kappa_median', 'kappa_max'} of κ(H_z) over the examples (x, y), at
    the feedforward pass."""

    def probe(model):
        k = activity_conditioning(model, x, y, spec)
        return dict(kappa_median=float(np.median(k)), kappa_max=float(np.max(k)))

    return probe


def reach_probe(x: jax.Array, y: jax.Array, solver: AbstractSolver, steps: int, spec: EnergySpec = EnergySpec(),
                aligned_at: float = 0.9) -> Callable[[PCN], dict]:
    """probe(model) → per-layer cos(PC grad, BP grad) after exactly ``steps`` inference steps of
    ``solver`` from the feedforward pass (``layer_cosines``, W_1..W_L), the overall cosine
    (``cosine``), and the counts of layers with cos ≠ 0 (``reached``) and cos > ``aligned_at``
    (``aligned``)."""

    def probe(model):
        a = pc_bp_alignment(model, x, y, solver=solver, spec=spec, max_steps=steps, rtol=0.0)
        cos = np.asarray(a.per_layer)
        return dict(cosine=a.cosine, reached=int(np.sum(cos != 0)), aligned=int(np.sum(cos > aligned_at)),
                    layer_cosines=tuple(float(c) for c in cos))

    return probe


def alignment_probe(x: jax.Array, y: jax.Array, spec: EnergySpec = EnergySpec()) -> Callable[[PCN], dict]:
    """probe(model) of a linear bias-free model → the PC–BP cosine at the exact equilibrium
    (``cosine``, and per layer ``layer_cosines``), F*/L (``energy_over_loss``; λ·L/F* → 1 as
    λS → I) and ‖λS − I‖₂ (``s_minus_i``)."""

    def probe(model):
        maps = layer_maps(model)
        a = pc_bp_alignment(model, x, y, solver="exact", spec=spec)
        ratio = float(equilibrated_energy(maps, x, y, spec.precision) / (spec.precision * linear_loss(maps, x, y)))
        return dict(cosine=a.cosine, layer_cosines=tuple(a.per_layer), energy_over_loss=ratio,
                    s_minus_i=float(rescaling_deviation(maps, spec.precision)))

    return probe


def energy_loss_ratio(maps: Sequence[jax.Array], x: jax.Array, y: jax.Array, precision=1.0) -> jax.Array:
    """F*/(λL) of a linear network, in (1/λ_max(λS), 1]: 1 exactly when λS = I (a scalar)."""
    return equilibrated_energy(maps, x, y, precision) / (precision * linear_loss(maps, x, y))


def train_with_probes(
    model: PCN,
    x: jax.Array,
    y: jax.Array,
    *,
    probe: Callable[[PCN], dict],
    checkpoints: Sequence[int],
    optimizer: optax.GradientTransformation,
    algo: str = "pc",
    inference: InferenceConfig = InferenceConfig(),
    spec: EnergySpec = EnergySpec(),
    batch_size: int | None = None,
    seed: int = 0,
    progress: bool | None = False,
    desc: str = "train",
) -> tuple[PCN, list[dict]]:
    """Train ``model`` for max(checkpoints) steps on mini-batches of ``batch_size`` drawn without
    replacement from the pool (x (n, D), y (n, O)), reshuffled each pass with ``seed`` (None =
    full batch); at each step t in ``checkpoints`` record ``{'step': t, **probe(model)}`` before
    that step's update, plus ``train_loss`` (the mean feedforward loss of the steps since the
    last checkpoint; NaN at step 0). Raises ``FloatingPointError`` if the loss becomes
    non-finite. ``progress``: a tqdm bar (None: only when stderr is a terminal). Returns the
    trained model and the records."""
    checkpoints = sorted({int(c) for c in checkpoints})
    if not checkpoints or checkpoints[0] < 0:
        raise ValueError(f"checkpoints={checkpoints!r} is not valid; expected integers >= 0")
    n = x.shape[0]
    bs = n if batch_size is None else int(batch_size)
    if not 1 <= bs <= n:
        raise ValueError(f"batch_size={batch_size!r} is not valid; expected 1 <= batch_size <= {n}")
    step = make_train_step(optimizer, algo, spec=spec, inference=inference)
    state = optimizer.init(eqx.filter(model, eqx.is_array))
    rng = np.random.default_rng(seed)
    order, pos = rng.permutation(n), 0
    records, losses = [], []
    bar = progress_bar(checkpoints[-1], progress, desc, "step")
    for t in range(checkpoints[-1] + 1):
        if t in checkpoints:
            mean = float(np.mean(losses)) if losses else float("nan")
            records.append(dict(step=t, train_loss=mean, **probe(model)))
            losses = []
        if t == checkpoints[-1]:
            break
        if pos + bs > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos:pos + bs]
        pos += bs
        model, state, info = step(model, state, x[idx], y[idx])
        losses.append(float(info.loss))
        if not np.isfinite(losses[-1]):
            raise FloatingPointError(f"training diverged at step {t} (loss {losses[-1]})")
        bar.update(1)
    bar.close()
    return model, records


def combine_probes(*probes: Callable[[PCN], dict]) -> Callable[[PCN], dict]:
    """One probe returning the union of the dicts of ``probes`` (later keys win)."""

    def probe(model):
        out = {}
        for p in probes:
            out.update(p(model))
        return out

    return probe
