# syntax=docker/dockerfile:1
# backup-ns container image: a static binary (musl, rustls; no OpenSSL) on distroless/static,
# running as the non-root user 65532. No shell, no kubectl: the binary talks to the API itself.
#
#   docker build -t ghcr.io/backup-ns/backup-ns:0.1.0 .

FROM rust:1.89-bookworm AS build
# ring builds a little C; musl-tools gives it musl-gcc for the static target.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
COPY tests ./tests
RUN cargo build --locked --release --bin backup-ns --target x86_64-unknown-linux-musl \
 && cp target/x86_64-unknown-linux-musl/release/backup-ns /backup-ns \
 && /backup-ns --version

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /backup-ns /usr/local/bin/backup-ns
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/backup-ns"]
