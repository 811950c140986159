# syntax=docker/dockerfile:1.7
# The GPU worker image: `lits worker --engine gpu` on CUDA 11.2 + cuDNN 8, which tfjs-node-gpu 4.22
# (libtensorflow 2.9.1) is built against. Build from the repository root:
#   docker build -f docker/gpu-worker.Dockerfile -t lits-ddp/lits:gpu .
ARG NODE_IMAGE=node:20.20.2-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04
ARG TFJS_NODE_GPU_VERSION=4.22.0

FROM ${NODE_IMAGE} AS node

# Built on the runtime base itself, so the tfjs-node-gpu addon links against the same glibc.
# tfjs-node-gpu's install script fetches libtensorflow (GPU) and its native binding. npm 11.19.1 runs
# it because the root package.json's `allowScripts` approves it (unlisted packages' scripts would run
# too, with a warning; `false` entries such as core-js are skipped). `--allow-scripts` cannot be used
# here: npm refuses it in a project install (EALLOWSCRIPTS). The build fails if either file is missing.
FROM ${CUDA_IMAGE} AS build
ARG TFJS_NODE_GPU_VERSION
ENV DEBIAN_FRONTEND=noninteractive PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
ARG NPM_VERSION=11.19.1
RUN ln -s /usr/local/lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s /usr/local/lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && npm install -g "npm@${NPM_VERSION}" --no-audit --no-fund
WORKDIR /app
COPY package.json package-lock.json turbo.json ./
COPY packages packages
COPY apps apps
COPY tests tests
RUN npm ci --no-audit --no-fund \
 && npx turbo run build --filter=@lits-ddp/cli... --output-logs=errors-only \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm install --no-save --omit=dev --no-audit --no-fund \
      "@tensorflow/tfjs-node-gpu@${TFJS_NODE_GPU_VERSION}" \
 && ls node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v*/tfjs_binding.node \
       node_modules/@tensorflow/tfjs-node-gpu/deps/lib/libtensorflow.so* \
 && rm -rf packages/*/src apps/*/src packages/*/test apps/*/test packages/*/bench apps/*/bench tests .turbo

FROM ${CUDA_IMAGE} AS runtime
ENV NODE_ENV=production \
    TFJS_ENGINE=gpu \
    TF_CPP_MIN_LOG_LEVEL=1 \
    LITS_DATA_ROOT=/data/datasets \
    LITS_HOME=/data/home
COPY --from=node /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=build /app /app
COPY docker/healthcheck.mjs /app/docker/healthcheck.mjs
RUN groupadd --gid 1000 lits \
 && useradd --uid 1000 --gid lits --home-dir /home/lits --create-home --shell /usr/sbin/nologin lits \
 && ln -s /app/apps/cli/dist/main.js /usr/local/bin/lits \
 && chmod 0755 /app/apps/cli/dist/main.js \
 && mkdir -p /data/datasets /data/home \
 && chown -R lits:lits /data
USER lits
VOLUME ["/data"]
# Healthy while this container's worker heartbeats in Redis (the engine load takes a while at start).
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
  CMD ["node", "/app/docker/healthcheck.mjs", "worker"]
ENTRYPOINT ["lits"]
CMD ["worker", "--engine", "gpu"]
