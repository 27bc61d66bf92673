"""``pclab``: the command-line interface. Thin: every command calls the library.

Errors in what the user typed (flags, files, data) print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import enum
import json
import pickle
import sys
import time
import types
import typing
from dataclasses import fields
from pathlib import Path

from .options import choices


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise UsageError(f"{self.prog}: {message}")


class UsageError(Exception):
    pass


def _field_types() -> dict[str, type]:
    """TrainConfig field name → its type, with ``X | None`` reduced to ``X``."""
    from .experiments.config import TrainConfig

    out = {}
    for name, t in typing.get_type_hints(TrainConfig).items():
        if isinstance(t, types.UnionType) or typing.get_origin(t) is typing.Union:
            t = next(a for a in typing.get_args(t) if a is not type(None))
        out[name] = t
    return out


def _add_train_flags(p: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    from .experiments.config import REGISTRIES, TrainConfig

    types_ = _field_types()
    for f in fields(TrainConfig):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        t = types_[f.name]
        if f.name == "algo_options":
            p.add_argument("--algo-opt", dest="algo_options", action="append", metavar="NAME=VALUE",
                           help="a hyperparameter of the learning rule (repeatable), e.g. beta=0.1")
        elif f.name in REGISTRIES:
            p.add_argument(flag, choices=REGISTRIES[f.name].names(), default=None, help=f"default: {_default(f)}")
        elif isinstance(t, type) and issubclass(t, enum.Enum):
            p.add_argument(flag, choices=choices(t), default=None, help=f"default: {_default(f)}")
        elif t is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=f"default: {_default(f)}")
        else:
            p.add_argument(flag, type=t, default=None, metavar=f.name.upper(), help=f"default: {_default(f)}")


def _default(f):
    return f.default.value if isinstance(f.default, enum.Enum) else f.default


def resolve_config(args: argparse.Namespace, base: dict | None = None):
    """defaults < ``base`` < --preset < --config FILE < flags."""
    from .experiments.config import TrainConfig, read_preset, read_toml

    values: dict = dict(base or {})
    if getattr(args, "preset", None):
        values.update(read_preset(args.preset))
    if getattr(args, "config", None):
        values.update(read_toml(args.config))
    if getattr(args, "algo", None) and getattr(args, "solver", None) is None:
        from .learning import get_rule

        if not get_rule(args.algo).runs_inference:  # e.g. --algo bp over a PC preset: no solver
            values.pop("solver", None)
    for f in fields(TrainConfig):
        v = getattr(args, f.name, None)
        if f.name == "algo_options" and v is not None:
            v = {**(values.get("algo_options") or {}), **parse_algo_options(v)}
        if v is not None:
            values[f.name] = v
    return TrainConfig.from_dict(values)


def parse_algo_options(items: list[str]) -> dict:
    """``["beta=0.1", "steps=4"]`` → ``{"beta": 0.1, "steps": 4}`` (numbers, true/false, or text)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"--algo-opt {item!r} is not valid; expected NAME=VALUE")
        try:
            out[key.strip().replace("-", "_")] = json.loads(value.strip().lower() if value.strip().lower()
                                                            in ("true", "false") else value.strip())
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = value.strip()
    return out


def cmd_train(args) -> int:
    from .experiments.runner import train

    if args.resume:
        out, resume = Path(args.resume), True
        config = None
    else:
        config = resolve_config(args)
        out, resume = Path(args.out or f"runs/train-{time.strftime('%Y%m%d-%H%M%S')}"), False
    summary = train(config, out, resume=resume, progress=None if not args.quiet else False)
    if summary["diverged"]:
        print(f"pclab train: diverged at step {summary['diverged_step']}: {summary['diverged_reason']} "
              f"(run folder {out})", file=sys.stderr)
        return 1
    acc = summary["test_accuracy"]
    print(f"test accuracy {100 * acc:.2f}% after {summary['epochs']} epoch(s), {summary['steps']} steps, "
          f"{summary['wall_seconds']:.1f} s; run folder {out}")
    return 0


def parse_grid(items: list[str]) -> dict[str, list]:
    """``["depth=8,16", "param=sp,mupc"]`` → ``{"depth": [8, 16], "param": ["sp", "mupc"]}``,
    each value converted to its TrainConfig field's type."""
    types_ = _field_types()
    grid: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not values:
            raise UsageError(f"pclab sweep: --set {item!r} is not valid; expected FIELD=V1,V2,...")
        if key not in types_:
            raise UsageError(f"pclab sweep: --set {key!r} is not a config field; valid: {', '.join(types_)}")
        t = types_[key]
        conv = (lambda v: v.lower() in ("1", "true", "yes")) if t is bool else (str if isinstance(t, type) and issubclass(t, enum.Enum) else t)
        try:
            grid[key] = [conv(v.strip()) for v in values.split(",")]
        except ValueError:
            raise UsageError(f"pclab sweep: --set {item!r}: values must be of type {t.__name__}") from None
    if not grid:
        raise UsageError("pclab sweep: give at least one --set FIELD=V1,V2,...")
    return grid


