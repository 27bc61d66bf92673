"""Shared test fixtures. Theory checks run in float64 inside ``enable_x64`` contexts."""

import os
import shutil
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
os.environ.setdefault("MPLBACKEND", "Agg")

# One persistent XLA compilation cache per test session, shared by the xdist workers (they
# inherit the environment) and by the subprocesses that tests start: a run that is killed and
# resumed, or repeated for comparison, compiles the same programs again (measured: the
# SIGKILL-resume test 95 s → 63 s). Only programs that took ≥ 0.2 s to compile are stored.
_OWN_CACHE = "PCLAB_TEST_JAX_CACHE" not in os.environ
if _OWN_CACHE:
    os.environ["PCLAB_TEST_JAX_CACHE"] = tempfile.mkdtemp(prefix="pclab-test-jax-cache-")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.environ["PCLAB_TEST_JAX_CACHE"])
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import jax  # noqa: E402  (after XLA_FLAGS is set)
import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module. One pytest process compiles
    thousands of programs; kept alive, their memory mappings grow without bound (a full run
    once ended in a segmentation fault inside XLA's compiler at 85%)."""
    yield
    jax.clear_caches()


def pytest_unconfigure(config):
    """The process that made the session's compilation cache removes it."""
    if _OWN_CACHE and not hasattr(config, "workerinput"):
        shutil.rmtree(os.environ["PCLAB_TEST_JAX_CACHE"], ignore_errors=True)
