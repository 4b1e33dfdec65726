# The kmesh-ipsec image: the node plugin, the admission webhook and the CLI in one image
# (docs/install.md#the-image). CI has no Docker engine, so CI never builds it; a test checks
# that every path copied below is one the build produces. Build and load it with:
#   docker build -t kmesh-ipsec:0.1.0 .
# For production, pin the base by digest as well:
#   docker buildx imagetools inspect node:20.20.2-bookworm-slim   # then NODE_IMAGE=node:...@sha256:...
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
# clang and libbpf headers build the tc programs (bpf/Makefile); python3, make and g++ let
# node-gyp compile the native modules where no prebuilt binary matches the platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang libbpf-dev make python3 g++ \
 && rm -rf /var/lib/apt/lists/*
# Headers of the Node.js in this image, so node-gyp downloads nothing.
ENV npm_config_nodedir=/usr/local
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts off: `prepare` compiles sources not copied yet; the native modules are built next.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild netlink bpf
COPY tsconfig.json index.ts ./
COPY core core
COPY webhook webhook
COPY nodeplugin nodeplugin
COPY cli cli
COPY certs certs
COPY bpf bpf
# tsconfig also compiles test/ and bench/; empty directories satisfy it without shipping them.
RUN mkdir -p test bench \
 && npx tsc -p tsconfig.json \
 && make -s -C bpf \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
# tc (iproute2) and bpftool, which the node plugin runs on the host's network namespace.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 bpftool \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/kmesh-ipsec
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/dist/index.js /src/dist/index.d.ts dist/
COPY --from=build /src/dist/core dist/core
COPY --from=build /src/dist/webhook dist/webhook
COPY --from=build /src/dist/nodeplugin dist/nodeplugin
COPY --from=build /src/dist/cli dist/cli
COPY --from=build /src/dist/certs dist/certs
COPY --from=build /src/bpf/build bpf/build
RUN chmod 0755 dist/cli/main.js && ln -s /opt/kmesh-ipsec/dist/cli/main.js /usr/local/bin/kmesh-ipsec
# Non-root by default (the webhook and the key-rotation job); the node plugin's pod sets
# runAsUser: 0 with named capabilities (manifests/base/node-plugin.yaml).
USER 65532:65532
ENTRYPOINT ["kmesh-ipsec"]
