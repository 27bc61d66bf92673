"""Time to accuracy (``pclab bench --to-accuracy``): stops at the first evaluation at the target,
trains exactly what ``pclab train`` trains, and reports training time without evaluations."""

import json

from pclab.cli import main
from pclab.experiments.config import TrainConfig
from pclab.experiments.runner import train
from pclab.experiments.time_to_accuracy import time_to_accuracy

BASE = TrainConfig(dataset="digits", depth=4, width=32, batch_size=64, epochs=2, evals_per_epoch=1)


def test_stops_at_the_first_evaluation_that_reaches_the_target(tmp_path):
    full = time_to_accuracy(BASE, 1.0, every=5, progress=False)  # 100% on digits' test split is not reached
    n_batches = 1437 // 64  # digits: 1437 training images
    assert not full.reached and full.steps is None and full.total_steps == 2 * n_batches
    steps = [e["step"] for e in full.evals]
    assert steps == sorted({*range(5, 2 * n_batches + 1, 5), n_batches, 2 * n_batches})  # every 5 and each epoch end
    times = [e["train_seconds"] for e in full.evals]
    assert times == sorted(times) and times[-1] <= full.total_train_seconds + 1e-6
    # the accuracy at the end of epoch 1 is the one `pclab train` reports for one epoch
    one = train(BASE.replace(epochs=1), tmp_path / "one", progress=False)
    assert next(e for e in full.evals if e["step"] == n_batches)["test_accuracy"] == one["test_accuracy"]
    # a target between the first and best accuracy stops at the first evaluation that meets it
    accs = [e["test_accuracy"] for e in full.evals]
    target = (accs[0] + max(accs)) / 2
    first = next(k for k, a in enumerate(accs) if a >= target)
    hit = time_to_accuracy(BASE, target, every=5, progress=False)
    assert hit.reached and hit.steps == steps[first] == hit.total_steps
    assert [e["test_accuracy"] for e in hit.evals] == accs[: first + 1]


def test_cli_to_accuracy_json_and_bad_input(capsys):
    args = ["bench", "--to-accuracy", "0.5", "--dataset", "digits", "--depth", "4", "--width", "32", "--batch", "64",
            "--infer-steps", "4", "--eval-every", "10", "--quiet", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reached"] and (out["steps"] % 10 == 0 or out["steps"] % 22 == 0)  # an eval step
    assert (out["config"]["depth"], out["config"]["batch_size"], out["config"]["infer_steps"]) == (4, 64, 4)
    for bad, needle in ((["--to-accuracy", "97", "--dataset", "digits"], "target=97.0"),
                        (["--to-accuracy", "0.9", "--eval-every", "0", "--dataset", "digits"], "every=0"),
                        (["--algo", "epc"], "--algo applies only with --to-accuracy"),
                        (["--algo-opt", "beta=0.1"], "--algo-opt applies only with --to-accuracy")):
        assert main(["bench", *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and needle in err


def test_bench_sizes_default_to_the_128_layer_net():
    """Without flags, --to-accuracy trains the 128-layer, width-128 μPC ResNet (bench's workload)."""
    from pclab.cli import bench_train_config, build_parser

    config = bench_train_config(build_parser().parse_args(["bench", "--to-accuracy", "0.97"]))
    assert (config.depth, config.width, config.batch_size, config.dataset.value, config.param) == (
        128, 128, 128, "mnist", "mupc")
    # a preset sets what it names, flags override it
    config = bench_train_config(build_parser().parse_args(
        ["bench", "--to-accuracy", "0.97", "--preset", "mupc-paper", "--depth", "16", "--batch", "32"]))
    assert (config.depth, config.width, config.batch_size, config.x64) == (16, 512, 32, True)
