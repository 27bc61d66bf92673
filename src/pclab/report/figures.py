r"""Generic plotting helpers for pclab reports: panels, line plots, heatmaps, atomic PNG saving.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot, no global
backend switch), so these helpers are safe in scripts, tests and threads. Typical use::

    fig, axes = panels(2, ncols=2)
    line_plot(axes[0], steps, {"PC": pc_loss, "BP": bp_loss}, title="…", xlabel="step",
              ylabel="loss", logy=True)
    heatmap(axes[1], values, rows, cols, title="…", xlabel="width N", ylabel="depth H")
    save_figure(fig, out / "figure.png")
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from ..io import atomic_write_bytes


def panels(n: int, ncols: int | None = None, panel_size: tuple[float, float] = (4.2, 3.4),
           suptitle: str | None = None) -> tuple[Figure, list]:
    """A figure with ``n`` axes on a grid of ``ncols`` columns (default: up to 4); returns
    (figure, flat list of the ``n`` axes). Unused grid cells are hidden."""
    if n < 1:
        raise ValueError(f"n={n!r} is not valid; expected at least one panel")
    ncols = min(n, 4) if ncols is None else ncols
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows + (0.5 if suptitle else 0)),
                 layout="constrained")
    axes = list(np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    if suptitle:
        fig.suptitle(suptitle)
    return fig, axes[:n]


def line_plot(ax, x, series: Mapping[str, Sequence[float]], *, title: str = "", xlabel: str = "",
              ylabel: str = "", logx: bool = False, logy: bool = False,
              styles: Mapping[str, dict] | None = None, legend: bool = True, legend_loc: str = "best"):
    """One line per entry of ``series`` (label → y values, same length as ``x`` or with their own
    x given as a (x, y) tuple). ``styles`` maps a label to extra ``ax.plot`` keywords."""
    styles = styles or {}
    for label, ys in series.items():
        xs, ys = (ys if isinstance(ys, tuple) else (x, ys))
        ax.plot(np.asarray(xs), np.asarray(ys), label=label, **styles.get(label, {}))
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if legend and series:
        ax.legend(fontsize=8, loc=legend_loc)
    return ax


def compact_number(v: float) -> str:
    """Short cell label: 3 significant digits in [1e-3, 1e3), else mantissa-exponent ('4.5e4')."""
    if v == 0 or not np.isfinite(v) or 1e-3 <= abs(v) < 999.5:
        return f"{v:.3g}"
    exp = int(np.floor(np.log10(abs(v))))
    mant = round(v / 10**exp, 1)
    if abs(mant) >= 10:
        mant, exp = mant / 10, exp + 1
    return f"{mant:g}e{exp}"


def heatmap(ax, values, row_labels: Sequence, col_labels: Sequence, *, title: str = "", xlabel: str = "",
            ylabel: str = "", cbar_label: str = "", log: bool = False, annotate: bool = True,
            fmt: str | Callable[[float], str] = compact_number, cmap: str = "viridis",
            vmin: float | None = None, vmax: float | None = None):
    """An annotated heatmap of ``values`` (rows, cols); row 0 is drawn at the bottom.

    ``log`` uses a logarithmic colour scale (non-positive cells are masked). NaN cells are blank.
    ``fmt`` is a format string (``"{:.4f}"``) or a function of the value.
    """
    v = np.asarray(values, dtype=float)
    if v.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"values has shape {v.shape}; expected ({len(row_labels)}, {len(col_labels)})")
    shown = np.ma.masked_invalid(np.where(v > 0, v, np.nan) if log else v)
    finite = shown.compressed()
    lo = vmin if vmin is not None else (finite.min() if finite.size else 1.0)
    hi = vmax if vmax is not None else (finite.max() if finite.size else 1.0)
    if hi <= lo:
        hi = lo * 1.01 + 1e-12
    norm = LogNorm(lo, hi) if log else Normalize(lo, hi)
    im = ax.imshow(shown, origin="lower", aspect="auto", cmap=cmap, norm=norm)
    ax.set_xticks(range(len(col_labels)), [str(c) for c in col_labels])
    ax.set_yticks(range(len(row_labels)), [str(r) for r in row_labels])
    if annotate:
        for i in range(v.shape[0]):
            for j in range(v.shape[1]):
                if np.isfinite(v[i, j]):
                    frac = norm(v[i, j]) if (not log or v[i, j] > 0) else 0.0
                    label = fmt(v[i, j]) if callable(fmt) else fmt.format(v[i, j])
                    ax.text(j, i, label, ha="center", va="center", fontsize=7,
                            color="white" if float(np.clip(frac, 0, 1)) < 0.5 else "black")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.figure.colorbar(im, ax=ax, label=cbar_label)
    return ax


def note(ax, text: str, title: str = ""):
    """An empty panel showing ``text`` (e.g. why a case does not apply)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    return ax


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Render ``fig`` to PNG and write it to ``path`` atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())
