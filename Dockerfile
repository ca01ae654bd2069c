# perfmine daemon. Point it at a database with DATABASE_URL; without one it
# starts an embedded PostgreSQL under /data (a volume).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
# Stage 4 clones repositories with git and resolves with Debian's pip (or uv, when put on PATH);
# stage 6's local executor makes virtualenvs (venv, ensurepip) and builds C extensions (headers, gcc).
RUN apt-get update && apt-get install -y --no-install-recommends git python3 python3-pip python3-venv python3-dev gcc libc6-dev ca-certificates \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production PERFMINE_DATA_DIR=/data
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY sql ./sql
COPY triggers ./triggers
COPY prompts ./prompts
COPY src/measure/runner ./src/measure/runner
COPY src/adapters/python/read_setup.py ./src/adapters/python/read_setup.py
COPY src/standins/index/make_wheels.py ./src/standins/index/make_wheels.py
COPY src/adapters/executors/local/make_env.py ./src/adapters/executors/local/make_env.py
COPY src/adapters/executors/verification/perfmine_probe.py ./src/adapters/executors/verification/perfmine_probe.py
COPY data ./data
VOLUME ["/data"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["daemon"]
