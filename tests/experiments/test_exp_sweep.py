"""Sweeps: the vmapped lr grid equals separate runs; process sweeps resume, record divergence, budget."""

import csv
import json

import numpy as np
import pytest

from pclab.cli import main
from pclab.experiments.config import TrainConfig
from pclab.experiments.lr_grid import GridResult, mean_over_seeds, train_lr_grid, train_lr_grids
from pclab.experiments.runner import RunError, train
from pclab.experiments.sweep import BudgetExceeded, estimate_seconds, grid_points, run_lr_sweep, run_sweep

BASE = TrainConfig(dataset="digits", depth=4, width=16, epochs=2, batch_size=64, evals_per_epoch=1)


def test_vectorised_grid_matches_separate_runs(tmp_path):
    """Each grid point of the one-program grid ends where a separate run with that lr ends."""
    lrs, alrs = [3e-3, 3e-2], [0.1, 0.3]
    grid = train_lr_grid(BASE, lrs, alrs, progress=False)
    assert grid.test_accuracy.shape == (2, 2) and not grid.diverged.any()
    for i, lr in enumerate(lrs):
        for j, alr in enumerate(alrs):
            s = train(BASE.replace(lr=lr, activity_lr=alr), tmp_path / f"{i}{j}", progress=False)
            assert s["test_loss"] == pytest.approx(grid.test_loss[i, j], rel=1e-3)  # float32 rounding of vmapped matmuls
            assert s["test_accuracy"] == pytest.approx(grid.test_accuracy[i, j], abs=2 / 355)
    # different learning rates really give different results
    assert abs(grid.test_loss[0, 0] - grid.test_loss[1, 1]) > 0.05 * grid.test_loss[1, 1]


def test_grid_freezes_diverged_points():
    grid = train_lr_grid(BASE, [3e-2], [0.2, 50.0], progress=False)
    assert grid.diverged.tolist() == [[False, True]]
    assert grid.diverged_step[0, 1] >= 1 and grid.rows()[1]["diverged_step"] == grid.diverged_step[0, 1]
    assert grid.rows()[0]["diverged_step"] is None
    assert np.isfinite(grid.test_loss[0, 0]) and grid.test_loss[0, 1] == np.inf
    assert grid.best() == (0, 0)


def test_seed_axis_matches_separate_runs_and_averages(tmp_path):
    """Each seed of one vmapped program has that seed's init and batch order (it ends where a
    separate run with the seed ends); the sweep's heatmap uses the mean over seeds."""
    base = BASE.replace(epochs=1)
    grids = train_lr_grids(base, [3e-2], [0.2, 50.0], seeds=[0, 3], progress=False)
    for seed, grid in zip([0, 3], grids):
        s = train(base.replace(seed=seed, lr=3e-2, activity_lr=0.2), tmp_path / f"s{seed}", progress=False)
        assert s["test_loss"] == pytest.approx(grid.test_loss[0, 0], rel=1e-3)
        assert grid.diverged.tolist() == [[False, True]]
    assert abs(grids[0].test_loss[0, 0] - grids[1].test_loss[0, 0]) > 1e-3  # the seeds really differ
    mean = mean_over_seeds(grids)
    assert mean.test_loss[0, 0] == pytest.approx((grids[0].test_loss[0, 0] + grids[1].test_loss[0, 0]) / 2)
    assert mean.diverged.tolist() == [[False, True]] and mean.test_loss[0, 1] == np.inf
    assert mean.diverged_step[0, 1] == min(g.diverged_step[0, 1] for g in grids) and mean.diverged_step[0, 0] == -1
    rows = run_lr_sweep(base, {"lr": [3e-2], "seed": [0, 3]}, tmp_path / "sw", yes=True, progress=False)
    assert [r["name"] for r in rows] == ["lr=0.03_seed=0", "lr=0.03_seed=3"]
    assert rows[1]["test_loss"] == pytest.approx(grids[1].test_loss[0, 0], rel=1e-3)
    assert (tmp_path / "sw" / "lr_grid.png").is_file()
    with pytest.raises(ValueError, match="seeds=.*distinct integers"):
        train_lr_grids(base, [3e-2], seeds=[1, 1])


