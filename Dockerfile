# pncd and pncctl. The default image is a static binary (CGO_ENABLED=0:
# file and cloud KMS keys) on a distroless base; the PKCS#11 variant needs
# cgo and a libc for the HSM vendor's module:
#
#   docker build -t pncpki .                                             # static
#   docker build -t pncpki:pkcs11 --target pkcs11 --build-arg CGO_ENABLED=1 .
#
# .ci/build is the build step of both, and CI runs it the same way.
FROM golang:1.26-bookworm AS build
ARG CGO_ENABLED=0
# The version pncd and pncctl report (pncd version, /healthz); the build
# context has no .git.
ARG PNCPKI_VERSION=""
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=$CGO_ENABLED PNCPKI_VERSION=$PNCPKI_VERSION .ci/build /out && mkdir -p /data /pki/keys

# PKCS#11 variant: Debian slim, unprivileged user, the vendor module mounted in.
FROM debian:bookworm-slim AS pkcs11
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 pncpki && mkdir -p /data /pki/keys && chown -R pncpki /data /pki
COPY --from=build /out/pncd /out/pncctl /usr/local/bin/
USER pncpki
VOLUME /data
EXPOSE 8080 9000
ENV PNCPKI_DATA=/data PNCPKI_LISTEN=0.0.0.0:8080
HEALTHCHECK --interval=30s --timeout=5s CMD ["pncd", "healthcheck"]
ENTRYPOINT ["pncd"]

# Default: static binary, no shell, non-root (uid 65532).
FROM gcr.io/distroless/static-debian12:nonroot AS static
COPY --from=build /out/pncd /out/pncctl /usr/local/bin/
COPY --from=build --chown=65532:65532 /data /data
# /pki: where docker-compose.yml's init job writes the shared PKI; a new
# volume mounted here takes this ownership.
COPY --from=build --chown=65532:65532 /pki /pki
# The data directory keeps keys (mode 0600), config.json and, without
# PNCPKI_STORE, the SQLite store.
VOLUME /data
EXPOSE 8080 9000
# Settings through the environment (PNCPKI_*), which flags override.
ENV PNCPKI_DATA=/data PNCPKI_LISTEN=0.0.0.0:8080
HEALTHCHECK --interval=30s --timeout=5s CMD ["pncd", "healthcheck"]
ENTRYPOINT ["pncd"]
