"""The generic plotting helpers and the registration of the theory reproductions."""

import numpy as np
import pytest

import pclab.experiments.theory_figures  # noqa: F401 - registers the theory reproductions
from pclab.experiments import registry
from pclab.report.figures import heatmap, line_plot, note, panels, save_figure

THEORY_FIGURES = {"saddles-origin", "saddles-escape", "energy-theory", "limits-alignment", "inference-conditioning"}


def test_theory_reproductions_are_registered():
    table = registry._REGISTRY  # this module's entries only: other modules' imports are not under test here
    assert THEORY_FIGURES <= set(table)
    assert all(table[name].description for name in THEORY_FIGURES)


def test_panels_plots_and_atomic_png(tmp_path):
    fig, axes = panels(3, ncols=2, suptitle="demo")
    assert len(axes) == 3
    line_plot(axes[0], np.arange(4), {"a": [1, 2, 3, 4], "b": ([0, 2], [1e-3, 1e-1])}, title="t", xlabel="x",
              ylabel="y", logy=True)
    heatmap(axes[1], [[1.0, 10.0], [100.0, np.nan]], [1, 2], ["8", "16"], title="h", log=True, cbar_label="k")
    note(axes[2], "n/a")
    assert axes[0].get_title() == "t" and axes[0].get_yscale() == "log"
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["a", "b"]
    path = save_figure(fig, tmp_path / "sub" / "f.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["f.png"]  # no temporary files left behind


def test_heatmap_shape_mismatch():
    fig, (ax,) = panels(1)
    with pytest.raises(ValueError, match=r"values has shape \(2, 2\); expected \(3, 2\)"):
        heatmap(ax, np.ones((2, 2)), [1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least one panel"):
        panels(0)
