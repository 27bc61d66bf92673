"""Matrix completion (strict-saddles paper): the masked equilibrated energy and saddle-to-saddle GD."""

import jax.numpy as jnp
import numpy as np
import pytest

from pclab import theory as T


def test_masked_energy_is_the_minimum_over_activities():
    """F* with a masked output equals min_z of the masked PC energy, found here by one linear
    least-squares solve per example over the stacked residual (z_l − W_l z_{l−1}, √λ m ⊙ (y − W_L z))."""
    x, y, mask, _ = T.completion_task(1, n=5, rank=2, observed=0.6)
    ws = T.completion_init(2, (5, 4, 3, 5), scale=0.7)
    lam = 0.8
    total = 0.0
    for i in range(5):
        # unknowns z_1 (4), z_2 (3); residual rows: z_1 − W_1 x (4), z_2 − W_2 z_1 (3), √λ m(y − W_3 z_2) (5)
        w1, w2, w3 = (np.asarray(w) for w in ws)
        xi, yi, mi = (np.asarray(v[i]) for v in (x, y, mask))
        a = np.zeros((12, 7))
        b = np.zeros(12)
        a[:4, :4], b[:4] = np.eye(4), w1 @ xi
        a[4:7, :4], a[4:7, 4:] = -w2, np.eye(3)
        a[7:, 4:], b[7:] = -np.sqrt(lam) * mi[:, None] * w3, -np.sqrt(lam) * mi * yi
        z, *_ = np.linalg.lstsq(a, b, rcond=None)
        total += 0.5 * np.sum((a @ z - b) ** 2)
    np.testing.assert_allclose(T.masked_equilibrated_energy(ws, x, y, mask, lam), total / 5, rtol=1e-10)
    # a full mask gives Theorem 1's F*, and the masked loss the plain MSE
    ones = jnp.ones_like(mask)
    np.testing.assert_allclose(T.masked_equilibrated_energy(ws, x, y, ones, lam), T.equilibrated_energy(ws, x, y, lam),
                               rtol=1e-12)
    np.testing.assert_allclose(T.masked_loss(ws, x, y, ones), T.linear_loss(ws, x, y), rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 3])
def test_saddle_to_saddle_rank_steps(seed):
    """Tiny case (6x6 rank-2 target, 80% observed, net 6-16-16-6, init N(0, 0.01²), GD lr 0.02):
    the learned map's rank grows one step at a time for both; BP sits on a plateau between rank 1
    and rank 2 (flat loss, then a drop); PC reaches each rank several times sooner.
    Measured rank steps (seed 0 / 3): BP [347, 2611] / [145, 1688], PC [88, 632] / [37, 394]."""
    x, y, mask, target = T.completion_task(seed, n=6, rank=2, observed=0.8)
    threshold = 0.1 * np.linalg.svd(np.asarray(target), compute_uv=False)[1]
    w0 = T.completion_init(seed, (6, 16, 16, 6), 1e-2)
    runs = {a: T.completion_descent(w0, x, y, mask, algo=a, lr=0.02, steps=4000) for a in ("pc", "bp")}
    steps = {}
    for algo, (_, loss, sv) in runs.items():
        ranks = T.rank_trace(sv, threshold)
        assert np.all(np.diff(ranks) >= 0) and ranks[0] == 0 and ranks[-1] >= 2
        steps[algo] = T.rank_steps(sv, threshold, 2)
    k1, k2 = steps["bp"]
    assert k2 - k1 > 1000
    loss = runs["bp"][1]
    mid = loss[k1 + (k2 - k1) // 4: k2 - (k2 - k1) // 4]
    assert (mid.max() - mid.min()) / mid.mean() < 0.05  # a plateau
    assert loss[min(k2 + 300, len(loss) - 1)] < 0.5 * mid.mean()  # ended by a drop
    assert steps["pc"][0] * 2 < steps["bp"][0] and steps["pc"][1] * 2 < steps["bp"][1], steps


def test_errors():
    with pytest.raises(ValueError, match="rank=0"):
        T.completion_task(0, n=4, rank=0)
    x, y, mask, _ = T.completion_task(0, n=4, rank=1)
    with pytest.raises(ValueError, match="algo='sgd'"):
        T.completion_descent(T.completion_init(0, (4, 3, 4)), x, y, mask, algo="sgd")
    assert T.rank_steps(np.array([[2.0, 0.0], [2.0, 1.0]]), 0.5, 3) == [0, 1, -1]
