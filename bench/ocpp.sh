#!/usr/bin/env bash
# OCPP-J proxy benchmark: N stations (real WebSocket connections on
# loopback) send one Heartbeat per second each, first straight to a minimal
# upstream CSMS and then through pncd's proxy; then stations do
# SignCertificate and GetCertificateStatus through pncd. Prints one table.
#
#   bench/ocpp.sh                         # 1,000 stations, 10 s phases
#   STATIONS=200 DUR=5s bench/ocpp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$B"
go build -o "$B/pncd" ./cmd/pncd
go build -o "$B/ocppload" ./bench/ocppload
"$B/ocppload" -data "$B/data" -pncd "$B/pncd" -stations "${STATIONS:-1000}" -duration "${DUR:-10s}" \
  -cert-stations "${CERT_STATIONS:-32}" -cert-duration "${CERT_DUR:-10s}"
