"""``pclab reproduce variants``: the table of every learning rule, on a tiny setting."""

import csv

import pytest

from pclab.cli import main
from pclab.experiments.variants import Network, VariantsStudy, run_variants

TINY = VariantsStudy(
    ("digits", "fashion-mnist"),
    (Network("MLP newton", dict(model="mlp", depth=3, width=16, param="sp", lr=1e-2, solver="newton")),),
    dict(act="tanh", epochs=2, batch_size=64, infer_steps=2, n_train=320),
)


def test_variants_table_runs_skips_and_resumes(tmp_path, monkeypatch):
    """Every asked rule gets a row: trained ones have an accuracy above chance, a step time,
    their inference steps and one cosine per layer (BP's = 1); iPC, which cannot interleave
    with Newton, and a data set that is not installed are skipped with the reason, not a
    crash. A rerun reuses the finished runs."""
    monkeypatch.setenv("PCLAB_FASHION_MNIST_DIR", str(tmp_path / "no-fashion"))
    rows = run_variants(tmp_path, TINY, rules=["pc", "bp", "ipc"])
    by = {(r["dataset"], r["rule"]): r for r in rows}
    assert len(rows) == 6
    for rule, steps in (("pc", 2), ("bp", 0)):
        r = by["digits", rule]
        assert r["status"] == "ok" and r["test_accuracy"] > 0.3, r
        assert r["step_ms"] > 0 and r["infer_steps"] == steps and r["layers"] == 3
        assert len(r["cosine_by_layer"]) == 3 and -1 <= r["cos_min"] <= r["cos_mean"] <= 1
    assert by["digits", "bp"]["cos_min"] == pytest.approx(1.0, abs=1e-5)
    for rule in ("pc", "bp"):  # the best of the per-epoch evaluations includes the final one
        assert by["digits", rule]["best_test_accuracy"] >= by["digits", rule]["test_accuracy"]
    assert (tmp_path / "variants_cosine_by_layer.png").stat().st_size > 1000
    assert by["digits", "ipc"]["status"] == "skipped" and "Valid: solver='gd'" in by["digits", "ipc"]["note"]
    for rule in ("pc", "bp"):
        assert by["fashion-mnist", rule]["status"] == "skipped"
        assert "not installed" in by["fashion-mnist", rule]["note"]
    table = (tmp_path / "variants.md").read_text()
    assert table.count("\n") == 2 + 6 and "| digits | MLP newton | pc |" in table
    csv_rows = list(csv.DictReader(open(tmp_path / "variants.csv")))
    assert [r["rule"] for r in csv_rows] == ["pc", "bp", "ipc"] * 2
    assert len(list(csv.DictReader(open(tmp_path / "variants_cosine_by_layer.csv")))) == 2 * 3
    stamp = (tmp_path / "runs" / "digits_mlp-newton_pc.json").stat().st_mtime_ns
    again = run_variants(tmp_path, TINY, rules=["pc", "bp", "ipc"])
    assert (tmp_path / "runs" / "digits_mlp-newton_pc.json").stat().st_mtime_ns == stamp
    assert [r.get("test_accuracy") for r in again] == [r.get("test_accuracy") for r in rows]


def test_variants_is_listed_and_covers_every_rule(capsys):
    from pclab.experiments.variants import QUICK, study_points
    from pclab.learning import LEARNING_RULES

    assert main(["reproduce", "--list"]) == 0
    assert "variants" in capsys.readouterr().out
    points = study_points(QUICK)
    assert {p["rule"] for p in points} == set(LEARNING_RULES.names())
    mine = ("pc", "bp", "ipc", "epc", "nudge-pn", "nudge-nn", "nudge-cn")
    assert all(p["config"] is not None for p in points if p["rule"] in mine)


def test_variants_protocols_are_listed_and_build(capsys):
    """``--protocol pcx``: every rule on pcx's MLP settings for both data sets (valid configs,
    AdamW with decay and the warm-up + cosine schedule); ``--protocol deep``: PC, ePC and BP
    with GD and PC alone with Newton on the 128-layer μPC ResNet (``Network.only``)."""
    from pclab.experiments.variants import DEEP, PCX, study_points
    from pclab.learning import LEARNING_RULES

    assert main(["reproduce", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "--protocol pcx" in listing and "--protocol deep" in listing
    pcx = study_points(PCX)
    assert len(pcx) == 2 * len(LEARNING_RULES.names())
    assert all(p["config"] is not None for p in pcx if p["rule"] in ("pc", "bp", "epc", "nudge-cn")), pcx
    c = next(p["config"] for p in pcx if p["rule"] == "pc")
    assert (c.optimizer.value, c.weight_decay, c.lr_schedule.value, c.act.value, c.bias, c.epochs) == \
        ("adamw", 1e-3, "warmup-cosine", "gelu", True, 25)
    deep = [(p["network"].split(", ")[-1], p["rule"], p["config"].depth) for p in study_points(DEEP)]
    assert deep == [("GD T=8", "pc", 128), ("GD T=8", "bp", 128), ("GD T=8", "epc", 128), ("Newton", "pc", 128)]


@pytest.mark.slow
def test_variants_quick(tmp_path, capsys):
    """The real ``--quick`` study (digits; every rule on an MLP and a depth-8 μPC ResNet)."""
    assert main(["reproduce", "variants", "--quick", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "variants.csv")))
    assert rows and all(r["status"] == "ok" for r in rows)
    assert max(float(r["test_accuracy"]) for r in rows) > 0.8
