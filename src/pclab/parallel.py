r"""Data parallelism: the batch split over a 1-d mesh of devices, the model replicated.

PC inference is per example (the energy is Σ_i E_i), so each device equilibrates the
activities of its own examples with no communication; the only exchange is the weight
gradient of the batch-mean energy, reduced once per training step (XLA inserts it). The same
holds for BP. With n devices the activities (L−1, B, N) become n blocks (L−1, B/n, N).

On a CPU, :func:`use_cpu_devices` splits the host into n XLA devices, one per core: XLA:CPU
runs a depth-batched matmul on one thread, so this is what lets a PC step use every core.
Results equal one device's up to the order of the floating-point sums over the batch.

Usage::

    pclab.use_cpu_devices(2)            # before the first JAX computation
    mesh = pclab.batch_mesh(2)
    model, opt_state = pclab.replicate((model, opt_state), mesh)
    model, opt_state, info = step(model, opt_state, *pclab.shard_batch((x, y), mesh))
"""

from __future__ import annotations

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "batch"


def _check_count(n, name: str = "devices") -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name}={n!r} is not valid; expected an integer >= 1")
    return n


def use_cpu_devices(n: int) -> None:
    """Make the CPU backend expose ``n`` devices (``jax_num_cpu_devices``). Call it before the
    first JAX computation; afterwards it only checks that ``n`` devices exist. On an
    accelerator it changes nothing (the devices are the accelerators)."""
    _check_count(n)
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # the backend is already up: fine if it has enough devices
        if jax.device_count() < n:
            raise ValueError(
                f"devices={n}: JAX already started with {jax.device_count()} device(s); call "
                f"pclab.use_cpu_devices({n}) before the first JAX computation (the CLI does so for --devices)"
            ) from None


def batch_mesh(n: int) -> Mesh:
    """A 1-d mesh (axis ``"batch"``) over the first ``n`` devices."""
    _check_count(n)
    devices = jax.devices()
    if len(devices) < n:
        raise ValueError(f"devices={n} but only {len(devices)} {jax.default_backend()} device(s) exist; on a CPU "
                         f"call pclab.use_cpu_devices({n}) before the first JAX computation")
    return Mesh(devices[:n], (AXIS,))


def data_parallel_mesh(n: int) -> Mesh | None:
    """:func:`use_cpu_devices` then :func:`batch_mesh` for ``n`` > 1 (call it before the
    first computation); ``None`` for one device."""
    if _check_count(n) == 1:
        return None
    use_cpu_devices(n)
    return batch_mesh(n)


def replicate(tree, mesh: Mesh):
    """Every array leaf of ``tree`` copied to every device of ``mesh``."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree_util.tree_map(lambda a: jax.device_put(a, sharding) if isinstance(a, jax.Array) else a, tree)


def shard_batch(tree, mesh: Mesh):
    """Every array leaf of ``tree`` (batch on axis 0, B divisible by the mesh size) split
    along axis 0 over ``mesh``: each device holds B/n examples."""
    n = mesh.devices.size
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))

    def put(a):
        if a.shape[0] % n:
            raise ValueError(f"a batch of {a.shape[0]} examples cannot be split over {n} devices; "
                             f"expected a batch size divisible by {n}")
        return jax.device_put(a, sharding)

    return jax.tree_util.tree_map(put, tree)


__all__ = ["use_cpu_devices", "batch_mesh", "data_parallel_mesh", "replicate", "shard_batch"]
