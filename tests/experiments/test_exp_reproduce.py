"""``pclab reproduce NAME --quick`` for the μPC figures: files written, numbers sane."""

import csv
import json
import math

import pytest

from pclab.cli import main


def test_reproduce_list_names_all(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("mupc-depth", "mupc-transfer", "mupc-transfer-reach", "mupc-transfer-newton", "mupc-reach"):
        assert name in out


@pytest.mark.parametrize("name, inference, seeds, points", [
    ("mupc-transfer", "gd inference, T = 8", [0], 9),
    ("mupc-transfer-reach", "momentum inference, T = 32", [0, 1], 9),
    ("mupc-transfer-newton", "newton inference, T = 1, Depth-μP lr factors", [0, 1], 3),  # weight lr only
])
def test_mupc_transfer_quick(tmp_path, capsys, name, inference, seeds, points):
    assert main(["reproduce", name, "--quick", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "transfer_summary.json").read_text())
    assert summary["inference"] == inference and summary["seeds"] == seeds
    assert ("activity_lr" in summary["argmin_small"]) == (points == 9)
    rows = list(csv.DictReader(open(tmp_path / "transfer_grid.csv")))
    assert len(rows) == 2 * points * len(seeds) and {int(r["seed"]) for r in rows} == set(seeds)
    # The argmins and grid steps moved, recomputed by brute force from the grid's own rows
    # (not through GridResult): seed-mean test loss, a point excluded if any seed diverged.
    small, large = (_brute_force_argmin(rows, s) for s in ("small", "large"))
    for which, (lr, alr, _) in (("small", small), ("large", large)):
        assert summary[f"argmin_{which}"]["lr"] == lr
        if points == 9:
            assert summary[f"argmin_{which}"]["activity_lr"] == alr
    moved = _steps(small, large)
    assert summary["grid_steps_moved"] == moved and summary["transfers"] == (moved <= 1)
    assert summary["grid_steps_moved_by_seed"] == [
        _steps(_brute_force_argmin(rows, "small", seed), _brute_force_argmin(rows, "large", seed)) for seed in seeds]
    assert (tmp_path / "transfer_heatmaps.png").stat().st_size > 10_000
    # the best point of each setting learned something real on digits (chance = 10%)
    best = max(float(r["test_accuracy"] or 0) for r in rows if r["setting"] == "small")
    assert best > 0.8


def _brute_force_argmin(rows, setting, seed=None):
    """(lr, activity lr, (i, j) grid index) of the lowest seed-mean test loss of ``setting``."""
    mine = [r for r in rows if r["setting"] == setting and (seed is None or int(r["seed"]) == seed)]
    lrs = sorted({float(r["lr"]) for r in mine})
    alrs = sorted({float(r["activity_lr"]) for r in mine})
    best = None
    for i, lr in enumerate(lrs):  # row-major scan, strict '<': ties go to the first point, like np.argmin
        for j, alr in enumerate(alrs):
            point = [r for r in mine if float(r["lr"]) == lr and float(r["activity_lr"]) == alr]
            if any(r["diverged"] == "True" for r in point):
                continue
            loss = sum(float(r["test_loss"]) for r in point) / len(point)
            if math.isfinite(loss) and (best is None or loss < best[0]):
                best = (loss, lr, alr, (i, j))
    assert best is not None, f"every point of {setting} diverged"
    return best[1:]


def _steps(a, b):
    return max(abs(a[2][0] - b[2][0]), abs(a[2][1] - b[2][1]))


def test_brute_force_argmin_helper():
    """The recomputation the transfer test relies on: seed means, diverged points excluded (even
    with the lowest loss at another seed), steps in grid indices."""
    def row(setting, seed, lr, alr, loss, diverged=False):
        return dict(setting=setting, seed=str(seed), lr=str(lr), activity_lr=str(alr), test_loss=str(loss),
                    diverged=str(diverged))
    rows = [row("small", 0, 0.1, 0.2, 0.5), row("small", 1, 0.1, 0.2, 0.7),   # mean 0.6
            row("small", 0, 0.1, 0.4, 0.1), row("small", 1, 0.1, 0.4, 9.0),   # mean 4.55
            row("small", 0, 0.3, 0.2, 0.01), row("small", 1, 0.3, 0.2, "inf", True),  # diverged at seed 1
            row("small", 0, 0.3, 0.4, 0.65), row("small", 1, 0.3, 0.4, 0.65)]
    assert _brute_force_argmin(rows, "small") == (0.1, 0.2, (0, 0))
    assert _brute_force_argmin(rows, "small", seed=0) == (0.3, 0.2, (1, 0))
    assert _brute_force_argmin(rows, "small", seed=1) == (0.3, 0.4, (1, 1))
    assert _steps((0, 0, (0, 0)), (0, 0, (1, 3))) == 3


@pytest.mark.slow  # 60 s on 2 cores
def test_mupc_depth_quick(tmp_path, capsys):
    assert main(["reproduce", "mupc-depth", "--quick", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "accuracy_vs_depth.csv")))
    assert {r["variant"] for r in rows} == {"PC (SP)", "μPC", "μPC (Newton, λ=0.01)", "μPC (Newton, λ=1, scaled lr)",
                                            "BP (Depth-μP)"}
    acc = {(r["variant"], int(r["depth"])): float(r["test_accuracy"]) for r in rows}
    assert min(acc["BP (Depth-μP)", d] for d in (4, 12)) > 0.8
    assert min(acc["μPC (Newton, λ=1, scaled lr)", d] for d in (4, 12)) > 0.9  # measured 96.1%, 96.3%
    # Newton inference with weak precision tracks BP (measured: equal to 0.3 points on digits)
    assert all(abs(acc["μPC (Newton, λ=0.01)", d] - acc["BP (Depth-μP)", d]) < 0.03 for d in (4, 12))
    assert (tmp_path / "accuracy_vs_depth.png").is_file() and (tmp_path / "accuracy_vs_depth.md").is_file()


