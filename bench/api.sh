#!/usr/bin/env bash
# API issuance benchmark: SignCSR over HTTPS (REST, keep-alive, 16
# concurrent clients, CSR and token prepared beforehand) against pncd on
# SQLite and on PostgreSQL; prints certificates/s, p50/p99 and pncd's CPU
# time per issued certificate next to the in-process cost of the pure
# crypto (CSR signature check + certificate signing).
#
#   bench/api.sh [duration]        # default 15s; PostgreSQL from PNCPKI_TEST_POSTGRES
#                                  # or postgres://postgres@127.0.0.1:5432/test
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-15s}; CONN=16
PG=${PNCPKI_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
W=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
go build -o "$W/pncd" ./cmd/pncd
go build -o "$W/pncctl" ./cmd/pncctl

crypto_ns=$(go test -run '^$' -bench 'BenchmarkPureCrypto$' -benchtime 2s ./ca/ | awk '/^BenchmarkPureCrypto/ {print $3}')
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rows=()

run() { # run NAME STORE_URL
  local name=$1 storeURL=$2 D="$W/${1// /_}" port=$((20000 + RANDOM % 20000))
  local P="$W/pncctl --data $D"
  [ -n "$storeURL" ] && P="$P --store $storeURL"
  $P init >/dev/null
  $P tenants create --name cpo1 --kind cpo --operator-id 'DE*ABC' >/dev/null
  token=$($P token create --tenant cpo1 --ttl 1h)
  openssl ecparam -name prime256v1 -genkey -noout -out "$D/tls.key" 2>/dev/null
  openssl req -new -key "$D/tls.key" -subj "/CN=pncd.localhost" -out "$D/tls.csr" 2>/dev/null
  $P issue --profile ocpp/csms-server --csr "$D/tls.csr" --chain >"$D/tls.pem"
  openssl ecparam -name prime256v1 -genkey -noout -out "$D/secc.key" 2>/dev/null
  openssl req -new -key "$D/secc.key" -subj "/CN=DE*ABC*E1/DC=CPO" -out "$D/secc.csr" 2>/dev/null
  python3 -c 'import json,sys; print(json.dumps({"profile": "iso15118-2/secc", "csr": open(sys.argv[1]).read()}))' "$D/secc.csr" >"$D/body.json"
  cat >"$D/post.lua" <<LUA
wrk.method = "POST"
wrk.body = io.open("$D/body.json"):read("*a")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA
  local env=()
  [ -n "$storeURL" ] && env=(env PNCPKI_STORE="$storeURL")
  "${env[@]}" "$W/pncd" --data "$D" --listen 127.0.0.1:$port --tls-cert "$D/tls.pem" --tls-key "$D/tls.key" \
    --api-rate 0 --ocsp-presign-interval -1s 2>"$D/pncd.log" &
  local pid=$!
  for _ in $(seq 100); do curl -sk -o /dev/null "https://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  wrk -t2 -c$CONN -d3s -s "$D/post.lua" "https://127.0.0.1:$port/v1/certificates" >/dev/null # warm-up
  local c0 c1 out
  c0=$(cpu $pid)
  out=$(wrk --latency -t2 -c$CONN -d"$DUR" -s "$D/post.lua" "https://127.0.0.1:$port/v1/certificates")
  c1=$(cpu $pid)
  kill $pid; wait $pid 2>/dev/null || true
  local reqs rps p50 p99 non2xx
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  cpu_us=$(awk -v c=$((c1 - c0)) -v r="$reqs" 'BEGIN {printf "%.0f", c * 10000 / r}')
  rows+=("$(printf '%-24s %10s %10s %10s %12s %10s %s' "$name" "$rps" "$p50" "$p99" "$cpu_us" \
    "$(awk -v c="$cpu_us" -v p="$crypto_ns" 'BEGIN {printf "%.2fx", c * 1000 / p}')" "${non2xx:+($non2xx non-2xx)}")")
}

run "pncd SQLite" ""
schema="bench_$(date +%s)"
if psql "$PG" -qc "CREATE SCHEMA $schema" 2>/dev/null; then
  run "pncd PostgreSQL" "${PG}&search_path=$schema"
  psql "$PG" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true
else
  rows+=("pncd PostgreSQL          (no PostgreSQL at $PG)")
fi

echo
printf 'pure crypto (CSR check + signing), in process: %.0f us per certificate\n' "$(awk -v p="$crypto_ns" 'BEGIN {print p / 1000}')"
printf '%-24s %10s %10s %10s %12s %10s\n' "SignCSR over HTTPS" "certs/s" "p50" "p99" "CPU us/cert" "vs crypto"
printf '%s\n' "${rows[@]}"
