"""pclab: predictive coding networks and the theory of their learning, in JAX.

The public API, in one place::

    import pclab
    model = pclab.resnet(key, d_in=784, width=128, depth=32, d_out=10, param="mupc")
    sol = pclab.infer(model, x, y, solver=pclab.GradientDescent(0.5), max_steps=16)
    step = pclab.make_train_step(optax.adam(1e-3), "pc")
"""

from .energy import EnergySpec, activity_grad, energy, example_energies, hidden_errors, layer_energies, loss, output_loss
from .inference import (
    AbstractModelSolver,
    AbstractSolver,
    ExactSolver,
    NewtonSolver,
    GradientDescent,
    ODESolver,
    OptaxSolver,
    heavy_ball,
    Solution,
    infer,
    initial_activities,
)
from .learning import (
    Algorithm,
    Evaluation,
    InferenceConfig,
    StepInfo,
    apply_grads,
    train_grads,
    bp_grad,
    evaluate,
    make_train_step,
    pc_weight_grad,
    scale_updates,
)
from .nn import PCN, count_matmul_flops, layer_maps, mlp, resnet
from .options import Activation, ActivityInit, Mode, OutputLoss, Status, parse_option
from .params import Multipliers, Parameterisation, ParamName, get_param

__version__ = "0.1.0"

__all__ = [
    "PCN", "mlp", "resnet", "layer_maps", "count_matmul_flops",
    "Parameterisation", "ParamName", "Multipliers", "get_param",
    "EnergySpec", "energy", "example_energies", "hidden_errors", "layer_energies", "loss",
    "output_loss", "activity_grad",
    "AbstractSolver", "AbstractModelSolver", "GradientDescent", "OptaxSolver", "heavy_ball", "ODESolver", "ExactSolver",
    "NewtonSolver", "Solution",
    "infer", "initial_activities",
    "Algorithm", "InferenceConfig", "StepInfo", "Evaluation", "make_train_step", "evaluate",
    "pc_weight_grad", "bp_grad", "scale_updates", "train_grads", "apply_grads",
    "Activation", "ActivityInit", "Mode", "OutputLoss", "Status", "parse_option",
]
