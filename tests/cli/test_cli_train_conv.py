"""``pclab train --model conv``: digits kept as 8×8×1 images train a conv PCN; a data set
without an image shape is refused in one line, leaving no run folder behind."""

import json

from pclab.cli import main


def test_conv_pcn_learns_digits_as_images(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "conv", "--dataset", "digits", "--epochs", "3", "--channels", "4", "--blocks", "1",
            "--infer-steps", "4", "--activity-lr", "0.2", "--lr", "0.03", "--batch-size", "32", "--evals-per-epoch", "1",
            "--quiet",
            "--out", str(out)]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < 0.8 * rows[0]["train_loss"]  # the loss falls
    assert summary["test_accuracy"] > 0.5  # measured 70.4% (chance 10%)
    assert len(rows[-1]["layer_energies"]) == 5  # 4 activities (stem, block, down, block) + the output term


def test_conv_needs_images(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "conv", "--dataset", "synthetic", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a data set of images" in err[0]
    assert not out.exists()
