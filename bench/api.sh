#!/usr/bin/env bash
# API issuance benchmark: SignCSR over HTTPS (16 concurrent keep-alive
# clients, every request prepared before the timed phase) against pncd on
# SQLite and on PostgreSQL, and step-ca v0.30.2's /1.0/sign under the same
# load (a one-time JWK provisioner token per request) as the reference.
# Prints certificates/s, p50/p99 and server CPU time per certificate next to
# the in-process cost of the pure crypto (CSR signature check + signing).
#
#   bench/api.sh [duration]        # default 15s; PostgreSQL from PNCPKI_TEST_POSTGRES
#                                  # or postgres://postgres@127.0.0.1:5432/test
#   RUNS=3 bench/api.sh            # the three servers and the pure crypto, three
#                                  # times in turn: on a machine whose speed drifts,
#                                  # each run's ratios compare like with like
# step-ca and the step CLI are built once into ~/.cache/pncpki-bench/step-bin.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-15s}; CONN=16
PG=${PNCPKI_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
STEPBIN=${STEPBIN:-$HOME/.cache/pncpki-bench/step-bin}
W=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT
go build -o "$W/pncd" ./cmd/pncd
go build -o "$W/pncctl" ./cmd/pncctl
go build -o "$W/signload" ./bench/signload
mkdir -p "$STEPBIN"
[ -x "$STEPBIN/step-ca" ] || CGO_ENABLED=0 GOBIN="$STEPBIN" go install github.com/smallstep/certificates/cmd/step-ca@v0.30.2
[ -x "$STEPBIN/step" ] || CGO_ENABLED=0 GOBIN="$STEPBIN" go install github.com/smallstep/cli/cmd/step@v0.30.2

RUNS=${RUNS:-1}
go test -c -o "$W/ca.test" ./ca/
rows=()
declare -A rate

row() { # row NAME "reqs rps p50 p99 cpu fails err"
  local name=$1; read -r reqs rps p50 p99 cpu fails err <<<"$2"
  rate[$name]=$rps
  local vs="-"
  [ "$cpu" != "-" ] && vs=$(awk -v c="$cpu" -v p="$crypto_ns" 'BEGIN {printf "%.2fx", c * 1000 / p}')
  rows+=("$(printf '%-24s %10s %10s %10s %12s %10s %s' "$name" "$rps" "$p50" "$p99" "$cpu" "$vs" "$([ "$fails" != 0 ] && echo "($fails failed: $err)")")")
}

pncd() { # pncd NAME STORE_URL
  local name=$1 storeURL=$2 D="$W/${1// /_}" port=$((20000 + RANDOM % 20000))
  local P="$W/pncctl --data $D"
  [ -n "$storeURL" ] && P="$P --store $storeURL"
  $P init >/dev/null
  $P tenants create --name cpo1 --kind cpo --operator-id 'DE*ABC' >/dev/null
  token=$($P token create --tenant cpo1 --ttl 1h 2>/dev/null)
  openssl ecparam -name prime256v1 -genkey -noout -out "$D/tls.key" 2>/dev/null
  openssl req -new -key "$D/tls.key" -subj "/CN=pncd.localhost" -out "$D/tls.csr" 2>/dev/null
  $P issue --profile ocpp/csms-server --csr "$D/tls.csr" --chain >"$D/tls.pem"
  local env=()
  [ -n "$storeURL" ] && env=(env PNCPKI_STORE="$storeURL")
  "${env[@]}" "$W/pncd" --data "$D" --listen 127.0.0.1:$port --tls-cert "$D/tls.pem" --tls-key "$D/tls.key" \
    --api-rate 0 --ocsp-presign-interval -1s 2>"$D/pncd.log" &
  local pid=$!
  for _ in $(seq 100); do curl -sk -o /dev/null "https://127.0.0.1:$port/healthz" && break; sleep 0.1; done
  row "$name" "$("$W/signload" -mode pncd -url "https://127.0.0.1:$port/v1/certificates" -token "$token" -c $CONN -d "$DUR" -pid $pid)"
  kill $pid; wait $pid 2>/dev/null || true
}

stepca() { # stepca NAME
  local name=$1 S="$W/step-$RANDOM" port=$((20000 + RANDOM % 20000))
  mkdir -p "$S"; echo "bench-password" >"$S/pw"
  STEPPATH="$S" "$STEPBIN/step" ca init --name "bench CA" --dns 127.0.0.1 --address "127.0.0.1:$port" \
    --provisioner bench --password-file "$S/pw" --deployment-type standalone >/dev/null 2>&1
  STEPPATH="$S" "$STEPBIN/step-ca" --password-file "$S/pw" "$S/config/ca.json" >"$S/step-ca.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sk -o /dev/null "https://127.0.0.1:$port/health" && break; sleep 0.1; done
  row "$name" "$("$W/signload" -mode step -url "https://127.0.0.1:$port/1.0/sign" -cn bench.example \
    -ca-config "$S/config/ca.json" -password-file "$S/pw" -root "$S/certs/root_ca.crt" -c $CONN -d "$DUR" -pid $pid)"
  kill $pid; wait $pid 2>/dev/null || true
}

for run in $(seq "$RUNS"); do
  tag=""; [ "$RUNS" -gt 1 ] && tag=" run $run"
  crypto_ns=$(cd ca && "$W/ca.test" -test.run '^$' -test.bench 'BenchmarkPureCrypto$' -test.benchtime 2s | awk '/^BenchmarkPureCrypto/ {print $3}')
  rows+=("$(printf 'run %d: pure crypto (CSR check + signing), in process: %.0f us per certificate' "$run" "$(awk -v p="$crypto_ns" 'BEGIN {print p / 1000}')")")
  stepca "step-ca v0.30.2$tag"
  pncd "pncd SQLite$tag" ""
  schema="bench_$(date +%s)"
  if psql "$PG" -qc "CREATE SCHEMA $schema" 2>/dev/null; then
    pncd "pncd PostgreSQL$tag" "${PG}&search_path=$schema"
    psql "$PG" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true
  else
    rows+=("pncd PostgreSQL      (no PostgreSQL at $PG)")
  fi
  for n in "pncd SQLite$tag" "pncd PostgreSQL$tag"; do
    [ -n "${rate[$n]:-}" ] && [ -n "${rate[step-ca v0.30.2$tag]:-}" ] &&
      rows+=("$(awk -v a="${rate[$n]}" -v b="${rate[step-ca v0.30.2$tag]}" -v n="$n" 'BEGIN {printf "%s / step-ca: %.2fx (target >= 2.5x)", n, a / b}')")
  done
done

echo
printf '%-24s %10s %10s %10s %12s %10s\n' "SignCSR over HTTPS" "certs/s" "p50" "p99" "CPU us/cert" "vs crypto"
printf '%s\n' "${rows[@]}"
echo "CPU target: pncd at most 1.5x the pure crypto"
