r"""Speed benchmark: a PC training step against a BP step and against its own matmuls.

Cost model: per layer and example, a PC step with T inference steps costs ≈ 2T + 3 layer
passes (feedforward init, prediction + transposed error per step, weight gradient), BP ≈ 3.
``efficiency`` = (model FLOPs / PC step time) / (the machine's best matmul throughput: large
square matmuls, :func:`peak_matmul_throughput`, timed in the same process);
``layer_efficiency`` = the same FLOP rate / (throughput of width-sized matmuls batched over
depth, the PCN's own kernel timed alone), the figure called ``efficiency`` before. Models: the dense ``mlp``/``resnet`` (depth weight
layers of width N), ``conv`` (``depth`` residual conv blocks over two stages of ``width``
channels on 28×28×1 images) and ``transformer`` (``depth`` blocks of d_model = ``width``,
4 heads, 64 tokens of a 64-symbol vocabulary, cross-entropy).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from .energy import EnergySpec
from .inference import GradientDescent
from .learning import InferenceConfig, make_train_step
from .nn.conv import convnet
from .nn.dense import mlp, resnet, stacked
from .nn.transformer import transformer
from .parallel import data_parallel_mesh, replicate, shard_batch

BENCH_MODELS = ("resnet", "mlp", "conv", "transformer")


@dataclass(frozen=True)
class BenchResult:
    depth: int
    width: int
    batch: int
    infer_steps: int
    devices: int
    model: str
    param: str
    backend: str
    pc_step_s: float
    bp_step_s: float
    ratio: float
    ideal_ratio: float
    compile_s: float
    model_gflop: float
    gflops: float
    matmul_gflops: float
    layer_efficiency: float
    peak_gflops: float
    efficiency: float

    def as_dict(self) -> dict:
        return asdict(self)


def _block(tree):
    jax.tree_util.tree_map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, tree)
    return tree


def median_time(fn, repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` (which must block) over ``repeats`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_throughput(depth: int, width: int, batch: int, repeats: int, dtype=jnp.float32) -> float:
    """GFLOP/s of (depth, batch, width) × (depth, width, width) batched matmuls (jitted), at
    the same (full) precision as the PCN's own matmuls."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    a = jax.random.normal(k1, (depth, batch, width), dtype)
    w = jax.random.normal(k2, (depth, width, width), dtype)
    f = jax.jit(stacked)
    secs = median_time(lambda: f(a, w).block_until_ready(), repeats)
    return 2 * depth * batch * width * width / secs / 1e9


def peak_matmul_throughput(size: int = 2048, repeats: int = 5, dtype=jnp.float32) -> float:
    """GFLOP/s of one jitted (size × size) @ (size × size) matmul at full precision: the
    machine's best matmul rate, the reference of ``efficiency`` (2·size³ FLOPs per call)."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(2))
    a, b = jax.random.normal(k1, (size, size), dtype), jax.random.normal(k2, (size, size), dtype)
    f = jax.jit(lambda a, b: jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST))
    secs = median_time(lambda: f(a, b).block_until_ready(), repeats)
    return 2 * size**3 / secs / 1e9


def bench_workload(model: str, depth: int, width: int, batch: int, param: str, d_in: int | None = None,
                   d_out: int = 10):
    """(model, x, y, energy spec) of the benchmark workload named ``model`` (module docstring)."""
    kx, ky, km = jax.random.split(jax.random.PRNGKey(0), 3)
    if model in ("resnet", "mlp"):
        d_in = width if d_in is None else d_in
        net = (resnet if model == "resnet" else mlp)(km, d_in, width, depth, d_out, act="relu", param=param)
        x = jax.random.normal(kx, (batch, d_in))
    elif model == "conv":
        per_stage = (depth // 2, depth - depth // 2)
        net = convnet(km, (28, 28, 1), d_out, channels=(width, width), blocks=per_stage, param=param)
        x = jax.random.normal(kx, (batch, 28, 28, 1))
    elif model == "transformer":
        net = transformer(km, 64, d_model=width, heads=4, blocks=depth, context=64, param=param)
        x = jax.random.randint(kx, (batch, 64), 0, 64)
        y = jax.nn.one_hot(jax.random.randint(ky, (batch, 64), 0, 64), 64)
        return net, x, y, EnergySpec("ce")
    else:
        raise ValueError(f"model={model!r} is not valid; expected one of {', '.join(map(repr, BENCH_MODELS))}")
    return net, x, jax.nn.one_hot(jax.random.randint(ky, (batch,), 0, d_out), d_out), EnergySpec("mse")


def run_bench(
    depth: int = 128,
    width: int = 128,
    batch: int = 128,
    infer_steps: int = 16,
    model: str = "resnet",
    param: str = "mupc",
    d_in: int | None = None,
    d_out: int = 10,
    repeats: int = 10,
    activity_lr: float = 0.1,
    peak_size: int = 2048,
    devices: int = 1,
) -> BenchResult:
    """Time one PC and one BP training step (Adam) on random data; see module docstring.

    ``d_in`` defaults to ``width`` so that every layer is a width × width matmul. ``devices``
    > 1 splits the batch over that many devices (:mod:`pclab.parallel`; on a CPU, cores).
    """
    mesh = data_parallel_mesh(devices)
    net, x, y, spec = bench_workload(model, depth, width, batch, param, d_in, d_out)
    opt = optax.adam(1e-3)
    inference = InferenceConfig(GradientDescent(activity_lr), max_steps=infer_steps)
    pc = make_train_step(opt, "pc", spec=spec, inference=inference)
    bp = make_train_step(opt, "bp", spec=spec)
    state = opt.init(eqx.filter(net, eqx.is_array))
    if mesh is not None:
        net, state = replicate((net, state), mesh)
        x, y = shard_batch((x, y), mesh)

    t0 = time.perf_counter()
    _block(pc(net, state, x, y))
    compile_s = time.perf_counter() - t0
    _block(bp(net, state, x, y))

    pc_s = median_time(lambda: _block(pc(net, state, x, y)), repeats)
    bp_s = median_time(lambda: _block(bp(net, state, x, y)), repeats)
    mm = matmul_throughput(depth - 2 if depth > 2 else 1, width, batch, repeats)
    peak = peak_matmul_throughput(peak_size)
    flop = (2 * infer_steps + 3) * net.matmul_flops(batch)
    gflops = flop / pc_s / 1e9
    return BenchResult(
        depth=depth, width=width, batch=batch, infer_steps=infer_steps, devices=devices, model=model, param=param,
        backend=jax.default_backend(), pc_step_s=pc_s, bp_step_s=bp_s, ratio=pc_s / bp_s,
        ideal_ratio=(2 * infer_steps + 3) / 3, compile_s=compile_s, model_gflop=flop / 1e9,
        gflops=gflops, matmul_gflops=mm, layer_efficiency=gflops / mm, peak_gflops=peak, efficiency=gflops / peak,
    )
