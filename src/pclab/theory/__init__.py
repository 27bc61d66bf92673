r"""Theory toolkit: closed forms, Hessians, saddles and width/depth limits of the PC energy.

Conventions, uniform across this package (arXiv 2505.13124, 2408.11979, 2602.07697):

* A deep linear network is a list of layer maps B_1..B_L, each (out, in): plain layers
  B_l = a_l W_l, residual hidden layers B_l = I + a_l W_l (``pclab.layer_maps(model)``).
* A batch is x (B, d_in), y (B, d_out), examples in rows.
* Energies and losses are batch means of ½‖·‖² with precision λ on the output term,
  F = 1/(2B) Σ_i [Σ_{l<L} ‖z_l − B_l z_{l−1}‖² + λ‖y − B_L z_{L−1}‖²], as in ``pclab.energy``.
* J_l = B_L ⋯ B_{l+1}, S = I/λ + Σ_{l=1}^{L−1} J_l J_lᵀ, F* = min_z F = 1/(2B) Σ_i r_iᵀS⁻¹r_i.

Along training (:mod:`.training_probes`): κ(H_z), the reach of T inference steps and the PC–BP
alignment at checkpoints; width stability of a parameterisation (:mod:`.scaling`); zero-rank saddle
families with W_L = 0 (:mod:`.saddle_families`); masked matrix completion by PC and BP
(:mod:`.matrix_completion`, inputs (n, n) with a 0/1 mask of observed entries).

Exception: the deep-linear landscape (:mod:`.dln`, :mod:`.dln_kind`, :mod:`.dln_dynamics`; arXiv
2107.13289) keeps that paper's conventions, X (d_x, n) and Y (d_y, n) with examples in columns and
L = ‖W_H⋯W_1 X − Y‖²_F without ½ or mean; :mod:`.approximation` and :mod:`.relu_fit` (arXiv
2206.04360) take functions of x (n, d) on [0,1]^d. :mod:`.orthogonal` and :mod:`.orthogonal_fit`
(arXiv 2108.05623) take conv kernels (M, C, k, …, k); :mod:`.lcn` and :mod:`.lcn_flow` (arXiv
2507.06367) take lists of 1-d or 2-d filters and strides.

Every function works in float32 and float64 (use ``with jax.enable_x64(True):`` for
float64) and raises ``ValueError`` naming the layer and shapes on malformed input.
"""