def test_grid_result_round_trips_through_rows_and_csv(tmp_path):
    """``GridResult.from_rows`` rebuilds the grid from its rows and from ``results.csv`` (strings)."""
    grid = train_lr_grid(BASE.replace(epochs=1), [3e-3, 3e-2], [0.2, 50.0], progress=False)
    rows = run_lr_sweep(BASE.replace(epochs=1), {"lr": [3e-3, 3e-2], "activity_lr": [0.2, 50.0]}, tmp_path,
                        yes=True, progress=False)
    from_csv = GridResult.from_rows(list(csv.DictReader(open(tmp_path / "results.csv"))))
    for back in (GridResult.from_rows(grid.rows()), GridResult.from_rows(rows), from_csv):
        assert back.lrs == grid.lrs and back.activity_lrs == grid.activity_lrs
        assert back.diverged.tolist() == grid.diverged.tolist() == [[False, True], [False, True]]
        np.testing.assert_allclose(back.test_loss, grid.test_loss, rtol=1e-3)  # separate compilations
        assert back.best() == grid.best()
    assert (from_csv.diverged_step[:, 1] >= 1).all() and (from_csv.diverged_step[:, 0] == -1).all()
    assert from_csv.steps == grid.steps > 0
    assert (tmp_path / "lr_grid.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="full lr × activity_lr grid"):
        GridResult.from_rows(grid.rows()[:3])


def test_grid_freezes_points_whose_loss_explodes():
    grid = train_lr_grid(BASE.replace(algo="bp", epochs=1), [3e-2, 30.0], progress=False)
    assert grid.diverged.tolist() == [[False], [True]] and grid.diverged_step[1, 0] >= 2


def test_process_sweep_records_divergence_and_resumes(tmp_path):
    points = grid_points(BASE.replace(epochs=1), {"activity_lr": [0.2, 50.0], "algo": ["pc"]})
    rows = run_sweep(points, tmp_path, jobs=2, yes=True, log=lambda *_: None)
    by_name = {r["name"]: r for r in rows}
    assert by_name["activity_lr=50.0_algo=pc"]["diverged"] is True
    assert by_name["activity_lr=0.2_algo=pc"]["diverged"] is False
    table = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert len(table) == 2 and {"name", "test_accuracy", "diverged", "depth"} <= set(table[0])
    # A rerun finds every point done and does not retrain (summaries unchanged).
    before = (tmp_path / "runs" / "activity_lr=0.2_algo=pc" / "summary.json").read_text()
    run_sweep(points, tmp_path, jobs=1, yes=True, log=lambda *_: None)
    assert (tmp_path / "runs" / "activity_lr=0.2_algo=pc" / "summary.json").read_text() == before
    # Reusing the folder with a changed base config is refused, naming the field, before any run.
    changed = [(name, c.replace(lr=0.5)) for name, c in points]
    with pytest.raises(RunError, match=r"different config \(lr: 0.03 -> 0.5\)"):
        run_sweep(changed, tmp_path, jobs=1, yes=True, log=lambda *_: None)
    assert (tmp_path / "runs" / "activity_lr=0.2_algo=pc" / "summary.json").read_text() == before


def test_budget_needs_yes(tmp_path):
    points = grid_points(BASE.replace(dataset="mnist", depth=128, width=128, epochs=50), {"seed": [0, 1]})
    assert estimate_seconds([c for _, c in points], gflops=30.0) > 3600
    # the cost model counts a Newton step as a forward pass and 3 passes per output (calibrated)
    newton, gd = (estimate_seconds([BASE.replace(infer_steps=1, **kw)], gflops=30.0) for kw in ({"solver": "newton"}, {}))
    assert newton / gd == pytest.approx((1 + 3 * 10 + 3) / (2 + 3))
    with pytest.raises(BudgetExceeded, match="pass --yes"):
        run_sweep(points, tmp_path, budget_s=60.0)
    assert not (tmp_path / "results.csv").exists()


def test_sweep_cli(tmp_path, capsys):
    out = tmp_path / "sw"
    code = main(["sweep", "--dataset", "digits", "--depth", "3", "--width", "16", "--epochs", "1", "--batch-size", "64",
                 "--set", "lr=0.003,0.03", "--quiet", "--out", str(out)])
    assert code == 0
    assert "2 runs, 0 diverged" in capsys.readouterr().out
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [float(r["lr"]) for r in rows] == [0.003, 0.03]
    assert json.loads((out / "runs" / "lr=0.003" / "summary.json").read_text())["steps"] == 1442 // 64
    code = main(["sweep", "--set", "nonsense=1,2", "--out", str(tmp_path / "x")])
    assert code == 2 and "not a config field" in capsys.readouterr().err


def test_vectorised_sweep_records_like_process_sweep(tmp_path):
    """The one-program grid names, checks and records its points as the process sweep does."""
    base = BASE.replace(epochs=1)
    grid = {"activity_lr": [0.2, 50.0]}
    vec = run_lr_sweep(base, grid, tmp_path / "vec", yes=True, progress=False)
    proc = run_sweep(grid_points(base, grid), tmp_path / "proc", jobs=1, yes=True, log=lambda *_: None)
    assert [r["name"] for r in vec] == [r["name"] for r in proc] == ["activity_lr=0.2", "activity_lr=50.0"]
    assert [list(r) for r in vec] == [list(r) for r in proc]  # same results.csv columns
    assert [r["diverged"] for r in vec] == [r["diverged"] for r in proc] == [False, True]
    assert vec[1]["diverged_step"] >= 1 and vec[0]["wall_seconds"] > 0
    assert vec[0]["test_loss"] == pytest.approx(proc[0]["test_loss"], rel=1e-3)
    # a rerun reuses the finished grid; a changed base config is refused before any training
    before = (tmp_path / "vec" / "runs" / "activity_lr=0.2" / "summary.json").read_text()
    run_lr_sweep(base, grid, tmp_path / "vec", yes=True, progress=False)
    assert (tmp_path / "vec" / "runs" / "activity_lr=0.2" / "summary.json").read_text() == before
    with pytest.raises(RunError, match=r"different config \(depth: 4 -> 5\)"):
        run_lr_sweep(base.replace(depth=5), grid, tmp_path / "vec", yes=True, progress=False)


def test_vectorised_sweep_checks_budget_and_axes(tmp_path):
    big = BASE.replace(dataset="mnist", depth=128, width=128, epochs=50)
    with pytest.raises(BudgetExceeded, match="pass --yes"):
        run_lr_sweep(big, {"lr": [0.01, 0.03]}, tmp_path, budget_s=60.0)
    assert not (tmp_path / "results.csv").exists()
    with pytest.raises(ValueError, match="activity-lr axis has no effect"):
        run_lr_sweep(BASE.replace(algo="bp"), {"activity_lr": [0.1, 0.2]}, tmp_path, yes=True)


def test_solver_without_step_size_gets_one_activity_lr_column(tmp_path):
    """Newton inference has no step size: a grid ignores activity lrs (one column, the config's),
    a vmapped sweep refuses an activity-lr axis by name, and its figure is a weight-lr curve."""
    newton = BASE.replace(solver="newton", infer_steps=1, epochs=1)
    assert not newton.uses_activity_lr and BASE.uses_activity_lr and not BASE.replace(algo="bp").uses_activity_lr
    grid = train_lr_grid(newton, [3e-2, 30.0], [0.1, 0.4], progress=False)
    assert grid.activity_lrs == (newton.activity_lr,) and grid.test_loss.shape == (2, 1)
    with pytest.raises(ValueError, match="solver='newton' takes no step size"):
        run_lr_sweep(newton, {"lr": [3e-2], "activity_lr": [0.1, 0.4]}, tmp_path, yes=True, progress=False)
    rows = run_lr_sweep(newton, {"lr": [3e-2, 30.0]}, tmp_path, yes=True, progress=False)
    assert [r["diverged"] for r in rows] == grid.diverged[:, 0].tolist() == [False, True]
    assert (tmp_path / "lr_grid.png").stat().st_size > 10_000


def test_weight_lr_curves_share_an_axis():
    """Curves of grids over different rates on one axis: the axis spans and labels every rate,
    diverged ones included, and each labelled curve is in the legend."""
    from pclab.report.figures import panels

    def grid(lrs, loss, dead):
        n = len(lrs)
        return GridResult(tuple(lrs), (0.2,), np.full((n, 1), 0.9), np.array(loss, float)[:, None], np.ones((n, 1)),
                          np.array(dead)[:, None], 10, np.where(np.array(dead), 3, -1)[:, None])

    _, (ax,) = panels(1)
    grid([0.01, 0.1, 1.0], [0.2, 0.1, np.inf], [False, False, True]).panel(ax, label="depth 8")
    grid([0.001, 0.01], [0.3, 0.25], [False, False]).panel(ax, label="depth 128")
    assert [float(t) for t in ax.get_xticks()] == [0.001, 0.01, 0.1, 1.0]
    lo, hi = ax.get_xlim()
    assert lo < 0.001 and hi > 1.0
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["depth 8", "depth 128"]


@pytest.mark.parametrize("flags", [
    ["--model", "conv", "--dataset", "digits", "--channels", "4", "--blocks", "1", "--stages", "1"],
    pytest.param(["--model", "transformer", "--dataset", "dyck", "--blocks", "1", "--d-model", "16", "--heads", "2",
                  "--context", "16", "--loss", "ce", "--n-train", "512"], marks=pytest.mark.slow),  # 27 s: compiles
], ids=["conv", "transformer"])
def test_cli_sweep_over_conv_and_transformer_matches_a_single_run(tmp_path, capsys, flags):
    """`pclab sweep` over a conv or transformer PCN (one vmapped program) ends each point where
    `pclab train` with that lr ends, and the two lrs really differ."""
    flags = [*flags, "--epochs", "1", "--infer-steps", "4", "--quiet"]
    assert main(["sweep", *flags, "--set", "lr=0.003,0.03", "--out", str(tmp_path / "sw")]) == 0
    rows = {float(r["lr"]): r for r in csv.DictReader(open(tmp_path / "sw" / "results.csv"))}
    assert set(rows) == {0.003, 0.03} and {r["model"] for r in rows.values()} == {flags[1]}
    assert main(["train", *flags, "--lr", "0.03", "--out", str(tmp_path / "one")]) == 0
    single = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert float(rows[0.03]["test_loss"]) == pytest.approx(single["test_loss"], rel=1e-3)
    assert abs(float(rows[0.03]["test_loss"]) - float(rows[0.003]["test_loss"])) > 1e-3 * single["test_loss"]
    if "test_bpc" in single:  # text: the CSV carries bits per character like the run's summary
        assert float(rows[0.03]["test_bpc"]) == pytest.approx(single["test_bpc"], rel=1e-3)


def test_results_row_of_a_text_run_has_bits_per_character():
    """test_bpc = test_loss / context / ln 2 (the loss is summed over the window's positions)."""
    import math

    from pclab.experiments.config import TrainConfig
    from pclab.experiments.sweep import _row

    text = TrainConfig(dataset="dyck", model="transformer", loss="ce", context=16)
    row = _row("a", text, {"test_loss": 16 * math.log(2) * 1.5, "best_test_accuracy": 0.4})
    assert row["test_bpc"] == pytest.approx(1.5, rel=1e-12) and row["best_test_accuracy"] == 0.4
    assert _row("b", text, {"error": "x"})["test_bpc"] is None
    assert "test_bpc" not in _row("c", TrainConfig(dataset="digits"), {"test_loss": 1.0})


def test_oversubscribed_process_sweep_is_named():
    """J processes of D XLA CPU devices need J·D cores; more than the machine has is a warning
    naming the counts and a --jobs that fits, and a fitting sweep gets none."""
    from pclab.experiments.sweep import oversubscription

    assert oversubscription(1, 2, 2) == "" and oversubscription(2, 1, 2) == ""
    msg = oversubscription(2, 2, 2)
    assert "--jobs 2 x devices 2 = 4 XLA devices on 2 cores" in msg and "--jobs 1" in msg
    assert "--jobs 4" in oversubscription(8, 2, 8)
