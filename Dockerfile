# The ecs-prom image: one static-enough binary for every component (exporter, discovery,
# demo-app, health) on a distroless base, running as a non-root user.
#
#   docker build -t ecs-prom .
#   docker run --rm ecs-prom --help
#
# The build stage needs only crates.io; the runtime stage has no shell, no package manager and
# no CA bundle (ecs-prom carries its own web PKI roots for the AWS APIs).

# The toolchain the test suite runs on (the workspace declares 1.85 as its minimum).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ecs-prom \
    && cp target/release/ecs-prom /usr/local/bin/ecs-prom

# glibc and libgcc only; "nonroot" is uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/ecs-prom /usr/local/bin/ecs-prom
USER 65532:65532
# exporter, discovery, demo-app
EXPOSE 9779 9001 3000
# Container health checks run `ecs-prom health --url ...` (no curl in this image).
ENTRYPOINT ["/usr/local/bin/ecs-prom"]
CMD ["exporter"]
