"""Theory is checked in float64: every test in this folder runs inside ``jax.enable_x64``."""

import jax
import pytest


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield
