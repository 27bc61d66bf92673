"""``metrics.jsonl`` is replaced atomically: a write that fails midway leaves the old file."""

import json
import os

import pytest

from pclab.experiments import metrics_log as ml


def test_append_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    ml.reset_metrics(path)
    ml.append_metrics(path, {"step": 1, "loss": 0.5})
    ml.append_metrics(path, {"step": 2, "loss": float("nan")})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"step": 1, "loss": 0.5},
                                                                           {"step": 2, "loss": None}]
    before = path.read_bytes()

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        ml.append_metrics(path, {"step": 3})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]  # no temporary file left
    monkeypatch.undo()
    assert ml.truncate_metrics(path, 1) == [{"step": 1, "loss": 0.5}]
