# syntax=docker/dockerfile:1.7
# The GPU worker image: `lits worker --engine gpu` on @tensorflow/tfjs-node-gpu 4.22.0 with libtensorflow 2.18.1
# (CUDA 12.5, cuDNN 9.3; Ampere and Hopper) on a plain Debian base. No CUDA base image: TensorFlow's CUDA
# user-space libraries come from the pinned PyPI nvidia-*-cu12 wheels that `lits engine install --gpu` stages next
# to the addon; only libcuda.so.1 comes from the host driver (NVIDIA Container Toolkit). docs/deploy.md, "The GPU
# image", has the pins and the driver floor. Build from the repository root:
#   docker build -f docker/gpu-worker.Dockerfile -t lits-ddp/lits:gpu-node24-cuda12.5 .
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

FROM ${NODE_IMAGE} AS build
ARG NPM_VERSION=11.19.1
# python3 + pip fetch the pinned wheels (`pip download`: nothing goes into Debian's Python), g++ and make build the
# addon with node-gyp against the node image's own headers (/usr/local/include/node).
ENV DEBIAN_FRONTEND=noninteractive \
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LITS_CACHE_DIR=/var/cache/lits-ddp
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-pip g++ make \
 && rm -rf /var/lib/apt/lists/*
# The npm the lockfile was written with (the repository's packageManager).
RUN npm install -g "npm@${NPM_VERSION}" --no-audit --no-fund
WORKDIR /app
COPY package.json package-lock.json turbo.json ./
COPY packages packages
COPY apps apps
COPY tests tests
COPY scripts/gpu-install-layer.sh scripts/gpu-install-layer.sh
COPY docker/engine-forward-check.mjs docker/engine-forward-check.mjs
# Everything from the lockfile (tfjs-node-gpu included; the root package.json's allowScripts denies its install
# script, which would download libtensorflow from outside the registries), then the same script a host without
# Docker runs: build, `lits engine install --gpu` (wheels from PyPI, sha256-checked; addon built with node-gyp),
# and one forward pass of the seed model on the CPU device of the GPU build (no GPU at build time).
# The staged libraries are files inside tfjs-node-gpu (deps/lib), so the runtime stage needs nothing but /app. The
# wheel cache (LITS_CACHE_DIR; entries record their wheel's sha256) is a BuildKit cache mount, kept between builds.
RUN --mount=type=cache,target=/var/cache/lits-ddp,sharing=locked \
    npm ci --no-audit --no-fund \
 && scripts/gpu-install-layer.sh \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf packages/*/src apps/*/src packages/*/test apps/*/test packages/*/bench apps/*/bench tests .turbo

FROM ${NODE_IMAGE} AS runtime
# TF_FORCE_GPU_ALLOW_GROWTH: TensorFlow takes GPU memory as it needs it instead of nearly all of it at start, so a
#   second process (more workers than GPUs, `lits predict` beside a worker) fits on the same GPU.
# CUDA_DEVICE_ORDER=PCI_BUS_ID: CUDA numbers GPUs as nvidia-smi does (its default puts the fastest first).
# NVIDIA_*: what the NVIDIA Container Toolkit mounts (all GPUs unless --gpus / the device plugin narrows it; the
#   driver's compute and nvidia-smi libraries) and the driver it requires: CUDA 12.x runs on any driver that
#   supports CUDA 12.0 (>= 525.60.13) through minor-version compatibility.
# Deterministic runs add TF_CUDNN_USE_AUTOTUNE=0 and NVIDIA_TF32_OVERRIDE=0: the worker sets them itself.
ENV NODE_ENV=production \
    TFJS_ENGINE=gpu \
    TF_CPP_MIN_LOG_LEVEL=1 \
    TF_FORCE_GPU_ALLOW_GROWTH=true \
    CUDA_DEVICE_ORDER=PCI_BUS_ID \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    NVIDIA_REQUIRE_CUDA="cuda>=12.0" \
    LITS_DATA_ROOT=/data/datasets \
    LITS_HOME=/data/home
WORKDIR /app
COPY --from=build --chown=root:root /app /app
COPY docker/healthcheck.mjs docker/gpu-smoke.mjs /app/docker/
RUN ln -s /app/apps/cli/dist/main.js /usr/local/bin/lits \
 && chmod 0755 /app/apps/cli/dist/main.js \
 && mkdir -p /data/datasets /data/home \
 && chown -R node:node /data
# The node image's unprivileged user (uid 1000).
USER node
# The copied image itself, without the build tools: the engine loads and the model runs (CPU device).
RUN node /app/docker/engine-forward-check.mjs --engine gpu
VOLUME ["/data"]
# Healthy while this container's worker heartbeats in Redis (the engine load takes a while at start).
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
  CMD ["node", "/app/docker/healthcheck.mjs", "worker"]
ENTRYPOINT ["lits"]
CMD ["worker", "--engine", "gpu"]
