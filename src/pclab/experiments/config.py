"""``TrainConfig``: the typed, validated configuration of one training run.

Every field has a CLI flag of the same name (``--batch-size`` for ``batch_size``) and a TOML
key; precedence is defaults < preset < ``--config FILE`` < flags.
"""

from __future__ import annotations

import dataclasses
import enum
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import optax

from ..inference import SOLVERS, AbstractSolver, make_solver
from ..learning import LEARNING_RULES, AbstractLearningRule, get_rule
from ..options import Activation, Mode, OutputLoss, parse_option
from ..params import PARAMETERISATIONS
from .models import MODELS, Inputs

PRESETS_DIR = Path(__file__).parent / "presets"


class DatasetName(str, enum.Enum):
    MNIST = "mnist"
    FASHION_MNIST = "fashion-mnist"
    DIGITS = "digits"
    SYNTHETIC = "synthetic"
    CIFAR10 = "cifar10"
    PYTHON_STDLIB = "python-stdlib"  # text: next-character prediction (--model transformer)
    DYCK = "dyck"  # text: a synthetic bracket grammar (--model transformer)

    @property
    def text(self) -> bool:
        """Whether this is a token-sequence set (``pclab.data.load_text_dataset``)."""
        return self in (DatasetName.PYTHON_STDLIB, DatasetName.DYCK)


class OptimizerName(str, enum.Enum):
    ADAM = "adam"
    ADAMW = "adamw"
    SGD = "sgd"
    MOMENTUM = "momentum"


class LRSchedule(str, enum.Enum):
    """The weight learning rate over a run of ``S`` steps, as a factor s(t) on ``lr``.

    - ``constant``: s(t) = 1.
    - ``warmup-cosine``: linear warm-up from 0 to 1 over the first 10% of the steps, then a
      cosine decay to 0.1 at step S (the shape of pcx's benchmark schedule).
    """

    CONSTANT = "constant"
    WARMUP_COSINE = "warmup-cosine"

    def factor(self, total_steps: int) -> optax.Schedule:
        """s(t) for a run of ``total_steps`` weight updates."""
        if self is LRSchedule.CONSTANT:
            return optax.constant_schedule(1.0)
        warmup = max(1, round(0.1 * total_steps))
        return optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup, max(total_steps, warmup + 1), end_value=0.1)


_ENUMS = {
    "dataset": DatasetName, "act": Activation, "loss": OutputLoss, "optimizer": OptimizerName, "mode": Mode,
    "lr_schedule": LRSchedule,
}
REGISTRIES = {"param": PARAMETERISATIONS, "algo": LEARNING_RULES, "solver": SOLVERS, "model": MODELS}



MAX_CONTEXT = 2048  # the CLI's bound on --context (text data sets)