def cmd_sweep(args) -> int:
    from .experiments.sweep import VMAP_FIELDS, grid_points, run_lr_sweep, run_sweep

    grid = parse_grid(args.set)
    base = resolve_config(args)
    out = Path(args.out or f"runs/sweep-{time.strftime('%Y%m%d-%H%M%S')}")
    if set(grid) <= VMAP_FIELDS and not args.no_vectorise:
        rows = run_lr_sweep(base, grid, out, budget_s=60 * args.budget_min, yes=args.yes,
                            progress=None if not args.quiet else False)
    else:
        grid_points(base, grid)  # validate every point before starting any
        rows = run_sweep(grid_points(base, grid), out, jobs=args.jobs, budget_s=60 * args.budget_min, yes=args.yes,
                         log=(lambda *_: None) if args.quiet else print)
    done = [r for r in rows if r.get("test_accuracy") is not None]
    best = max(done, key=lambda r: r["test_accuracy"]) if done else None
    print(f"{len(rows)} runs, {sum(bool(r.get('diverged')) for r in rows)} diverged; results in {out / 'results.csv'}"
          + (f"; best {best['name']} at {100 * best['test_accuracy']:.2f}%" if best else ""))
    return 0


# pclab bench's own defaults (the μPC ResNet of benchmarks/README.md); its sizing flags default
# to None so that, with --to-accuracy, a --preset can set them.
BENCH_DEFAULTS = dict(depth=128, width=128, batch=128, infer_steps=16, model="resnet", param="mupc")


def cmd_bench(args) -> int:
    if args.to_accuracy is not None:
        return _bench_to_accuracy(args)
    from .bench import run_bench
    from .experiments.config import TrainConfig

    training_only = [f.name for f in fields(TrainConfig) if f.name not in (*BENCH_DEFAULTS, "devices")
                     and getattr(args, f.name, None) is not None] + [k for k in ("preset", "config") if getattr(args, k)]
    if training_only:
        flag = "--algo-opt" if training_only[0] == "algo_options" else "--" + training_only[0].replace("_", "-")
        raise UsageError(f"{flag} applies only with --to-accuracy (the step benchmark times GD PC against BP)")
    sizes = {**BENCH_DEFAULTS, **{k: getattr(args, k) for k in BENCH_DEFAULTS if getattr(args, k) is not None}}
    res = run_bench(depth=sizes["depth"], width=sizes["width"], batch=sizes["batch"], infer_steps=sizes["infer_steps"],
                    model=sizes["model"], param=sizes["param"], repeats=args.repeats, devices=args.devices or 1)
    if args.json:
        print(json.dumps(res.as_dict()))
    else:
        for k, v in res.as_dict().items():
            print(f"{k:>14}: {v:.4g}" if isinstance(v, float) else f"{k:>14}: {v}")
    return 0


def bench_train_config(args):
    """The TrainConfig of ``pclab bench --to-accuracy``: bench's depth and width (128) < --preset
    < --config < flags (``--batch`` is the batch size)."""
    if getattr(args, "batch", None) is not None:
        args.batch_size = args.batch
    return resolve_config(args, base={"depth": BENCH_DEFAULTS["depth"], "width": BENCH_DEFAULTS["width"]})


def _bench_to_accuracy(args) -> int:
    """--to-accuracy: train (bench sizes < --preset < flags) until the target test accuracy."""
    from .experiments.time_to_accuracy import time_to_accuracy

    config = bench_train_config(args)
    res = time_to_accuracy(config, args.to_accuracy, every=args.eval_every, progress=False if args.quiet else None)
    if args.json:
        print(json.dumps({"config": config.to_dict(), **res.as_dict()}))
        return 0
    what = f"{config.algo} ({config.solver_name}, T = {config.infer_steps})" if config.rule.runs_inference else config.algo
    for e in res.evals:
        print(f"step {e['step']:>6}  epoch {e['epoch']:6.2f}  test accuracy {100 * e['test_accuracy']:6.2f}%  "
              f"training {e['train_seconds']:8.1f} s")
    if res.reached:
        print(f"{what}: {100 * args.to_accuracy:g}% reached after {res.steps} steps, {res.train_seconds:.1f} s of "
              f"training (evaluations excluded)")
    else:
        why = "diverged" if res.diverged else f"not reached in {config.epochs} epochs"
        print(f"{what}: {100 * args.to_accuracy:g}% {why} ({res.total_steps} steps, {res.total_train_seconds:.1f} s)")
    return 0


