"""Malformed input raises ValueError naming the layer and the shapes."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

from pclab import theory as T

MAPS = [np.ones((4, 3)), np.ones((5, 4)), np.ones((2, 5))]
X, Y = np.ones((6, 3)), np.ones((6, 2))


@pytest.mark.parametrize("fn", [T.rescaling_matrix, T.activity_hessian, T.activity_condition_number,
                                T.rescaling_deviation])
def test_maps_that_do_not_chain(fn):
    bad = [np.ones((4, 3)), np.ones((5, 4)), np.ones((2, 6))]
    with pytest.raises(ValueError, match=r"maps\[2\] \(B_3\) has shape \(2, 6\).*\(5, 4\)"):
        fn(bad)


@pytest.mark.parametrize("fn", [T.equilibrated_energy, T.equilibrium_activities, T.dense_equilibrium_activities,
                                T.energy_hessian, T.saddle_report])
def test_batch_must_match_first_and_last_map(fn):
    with pytest.raises(ValueError, match=r"x has shape \(6, 2\).*maps\[0\].*\(4, 3\)"):
        fn(MAPS, np.ones((6, 2)), Y)
    with pytest.raises(ValueError, match=r"y has shape \(6, 3\).*maps\[2\].*\(2, 5\)"):
        fn(MAPS, X, np.ones((6, 3)))
    with pytest.raises(ValueError, match="different batch sizes"):
        fn(MAPS, X, np.ones((5, 2)))
    with pytest.raises(ValueError, match="2-d"):
        fn(MAPS, np.ones(3), Y)


@pytest.mark.parametrize("precision", [0.0, -1.0, float("nan"), float("inf"), True, "a"])
def test_non_positive_precision(precision):
    for call in (lambda: T.rescaling_matrix(MAPS, precision), lambda: T.equilibrated_energy(MAPS, X, Y, precision),
                 lambda: T.activity_hessian(MAPS, precision)):
        with pytest.raises(ValueError, match="precision"):
            call()


def test_malformed_maps():
    with pytest.raises(ValueError, match=r"maps\[1\] \(B_2\) must be a 2-d"):
        T.rescaling_matrix([np.ones((4, 3)), np.ones(4)])
    with pytest.raises(ValueError, match="at least 2"):
        T.rescaling_matrix([np.ones((4, 3))])
    with pytest.raises(ValueError, match="list of 2-d arrays"):
        T.rescaling_matrix(np.ones((4, 3)))
    with pytest.raises(ValueError, match="empty"):
        T.rescaling_matrix([np.ones((0, 3)), np.ones((2, 0))])
    with pytest.raises(ValueError, match="biases"):
        T.rescaling_matrix(eqx.tree_at(lambda m: m.b_out, T.random_pcn(0, 3, 4, 3, 2), jnp.zeros(2),
                                       is_leaf=lambda v: v is None))
    with pytest.raises(ValueError, match="scalar output"):
        T.rescaling_factor(MAPS)


def test_other_argument_errors():
    with pytest.raises(ValueError, match="tol"):
        T.saddle_report(MAPS, X, Y, tol=-1.0)
    with pytest.raises(ValueError, match="needs L >= 3"):
        T.zero_rank_point([(4, 3), (2, 4)], np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"A has shape \(3, 3\)"):
        T.zero_rank_point([(4, 3), (4, 4), (2, 4)], np.ones((3, 3)))
    with pytest.raises(ValueError, match="objective"):
        T.derivatives(MAPS, X, Y, "energies")
    with pytest.raises(ValueError, match="theta"):
        T.unflatten_weights(jnp.ones(5), [(2, 2)])
    with pytest.raises(ValueError, match="width"):
        T.random_layer_maps(0, 3, 0, 3, 2)
    with pytest.raises(ValueError, match="depth"):
        T.random_pcn(0, 3, 4, 1, 2)
    with pytest.raises(ValueError, match="steps"):
        T.train_trace(T.random_pcn(0, 3, 4, 3, 2), X, Y, steps=0)


def test_alignment_solver_errors():
    model = T.random_pcn(0, 3, 4, 3, 2, act="tanh")
    with pytest.raises(ValueError, match="linear model"):
        T.pc_bp_alignment(model, jnp.ones((6, 3)), jnp.ones((6, 2)), solver="exact")
    with pytest.raises(ValueError, match="solver="):
        T.pc_bp_alignment(model, jnp.ones((6, 3)), jnp.ones((6, 2)), solver="newton")