@dataclass(frozen=True)
class TrainConfig:
    """One training run. Defaults: the README's main job (μPC ResNet on MNIST)."""

    dataset: DatasetName = DatasetName.MNIST
    model: str = "resnet"  # a registered model (pclab.experiments.models.MODELS): resnet, mlp, conv, transformer
    depth: int = 8
    width: int = 128
    channels: int = 16  # conv: channels of the first stage (doubled at each later stage)
    stages: int = 2  # conv: resolution stages (each later one halves H and W)
    blocks: int = 2  # conv: residual blocks per stage; transformer: the number of blocks
    d_model: int = 64  # transformer: the residual stream's width d
    heads: int = 4  # transformer: attention heads (d_model must be a multiple)
    context: int = 64  # transformer: positions per window T
    act: Activation = Activation.RELU
    param: str = "mupc"  # a registered parameterisation (pclab.PARAMETERISATIONS)
    gamma: float = 1.0
    bias: bool = False
    algo: str = "pc"  # a registered learning rule (pclab.LEARNING_RULES)
    algo_options: dict[str, Any] | None = None  # the rule's hyperparameters by name (--algo-opt NAME=VALUE)
    mode: Mode = Mode.SUPERVISED  # generative: the data at the top, the label (latent) at the bottom
    loss: OutputLoss = OutputLoss.MSE
    precision: float = 1.0
    epochs: int = 5
    batch_size: int = 128
    infer_steps: int = 8
    solver: str | None = None  # a registered solver (pclab.SOLVERS); None: 'gd' for PC, none for BP
    activity_lr: float = 0.2
    infer_rtol: float = 0.0
    lr: float = 3e-2
    optimizer: OptimizerName = OptimizerName.ADAM
    weight_decay: float | None = None  # adamw's decoupled decay λ (θ ← θ − lr·λ·θ); None: optax's 1e-4
    lr_schedule: LRSchedule = LRSchedule.CONSTANT
    scale_lr: bool = False
    seed: int = 0
    devices: int = 1  # data parallel: the batch split over this many devices (on a CPU, one per core)
    x64: bool = False  # train in float64 (the μPC authors' protocol); data and model are cast
    evals_per_epoch: int = 2
    checkpoint_every: int = 200
    n_train: int | None = None  # use only the first n_train training examples
    data_dir: str | None = None
    cifar_path: str | None = None

    def __post_init__(self):
        for name, kind in _ENUMS.items():
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, parse_option(kind, value, name))
        for name, registry in REGISTRIES.items():
            value = getattr(self, name)
            if value is not None:
                registry.get(value)  # fails naming the valid choices
                object.__setattr__(self, name, str(getattr(value, "value", value)).lower())
        if self.algo_options is not None and not isinstance(self.algo_options, dict):
            raise ValueError(f"algo_options={self.algo_options!r} is not valid; expected a table of NAME = VALUE")
        for name in ("depth", "width", "epochs", "batch_size", "infer_steps", "evals_per_epoch", "checkpoint_every",
                     "channels", "stages", "d_model", "heads", "context", "devices"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r} is not valid; expected an integer >= 1")
        if isinstance(self.blocks, bool) or not isinstance(self.blocks, int) or self.blocks < 0:
            raise ValueError(f"blocks={self.blocks!r} is not valid; expected an integer >= 0")
        if self.batch_size % self.devices:
            raise ValueError(f"batch_size={self.batch_size} cannot be split over devices={self.devices}; expected "
                             f"a batch size divisible by {self.devices}")
        if self.depth < 2:
            raise ValueError(f"depth={self.depth} is not valid; expected an integer >= 2 (weight layers)")
        if self.n_train is not None and (not isinstance(self.n_train, int) or self.n_train < self.batch_size):
            raise ValueError(f"n_train={self.n_train!r} is not valid; expected an integer >= batch_size")
        for name in ("lr", "activity_lr", "precision", "gamma"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or v == float("inf"):
                raise ValueError(f"{name}={v!r} is not valid; expected a finite number > 0")
        if self.weight_decay is not None:
            if self.optimizer is not OptimizerName.ADAMW:
                raise ValueError(f"weight_decay={self.weight_decay!r} needs optimizer='adamw'; got "
                                 f"optimizer={self.optimizer.value!r}")
            if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)) \
                    or not 0 <= self.weight_decay < float("inf"):
                raise ValueError(f"weight_decay={self.weight_decay!r} is not valid; expected a finite number >= 0")
        if self.infer_rtol < 0:
            raise ValueError(f"infer_rtol={self.infer_rtol!r} is not valid; expected a number >= 0")
        if not self.rule.runs_inference and self.solver is not None:
            raise ValueError(f"solver={self.solver!r} cannot be combined with algo={self.algo!r} "
                             f"({self.algo} runs no inference)")
        self.rule.validate(solver=self.make_solver() if self.rule.runs_inference else None, mode=self.mode)
        if self.solver == "exact" and (self.act is not Activation.LINEAR or self.loss is not OutputLoss.MSE):
            raise ValueError("solver='exact' needs act='linear' and loss='mse'")
        if self.dataset.text and self.context > MAX_CONTEXT:
            raise ValueError(f"context={self.context} is not valid; expected at most {MAX_CONTEXT} positions (attention "
                             f"memory grows as context²; pclab.transformer takes any context from Python)")
        if self.d_model % self.heads:
            raise ValueError(f"d_model={self.d_model} is not valid; expected a multiple of heads={self.heads}")
        if MODELS.get(self.model).tokens != self.dataset.text:
            kind = "a text data set (python-stdlib, dyck)" if MODELS.get(self.model).tokens else "--model transformer"
            what = f"model={self.model!r}" if MODELS.get(self.model).tokens else f"dataset={self.dataset.value!r}"
            raise ValueError(f"{what} needs {kind}")
        if self.mode is Mode.GENERATIVE and MODELS.get(self.model).inputs is not Inputs.VECTORS:
            raise ValueError(f"mode='generative' needs a dense model (mlp or resnet); got model={self.model!r}")
        if self.dataset is DatasetName.CIFAR10 and not self.cifar_path:
            raise ValueError("dataset='cifar10' needs cifar_path (a folder holding cifar-10-batches-py files)")

    # ----- conversions ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: (v.value if isinstance(v, enum.Enum) else v) for f in fields(self) for v in [getattr(self, f.name)]}

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown config key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}")
        return cls(**d)

    # ----- derived objects -----------------------------------------------------------------
    @property
    def rule(self) -> AbstractLearningRule:
        """The learning rule named by ``algo``, with ``algo_options`` applied."""
        return get_rule(self.algo).with_options(**(self.algo_options or {}))

    @property
    def solver_name(self) -> str:
        """``solver``, or the default ``'gd'``."""
        return self.solver or "gd"

    @property
    def uses_activity_lr(self) -> bool:
        """Whether ``activity_lr`` changes training: a rule that runs inference with a solver
        that takes steps (not BP, not Newton or the exact solve)."""
        return self.rule.runs_inference and SOLVERS.get(self.solver_name).has_step_size

    def make_solver(self, step_size=None) -> AbstractSolver:
        """The activity solver named by ``solver``; ``step_size`` overrides ``activity_lr`` (it
        may be a traced array)."""
        return make_solver(self.solver_name, self.activity_lr if step_size is None else step_size)

    def make_optimizer(self, learning_rate=None, total_steps: int | None = None) -> optax.GradientTransformation:
        """The weight optimiser; ``learning_rate`` overrides ``lr`` (it may be a traced array).
        ``total_steps`` (the run's number of weight updates) is needed by any ``lr_schedule``
        but ``constant``; the schedule multiplies the optimiser's update by s(t)."""
        opt = make_optimizer(self.optimizer, self.lr if learning_rate is None else learning_rate, self.weight_decay)
        if self.lr_schedule is LRSchedule.CONSTANT:
            return opt
        if total_steps is None or total_steps < 1:
            raise ValueError(f"lr_schedule={self.lr_schedule.value!r} needs the run's total_steps (>= 1); "
                             f"got {total_steps!r}")
        return optax.chain(opt, optax.scale_by_schedule(self.lr_schedule.factor(total_steps)))


def make_optimizer(name: OptimizerName, lr, weight_decay: float | None = None) -> optax.GradientTransformation:
    """A weight optimiser by name; its learning rate lives in the optimiser state
    (``optax.inject_hyperparams``), so a grid of rates can share one compiled step.
    ``weight_decay`` is AdamW's λ (None: optax's default)."""
    factory = {
        OptimizerName.ADAM: optax.adam,
        OptimizerName.ADAMW: optax.adamw if weight_decay is None else
        (lambda learning_rate: optax.adamw(learning_rate, weight_decay=weight_decay)),
        OptimizerName.SGD: optax.sgd,
        OptimizerName.MOMENTUM: lambda learning_rate: optax.sgd(learning_rate, momentum=0.9),
    }[name]
    return optax.inject_hyperparams(factory)(learning_rate=lr)


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file; errors name the file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"config file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"config file {str(path)!r} is not valid TOML: {e}") from None


def presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def read_preset(name: str) -> dict[str, Any]:
    if name not in presets():
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(presets())}")
    return read_toml(PRESETS_DIR / f"{name}.toml")
