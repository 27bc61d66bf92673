"""Side-by-side step times of pclab and its peers (jpc, pcx, FabricPC) on one workload.

    python benchmarks/compare/compare.py [--peers pclab,jpc,pcx,fabricpc] [--jpc-src DIR]
        [--workloads mupc-resnet,mlp,mupc-paper] [--depths 8,32,128] [--variants jpc-docs,...]
        [--rounds 2] [--out DIR]

Each peer gets its own virtual environment under ``--venvs`` (made once, reused; pcx and
FabricPC installed by name and version from the package index, jpc from the source folder
``--jpc-src``, since it is not on the index). pclab runs in the interpreter that runs this
script. For every workload (see ``workload.py``), the harness writes one set of weights and
one batch, then runs each peer's script in its own process, one after the other, ``--rounds``
times, and prints one table: first step (compilation included), the median step after the
warm-up (the median over rounds of each round's median), the range over rounds, and the
feedforward loss after the first and after the last update, beside a float64 numpy value of
the loss at the start. Results go to ``OUT/results.json`` and ``OUT/results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import venv
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from workload import WORKLOADS, Spec, mupc_paper, pcx_mlp, read_data, reference_loss, write_data

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Peer:
    name: str
    script: str
    requirements: tuple[str, ...] = ()  # pip arguments; empty: this interpreter
    variants: tuple[str, ...] = ("",)


def peers(jpc_src: Path | None) -> dict[str, Peer]:
    return {
        "pclab": Peer("pclab", "peer_pclab.py", variants=("devices=1", "devices=2")),
        "jpc": Peer("jpc", "peer_jpc.py", (str(jpc_src),) if jpc_src else (), ("docs", "fused")),
        "pcx": Peer("pcx", "peer_pcx.py", ("pcx==0.6.3",)),
        "fabricpc": Peer("fabricpc", "peer_fabricpc.py", ("fabricpc==0.6.0",)),
    }


def python_of(peer: Peer, venvs: Path) -> str:
    """The interpreter of ``peer``'s environment, made (and its packages installed) once."""
    if not peer.requirements:
        return sys.executable
    home = venvs / peer.name
    stamp = home / ".installed"
    want = "\n".join(peer.requirements)
    if not (stamp.exists() and stamp.read_text() == want):
        print(f"[{peer.name}] making {home} and installing {' '.join(peer.requirements)}", file=sys.stderr)
        venv.create(home, with_pip=True, clear=True)
        subprocess.run([str(home / "bin" / "python"), "-m", "pip", "install", "-q", *peer.requirements], check=True)
        stamp.write_text(want)
    return str(home / "bin" / "python")


def run_peer(python: str, peer: Peer, variant: str, spec_path: Path, out: Path, timeout: float) -> dict:
    """One process of one peer; the result dict, or ``{"error": ...}`` naming what failed."""
    cmd = [python, str(HERE / peer.script), str(spec_path), str(out), variant]
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        lines = [l for l in proc.stderr.strip().splitlines() if l.strip()] or [f"exit status {proc.returncode}"]
        return {"error": lines[-1][:300]}
    return json.loads(out.read_text())


def specs(workloads: list[str], depths: list[int], timed: int) -> list[Spec]:
    out = []
    for w in workloads:
        if w == "mupc-resnet":
            out += [Spec(timed=timed, depth=d) for d in depths]
        elif w == "mupc-paper":
            out += [replace(mupc_paper(d), timed=timed) for d in depths]
        else:
            out.append(replace(pcx_mlp(), timed=timed))
    return out


def summarise(rounds: list[dict]) -> dict:
    ok = [r for r in rounds if "error" not in r]
    if not ok:
        return {"error": rounds[0]["error"]}
    med = [r["median_step_s"] for r in ok]
    first = ok[0]
    return {"library": first["library"], "version": first["version"], "jax": first["jax"],
            "first_step_s": statistics.median(r["first_step_s"] for r in ok),
            "median_step_s": statistics.median(med), "min_step_s": min(med), "max_step_s": max(med),
            "loss_0": first["loss_0"], "loss_1": first["loss_1"], "loss_final": first["loss_final"], "rounds": len(ok)}


