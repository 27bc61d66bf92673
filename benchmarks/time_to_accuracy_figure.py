"""Test accuracy against training time of several ``pclab bench --to-accuracy ... --json`` runs.

    python benchmarks/time_to_accuracy_figure.py LABEL=RUN.json [LABEL=RUN.json ...] --out FIG.png [--title T]

Each JSON is what ``pclab bench --to-accuracy ACC --json`` printed; the figure has one line per
run (its evaluations: accuracy at each evaluation's training time, compilation included,
evaluations excluded) and the target as a dashed line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pclab.report.figures import line_plot, panels, save_figure


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="LABEL=PATH of a --to-accuracy --json output")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--title", default="time to accuracy")
    a = p.parse_args()
    series, target = {}, None
    for item in a.runs:
        label, sep, path = item.rpartition("=")
        if not sep:
            p.error(f"{item!r}: expected LABEL=PATH")
        run = json.loads(Path(path).read_text())
        evals = run["evals"]
        series[label] = ([e["train_seconds"] for e in evals], [100 * e["test_accuracy"] for e in evals])
        target = run["target"]
    fig, (ax,) = panels(1, panel_size=(6.0, 4.0))
    line_plot(ax, None, series, title=a.title, xlabel="training time (s)", ylabel="test accuracy (%)",
              styles={k: {"marker": "o", "markersize": 3} for k in series})
    ax.axhline(100 * target, color="grey", linestyle="--", linewidth=1)
    save_figure(fig, a.out)


if __name__ == "__main__":
    main()
