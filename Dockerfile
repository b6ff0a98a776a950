# syntax=docker/dockerfile:1.7
#
# The one image of the Distributed Task Observatory: the `observatory` binary, which runs any
# role. Each Kubernetes Deployment passes its role as the container's args
# (`gateway`, `processor`, `metrics-engine`, `read-model`); there is no default role.
#
#   docker build -t ghcr.io/observatory/observatory:0.1.0 .
#
# Versions are pinned: the build image matches the toolchain the workspace is built and tested
# with (workspace rust-version 1.94, built with 1.95), the runtime image the build's Debian
# release (bookworm), so the binary's glibc is the one it was linked against.

ARG RUST_IMAGE=rust:1.95.0-slim-bookworm
ARG RUNTIME_IMAGE=debian:12.12-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# The whole workspace: every member's manifest is needed to resolve it, and the binary embeds
# files from generated/, openapi/, schemas/ and ui/web/static/ at compile time.
COPY . .
# Cache mounts keep the registry and target/ between builds; the binary is copied out of the
# cache so the next stage can take it.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p observatory \
    && install -D -m 0755 target/release/observatory /out/observatory

FROM ${RUNTIME_IMAGE}
# TLS goes through rustls with bundled roots; ca-certificates is there for anything that reads
# the system store (e.g. a managed server's private CA mounted into /usr/local/share/ca-certificates).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 observatory \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin observatory
COPY --from=build /out/observatory /usr/local/bin/observatory
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# gateway, read-model, processor, metrics-engine (each role binds only its own; set the
# OBSERVATORY_*_ADDR variables to 0.0.0.0:PORT in a container, the defaults are loopback).
EXPOSE 3000 8080 9101 9102
ENTRYPOINT ["/usr/local/bin/observatory"]
