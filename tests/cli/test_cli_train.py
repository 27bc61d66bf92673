"""``pclab train``: run folder contents, bad input (one line, exit 2), divergence, resume."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pclab.cli import main

SMALL = ["--dataset", "digits", "--depth", "4", "--width", "32", "--batch-size", "64", "--epochs", "1", "--quiet"]


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_train_writes_a_complete_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = _run(["train", *SMALL, "--epochs", "2", "--lr", "0.01", "--out", str(out)], capsys)
    assert code == 0 and "test accuracy" in stdout
    for name in ("config.json", "metrics.jsonl", "summary.json", "report.html", "loss.png", "accuracy.png",
                 "energy_layers.png", "inference.png", "checkpoint.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and summary["diverged"] is False
    assert summary["steps"] == 2 * (1442 // 64) and summary["epochs"] == 2
    assert summary["test_accuracy"] > 0.5  # digits is easy: well above 10% chance after 2 epochs
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4  # 2 evaluations per epoch
    assert summary["best_test_accuracy"] == max(r["test_accuracy"] for r in rows)
    for key in ("step", "epoch", "train_loss", "energy", "test_loss", "test_accuracy", "infer_steps", "wall_time"):
        assert key in rows[0]
    assert len(rows[-1]["layer_energies"]) == 4 and len(rows[-1]["infer_trace"]) == 8
    config = json.loads((out / "config.json").read_text())
    assert config["depth"] == 4 and config["param"] == "mupc" and config["lr"] == 0.01
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "test_accuracy" in html


def test_config_file_is_overridden_by_flags(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('dataset = "digits"\ndepth = 3\nwidth = 16\nepochs = 1\nbatch_size = 64\nalgo = "bp"\n')
    out = tmp_path / "run"
    code, _, err = _run(["train", "--config", str(cfg), "--width", "24", "--quiet", "--out", str(out)], capsys)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert (config["depth"], config["width"], config["algo"]) == (3, 24, "bp")


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["train", "--param", "xyz"], "invalid choice: 'xyz'"),
        (["train", "--depth", "0", "--dataset", "digits"], "depth=0 is not valid"),
        (["train", "--algo", "bp", "--solver", "ode", "--dataset", "digits"], "cannot be combined with algo='bp'"),
        (["train", "--solver", "exact", "--dataset", "digits"], "solver='exact' needs act='linear'"),
        (["train", "--dataset", "cifar10"], "needs cifar_path"),
        (["train", "--dataset", "cifar10", "--cifar-path", "/nonexistent/cifar"], "cifar"),
        (["train", "--config", "/nonexistent.toml"], "does not exist"),
        (["train", "--lr", "-1", "--dataset", "digits"], "lr=-1.0 is not valid"),
        (["train", "--weight-decay", "0.1", "--dataset", "digits"], "weight_decay=0.1 needs optimizer='adamw'"),
        (["train", "--lr-schedule", "linear", "--dataset", "digits"], "invalid choice: 'linear'"),
        (["train", "--algo-opt", "beta=0.1", "--dataset", "digits"], "'beta' not an option of PC"),
        (["train", "--algo-opt", "beta", "--dataset", "digits"], "--algo-opt 'beta' is not valid; expected NAME=VALUE"),
        (["train", "--mode", "generative", "--model", "conv", "--dataset", "digits"], "needs a dense model"),
        (["reproduce", "no-such-figure"], "unknown reproduction 'no-such-figure'; available:"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, needle, capsys, tmp_path):
    argv = [*argv, "--out", str(tmp_path / "r")] if argv[0] == "train" else argv
    code, _, err = _run(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "r" / "config.json").exists()


def test_unwritable_out_and_non_run_resume(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _run(["train", *SMALL, "--out", str(blocker / "sub")], capsys)
    assert code == 2 and "is not writable" in err
    code, _, err = _run(["train", "--resume", str(tmp_path)], capsys)
    assert code == 2 and "is not a pclab run folder" in err


def test_existing_run_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(["train", *SMALL, "--algo", "bp", "--out", str(out)], capsys)[0] == 0
    before = (out / "summary.json").read_text()
    code, _, err = _run(["train", *SMALL, "--out", str(out)], capsys)
    assert code == 2 and "already holds a run" in err
    assert (out / "summary.json").read_text() == before


def test_diverging_run_stops_and_says_what_to_lower(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = _run(["train", *SMALL, "--activity-lr", "50", "--out", str(out)], capsys)
    assert code == 1 and "lower --activity-lr" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged"] is True and summary["diverged_step"] >= 1
    assert summary["steps"] < 1442 // 64


def test_run_whose_loss_explodes_finitely_stops(tmp_path, capsys):
    """Adam at lr 30 sends the loss to huge but finite values: that is divergence too."""
    out = tmp_path / "run"
    code, _, err = _run(["train", *SMALL, "--algo", "bp", "--lr", "30", "--out", str(out)], capsys)
    assert code == 1 and "loss grew over 1000x its first value: lower --lr" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged"] is True and summary["steps"] < 1442 // 64


def test_corrupt_checkpoint_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(["train", *SMALL, "--algo", "bp", "--out", str(out)], capsys)[0] == 0
    ckpt = next(out.glob("checkpoint-*.eqx"))
    ckpt.write_bytes(ckpt.read_bytes()[:-10])
    code, _, err = _run(["train", "--resume", str(out)], capsys)
    assert code == 2 and "corrupt" in err


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    """Kill a run with SIGKILL mid-epoch, resume it, and compare with an uninterrupted run. The
    learning-rate schedule's step count is optimiser state: a resume that restarted it would
    change every later metric."""
    args = ["--dataset", "digits", "--depth", "4", "--width", "32", "--batch-size", "32", "--epochs", "3",
            "--checkpoint-every", "5", "--evals-per-epoch", "3", "--lr", "0.01", "--lr-schedule", "warmup-cosine",
            "--quiet"]
    cmd = [sys.executable, "-m", "pclab.cli", "train", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    full, cut = tmp_path / "full", tmp_path / "cut"
    subprocess.run([*cmd, "--out", str(full)], check=True, env=env, capture_output=True, timeout=300)

    proc = subprocess.Popen([*cmd, "--out", str(cut)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:  # wait for a checkpoint in the middle of epoch 2
        meta = cut / "checkpoint.json"
        if meta.exists():
            m = json.loads(meta.read_text())
            if m["epoch"] >= 1 and m["batch"] > 0:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "summary.json").exists(), "the run finished before it could be killed"
    res = subprocess.run([*cmd[:3], "train", "--resume", str(cut), "--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    a = json.loads((full / "summary.json").read_text())
    b = json.loads((cut / "summary.json").read_text())
    assert a["steps"] == b["steps"]
    assert a["test_accuracy"] == b["test_accuracy"]
    assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-6)
    rows_a = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(x) for x in (cut / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows_a] == [r["step"] for r in rows_b]
    assert [r["test_accuracy"] for r in rows_a] == [r["test_accuracy"] for r in rows_b]


def _preset(*argv):
    """The TrainConfig that ``pclab train ARGV`` (e.g. ``--preset NAME``) resolves to."""
    from pclab.cli import _Parser, _add_train_flags, resolve_config

    p = _Parser()
    _add_train_flags(p)
    p.add_argument("--preset")
    p.add_argument("--config")
    return resolve_config(p.parse_args(list(argv)))


def test_mupc_paper_preset_is_the_authors_protocol_in_float64():
    import jax
    import jax.numpy as jnp

    from pclab.experiments.runner import float_scope, prepare

    c = _preset("--preset", "mupc-paper")
    assert (c.width, c.batch_size, c.lr, c.optimizer.value, c.solver, c.infer_steps, c.bias, c.epochs, c.x64) == \
        (512, 64, 0.1, "adam", "gd", 8, False, 1, True)
    assert c.activity_lr * c.batch_size == 0.5  # the authors' step on a batch-mean energy
    bp = _preset("--preset", "mupc-128-long", "--algo", "bp")
    assert bp.solver is None and bp.epochs == 5 and bp.depth == 128  # BP drops the preset's solver
    small = c.replace(dataset="digits", width=8, depth=3)
    with float_scope(small):
        prep = prepare(small)
        leaves = jax.tree_util.tree_leaves(prep.model)
        assert leaves and all(a.dtype == jnp.float64 for a in leaves)
        assert prep.data.x_train.dtype == jnp.float64
    assert prepare(small.replace(x64=False)).data.x_train.dtype == jnp.float32


def test_generative_run_reconstructs_better_and_draws_samples(tmp_path, capsys):
    out = tmp_path / "gen"
    argv = ["train", "--mode", "generative", "--model", "mlp", "--depth", "3", "--width", "32", "--dataset", "digits",
            "--epochs", "3", "--act", "tanh", "--param", "sp", "--lr", "1e-3", "--activity-lr", "0.1",
            "--infer-steps", "10", "--batch-size", "64", "--evals-per-epoch", "1", "--quiet", "--out", str(out)]
    code, _, err = _run(argv, capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["recon_mse"] < rows[0]["recon_mse"]  # the reconstruction error falls
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recon_mse"] == rows[-1]["recon_mse"] and (out / "samples.png").stat().st_size > 0


def test_mupc_128_epc_preset_reaches_every_layer_in_one_step():
    """``--preset mupc-128-epc``: ePC, one GD step on the errors at η = 0.004 (≈ 0.5/L). At
    that step every one of the 128 layers gets a weight gradient aligned with BP's (per-layer
    cosine > 0.95; measured ≥ 0.997 here), on a narrow copy of the preset's net (width 16, digits)."""
    from pclab.experiments.runner import build_model, load_run_data, run_spec
    from pclab.theory import rule_bp_cosines

    c = _preset("--preset", "mupc-128-epc")
    assert (c.algo, c.solver, c.infer_steps, c.depth) == ("epc", "gd", 1, 128)
    assert c.activity_lr * c.depth == pytest.approx(0.5, rel=0.05)  # η ≈ 0.5/L
    small = c.replace(dataset="digits", width=16)
    data = load_run_data(small)
    model = build_model(small, *data.dims(small.mode))
    spec, inference = run_spec(small)
    x, y = data.pairs(small.mode)
    x, y = x[:32], y[:32]
    cos = [float(c) for c in rule_bp_cosines(small.rule, model, x, y, spec, inference)]
    assert len(cos) == 128 and min(cos) > 0.95, min(cos)