def table(rows: list[dict]) -> str:
    lines = ["| workload | depth | peer | first step | step (median) | range over rounds | loss at start | after 1 update | "
             "after all | versions |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s, head = r["summary"], f"| {r['workload']} | {r['depth']} | {r['peer']} |"
        if "error" in s:
            lines.append(f"{head} failed: {s['error']} | | | | | | |")
            continue
        lines.append(f"{head} {s['first_step_s']:.2f} s | {1e3 * s['median_step_s']:.1f} ms | "
                     f"{1e3 * s['min_step_s']:.1f}–{1e3 * s['max_step_s']:.1f} ms | {s['loss_0']:.6f} | {s['loss_1']:.6f} | "
                     f"{s['loss_final']:.6f} | {s['library']} {s['version']}, jax {s['jax']} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--peers", default="pclab,jpc,pcx,fabricpc")
    p.add_argument("--jpc-src", type=Path, help="a checkout of jpc's repository (it is not on the package index)")
    p.add_argument("--workloads", default="mupc-resnet,mlp")
    p.add_argument("--depths", default="8,32,128", help="depths of the μPC ResNet")
    p.add_argument("--variants", default="", help="keep only these peer variants, e.g. 'jpc-docs,pclab-devices=1' "
                   "(default: every variant of every peer)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--timed", type=int, default=10, help="timed steps per process (after 1 + 2 warm-up)")
    p.add_argument("--timeout", type=float, default=900, help="seconds per process")
    p.add_argument("--venvs", type=Path, default=HERE / ".venvs")
    p.add_argument("--out", type=Path, default=Path("runs/compare"))
    a = p.parse_args()
    known = peers(a.jpc_src)
    names = [n.strip() for n in a.peers.split(",") if n.strip()]
    workloads = [w.strip() for w in a.workloads.split(",") if w.strip()]
    bad = [n for n in names if n not in known] + [w for w in workloads if w not in WORKLOADS]
    if bad:
        p.error(f"unknown peer or workload {bad[0]!r}; peers: {', '.join(known)}; workloads: {', '.join(WORKLOADS)}")
    if "jpc" in names and a.jpc_src is None:
        p.error("--peers includes jpc but --jpc-src is missing: give a checkout of jpc's repository")
    depths = [int(d) for d in a.depths.split(",")]
    a.out.mkdir(parents=True, exist_ok=True)
    pythons = {n: python_of(known[n], a.venvs) for n in names}
    rows = []
    for spec in specs(workloads, depths, a.timed):
        tag = f"{spec.workload}-depth{spec.depth}"
        spec = replace(spec, data=str((a.out / f"{tag}.npz").resolve()))
        write_data(spec, Path(spec.data))
        spec_path = a.out / f"{tag}.json"
        spec_path.write_text(json.dumps(asdict(spec)))
        start = reference_loss(*read_data(spec), spec)
        print(f"{tag}: numpy loss at the start {start:.6f}", file=sys.stderr)
        keep = {k.strip() for k in a.variants.split(",") if k.strip()}
        results = {(n, v): [] for n in names for v in known[n].variants if not keep or f"{n}-{v}".rstrip("-") in keep}
        for k in range(a.rounds):
            for (n, v), got in results.items():
                got.append(run_peer(pythons[n], known[n], v, spec_path, a.out / f"{tag}-{n}{v}-{k}.json", a.timeout))
                s = got[-1]
                print(f"  round {k + 1} {n}{'-' + v if v else ''}: "
                      + (s["error"] if "error" in s else f"{1e3 * s['median_step_s']:.1f} ms"), file=sys.stderr)
        for (n, v), got in results.items():
            rows.append({"workload": spec.workload, "depth": spec.depth, "peer": f"{n} ({v})" if v else n,
                         "start_loss": start, "summary": summarise(got), "rounds": got})
    tmp = a.out / "results.json.tmp"
    tmp.write_text(json.dumps(rows, indent=1))
    tmp.replace(a.out / "results.json")
    (a.out / "results.md").write_text(table(rows) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
