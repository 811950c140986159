#!/usr/bin/env bash
# The GPU worker image's install layer, the same commands on a host without Docker: docker/gpu-worker.Dockerfile
# runs this script right after `npm ci`, so CI or a person proves the image's route by running it after their own
# `npm ci`. Needs python3 with pip, g++ and make (as the Dockerfile installs); no GPU.
#   1. build the cli and every workspace it uses (turbo);
#   2. `lits engine install --gpu`: tfjs-node-gpu's addon against libtensorflow 2.18.1 from the pinned PyPI
#      tensorflow GPU wheel and the CUDA 12 libraries from the pinned nvidia-*-cu12 wheels (sha256-checked, cached
#      under LITS_CACHE_DIR, default ~/.cache/lits-ddp), then its load check;
#   3. docker/engine-forward-check.mjs: the engine loads and one forward pass of the seed model runs on the CPU
#      device of the GPU build and agrees with the pure-JS engine.
# Each step's wall time goes to stderr; the last stderr line is the total.
set -euo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1

started=$(date +%s)
step() {
  local name=$1
  shift
  local t0
  t0=$(date +%s)
  echo "[gpu-install-layer] $name: $*" >&2
  "$@"
  echo "[gpu-install-layer] $name: done in $(($(date +%s) - t0)) s" >&2
}

step build npx turbo run build --filter=@lits-ddp/cli... --output-logs=errors-only
step engine npm run lits -- engine install --gpu
step forward node docker/engine-forward-check.mjs --engine gpu
echo "[gpu-install-layer] total $(($(date +%s) - started)) s" >&2