def test_mupc_reach_quick(tmp_path, capsys):
    """GD from the feedforward pass reaches one layer per step (exact light cone); Newton all."""
    assert main(["reproduce", "mupc-reach", "--quick", "--out", str(tmp_path)]) == 0
    table = {(float(r["precision"]), r["inference"]): r for r in csv.DictReader(open(tmp_path / "reach_summary.csv"))}
    depth = 16
    for lam in (1.0, 0.01):
        assert int(table[lam, "GD, T=2"]["reached"]) == 2 + 1  # W_{L-2}, W_{L-1} and W_L
        assert int(table[lam, "GD, T=8"]["reached"]) == 8 + 1
        assert int(table[lam, "Newton, 1 step"]["reached"]) == depth
    # at weak precision one Newton step gives every layer a BP-aligned gradient
    assert int(table[0.01, "Newton, 1 step"]["aligned"]) == depth
    assert float(table[0.01, "Newton, 1 step"]["cosine"]) > 0.99
    rows = list(csv.DictReader(open(tmp_path / "reach_by_layer.csv")))
    assert len(rows) == 2 * 5 * depth and (tmp_path / "reach.png").stat().st_size > 10_000


def test_reproduction_over_budget_asks_for_yes(tmp_path, capsys):
    """The full heavy-ball transfer grids take hours on a CPU: refused up front, one line, exit 2."""
    assert main(["reproduce", "mupc-transfer-reach", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pclab reproduce mupc-transfer-reach (150 training runs) would take about")
    assert err.endswith("pass --yes to run it anyway") and "\n" not in err
    assert not any(tmp_path.iterdir())  # nothing was trained or written


def test_mupc_transfer_width_quick(tmp_path, capsys):
    """Width transfer: each setting's argmin and its grid steps from the narrowest net of the
    same depth, recomputed by brute force from the grid's rows; T = 2L heavy-ball inference."""
    assert main(["reproduce", "mupc-transfer-width", "--quick", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "transfer_summary.json").read_text())
    assert summary["inference"] == "momentum inference, T = 2L" and summary["seeds"] == [0, 1]
    rows = list(csv.DictReader(open(tmp_path / "transfer_grid.csv")))
    settings = [(16, 4), (32, 4), (64, 4), (16, 8), (64, 8)]
    assert [(s["width"], s["depth"]) for s in summary["settings"]] == settings
    assert len(rows) == len(settings) * 9 * 2
    argmin = {(w, d): _brute_force_argmin(rows, f"width {w}, depth {d}") for w, d in settings}
    for s in summary["settings"]:
        w, d = s["width"], s["depth"]
        lr, alr, _ = argmin[w, d]
        assert s["argmin"] == {"lr": lr, "activity_lr": alr}
        assert s["grid_steps_from_narrowest"] == _steps(argmin[w, d], argmin[16, d])
        assert s["grid_steps_from_first"] == _steps(argmin[w, d], argmin[16, 4])
    assert summary["grid_steps_moved_with_width"] == {
        str(d): max(_steps(argmin[w, d], argmin[16, d]) for w, dd in settings if dd == d) for d in (4, 8)}
    assert summary["transfers"] == (summary["grid_steps_moved"] <= 1)
    # the best point of the widest net learned digits (chance = 10%)
    assert max(float(r["test_accuracy"] or 0) for r in rows if r["setting"] == "width 64, depth 8") > 0.8


def test_mupc_depth_paper_protocol_quick(tmp_path, capsys):
    """The authors' protocol: GD with T = L − 1, activity step 0.5/64, float64, no biases, batch
    64, Adam lr 0.1; BP with Depth-μP at lr 0.01; both learn digits."""
    assert main(["reproduce", "mupc-depth", "--protocol", "paper", "--quick", "--out", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["protocol"] == "paper"
    rows = list(csv.DictReader(open(tmp_path / "accuracy_vs_depth.csv")))
    acc = {(r["variant"], int(r["depth"])): float(r["test_accuracy"]) for r in rows}
    assert set(acc) == {(v, d) for v in ("μPC (paper: GD, T = L−1)", "BP (Depth-μP, paper)") for d in (4, 8)}
    assert min(acc.values()) > 0.85  # measured 90.70-94.65%
    for depth in (4, 8):
        cfg = json.loads((tmp_path / "runs" / f"digits_mupc-paper_depth{depth}" / "config.json").read_text())
        assert (cfg["infer_steps"], cfg["activity_lr"], cfg["x64"], cfg["bias"], cfg["batch_size"], cfg["lr"]) == (
            depth - 1, 0.5 / 64, True, False, 64, 0.1)
        bp = json.loads((tmp_path / "runs" / f"digits_bp-paper_depth{depth}" / "config.json").read_text())
        assert (bp["algo"], bp["lr"], bp["x64"], bp["solver"]) == ("bp", 0.01, True, None)
    assert "min)" in (tmp_path / "accuracy_vs_depth.md").read_text()  # wall time beside each accuracy


def test_reproduce_unknown_protocol_is_one_line(tmp_path, capsys):
    assert main(["reproduce", "mupc-depth", "--protocol", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'nope'" in err and "default, paper, paper-width128" in err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
