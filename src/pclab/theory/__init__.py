r"""Theory toolkit: closed forms, Hessians, saddles and width/depth limits of the PC energy.

Conventions, uniform across this package (see science.md §§1–3):

* A deep linear network is a list of layer maps B_1..B_L, each (out, in): plain layers
  B_l = a_l W_l, residual hidden layers B_l = I + a_l W_l (``pclab.layer_maps(model)``).
* A batch is x (B, d_in), y (B, d_out), examples in rows.
* Energies and losses are batch means of ½‖·‖² with precision λ on the output term,
  F = 1/(2B) Σ_i [Σ_{l<L} ‖z_l − B_l z_{l−1}‖² + λ‖y − B_L z_{L−1}‖²], as in ``pclab.energy``.
* J_l = B_L ⋯ B_{l+1}, S = I/λ + Σ_{l=1}^{L−1} J_l J_lᵀ, F* = min_z F = 1/(2B) Σ_i r_iᵀS⁻¹r_i.

Every function works in float32 and float64 (use ``with jax.enable_x64(True):`` for
float64) and raises ``ValueError`` naming the layer and shapes on malformed input.
"""

from .activity_hessian import (
    activity_condition_number,
    activity_eigenvalues,
    activity_hessian,
    dense_equilibrium_activities,
)
from .alignment import GradientAlignment, cosine_similarity, momentum_solver, pc_bp_alignment
from .equilibrium import equilibrated_energy, equilibrium_activities, equilibrium_errors
from .limits import AlignmentGrid, alignment_grid
from .linear import end_to_end, feedforward_activities, linear_energy, linear_loss
from .rescaling import output_jacobians, rescaling_deviation, rescaling_factor, rescaling_matrix
from .random_maps import random_layer_maps, random_pcn
from .saddle_theory import (
    cross_covariance,
    output_covariance,
    predicted_hessians,
    predicted_lambda_min,
    zero_rank_point,
)
from .saddles import SaddleReport, saddle_report
from .toy_data import chain_data, classification_data, gaussian_regression
from .training import TrainTrace, small_init, train_trace
from .weight_hessian import (
    derivatives,
    energy_gradient,
    energy_hessian,
    flatten_weights,
    layer_slices,
    loss_gradient,
    loss_hessian,
    unflatten_weights,
)

__all__ = [
    "rescaling_matrix", "rescaling_deviation", "rescaling_factor", "output_jacobians",
    "equilibrated_energy", "equilibrium_activities", "equilibrium_errors",
    "feedforward_activities", "end_to_end", "linear_loss", "linear_energy",
    "activity_hessian", "activity_eigenvalues", "activity_condition_number", "dense_equilibrium_activities",
    "flatten_weights", "unflatten_weights", "layer_slices",
    "energy_gradient", "loss_gradient", "energy_hessian", "loss_hessian", "derivatives",
    "SaddleReport", "saddle_report",
    "output_covariance", "cross_covariance", "zero_rank_point", "predicted_hessians", "predicted_lambda_min",
    "GradientAlignment", "cosine_similarity", "pc_bp_alignment", "momentum_solver",
    "AlignmentGrid", "alignment_grid",
    "small_init", "TrainTrace", "train_trace", "random_layer_maps", "random_pcn",
    "chain_data", "gaussian_regression", "classification_data",
]
