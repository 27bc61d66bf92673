"""Figures and a self-contained ``report.html`` for one run folder."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from ..io import atomic_write_text
from .figures import line_plot, panels, save_figure


def _col(rows, key):
    return [math.nan if r.get(key) is None else r[key] for r in rows]


def run_figures(run_dir: Path, rows: list[dict[str, Any]], title: str) -> list[Path]:
    """loss.png, accuracy.png, and for PC runs energy_layers.png and inference.png."""
    if not rows:
        return []
    epoch = _col(rows, "epoch")
    series = {"train (mean since last eval)": _col(rows, "train_loss"), "test": _col(rows, "test_loss")}
    if any(r.get("energy") is not None for r in rows):
        series["energy at equilibrium (train)"] = _col(rows, "energy")
    fig, (ax,) = panels(1, panel_size=(5.5, 3.6))
    line_plot(ax, epoch, series, title=f"Loss — {title}", xlabel="epoch", ylabel="loss", logy=True,
              styles={k: {"marker": "o"} for k in series})
    paths = [save_figure(fig, run_dir / "loss.png")]

    fig, (ax,) = panels(1, panel_size=(5.5, 3.6))
    line_plot(ax, epoch, {"test accuracy": [100 * a for a in _col(rows, "test_accuracy")]},
              title=f"Test accuracy — {title}", xlabel="epoch", ylabel="test accuracy (%)", legend=False,
              styles={"test accuracy": {"marker": "o"}})
    paths.append(save_figure(fig, run_dir / "accuracy.png"))

    for key, label, name in (("test_bpc", "validation bits per character", "bpc.png"),
                             ("recon_mse", "test reconstruction MSE", "reconstruction.png")):
        if any(r.get(key) is not None for r in rows):
            fig, (ax,) = panels(1, panel_size=(5.5, 3.6))
            line_plot(ax, epoch, {label: _col(rows, key)}, title=f"{label.capitalize()} — {title}", xlabel="epoch",
                      ylabel=label, legend=False, styles={label: {"marker": "o"}})
            paths.append(save_figure(fig, run_dir / name))

    evals = [r for r in rows if r.get("layer_energies")]
    if evals:
        colours = {f"epoch {r['epoch']:.2f}": {"color": _viridis(i, len(evals)), "marker": "o", "ms": 3}
                   for i, r in enumerate(evals)}
        fig, (ax,) = panels(1, panel_size=(5.5, 3.6))
        layers = {f"epoch {r['epoch']:.2f}": (range(1, len(r["layer_energies"]) + 1),
                                              [max(v, 1e-12) for v in r["layer_energies"]]) for r in evals}
        line_plot(ax, None, layers, title="Energy per layer at equilibrium", xlabel="layer l (L = output term)",
                  ylabel="energy of layer (batch mean)", logy=True, styles=colours)
        paths.append(save_figure(fig, run_dir / "energy_layers.png"))
        fig, (ax,) = panels(1, panel_size=(5.5, 3.6))
        traces = {f"epoch {r['epoch']:.2f}": (range(len(r["infer_trace"])), r["infer_trace"]) for r in evals}
        line_plot(ax, None, traces, title="Inference convergence (diagnostic batch)", xlabel="inference step",
                  ylabel="energy (batch mean)", logy=True, styles=colours)
        paths.append(save_figure(fig, run_dir / "inference.png"))
    return paths


def _viridis(i: int, n: int):
    from matplotlib import colormaps

    return colormaps["viridis"](i / max(1, n - 1))


def _table(d: dict[str, Any]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in d.items())
    return f"<table>{cells}</table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def write_report_html(path: Path, title: str, sections: list[tuple[str, str]], images: list[Path]) -> Path:
    """A single HTML file with inline CSS and the PNGs embedded as data URIs."""
    imgs = "".join(
        f'<figure><img alt="{p.stem}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        f"<figcaption>{p.name}</figcaption></figure>"
        for p in images
    )
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:0.5em 0}}th,td{{border:1px solid #ccc;padding:3px 8px;text-align:left}}
th{{background:#f4f4f4}}figure{{display:inline-block;margin:0.5em}}img{{max-width:520px}}
.bad{{color:#b00;font-weight:bold}}</style></head><body><h1>{html.escape(title)}</h1>{body}
<h2>Figures</h2>{imgs}</body></html>"""
    return atomic_write_text(path, page)


def write_run_report(run_dir: Path, config: dict, rows: list[dict], summary: dict) -> Path:
    """Write the run's PNG figures and ``report.html``."""
    size = (f"{config.get('blocks')} blocks × d {config.get('d_model')}" if config['model'] == "transformer"
            else f"depth {config['depth']} × width {config['width']}")
    title = f"{config['algo'].upper()} {config['model']} {size} ({config['param']}) on {config['dataset']}"
    images = run_figures(run_dir, rows, title)
    if (run_dir / "samples.png").exists():  # a generative run's samples
        images.append(run_dir / "samples.png")
    keys = ("test_accuracy", "test_loss", "test_bpc", "recon_mse", "train_loss", "epochs", "steps", "wall_seconds",
            "diverged")
    headline = {k: summary[k] for k in keys if k in summary}
    sections = [("Result", _table(headline))]
    if summary.get("diverged"):
        sections.append(("Diverged", f'<p class="bad">Stopped at step {summary["diverged_step"]}: '
                                     f'{html.escape(summary["diverged_reason"])}</p>'))
    sections.append(("Configuration", _table(config)))
    return write_report_html(run_dir / "report.html", title, sections, images)
