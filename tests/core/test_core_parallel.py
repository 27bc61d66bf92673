"""Data parallelism (``pclab.parallel``): a step on a batch split over 2 CPU devices equals the
one-device step (float64, to 1e-12), for a dense and a conv PCN; a run with ``devices=2``
gives the one-device run's metrics (to 1e-9); bad device counts fail naming the argument
(the CLI's ``--devices`` in one line, exit 2)."""

import os
import subprocess
import sys
import textwrap

import jax
import pytest

import pclab
from pclab.cli import main
from pclab.experiments.config import TrainConfig

_SPLIT_STEP = textwrap.dedent("""
    import jax, jax.numpy as jnp, equinox as eqx, optax, pclab
    pclab.use_cpu_devices(2)
    jax.config.update("jax_enable_x64", True)
    mesh = pclab.batch_mesh(2)
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    cases = {
        "resnet": (pclab.resnet(k[0], 12, 16, 6, 3, dtype=jnp.float64), jax.random.normal(k[1], (8, 12))),
        "conv": (pclab.convnet(k[0], (8, 8, 1), 3, channels=(4, 4), blocks=(1, 1), unroll=False),
                 jax.random.normal(k[1], (8, 8, 8, 1))),
    }
    y = jax.nn.one_hot(jax.random.randint(k[2], (8,), 0, 3), 3)
    for name, (net, x) in cases.items():
        net = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, net)
        x = x.astype(jnp.float64)
        opt = optax.adam(1e-2)
        step = pclab.make_train_step(opt, "pc", inference=pclab.InferenceConfig(pclab.GradientDescent(0.1), 5))
        state = opt.init(eqx.filter(net, eqx.is_array))
        one, _, info1 = step(net, state, x, y)
        xs, ys = pclab.shard_batch((x, y), mesh)
        assert [s.data.shape[0] for s in xs.addressable_shards] == [4, 4], xs.sharding
        two, _, info2 = step(*pclab.replicate((net, state), mesh), xs, ys)
        a, b = eqx.filter(one, eqx.is_array), eqx.filter(two, eqx.is_array)
        err = max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))
        assert err < 1e-12, (name, err)
        assert abs(float(info1.energy) - float(info2.energy)) < 1e-12, name
        moved = max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(eqx.filter(net, eqx.is_array))))
        assert moved > 1e-4, (name, moved)  # the step did change the weights
        print(name, "max |difference|", err)

    # the runner: a run with devices=2 gives the metrics of the same run on one device
    import tempfile
    from pathlib import Path
    from pclab.experiments.config import TrainConfig
    from pclab.experiments.runner import train
    base = TrainConfig(dataset="digits", depth=4, width=16, batch_size=64, epochs=1, n_train=512, x64=True,
                       evals_per_epoch=1)
    with tempfile.TemporaryDirectory() as tmp:
        one = train(base, Path(tmp) / "one", progress=False)
        two = train(base.replace(devices=2), Path(tmp) / "two", progress=False)
    assert one["steps"] == two["steps"] == 8, (one["steps"], two["steps"])
    assert abs(one["test_loss"] - two["test_loss"]) <= 1e-9 * abs(one["test_loss"]), (one, two)
    assert abs(one["train_loss"] - two["train_loss"]) <= 1e-9 * abs(one["train_loss"]), (one, two)
    assert one["test_accuracy"] == two["test_accuracy"]
    print("train ok", one["test_loss"], two["test_loss"])
""")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})


def test_split_batch_step_and_run_equal_one_device():
    res = _python(_SPLIT_STEP)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "resnet max" in res.stdout and "conv max" in res.stdout and "train ok" in res.stdout


def test_bad_device_counts_fail_clearly(capsys):
    with pytest.raises(ValueError, match="devices=0 is not valid"):
        pclab.use_cpu_devices(0)
    n = jax.device_count()
    with pytest.raises(ValueError, match=f"devices={n + 1}"):
        pclab.batch_mesh(n + 1)
    with pytest.raises(ValueError, match="before the first JAX computation"):
        jax.numpy.ones(1).block_until_ready()
        pclab.use_cpu_devices(n + 7)
    with pytest.raises(ValueError, match="batch_size=64 cannot be split over devices=3"):
        TrainConfig(batch_size=64, devices=3)
    if n >= 2:  # only where this process already has 2 devices
        with pytest.raises(ValueError, match="cannot be split over 2 devices"):
            pclab.shard_batch(jax.numpy.ones((3, 2)), pclab.batch_mesh(2))
    code = main(["train", "--dataset", "digits", "--batch-size", "64", "--devices", "3", "--quiet"])
    assert code == 2 and "devices=3" in capsys.readouterr().err



def test_a_vmapped_learning_rate_grid_refuses_devices(tmp_path, capsys):
    code = main(["sweep", "--dataset", "digits", "--devices", "2", "--set", "lr=0.01,0.02", "--yes",
                 "--out", str(tmp_path / "grid")])
    assert code == 2 and "applies to single runs" in capsys.readouterr().err
