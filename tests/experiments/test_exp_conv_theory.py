"""``pclab reproduce NAME --quick`` for orthogonal convolutions and linear conv-net flows: files
written, numbers that the theory predicts."""

import csv
import json

from pclab.cli import main


def _run(name, tmp_path):
    assert main(["reproduce", name, "--quick", "--out", str(tmp_path)]) == 0
    return json.loads((tmp_path / "summary.json").read_text())


def test_orthconv_existence_quick(tmp_path, capsys):
    s = _run("orthconv-existence", tmp_path)
    # the optimiser reaches L_orth < 1e-8 exactly where the circular-padding rule says a solution exists
    assert s["cells"] == 21 and s["agree"] == s["cells"] and s["disagreements"] == []
    assert abs(s["infeasible_min_loss"] - 1.0) < 1e-6  # (1, 10, 3, 4): one row too many
    assert s["boundaries"]["(2,3,3,1) valid"] > 0.3 and s["boundaries"]["(2,3,3,1) same"] < 1e-6
    rows = list(csv.DictReader(open(tmp_path / "orthconv_existence.csv")))
    assert len(rows) == 21 and {r["case"] for r in rows} == {"row", "column"}
    assert (tmp_path / "orthconv_existence.png").stat().st_size > 20_000


def test_orthconv_tradeoff_quick(tmp_path, capsys):
    s = _run("orthconv-tradeoff", tmp_path)
    r = s["results"]
    assert s["dataset"] == "digits" and list(r) == ["lam=0", "lam=0.01", "lam=0.1", "lam=1", "lam=10"]
    assert r["lam=0"]["test_accuracy"] > 0.95 and r["lam=10"]["test_accuracy"] > 0.85
    # more weight on L_orth: closer to orthogonal, a smaller Lipschitz bound, a better certificate
    fro = [v["frobenius_mean"] for v in r.values()]
    assert all(a > b for a, b in zip(fro, fro[1:])) and fro[-1] < 0.1 * fro[0]
    assert r["lam=10"]["spectral_max"] < 1.0 < r["lam=0"]["spectral_max"]
    assert r["lam=1"]["lipschitz"] < 0.2 * r["lam=0"]["lipschitz"]
    assert r["lam=1"]["certified_0.1"] > r["lam=0"]["certified_0.1"] + 0.3
    rows = list(csv.DictReader(open(tmp_path / "orthconv_tradeoff.csv")))
    assert len(rows) == 5 and all(float(x["spectral_bound_max"]) >= float(x["spectral_max"]) for x in rows)


def test_lcn_flow_quick(tmp_path, capsys):
    s = _run("lcn-flow", tmp_path)
    for name in ("1-D, strides (2, 2, 1)", "2-D, stride 1, 2x2 * 3x3"):
        assert s[name]["max_flow_gap"] < 1e-6 and s[name]["max_invariant_drift"] < 1e-6
        assert s[name]["loss_end"] < 0.5 * s[name]["loss_start"]
    drift = [s["invariant_drift_fixed_step"][f"dt={dt}"] for dt in (0.05, 0.025, 0.0125)]
    assert drift[0] > 8 * drift[1] and drift[1] > 8 * drift[2]  # RK4 drift ~ dt^4 (measured ratios ~17)
    cex = s["counterexample"]
    assert cex["v_equal"] < 1e-14 and cex["delta_equal"] < 1e-14 and cex["K_difference"] > 1.0
    assert cex["v_divergence_end"] > 0.1
    assert s["fibre 1-D, stride 1"]["max_K_rel_difference"] > 1e-3
    assert s["fibre 1-D, stride 2"]["max_K_rel_difference"] < 1e-8
    assert s["fibre 2-D, stride 1, 2x2 * 2x3"]["max_K_rel_difference"] < 1e-8
    assert s["fibre 2-D, stride 1, 2x2 * 2x2"]["max_K_rel_difference"] > 1e-3  # swappable equal-shape factors
    assert (tmp_path / "lcn_flow.png").stat().st_size > 20_000
    assert {r["setting"] for r in csv.DictReader(open(tmp_path / "lcn_fibres.csv"))} >= {"1-D, stride 1"}
