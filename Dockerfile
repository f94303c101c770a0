# syntax=docker/dockerfile:1.7
#
# fleetstorm container image: the binary, the shipped scenarios and profiles, nothing else.
#
#   DOCKER_BUILDKIT=1 docker build -t fleetstorm:0.1.0 .
#   docker run --rm fleetstorm:0.1.0 plan scenarios/quickstart.yaml
#   docker run --rm -v "$PWD/reports:/opt/fleetstorm/reports" fleetstorm:0.1.0 run scenarios/quickstart.yaml
#
# The build stage uses scripts/deps.sh, the same script that prepares a developer machine, so
# the build packages are listed in one place (C toolchain, pkg-config, OpenSSL and zlib headers:
# rdkafka-sys builds librdkafka from source and links it statically). The runtime stage holds
# only the shared libraries the binary links dynamically (libssl3/libcrypto3, zlib, libgcc_s,
# glibc) and CA certificates for TLS targets.
#
# Kubernetes: deploy/kubernetes/ and docs/scale-out.md. Checked offline by
# scripts/validate-deploy.sh (hadolint, the BuildKit parser, COPY sources); no image is built
# in this repository's CI (no Docker engine there).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build

WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh && rm -rf /var/lib/apt/lists/*

COPY Cargo.toml Cargo.lock ./
COPY harness harness

# The cargo registry and the target directory are BuildKit cache mounts: a rebuild after a source
# change recompiles fleetstorm, not librdkafka and every dependency. The binary is copied out of
# the cache mount in the same step (the mount is not part of the image); debug info is stripped
# (symbols stay, so a backtrace still names functions): about 12 MiB instead of 70.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git/db,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p fleetstorm \
    && install -D -m 0755 target/release/fleetstorm /out/fleetstorm \
    && strip --strip-debug /out/fleetstorm

# ---------------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

LABEL org.opencontainers.image.title="fleetstorm" \
      org.opencontainers.image.description="Workload-shaped load, chaos and delivery audit for Kafka-compatible backbones" \
      org.opencontainers.image.licenses="Apache-2.0"

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/*

# A fixed non-root uid/gid (65532, as distroless "nonroot"), so Kubernetes' runAsNonRoot can
# check it and fsGroup can give it the results volume.
RUN groupadd --system --gid 65532 fleetstorm \
    && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin fleetstorm \
    && install -d -o 65532 -g 65532 -m 0755 /opt/fleetstorm/reports

COPY --from=build /out/fleetstorm /usr/local/bin/fleetstorm
COPY scenarios /opt/fleetstorm/scenarios
COPY profiles /opt/fleetstorm/profiles

# Fails the build if a shared library the binary needs is missing from this stage.
RUN fleetstorm --version

# Relative paths work as in a checkout: `run scenarios/quickstart.yaml` writes reports/<...>/,
# which is the one writable directory (mount a volume there, or pass --out elsewhere).
WORKDIR /opt/fleetstorm
USER 65532:65532
ENTRYPOINT ["fleetstorm"]
CMD ["--help"]
