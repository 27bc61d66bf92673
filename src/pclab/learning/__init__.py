"""Learning: rules (PC, BP, …) as objects, jitted training steps and evaluation."""

from .evaluate import Evaluation, batched_means, eval_sums, evaluate
from .rules import (
    BP,
    LEARNING_RULES,
    PC,
    AbstractLearningRule,
    InferenceConfig,
    StepInfo,
    bp_grad,
    bp_loss_and_grad,
    get_rule,
    pc_energy_and_weight_grad,
    pc_weight_grad,
)
from .ipc import IPC  # registers --algo ipc
from .epc import EPC, ErrorSolver  # registers --algo epc
from .nudging import CentredNudging, NegativeNudging, PositiveNudging, nudged_phase  # --algo nudge-*
from .bpc import BPC, BidirectionalPCN, TransposedBidirectionalPCN, bidirectional, bpc_energy  # --algo bpc
from .hpc import HPC, AmortisedPCN, Amortiser, AmortiserKind, CopyAmortiser, amortised  # --algo hpc
from .alm import ALM, lagrangian  # registers --algo alm
from .generative import evaluate_generative, sample, samples_figure
from .step import apply_grads, make_train_step, masked_update, scale_updates, train_grads, update_scales

__all__ = [
    "AbstractLearningRule", "PC", "BP", "LEARNING_RULES", "get_rule", "InferenceConfig", "StepInfo",
    "pc_weight_grad", "pc_energy_and_weight_grad", "bp_grad", "bp_loss_and_grad",
    "train_grads", "apply_grads", "masked_update", "make_train_step", "scale_updates", "update_scales",
    "Evaluation", "evaluate", "eval_sums", "batched_means",
    "IPC", "EPC", "ErrorSolver", "PositiveNudging", "NegativeNudging", "CentredNudging", "nudged_phase",
    "BPC", "BidirectionalPCN", "TransposedBidirectionalPCN", "bidirectional", "bpc_energy",
    "HPC", "AmortisedPCN", "Amortiser", "AmortiserKind", "CopyAmortiser", "amortised",
    "ALM", "lagrangian", "evaluate_generative", "sample", "samples_figure",
]
