"""``pclab reproduce icl-implicit-updates --quick``: files written, identity exact, ICL learned."""

import csv
import json

import pytest

from pclab.cli import main


@pytest.mark.slow  # 31 s on 2 cores
def test_icl_implicit_updates_quick(tmp_path, capsys):
    assert main(["reproduce", "icl-implicit-updates", "--quick", "--out", str(tmp_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    s = json.loads((tmp_path / "summary.json").read_text())
    assert printed["max_identity_error"] == s["max_identity_error"]
    # the identity, over positions, blocks, LN on/off, trained and at init, and chained over the stack
    assert set(s["identity_error"]) == {f"{m}, {w}" for m in ("pre-LN", "no LN") for w in ("trained", "init")}
    assert s["max_identity_error"] < 1e-10
    assert all(v["chained_stack"] < 1e-10 for v in s["identity_error"].values())
    base = s["baselines_mse"]
    assert base["least squares"] < base["one-step GD"] < base["constant"]
    for model in ("pre-LN", "no LN"):
        r = s[model]
        # learned in context: far below the best constant, most of the way to least squares
        assert r["icl_mse"] < 0.2 * base["constant"] and r["icl_mse"] < base["one-step GD"]
        assert 0 < r["gap_to_least_squares"] < 0.2
        assert r["zero_shot_mse"] > 0.5 * base["constant"]            # the query alone knows nothing
    blocks = {(r["model"], int(r["block"])): r for r in csv.DictReader(open(tmp_path / "icl_by_block.csv"))}
    assert len(blocks) == 2 * 3
    # without LN block 0's summed update lives in the span of the read-in tokens: rank <= d_x + 1 = 4
    assert float(blocks["no LN", 0]["numerical_rank"]) <= 4
    # with LN the column factors W_1(n_i - n_x) miss the direction W_1 1 (LN centring): rank <= d - 1
    assert all(float(blocks["pre-LN", k]["numerical_rank"]) <= 15 for k in range(3))
    rows = list(csv.DictReader(open(tmp_path / "icl_by_context.csv")))
    assert len(rows) == 2 * 16 and {int(r["context"]) for r in rows} == set(range(1, 17))
    err = [float(r["icl_mse"]) for r in rows if r["model"] == "pre-LN"]
    assert err[-1] < 0.5 * err[0]                                        # more context, smaller error
    for name in ("icl_alignment.png", "icl_rank.png"):
        assert (tmp_path / name).stat().st_size > 20_000
