# Relay in a FROM scratch image: the static binary and an empty /data for
# the ledger, nothing else (no shell, no libc, no CA bundle: the roots are
# compiled in). `make image` builds it for every `make cross` target from
# build/image/ (linux/<arch>/relay per platform, data/), tagged relay:latest
# (with podman a multi-arch manifest list: amd64, arm64, arm/v7, mipsle).
#
# The config is mounted at /etc/relay/relay.conf; it must listen on
# 0.0.0.0 to be reachable through a published port, which needs a wallet
# (open mode is loopback-only) or `open=yes`. The ledger goes to /data
# (relative paths are relative to it); keep /data on a volume:
#
#   podman run -d --name relay -p 8080:8080 \
#     -v "$PWD/relay.conf:/etc/relay/relay.conf:ro" -v relay-data:/data \
#     -e OPENAI_API_KEY relay:latest
#
# SIGHUP (podman kill -s HUP relay) reloads the config; SIGTERM drains.
FROM scratch
ARG TARGETPLATFORM
COPY ${TARGETPLATFORM}/relay /relay
COPY --chown=65534:65534 data /data
USER 65534:65534
WORKDIR /data
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/relay"]
CMD ["-c", "/etc/relay/relay.conf"]
