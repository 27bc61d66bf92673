"""``pclab reproduce dln-landscape|approx-rates --quick``: files written and the numbers right."""

import csv
import json
import math

from pclab.cli import main


def test_dln_landscape_quick(tmp_path, capsys):
    assert main(["reproduce", "dln-landscape", "--quick", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    h2, h3 = summary["H=2"], summary["H=3"]
    assert h2["kinds"] == {"strict_saddle": 7, "global_minimum": 1}       # H = 2: every other point strict
    assert h2["global_minima"] == ["{0,1,2}"] and h2["non_strict"] == []
    assert h3["global_minima"] == ["{0,1,2}"] and h3["non_strict"] == ["{0,1}", "{0}", "{}"]
    assert h3["kinds"] == {"non_strict_saddle": 3, "strict_saddle": 4, "global_minimum": 1}
    for h in (h2, h3):
        assert h["predicted_agree"] and h["max_value_error"] < 1e-10 and h["max_rel_grad"] < 1e-10
    for H in (2, 3):                                           # saddle to saddle along the initial segments
        gd = summary[f"GD H={H} seed=0"]
        assert gd["plateaus"] == ["{}", "{0}", "{0,1}", "{0,1,2}"]
        assert abs(gd["final_loss"] - gd["min_value"]) < 1e-6
    rows = list(csv.DictReader(open(tmp_path / "dln_critical_points.csv")))
    assert len(rows) == 8 + 8 + 6                              # H = 3 adds 6 rank-inflated initial segments
    inflated = [r for r in rows if r["construction"].startswith("extra rank")]
    assert {r["kind"] for r in inflated} == {"strict_saddle"}
    spectra = list(csv.DictReader(open(tmp_path / "dln_hessian_spectra.csv")))
    assert len(spectra) == 8 * 21 + 14 * 30                    # P = 21 (H = 2) and 30 (H = 3) per point
    plateaus = list(csv.DictReader(open(tmp_path / "dln_plateaus.csv")))
    assert all(abs(float(p["mean_loss"]) - float(p["value"])) <= 0.01 * float(p["value"]) for p in plateaus)
    assert (tmp_path / "dln_landscape.png").stat().st_size > 20_000


def test_approx_rates_quick(tmp_path, capsys):
    assert main(["reproduce", "approx-rates", "--quick", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "approx_rates.csv")))
    assert len(rows) == 3 * 4 * 3                              # targets x widths x p
    slopes = {(r["target"], float(r["p"])): r for r in csv.DictReader(open(tmp_path / "approx_rates_slopes.csv"))}
    for target in ("holder d=1", "holder d=2"):
        for p in (1.0, 2.0, math.inf):
            s = slopes[target, p]
            assert float(s["fitted_slope"]) < -0.1                 # errors fall with size (measured -0.2 .. -0.25)
            assert float(s["error_largest"]) < 0.7 * float(s["error_smallest"])
        assert float(slopes[target, 2.0]["predicted_slope"]) == -0.5 / int(target[-1])
    mono_sup, mono_l1 = slopes["monotone d=1", math.inf], slopes["monotone d=1", 1.0]
    assert float(mono_sup["predicted_slope"]) == 0.0 and abs(float(mono_sup["fitted_slope"])) < 0.1
    assert min(float(r["error"]) for r in rows if r["target"] == "monotone d=1" and float(r["p"]) == math.inf) > 0.2
    assert max(float(mono_l1["error_smallest"]), float(mono_l1["error_largest"])) < 0.05   # L^1 small, sup is not
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["slopes"]["holder d=1 p=2"]["fitted"] == float(slopes["holder d=1", 2.0]["fitted_slope"])
    assert (tmp_path / "approx_rates.png").stat().st_size > 20_000
