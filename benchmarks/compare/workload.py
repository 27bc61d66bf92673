r"""The workloads of the peer comparison, shared by every peer script (numpy and stdlib only,
so that it imports in each peer's own virtual environment).

A workload is a dense PCN with raw weights W_1 (N, D), W_2..W_{L−1} (N, N), W_L (O, N)
(``(out, in)``, drawn here once and loaded by every library) and forward multipliers a_l:

    f_1(x) = a_1 W_1 x,   f_l(z) = s·z + a_l W_l φ(z) (l = 2..L−1),   f_L(z) = a_L W_L φ(z)

with φ = ReLU and s = 1 for the μPC ResNet (a_1 = 1/√D, a_l = 1/√(N L), a_L = 1/N), s = 0
and a_l = 1 for the MLP (weights drawn N(0, 1/fan_in)). One training step: activities from
the feedforward pass, T plain GD steps z ← z − η ∂E/∂z on the per-example energy
E = Σ_l ½‖z_l − f_l(z_{l−1})‖² + ½‖y − f_L(z_{L−1})‖² (a library with a batch-mean
energy takes the step B·η), then one Adam step (lr, optax defaults) on the batch-mean
energy. The loss every peer reports is the feedforward ½ mean_b ‖y − ŷ‖² before any update, after its
first update and after its last one, so equal mathematics gives equal losses.

``mupc-paper`` is the μPC ResNet under the μPC authors' training script (science.md §1):
batch 64, T = L − 1 GD steps at 0.5 on the batch-mean energy (η = 0.5/64 per example),
Adam lr 0.1, float64 (``x64``: every peer switches on ``jax_enable_x64`` and loads the
weights as float64).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

WORKLOADS = ("mupc-resnet", "mlp", "mupc-paper")


@dataclass(frozen=True)
class Spec:
    """One timed workload. ``activity_lr`` is η in the per-example convention above."""

    workload: str = "mupc-resnet"
    depth: int = 8
    width: int = 128
    d_in: int = 784
    d_out: int = 10
    batch: int = 128
    infer_steps: int = 16
    activity_lr: float = 0.1
    lr: float = 1e-3
    warmup: int = 2
    timed: int = 10
    seed: int = 0
    x64: bool = False
    data: str = ""  # the .npz written by :func:`write_data`

    @property
    def skips(self) -> bool:
        return self.workload in ("mupc-resnet", "mupc-paper")

    def multipliers(self) -> tuple[float, float, float]:
        """(a_1, a_l, a_L)."""
        if self.skips:
            return 1 / math.sqrt(self.d_in), 1 / math.sqrt(self.width * self.depth), 1 / self.width
        return 1.0, 1.0, 1.0

    @property
    def updates(self) -> int:
        """Training steps each peer takes: the first (timed with compilation), the warm-up
        steps and the timed steps."""
        return 1 + self.warmup + self.timed


def pcx_mlp(depth: int = 4) -> Spec:
    """The pcx benchmark's MLP: 784-128×3-10, batch 64, 20 inference steps."""
    return Spec(workload="mlp", depth=depth, batch=64, infer_steps=20)


def mupc_paper(depth: int = 128, width: int = 128) -> Spec:
    """The μPC authors' protocol (module docstring) at ``depth`` and ``width``."""
    return Spec(workload="mupc-paper", depth=depth, width=width, batch=64, infer_steps=depth - 1,
                activity_lr=0.5 / 64, lr=0.1, x64=True)


def write_data(spec: Spec, path: Path) -> None:
    """Weights W0..W{L−1} (``(out, in)``, float32) and a batch x (B, D), one-hot y (B, O)."""
    rng = np.random.default_rng(spec.seed)
    sizes = [spec.d_in] + [spec.width] * (spec.depth - 1) + [spec.d_out]
    arrays = {}
    for l in range(spec.depth):
        scale = 1.0 if spec.skips else 1 / math.sqrt(sizes[l])
        arrays[f"W{l}"] = (scale * rng.standard_normal((sizes[l + 1], sizes[l]))).astype(np.float32)
    arrays["x"] = rng.standard_normal((spec.batch, spec.d_in)).astype(np.float32)
    arrays["y"] = np.eye(spec.d_out, dtype=np.float32)[rng.integers(0, spec.d_out, spec.batch)]
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def read_data(spec: Spec) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(weights, x, y) of :func:`write_data`, as float64 when ``spec.x64``."""
    dtype = np.float64 if spec.x64 else np.float32
    with np.load(spec.data) as f:
        return [f[f"W{l}"].astype(dtype) for l in range(spec.depth)], f["x"].astype(dtype), f["y"].astype(dtype)


def reference_loss(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, spec: Spec) -> float:
    """½ mean_b ‖y − ŷ‖² of the feedforward pass, in float64 numpy (the harness's check)."""
    a1, ah, aL = spec.multipliers()
    z = a1 * x.astype(np.float64) @ weights[0].T.astype(np.float64)
    for w in weights[1:-1]:
        z = (z if spec.skips else 0.0) + ah * np.maximum(z, 0) @ w.T.astype(np.float64)
    y_hat = aL * np.maximum(z, 0) @ weights[-1].T.astype(np.float64)
    return float(0.5 * np.mean(np.sum((y - y_hat) ** 2, axis=1)))


def time_steps(step, state, spec: Spec, loss_of) -> dict:
    """Run ``state = step(state)`` (which must block) ``spec.updates`` times: the first with
    compilation, ``warmup`` more, then ``timed`` timed ones. ``loss_of(state)`` is the
    feedforward loss. Returns the timing fields of a peer's result."""
    loss_0 = float(loss_of(state))
    t0 = time.perf_counter()
    state = step(state)
    first = time.perf_counter() - t0
    loss_1 = float(loss_of(state))
    for _ in range(spec.warmup):
        state = step(state)
    times = []
    for _ in range(spec.timed):
        t0 = time.perf_counter()
        state = step(state)
        times.append(time.perf_counter() - t0)
    return {"first_step_s": first, "step_s": times, "median_step_s": statistics.median(times),
            "loss_0": loss_0, "loss_1": loss_1, "loss_final": float(loss_of(state)), "updates": spec.updates}


def main(run) -> None:
    """Entry point of a peer script: ``python peer_X.py SPEC.json OUT.json [VARIANT]``.
    ``run(spec, variant) -> dict`` (library, version, jax, and :func:`time_steps`'s fields)."""
    spec_path, out_path = Path(sys.argv[1]), Path(sys.argv[2])
    variant = sys.argv[3] if len(sys.argv) > 3 else ""
    spec = Spec(**json.loads(spec_path.read_text()))
    if spec.x64:
        import jax  # every peer has it; numpy-only callers never reach here

        jax.config.update("jax_enable_x64", True)
    result = {"spec": asdict(spec), "variant": variant, **run(spec, variant)}
    tmp = out_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(out_path)