def cmd_reproduce(args) -> int:
    from .experiments.registry import DEFAULT_PROTOCOL, get_reproduction, reproductions
    from .experiments.sweep import check_budget

    if args.list or not args.name:
        for name, r in reproductions().items():
            print(f"{name:<24} {r.description}")
            for proto, p in r.protocols.items():
                print(f"{'':<26}--protocol {proto}: {p.description}")
        return 0
    rep = get_reproduction(args.name).protocol(args.protocol)
    tag = "" if args.protocol in (None, DEFAULT_PROTOCOL) else f"-{args.protocol}"
    out = Path(args.out or f"runs/reproduce-{args.name}{tag}")
    if rep.pending is not None:
        what = f"pclab reproduce {args.name}" + (f" --protocol {args.protocol}" if tag else "")
        check_budget(rep.pending(out, args.quick), 60 * args.budget_min, args.yes, what=what)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    summary = rep.run(out, args.quick)
    print(json.dumps({"name": args.name, "protocol": args.protocol or "default", "quick": args.quick, "out": str(out),
                      "wall_seconds": round(time.perf_counter() - t0, 1), **(summary or {})}, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .experiments.config import presets
    from .params import PARAMETERISATIONS

    parser = _Parser(prog="pclab", description="Predictive coding networks: train, benchmark, reproduce.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train one model and write a run folder")
    t.add_argument("--config", metavar="FILE", help="TOML file of TrainConfig values (flags override it)")
    t.add_argument("--preset", choices=presets(), help="a named configuration shipped with pclab")
    t.add_argument("--out", metavar="DIR", help="run folder to create (default runs/train-TIMESTAMP)")
    t.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_train_flags(t)
    t.set_defaults(func=cmd_train)

    b = sub.add_parser("bench", help="time a PC training step against BP and against its own matmuls, "
                                     "or the wall time to a test accuracy (--to-accuracy)")
    b.add_argument("--depth", type=int, help="default 128")
    b.add_argument("--width", type=int, help="default 128")
    b.add_argument("--batch", type=int, help="default 128")
    b.add_argument("--infer-steps", type=int, help="default 16")
    b.add_argument("--model", choices=["resnet", "mlp", "conv", "transformer"],
                   help="dense nets: depth weight layers of width N; conv: depth blocks of width channels; "
                        "transformer: depth blocks of d_model = width (default resnet)")
    b.add_argument("--param", choices=PARAMETERISATIONS.names(), help="default mupc")
    b.add_argument("--repeats", type=int, default=10, help="timed repeats after warm-up (median reported)")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument("--to-accuracy", type=float, metavar="ACC",
                   help="train instead until the test accuracy reaches ACC (e.g. 0.97) or --epochs end; report "
                        "the steps and wall time (the learning rule and solver from the train flags below)")
    b.add_argument("--eval-every", type=int, default=100, metavar="STEPS", help="with --to-accuracy (default 100)")
    b.add_argument("--preset", choices=presets(), help="with --to-accuracy: a named training configuration")
    b.add_argument("--config", metavar="FILE", help="with --to-accuracy: a TOML file of TrainConfig values")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_train_flags(b, skip=tuple(BENCH_DEFAULTS) + ("batch_size",))
    b.set_defaults(func=cmd_bench)

    w = sub.add_parser("sweep", help="train a grid of configurations into one folder with results.csv")
    w.add_argument("--set", action="append", default=[], metavar="FIELD=V1,V2",
                   help="a grid axis (repeatable); a grid over lr, activity_lr and seed only runs as one vmapped program")
    w.add_argument("--config", metavar="FILE", help="TOML file for the base configuration")
    w.add_argument("--preset", choices=presets(), help="a named base configuration")
    w.add_argument("--out", metavar="DIR", help="sweep folder (default runs/sweep-TIMESTAMP); rerun to resume")
    w.add_argument("--jobs", type=int, default=1, help="runs in parallel (process per point)")
    w.add_argument("--budget-min", type=float, default=30.0, help="ask for --yes above this estimated time (minutes)")
    w.add_argument("--yes", action="store_true", help="run even if over the budget")
    w.add_argument("--no-vectorise", action="store_true", help="run lr/seed grids one process per point")
    w.add_argument("--quiet", action="store_true")
    _add_train_flags(w)
    w.set_defaults(func=cmd_sweep)

    r = sub.add_parser("reproduce", help="regenerate a paper figure (PNG + CSV)")
    r.add_argument("name", nargs="?", help="figure name (omit or --list to list them)")
    r.add_argument("--out", metavar="DIR")
    r.add_argument("--quick", action="store_true", help="a small version (minutes on 2 CPU cores)")
    r.add_argument("--list", action="store_true")
    r.add_argument("--protocol", metavar="NAME",
                   help="another protocol of the same figure (--list names them), e.g. mupc-depth --protocol paper")
    r.add_argument("--budget-min", type=float, default=60.0,
                   help="ask for --yes when the training runs are estimated to take longer (minutes)")
    r.add_argument("--yes", action="store_true", help="run even if over the budget")
    r.set_defaults(func=cmd_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .data import DatasetUnavailable
    from .experiments.checkpoint import CheckpointError
    from .experiments.runner import RunError
    from .experiments.sweep import BudgetExceeded

    try:
        args = build_parser().parse_args(argv)
        if args.command == "train" and args.resume and (args.config or args.preset):
            raise UsageError("pclab train: --resume takes its configuration from the run folder; drop --config/--preset")
        return args.func(args)
    except (UsageError, ValueError, RunError, DatasetUnavailable, CheckpointError, BudgetExceeded,
            pickle.UnpicklingError) as e:
        msg = " ".join(str(e).split())
        print(msg if msg.startswith("pclab") else f"pclab: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pclab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
