# syntax=docker/dockerfile:1
# One image with both product binaries: ticketing-gateway (the default command) and
# ticketing-workers, plus ticketing-keys and ticket-verify for operators.
# docker-compose.yml runs it once as the gateway and once per worker.
#
#   docker build -t ticketing .

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crate registry and the build directory between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gateway -p workers -p verifier \
 && mkdir -p /out \
 && cp target/release/ticketing-gateway target/release/ticketing-workers target/release/ticketing-keys target/release/ticket-verify /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin ticketing \
 && mkdir -p /app && chown ticketing /app
COPY --from=build /out/ /usr/local/bin/
# A writable working directory, for paths the code keeps relative (development keys).
WORKDIR /app
USER ticketing
ENV TICKETING_LOG_FORMAT=json
EXPOSE 8080
# tini forwards SIGTERM, so the processes drain their in-flight messages on `docker stop`.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["ticketing-gateway"]
