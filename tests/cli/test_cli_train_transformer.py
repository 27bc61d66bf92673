"""``pclab train --model transformer``: a character/token-level transformer PCN learns the
synthetic bracket grammar (loss falls towards the grammar's optimum, bits per character in
the report); text data sets and token models go together or are refused in one line."""

import json
import math

import pytest

from pclab.cli import main
from pclab.data import load_text_dataset

ARGS = ["train", "--model", "transformer", "--dataset", "dyck", "--blocks", "2", "--d-model", "16", "--heads", "2",
        "--context", "16", "--n-train", "1024", "--batch-size", "32", "--epochs", "2", "--evals-per-epoch", "2",
        "--loss", "ce", "--lr", "1e-2", "--infer-steps", "4", "--activity-lr", "0.05", "--quiet"]


@pytest.mark.parametrize("algo", ["pc", "bp"])
def test_transformer_learns_the_bracket_grammar(algo, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*ARGS, "--algo", algo, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    optimum = load_text_dataset("dyck", 16).optimal_loss  # nats per target of a perfect model
    uniform = math.log(5)  # nats per target of a uniform guess over the 5 tokens
    per_token = [r["test_loss"] / 16 for r in rows]
    assert per_token[-1] < per_token[0] and per_token[-1] < 0.9 * uniform, per_token
    assert per_token[-1] > optimum - 1e-3  # nothing beats the grammar's entropy (held-out sequences)
    assert summary["test_bpc"] == pytest.approx(per_token[-1] / math.log(2), rel=1e-6)
    assert (out / "bpc.png").exists() and "test_bpc" in (out / "report.html").read_text()


@pytest.mark.parametrize("argv,needle", [
    (["--model", "transformer", "--dataset", "digits"], "model='transformer' needs a text data set"),
    (["--model", "mlp", "--dataset", "dyck"], "dataset='dyck' needs --model transformer"),
    (["--model", "transformer", "--dataset", "dyck", "--d-model", "30", "--heads", "4"], "multiple of heads=4"),
    (["--model", "transformer", "--dataset", "dyck", "--context", "100000"], "context=100000 is not valid"),
])
def test_tokens_and_models_must_match(argv, needle, tmp_path, capsys):
    assert main(["train", *argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and not (tmp_path / "r").exists()
