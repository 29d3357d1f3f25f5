#!/usr/bin/env bash
# Contract certificate installation benchmark (Get15118EVCertificate).
#
# In process: BenchmarkInstall (the contract service with the durable SQLite
# store, a new vehicle signature per request, two goroutines) for the rate,
# and BenchmarkInstallStages (one installation at a time, each stage in its
# thread's CPU time; store is the commit's wall time) next to the
# public-key operations each stage holds.
# Over the API: pncd on SQLite behind HTTPS, posting OCPPService/HandleRequest
# as a CSMS forwards a vehicle's CertificateInstallationReq, every request
# prepared before the timed phase: first CONN keep-alive clients back to back
# (the rate pncd sustains), then an open-loop load of RATE installations/s
# started on a fixed schedule (the latency at that rate, counted from each
# request's scheduled start).
#
#   bench/evcert.sh [duration]    # default 15s; CONN=32, RATE=1000
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-15s}; CONN=${CONN:-32}; RATE=${RATE:-1000}
W=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT
go build -o "$W/pncd" ./cmd/pncd
go build -o "$W/pncctl" ./cmd/pncctl
go build -o "$W/signload" ./bench/signload

echo "== in process (go test -bench BenchmarkInstall ./contract)"
go test -run '^$' -bench 'BenchmarkInstall$|BenchmarkInstallStages$|BenchmarkPublicKeyOps$' -benchtime 3s ./contract >"$W/bench.txt"
awk '
/^BenchmarkInstall(-[0-9]+)?[ \t]/ { ns=$3 }
/^BenchmarkInstallStages/ { for (i=5; i<NF; i+=2) { s=$(i+1); sub(/-us$/, "", s); st[s]=$i } }
/^BenchmarkPublicKeyOps\/verify/ { v=$3/1000 } /^BenchmarkPublicKeyOps\/sign/ { g=$3/1000 }
/^BenchmarkPublicKeyOps\/keygen/ { k=$3/1000 } /^BenchmarkPublicKeyOps\/ecdh/ { e=$3/1000 }
END {
  printf "%.0f installations/s in process (%.0f us each, wall time on 2 goroutines)\n", 1e9/ns, ns/1000
  pk["decode"]=0; pk["verify"]=2*v; pk["keygen"]=k; pk["issue"]=g; pk["store"]=0; pk["encrypt"]=e; pk["sign"]=g; pk["encode"]=0
  ops["decode"]="-"; ops["verify"]="2 verify"; ops["keygen"]="1 keygen"; ops["issue"]="1 sign"; ops["store"]="- (commit, wall)"; ops["encrypt"]="1 keygen + ECDH"; ops["sign"]="1 sign"; ops["encode"]="-"
  printf "%-8s %10s %16s %12s %8s\n", "stage", "CPU us", "public-key ops", "their us", "ratio"
  n=split("decode verify keygen issue store encrypt sign encode", order, " ")
  for (i=1; i<=n; i++) { s=order[i]; r="-"; if (pk[s] > 0) r=sprintf("%.2fx", st[s]/pk[s]); printf "%-8s %10.0f %16s %12.0f %8s\n", s, st[s], ops[s], pk[s], r }
}' "$W/bench.txt"

echo
echo "== over the API (pncd on SQLite, HTTPS, $CONN clients, $DUR)"
D="$W/data"; port=$((20000 + RANDOM % 20000))
P="$W/pncctl --data $D"
$P init >/dev/null
pcid=$("$W/signload" -mode ev -setup "$W/ev")
$P tenants create --name cpo1 --kind cpo --operator-id 'DE*ABC' >/dev/null
$P tenants create --name emsp1 --kind emsp --provider-id 'DE*8AA' >/dev/null
$P tenants create --name oem1 --kind oem >/dev/null
$P stations put --id CS-1 --tenant cpo1 --serial SN-1 >/dev/null
$P provisioning put --tenant oem1 --cert "$W/ev/prov.pem" >/dev/null
$P contracts put --emaid DE8AAC12345678 --tenant emsp1 --pcid "$pcid" --default >/dev/null
token=$($P token create --tenant cpo1 --ttl 1h 2>/dev/null)
openssl ecparam -name prime256v1 -genkey -noout -out "$D/tls.key" 2>/dev/null
openssl req -new -key "$D/tls.key" -subj "/CN=pncd.localhost" -out "$D/tls.csr" 2>/dev/null
$P issue --profile ocpp/csms-server --csr "$D/tls.csr" --chain >"$D/tls.pem"
"$W/pncd" --data "$D" --listen 127.0.0.1:$port --tls-cert "$D/tls.pem" --tls-key "$D/tls.key" --trust-anchors "$W/ev/anchors" \
  --api-rate 0 --ocsp-presign-interval -1s 2>"$D/pncd.log" &
pid=$!
for _ in $(seq 100); do curl -sk -o /dev/null "https://127.0.0.1:$port/healthz" && break; sleep 0.1; done
load() { # load ARGS...: one signload run against pncd
  "$W/signload" -mode ev -url "https://127.0.0.1:$port/pncpki.v1.OCPPService/HandleRequest" -token "$token" -d "$DUR" -pid $pid "$@"
}
closed=$(load -c "$CONN" -prepare 2500)
open=$(load -c 64 -rate "$RATE" -prepare "$RATE")
kill $pid; wait $pid 2>/dev/null || true
printf '%-26s %10s %10s %10s %12s %s\n' "pncd SQLite" "inst/s" "p50" "p99" "CPU us/inst" "failed"
for r in "$CONN clients|$closed" "open loop at $RATE/s|$open"; do
  read -r reqs rps p50 p99 cpu fails err <<<"$(head -1 <<<"${r#*|}")"
  printf '%-26s %10s %10s %10s %12s %s %s\n' "${r%%|*}" "$rps" "$p50" "$p99" "$cpu" "$fails" "$([ "$fails" != 0 ] && echo "$err")"
done
echo "server stage means at $CONN clients (us): $(sed -n 2p <<<"$closed" | sed 's/^stages //')"
echo "targets: >= 1000 installations/s over the API, p99 < 10ms"
