"""`pclab reproduce limits-nonlinear` and `mupc-reach-conv` / `mupc-reach-transformer`."""

import csv
import json

import pytest

from pclab.cli import main


@pytest.mark.slow
def test_limits_nonlinear_quick(tmp_path, capsys):
    """The limits paper's claim for conv and transformer PCNs with μPC at converged inference:
    the PC–BP cosine rises with width (factor 16) and is above 0.99 at the largest width."""
    assert main(["reproduce", "limits-nonlinear", "--quick", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "limits_nonlinear_summary.json").read_text())
    for arch in ("conv", "transformer"):
        init = summary[arch]["mupc"]["init"]
        assert init["all_converged"], (arch, init)
        assert init["widths"][-1] >= 16 * init["widths"][0]
        assert init["rises_with_width"] and init["cosine_at_max_width"] > 0.99, (arch, init)
    rows = list(csv.DictReader(open(tmp_path / "limits_nonlinear.csv")))
    assert {r["stage"] for r in rows} == {"init", "trained"} and {r["param"] for r in rows} == {"mupc", "sp"}
    assert all(len(r["per_layer"].split(";")) >= 2 for r in rows)
    assert (tmp_path / "limits_nonlinear.png").stat().st_size > 10_000


@pytest.mark.slow  # 25 s (conv) and 2 min (transformer) on 2 cores
@pytest.mark.parametrize("arch", ["conv", "transformer"])
def test_reach_quick_is_the_light_cone(tmp_path, capsys, arch):
    """T GD steps from the feedforward pass give a non-zero gradient to the top T + 1 layer maps
    at most (fewer where the signal underflows in float32); one Newton step reaches them all."""
    assert main(["reproduce", f"mupc-reach-{arch}", "--quick", "--out", str(tmp_path)]) == 0
    table = {(float(r["precision"]), r["inference"]): r for r in csv.DictReader(open(tmp_path / "reach_summary.csv"))}
    for (lam, label), r in table.items():
        layers, reached = int(r["layers"]), int(r["reached"])
        if label.startswith("GD, T="):
            t = int(label.split("=")[1])
            assert 1 <= reached <= min(t + 1, layers), (lam, label, reached)  # rounding-level layers excluded (floor 1e-5)
        if label == "Newton, 1 step":
            assert reached == layers, (lam, reached)
    assert (tmp_path / "reach.png").stat().st_size > 10_000
    assert (tmp_path / "reach.md").read_text().count("\n") >= 2 + len(table)
