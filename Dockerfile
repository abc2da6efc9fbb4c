# cardgate: multi-stage build, small non-root runtime image. `cardgate serve` by default; the
# same environment variables as everywhere (REGISTRY_*, DATABASE_URL, CARDGATE__SECTION__KEY).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p cardgate

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin cardgate
COPY --from=build /src/target/release/cardgate /usr/local/bin/cardgate
COPY config /etc/cardgate/config
ENV CARDGATE_CONFIG_DIR=/etc/cardgate/config \
    CARDGATE_PROFILE=staging
USER cardgate
EXPOSE 8080
ENTRYPOINT ["cardgate"]
CMD ["serve"]
