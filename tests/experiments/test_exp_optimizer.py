"""The weight optimiser of a run: AdamW's decay and the learning-rate schedule (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pclab.experiments.config import LRSchedule, TrainConfig


def test_warmup_cosine_factor_has_its_corners():
    """s(0) = 0, s rises linearly to 1 at 10% of the steps, decays as a cosine to 0.1 at S."""
    s = LRSchedule.WARMUP_COSINE.factor(1000)
    assert float(s(0)) == 0.0
    assert float(s(50)) == pytest.approx(0.5, abs=1e-6)
    assert float(s(100)) == pytest.approx(1.0, abs=1e-6)
    mid = 100 + 450  # half-way through the decay: 0.1 + 0.9·(1 + cos(π/2))/2 = 0.55
    assert float(s(mid)) == pytest.approx(0.55, abs=1e-6)
    assert float(s(1000)) == pytest.approx(0.1, abs=1e-6)
    assert float(LRSchedule.CONSTANT.factor(10)(7)) == 1.0


def test_scheduled_sgd_update_is_lr_times_factor_times_gradient():
    """SGD with a schedule: θ_{t+1} − θ_t = −lr·s(t)·g, step by step. Tolerance 1e-6: optax
    keeps the injected lr and the schedule's value in float32 (measured error 2e-8)."""
    with jax.enable_x64(True):
        config = TrainConfig(dataset="digits", optimizer="sgd", lr=0.3, lr_schedule="warmup-cosine")
        opt = config.make_optimizer(total_steps=20)
        s = LRSchedule.WARMUP_COSINE.factor(20)
        theta = jnp.array([1.0, -2.0], jnp.float64)
        state = opt.init(theta)
        g = jnp.array([0.5, 0.25], jnp.float64)
        for t in range(20):
            u, state = opt.update(g, state, theta)
            np.testing.assert_allclose(u, -0.3 * float(s(t)) * g, rtol=1e-6, atol=0)


def test_adamw_weight_decay_shrinks_weights_by_lr_times_lambda():
    """With a zero gradient AdamW's update is −lr·λ·θ."""
    with jax.enable_x64(True):
        opt = TrainConfig(dataset="digits", optimizer="adamw", lr=0.01, weight_decay=0.5).make_optimizer()
        theta = jnp.array([2.0, -4.0], jnp.float64)
        u, _ = opt.update(jnp.zeros(2, jnp.float64), opt.init(theta), theta)
        np.testing.assert_allclose(u, -0.01 * 0.5 * theta, rtol=1e-12)


def test_schedule_without_run_length_and_decay_without_adamw_are_refused():
    with pytest.raises(ValueError, match="needs the run's total_steps"):
        TrainConfig(dataset="digits", lr_schedule="warmup-cosine").make_optimizer()
    with pytest.raises(ValueError, match="weight_decay=0.1 needs optimizer='adamw'"):
        TrainConfig(dataset="digits", optimizer="adam", weight_decay=0.1)
    with pytest.raises(ValueError, match="weight_decay=-1.0 is not valid"):
        TrainConfig(dataset="digits", optimizer="adamw", weight_decay=-1.0)
