"""pclab: predictive coding networks and the theory of their learning, in JAX.

The public API, in one place::

    import pclab
    model = pclab.resnet(key, d_in=784, width=128, depth=32, d_out=10, param="mupc")
    sol = pclab.infer(model, x, y, solver=pclab.GradientDescent(0.5), max_steps=16)
    step = pclab.make_train_step(optax.adam(1e-3), "pc")
"""

from .energy import EnergySpec, activity_grad, energy, example_energies, hidden_errors, layer_energies, loss, output_loss
from .inference import (
    SOLVERS,
    AbstractSolver,
    InferenceProblem,
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
    BP,
    LEARNING_RULES,
    PC,
    AbstractLearningRule,
    Evaluation,
    InferenceConfig,
    StepInfo,
    apply_grads,
    train_grads,
    bp_grad,
    evaluate,
    make_train_step,
    get_rule,
    pc_weight_grad,
    scale_updates,
)
from .nn import PCN, AbstractPCN, ConvPCN, TransformerPCN, convnet, count_matmul_flops, layer_maps, mlp, resnet, transformer
from .options import Activation, ActivityInit, Mode, OutputLoss, Status, parse_option
from .parallel import batch_mesh, replicate, shard_batch, use_cpu_devices
from .params import PARAMETERISATIONS, MuP, MuPC, Multipliers, NTP, ParamInfo, Parameterisation, Role, SP, get_param
from .registry import Registry

__version__ = "0.1.0"

__all__ = [
    "AbstractPCN", "PCN", "mlp", "resnet", "ConvPCN", "convnet", "TransformerPCN", "transformer", "layer_maps", "count_matmul_flops",
    "Parameterisation", "PARAMETERISATIONS", "SP", "NTP", "MuP", "MuPC", "ParamInfo", "Role", "Multipliers",
    "get_param", "Registry",
    "EnergySpec", "energy", "example_energies", "hidden_errors", "layer_energies", "loss",
    "output_loss", "activity_grad",
    "AbstractSolver", "InferenceProblem", "SOLVERS", "GradientDescent", "OptaxSolver", "heavy_ball", "ODESolver", "ExactSolver",
    "NewtonSolver", "Solution",
    "infer", "initial_activities",
    "AbstractLearningRule", "PC", "BP", "LEARNING_RULES", "get_rule", "InferenceConfig", "StepInfo", "Evaluation", "make_train_step", "evaluate",
    "pc_weight_grad", "bp_grad", "scale_updates", "train_grads", "apply_grads",
    "Activation", "ActivityInit", "Mode", "OutputLoss", "Status", "parse_option",
    "use_cpu_devices", "batch_mesh", "replicate", "shard_batch",
]
