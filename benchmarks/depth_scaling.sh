#!/usr/bin/env bash
# PC vs BP step time, compile time and matmul efficiency of a μPC ResNet (width 128, batch 128,
# 16 GD inference steps) at depths 8..128; one JSON line per depth. Usage:
#   bash benchmarks/depth_scaling.sh [PCLAB]   (PCLAB defaults to .venv/bin/pclab)
set -euo pipefail
PCLAB=${1:-.venv/bin/pclab}
for depth in 8 16 32 64 128; do
  "$PCLAB" bench --depth "$depth" --width 128 --batch 128 --infer-steps 16 --repeats 10 --json
done
