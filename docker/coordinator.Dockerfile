# syntax=docker/dockerfile:1.7
# The CPU image: `lits serve` (the coordinator) and CPU-only `lits worker` (pure-JS tfjs, --engine cpu).
# Build from the repository root: docker build -f docker/coordinator.Dockerfile -t lits-ddp/lits:cpu-node24 .
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

FROM ${NODE_IMAGE} AS build
ARG NPM_VERSION=11.19.1
# The npm the lockfile was written with (the repository's packageManager).
RUN npm install -g "npm@${NPM_VERSION}" --no-audit --no-fund
WORKDIR /app
COPY package.json package-lock.json turbo.json ./
COPY packages packages
COPY apps apps
COPY tests tests
# Install scripts that would download browsers (playwright, chromium) are not needed in the image.
ENV PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
RUN npm ci --no-audit --no-fund \
 && npx turbo run build --filter=@lits-ddp/cli... --output-logs=errors-only \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf packages/*/src apps/*/src packages/*/test apps/*/test packages/*/bench apps/*/bench tests .turbo

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    TFJS_ENGINE=cpu \
    LITS_DATA_ROOT=/data/datasets \
    LITS_HOME=/data/home
WORKDIR /app
COPY --from=build --chown=root:root /app /app
COPY docker/healthcheck.mjs /app/docker/healthcheck.mjs
RUN ln -s /app/apps/cli/dist/main.js /usr/local/bin/lits \
 && chmod 0755 /app/apps/cli/dist/main.js \
 && mkdir -p /data/datasets /data/home \
 && chown -R node:node /data
# The node image's unprivileged user (uid 1000).
USER node
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/docker/healthcheck.mjs", "coordinator"]
ENTRYPOINT ["lits"]
CMD ["serve"]