from .activity_hessian import (
    activity_condition_number,
    activity_eigenvalues,
    activity_hessian,
    dense_equilibrium_activities,
)
from .alignment import GradientAlignment, cosine_similarity, momentum_solver, pc_bp_alignment, rule_bp_cosines
from .approximation import (
    LpError,
    holder_exponent,
    holder_rate,
    loglog_slope,
    lp_error,
    monotone_exponent,
    monotone_rate,
    pseudo_dimension_shape,
    uniform_sampler,
)
from .dln import critical_point, critical_values, dln_loss, dln_spectrum, partial_product, recover_subset
from .dln_dynamics import dln_init, planted_data, visited_critical_values
from .dln_dynamics import gradient_descent as dln_gradient_descent
from .dln_kind import DLNClassification, dln_gradient, dln_hessian
from .dln_kind import classify as dln_classify
from .equilibrium import equilibrated_energy, equilibrium_activities, equilibrium_errors
from .icl import (
    ImplicitUpdates,
    block_with_context,
    context_free_block,
    dherin_update,
    implicit_update_error,
    implicit_updates,
    stack_implicit_updates,
)
from .icl_metrics import effective_rank, numerical_rank, summed_update_spectrum, update_cosines, update_inner
from .icl_task import (
    ICLBatch,
    ICLTransformer,
    baseline_predictions,
    context_sweep,
    icl_loss,
    icl_transformer,
    online_gd,
    query_predictions,
    regression_prompts,
    train_icl,
)
from .lcn import end_to_end_filter, fibre_metrics, fibre_point, strided_conv, swapped_factors
from .lcn import invariants as lcn_invariants
from .lcn import jacobian as lcn_jacobian
from .lcn import metric as lcn_metric
from .lcn_flow import LCNFlow, function_space_flow, parameter_flow, rk4
from .limits import AlignmentGrid, alignment_grid
from .linear import end_to_end, feedforward_activities, linear_energy, linear_loss
from .orthogonal import (
    OrthogonalityErrors,
    circular_conv,
    conv_matrix,
    fourier_blocks,
    kernel_gram,
    orth_regularizer,
    orthogonal_conv_exists,
    orthogonality_case,
    orthogonality_errors,
    pixel_shuffle_kernel,
    spectral_error_bound,
)
from .orthogonal_fit import OrthFit, boundary_error, fit_orthogonal_kernel, fit_orthogonal_kernels, orth_residual
from .orthogonal_fit import probe_boundary
from .rescaling import output_jacobians, rescaling_deviation, rescaling_factor, rescaling_matrix
from .random_maps import random_layer_maps, random_pcn
from .relu_fit import (
    ReluFit,
    fit_relu,
    fit_relu_family,
    monotone_step,
    relu_apply,
    relu_init,
    relu_n_params,
    weierstrass,
)
from .saddle_theory import (
    cross_covariance,
    output_covariance,
    predicted_hessians,
    predicted_lambda_min,
    zero_rank_point,
)
from .saddles import SaddleReport, saddle_report
from .saddle_families import (
    FAMILIES as SADDLE_FAMILIES,
    loss_cross_blocks_vanish,
    orthogonal_pair,
    output_zero_derivatives,
    output_zero_lambda_min,
    output_zero_terms,
    zero_rank_family,
)
from .scaling import first_step_output_change, scaling_sweep
from .training_probes import (
    activity_conditioning,
    activity_hessians,
    alignment_probe,
    combine_probes,
    conditioning_probe,
    energy_loss_ratio,
    reach_probe,
    train_with_probes,
)
from .matrix_completion import (
    completion_descent,
    completion_init,
    completion_task,
    masked_equilibrated_energy,
    masked_loss,
    rank_steps,
    rank_trace,
)
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
    "SADDLE_FAMILIES", "zero_rank_family", "orthogonal_pair", "output_zero_terms", "output_zero_derivatives",
    "output_zero_lambda_min", "loss_cross_blocks_vanish",
    "first_step_output_change", "scaling_sweep",
    "activity_hessians", "activity_conditioning", "conditioning_probe", "reach_probe", "alignment_probe",
    "combine_probes", "energy_loss_ratio", "train_with_probes",
    "completion_task", "completion_init", "completion_descent", "masked_loss", "masked_equilibrated_energy",
    "rank_trace", "rank_steps",
    "GradientAlignment", "cosine_similarity", "pc_bp_alignment", "rule_bp_cosines", "momentum_solver",
    "AlignmentGrid", "alignment_grid",
    "small_init", "TrainTrace", "train_trace", "random_layer_maps", "random_pcn",
    "chain_data", "gaussian_regression", "classification_data",
    "ImplicitUpdates", "implicit_updates", "stack_implicit_updates", "dherin_update", "context_free_block",
    "block_with_context", "implicit_update_error", "update_inner", "update_cosines", "summed_update_spectrum",
    "numerical_rank", "effective_rank",
    "ICLBatch", "ICLTransformer", "icl_transformer", "regression_prompts", "context_sweep", "train_icl", "icl_loss",
    "query_predictions", "baseline_predictions", "online_gd",
    "critical_values", "critical_point", "dln_classify", "DLNClassification", "dln_loss", "dln_gradient",
    "dln_hessian", "dln_spectrum", "partial_product", "recover_subset", "planted_data", "dln_init",
    "dln_gradient_descent", "visited_critical_values",
    "pseudo_dimension_shape", "holder_rate", "holder_exponent", "monotone_rate", "monotone_exponent",
    "loglog_slope", "LpError", "lp_error", "uniform_sampler",
    "ReluFit", "fit_relu", "fit_relu_family", "relu_apply", "relu_init", "relu_n_params", "weierstrass",
    "monotone_step",
    "conv_matrix", "circular_conv", "kernel_gram", "orth_regularizer", "orthogonal_conv_exists", "orthogonality_case",
    "orthogonality_errors", "OrthogonalityErrors", "spectral_error_bound", "fourier_blocks", "pixel_shuffle_kernel",
    "OrthFit", "fit_orthogonal_kernel", "fit_orthogonal_kernels", "orth_residual", "boundary_error", "probe_boundary",
    "strided_conv", "end_to_end_filter", "lcn_invariants", "lcn_jacobian", "lcn_metric", "fibre_point",
    "fibre_metrics", "swapped_factors", "rk4", "LCNFlow", "parameter_flow", "function_space_flow",
]
