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


def test_interrupted_conv_run_resumes_to_identical_metrics(tmp_path):
    """Stop a conv run right after its first evaluation (as a kill would: the last checkpoint
    is older than the evaluation), resume it, and compare with an uninterrupted run."""
    import pytest

    from pclab.experiments.config import TrainConfig
    from pclab.experiments.runner import train

    config = TrainConfig(model="conv", dataset="digits", epochs=1, channels=4, blocks=1, infer_steps=3,
                         activity_lr=0.2, lr=0.03, batch_size=64, evals_per_epoch=2, checkpoint_every=4)

    class Killed(Exception):
        pass

    def kill(row):
        raise Killed

    with pytest.raises(Killed):
        train(config, tmp_path / "a", progress=False, on_eval=kill)
    assert json.loads((tmp_path / "a" / "checkpoint.json").read_text())["step"] == 8  # 22 batches: eval at 11
    resumed = train(config, tmp_path / "a", resume=True, progress=False)
    whole = train(config, tmp_path / "b", progress=False)
    rows = [[json.loads(line) for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in "ab"]
    drop = lambda r: {k: v for k, v in r.items() if k != "wall_time"}  # noqa: E731
    assert [drop(r) for r in rows[0]] == [drop(r) for r in rows[1]] and len(rows[0]) == 2
    assert resumed["test_accuracy"] == whole["test_accuracy"] and resumed["steps"] == whole["steps"] == 22
