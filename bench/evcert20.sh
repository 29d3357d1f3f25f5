#!/usr/bin/env bash
# ISO 15118-20 contract certificate installation benchmark
# (Get15118EVCertificate with a -20 CertificateInstallationReq), for each
# security variant: secp521r1 (ECDSA P-521, ECDH P-521) and Ed448 (Ed448,
# X448).
#
# In process: BenchmarkInstall20 (the contract service with the durable
# SQLite store, every request a V2G session of its own, two goroutines)
# for the rate, and BenchmarkInstallStages20 (one installation at a time,
# each stage in its thread's CPU time; store is the commit's wall time)
# next to the public-key operations each stage holds
# (BenchmarkPublicKeyOps20, BenchmarkPublicKeyOps20Ed448): the crypto floor.
# Over the API: pncd on SQLite behind HTTPS, posting
# OCPPService/HandleRequest over OCPP 2.1 as a CSMS forwards a vehicle's
# request, every request prepared before the timed phase, CONN keep-alive
# clients back to back.
#
#   bench/evcert20.sh [duration]    # default 15s; CONN=16
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-15s}; CONN=${CONN:-16}
W=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT
go build -o "$W/pncd" ./cmd/pncd
go build -o "$W/pncctl" ./cmd/pncctl
go build -o "$W/signload" ./bench/signload

echo "== in process (go test -bench 'Install20|InstallStages20|PublicKeyOps20' ./contract)"
go test -run '^$' -bench 'BenchmarkInstall20$|BenchmarkInstallStages20$|BenchmarkPublicKeyOps20$|BenchmarkPublicKeyOps20Ed448$' -benchtime 3s ./contract >"$W/bench.txt"
for v in secp521r1 Ed448; do
  ops=BenchmarkPublicKeyOps20; [ "$v" = Ed448 ] && ops=BenchmarkPublicKeyOps20Ed448
  awk -v variant="$v" -v ops="$ops" '
  $1 ~ "^BenchmarkInstall20/" variant "(-[0-9]+)?$" { ns=$3 }
  $1 ~ "^BenchmarkInstallStages20/" variant "(-[0-9]+)?$" { for (i=5; i<NF; i+=2) { s=$(i+1); sub(/-us$/, "", s); st[s]=$i } }
  $1 ~ "^" ops "/verify" { v=$3/1000 } $1 ~ "^" ops "/sign" { g=$3/1000 }
  $1 ~ "^" ops "/keygen" { k=$3/1000 } $1 ~ "^" ops "/ecdh" { e=$3/1000 }
  END {
    printf "\n%s: %.0f installations/s in process (%.0f us each, wall time on 2 goroutines)\n", variant, 1e9/ns, ns/1000
    pk["decode"]=0; pk["verify"]=2*v; pk["keygen"]=k; pk["issue"]=g; pk["store"]=0; pk["encrypt"]=e; pk["sign"]=g; pk["encode"]=0
    ops2["decode"]="-"; ops2["verify"]="2 verify"; ops2["keygen"]="1 keygen"; ops2["issue"]="1 sign"; ops2["store"]="- (commit, wall)"
    ops2["encrypt"]="1 keygen + DH"; ops2["sign"]="1 sign"; ops2["encode"]="-"
    printf "%-8s %10s %16s %12s %8s\n", "stage", "CPU us", "public-key ops", "their us", "ratio"
    n=split("decode verify keygen issue store encrypt sign encode", order, " ")
    for (i=1; i<=n; i++) { s=order[i]; r="-"; if (pk[s] > 0) r=sprintf("%.2fx", st[s]/pk[s]); printf "%-8s %10.0f %16s %12.0f %8s\n", s, st[s], ops2[s], pk[s], r }
    floor=2*v+2*k+e+2*g
    printf "crypto floor %.0f us of CPU per installation (%.0f/s on 2 cores); measured %.2fx of it\n", floor, 2e6/floor, 2*ns/1000/floor
  }' "$W/bench.txt"
done

echo
echo "== over the API (pncd on SQLite, HTTPS, OCPP 2.1, $CONN clients, $DUR)"
D="$W/data"; port=$((20000 + RANDOM % 20000))
P="$W/pncctl --data $D"
$P init --iso15118-20 >/dev/null
mkdir -p "$W/anchors/OEMRootCertificate"
for v in p521 ed448; do
  pcid=$("$W/signload" -mode ev20 -variant $v -setup "$W/ev-$v")
  cp "$W/ev-$v/anchors/OEMRootCertificate/oem-root.pem" "$W/anchors/OEMRootCertificate/oem-root-$v.pem"
done
$P tenants create --name cpo1 --kind cpo --operator-id 'DE*ABC' >/dev/null
$P tenants create --name emsp1 --kind emsp --provider-id 'DE*8AA' >/dev/null
$P stations put --id CS-1 --tenant cpo1 --serial SN-1 --ocpp 2.1 >/dev/null
$P contracts put --emaid DE8AAC12345678 --tenant emsp1 --pcid "$pcid" --default >/dev/null
token=$($P token create --tenant cpo1 --ttl 1h 2>/dev/null)
openssl ecparam -name prime256v1 -genkey -noout -out "$D/tls.key" 2>/dev/null
openssl req -new -key "$D/tls.key" -subj "/CN=pncd.localhost" -out "$D/tls.csr" 2>/dev/null
$P issue --profile ocpp/csms-server --csr "$D/tls.csr" --chain >"$D/tls.pem"
"$W/pncd" --data "$D" --listen 127.0.0.1:$port --tls-cert "$D/tls.pem" --tls-key "$D/tls.key" --trust-anchors "$W/anchors" \
  --api-rate 0 --ocsp-presign-interval -1s 2>"$D/pncd.log" &
pid=$!
for _ in $(seq 100); do curl -sk -o /dev/null "https://127.0.0.1:$port/healthz" && break; sleep 0.1; done
printf '%-10s %10s %10s %10s %12s %s\n' "variant" "inst/s" "p50" "p99" "CPU us/inst" "failed"
stages=()
for v in p521 ed448; do
  prepare=250; [ $v = ed448 ] && prepare=1000  # requests per second the run can use, above what it reaches
  out=$("$W/signload" -mode ev20 -variant $v -url "https://127.0.0.1:$port/pncpki.v1.OCPPService/HandleRequest" -token "$token" \
    -d "$DUR" -pid $pid -c "$CONN" -prepare $prepare)
  read -r reqs rps p50 p99 cpu fails err <<<"$(head -1 <<<"$out")"
  printf '%-10s %10s %10s %10s %12s %s %s\n' "$v" "$rps" "$p50" "$p99" "$cpu" "$fails" "$([ "$fails" != 0 ] && echo "$err")"
  stages+=("$v: $(sed -n 2p <<<"$out" | sed 's/^stages //')")
done
kill $pid; wait $pid 2>/dev/null || true
echo "server stage means at $CONN clients (us):"
printf '  %s\n' "${stages[@]}"
