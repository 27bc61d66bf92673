"""Shared test fixtures. Theory checks run in float64 inside ``enable_x64`` contexts."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
os.environ.setdefault("MPLBACKEND", "Agg")
