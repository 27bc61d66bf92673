"""Figures and a self-contained ``report.html`` for one run folder."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..io import atomic_write_bytes, atomic_write_text  # noqa: E402


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _col(rows, key):
    return [r.get(key) if r.get(key) is not None else float("nan") for r in rows]


def run_figures(run_dir: Path, rows: list[dict[str, Any]], title: str) -> list[Path]:
    """loss.png, accuracy.png, and for PC runs energy_layers.png and inference.png."""
    if not rows:
        return []
    epoch = _col(rows, "epoch")
    paths = []

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(epoch, _col(rows, "train_loss"), "o-", label="train (mean since last eval)")
    ax.plot(epoch, _col(rows, "test_loss"), "s-", label="test")
    if any(r.get("energy") is not None for r in rows):
        ax.plot(epoch, _col(rows, "energy"), "^--", label="energy at equilibrium (train)")
    ax.set(xlabel="epoch", ylabel="loss", title=f"Loss — {title}", yscale="log")
    ax.legend(fontsize=8)
    paths.append(_save(fig, run_dir / "loss.png"))

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.plot(epoch, [100 * a for a in _col(rows, "test_accuracy")], "o-")
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=f"Test accuracy — {title}")
    ax.grid(alpha=0.3)
    paths.append(_save(fig, run_dir / "accuracy.png"))

    with_layers = [r for r in rows if r.get("layer_energies")]
    if with_layers:
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        cmap = plt.get_cmap("viridis")
        for i, r in enumerate(with_layers):
            ax.semilogy(range(1, len(r["layer_energies"]) + 1), [max(v, 1e-12) for v in r["layer_energies"]],
                        color=cmap(i / max(1, len(with_layers) - 1)), label=f"epoch {r['epoch']:.2f}")
        ax.set(xlabel="layer l (L = output term)", ylabel="energy of layer (batch mean)",
               title="Energy per layer at equilibrium")
        ax.legend(fontsize=7)
        paths.append(_save(fig, run_dir / "energy_layers.png"))

        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for i, r in enumerate(with_layers):
            ax.semilogy(range(len(r["infer_trace"])), r["infer_trace"], "o-", ms=3,
                        color=cmap(i / max(1, len(with_layers) - 1)), label=f"epoch {r['epoch']:.2f}")
        ax.set(xlabel="inference step", ylabel="energy (batch mean)", title="Inference convergence (diagnostic batch)")
        ax.legend(fontsize=7)
        paths.append(_save(fig, run_dir / "inference.png"))
    return paths


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
    title = f"{config['algo'].upper()} {config['model']} depth {config['depth']} × width {config['width']} ({config['param']}) on {config['dataset']}"
    images = run_figures(run_dir, rows, title)
    headline = {k: summary[k] for k in ("test_accuracy", "test_loss", "train_loss", "epochs", "steps", "wall_seconds", "diverged")}
    sections = [("Result", _table(headline))]
    if summary.get("diverged"):
        sections.append(("Diverged", f'<p class="bad">Stopped at step {summary["diverged_step"]}: '
                                     f'{html.escape(summary["diverged_reason"])}</p>'))
    sections.append(("Configuration", _table(config)))
    return write_report_html(run_dir / "report.html", title, sections, images)
