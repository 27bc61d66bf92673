"""Shared test fixtures. Theory checks run in float64 inside ``enable_x64`` contexts."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402  (after XLA_FLAGS is set)
import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module. One pytest process compiles
    thousands of programs; kept alive, their memory mappings grow without bound (a full run
    once ended in a segmentation fault inside XLA's compiler at 85%)."""
    yield
    jax.clear_caches()
