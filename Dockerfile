# pncd and pncctl. cgo stays on so that pkcs11: key URIs work with the HSM
# vendor's module mounted into the container.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -o /out/pncd ./cmd/pncd && go build -trimpath -o /out/pncctl ./cmd/pncctl

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 pncpki && mkdir /data && chown pncpki /data
COPY --from=build /out/pncd /out/pncctl /usr/local/bin/
USER pncpki
VOLUME /data
EXPOSE 8080
# The data directory keeps keys (mode 0600), config.json and, without
# PNCPKI_STORE, the SQLite store.
ENTRYPOINT ["pncd", "--data", "/data", "--listen", "0.0.0.0:8080"]
