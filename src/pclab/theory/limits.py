r"""Width × depth sweeps of the quantities that govern the PC → BP limit (arXiv 2602.07697, §3).

For each hidden-layer count H (depth L = H + 1 weight layers) and width N, and a few random
initialisations (:func:`random_pcn`, μPC by default), :func:`alignment_grid` records

* the cosine between PC and BP weight gradients (:func:`pc_bp_alignment`), and
* for linear networks, ‖λS − I‖₂ (:func:`rescaling_deviation`), which is O(L/N) under μPC.

Returned grids have shape (len(depths), len(widths)) and hold seed means; cells whose
inference did not converge are NaN. Shapes: x (B, d_in), y (B, d_out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..energy import EnergySpec
from ..inference import AbstractSolver
from ..nn.dense import layer_maps
from ..progress import progress_bar
from .alignment import pc_bp_alignment
from .random_maps import random_pcn
from .rescaling import rescaling_deviation


@dataclass(frozen=True)
class AlignmentGrid:
    """Seed-mean grids (rows: depths, columns: widths) and one record per (H, N, seed)."""

    depths: tuple[int, ...]
    widths: tuple[int, ...]
    cosine: np.ndarray
    deviation: np.ndarray
    rows: list[dict]


def alignment_grid(
    x: jax.Array,
    y: jax.Array,
    widths: Sequence[int],
    depths: Sequence[int],
    *,
    act: str = "linear",
    param: str = "mupc",
    seeds: int = 1,
    solver: "AbstractSolver | str | None" = None,
    spec: EnergySpec = EnergySpec(),
    max_steps: int | None = 20000,
    rtol: float = 1e-8,
    progress: bool | None = None,
) -> AlignmentGrid:
    """PC–BP cosine (and ‖λS − I‖₂ for linear nets) of residual PCNs over ``depths`` (hidden
    layers H) × ``widths`` (N); weights drawn in ``x``'s dtype. ``solver`` etc. go to
    :func:`pc_bp_alignment` (default: exact for linear, momentum GD otherwise). ``progress``:
    a bar over the networks (``None``: when stderr is a terminal)."""
    if seeds < 1:
        raise ValueError(f"seeds={seeds!r} is not valid; expected an integer >= 1")
    dtype = jnp.result_type(x)
    shape = (len(depths), len(widths))
    cos, dev, rows = np.full(shape, np.nan), np.full(shape, np.nan), []
    bar = progress_bar(len(depths) * len(widths) * seeds, progress, f"alignment grid ({act})", "net")
    for i, h in enumerate(depths):
        for j, n in enumerate(widths):
            c, d = [], []
            for s in range(seeds):
                model = random_pcn(s, x.shape[1], n, h + 1, y.shape[1], act=act, param=param, skips=True,
                                   dtype=dtype)
                a = pc_bp_alignment(model, x, y, solver=solver, spec=spec,
                                    max_steps=None if model.linear else max_steps, rtol=rtol)
                c.append(a.cosine if a.converged else np.nan)
                if model.linear:
                    d.append(float(rescaling_deviation(layer_maps(model), spec.precision)))
                rows.append(dict(act=act, param=param, hidden_layers=h, width=n, seed=s, cosine=a.cosine,
                                 cos_input=a.input, cos_output=a.output, converged=a.converged,
                                 infer_steps=a.infer_steps, s_minus_i=d[-1] if d else float("nan")))
                bar.set_postfix(H=h, N=n)
                bar.update()
            cos[i, j] = np.mean(c)
            dev[i, j] = np.mean(d) if d else np.nan
    bar.close()
    return AlignmentGrid(tuple(depths), tuple(widths), cos, dev, rows)
