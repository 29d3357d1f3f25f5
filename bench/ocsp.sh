#!/usr/bin/env bash
# OCSP serving benchmark: pncd against cfssl ocspserve (v1.6.5, pre-signed
# responses for the same certificates) and openssl ocsp, all on loopback,
# loaded by wrk with GET requests for a random hot set of certificates.
# Prints one table: req/s, p50, p99 and server CPU time per response.
#
#   bench/ocsp.sh                 # 100,000 certificates, 10,000 hot, 15 s runs
#   N=1000000 RSS_ONLY=1 bench/ocsp.sh   # pncd RSS with 1M certificates, responses in Redis
#
# Data is kept in $BENCH_DIR (default ~/.cache/pncpki-bench/N) between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}; HOT=${HOT:-10000}; DUR=${DUR:-15s}; CONN=${CONN:-64}
B=${BENCH_DIR:-$HOME/.cache/pncpki-bench/$N}
mkdir -p "$B/bin"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[ -x "$B/bin/cfssl" ] || GOBIN="$B/bin" go install github.com/cloudflare/cfssl/cmd/cfssl@v1.6.5
go build -o "$B/bin/pncd" ./cmd/pncd
go build -o "$B/bin/ocspdata" ./bench/ocspdata
"$B/bin/ocspdata" -data "$B/data" -out "$B/out" -n "$N" -hot "$HOT"

cat >"$B/paths.lua" <<'LUA'
-- GET a random path of the hot set; no connect probe (it makes the OpenSSL
-- 3.0 responder spin), optional Connection: close.
local prefix = os.getenv("STRIP") or ""
local paths = {}
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line:sub(#prefix + 1) end
function wrk.resolve(host, service) wrk.addrs = wrk.lookup(host, service) end
local close = os.getenv("CLOSE") == "1"
request = function()
  local p = paths[math.random(#paths)]
  if close then return wrk.format("GET", p, { Connection = "close" }) end
  return wrk.format("GET", p)
end
LUA

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rows=()
# measure NAME PID URL STRIP CLOSE [WARM]: warm up (unless WARM=0), then a
# timed run.
measure() {
  local name=$1 pid=$2 url=$3 strip=$4 close=$5 warm=${6:-1} out c0 c1 reqs rps p50 p99
  if [ "$warm" = 1 ]; then
    PATHS="$B/out/paths.txt" STRIP=$strip CLOSE=$close wrk -t2 -c"$CONN" -d3s -s "$B/paths.lua" "$url" >/dev/null
  fi
  c0=$(cpu "$pid")
  out=$(PATHS="$B/out/paths.txt" STRIP=$strip CLOSE=$close wrk --latency -t2 -c"$CONN" -d"$DUR" -s "$B/paths.lua" "$url")
  c1=$(cpu "$pid")
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  rows+=("$(printf '%-28s %10s %10s %10s %12s %s' "$name" "$rps" "$p50" "$p99" \
    "$(awk -v c=$((c1 - c0)) -v r="$reqs" 'BEGIN {printf "%.1f", c * 10000 / r}')" "${non2xx:+($non2xx non-2xx)}")")
}

wait_http() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer at $1" >&2; return 1; }

if [ "${RSS_ONLY:-}" = 1 ]; then
  REDIS=${PNCPKI_TEST_REDIS:-redis://127.0.0.1:6379/0}
  redis-cli -u "$REDIS" --scan --pattern 'pncpki:ocsp:*' | xargs -r -n 1000 redis-cli -u "$REDIS" del >/dev/null
  "$B/bin/pncd" --data "$B/data" --listen 127.0.0.1:18080 --redis "$REDIS" --ocsp-presign-rate 100000 2>"$B/pncd.log" &
  pid=$!; trap 'kill $pid 2>/dev/null' EXIT
  wait_http http://127.0.0.1:18080/healthz
  # Wait until the first pre-signing pass is done (the signature count stops growing).
  last=-1
  while :; do
    now=$(curl -s http://127.0.0.1:18080/metrics | awk '/^pncpki_ocsp_signatures_total/ {print $2}')
    [ "$now" = "$last" ] && break; last=$now; sleep 5
  done
  measure "pncd, $N certs, Redis tier" "$pid" http://127.0.0.1:18080 "" 0
  printf '%s\n' "${rows[@]}"
  echo "pncd RSS with $N certificates (responses in Redis): $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$pid/status), signatures: $last"
  exit 0
fi

# pncd: pre-signing off, the warm-up fills the cache.
"$B/bin/pncd" --data "$B/data" --listen 127.0.0.1:18080 --ocsp-cache-mb 512 --ocsp-presign-interval -1s 2>"$B/pncd.log" &
pncd=$!
"$B/bin/cfssl" ocspserve -address 127.0.0.1 -port 18081 -responses "$B/out/responses.txt" -loglevel 5 2>"$B/cfssl.log" &
cfssl=$!
trap 'kill $pncd $cfssl 2>/dev/null' EXIT
wait_http http://127.0.0.1:18080/healthz
wait_http http://127.0.0.1:18081/
measure "pncd keep-alive" $pncd http://127.0.0.1:18080 "" 0
measure "cfssl keep-alive" $cfssl http://127.0.0.1:18081 /ocsp 0
measure "pncd close" $pncd http://127.0.0.1:18080 "" 1
measure "cfssl close" $cfssl http://127.0.0.1:18081 /ocsp 1

# openssl ocsp listens on every interface: run it and its wrk in a network
# namespace of their own. It answers HTTP/1.0 and closes every connection.
key="$B/data/keys/cpo-sub2.key"
export -f measure cpu; export B CONN DUR
ossl=$(unshare -n bash -c '
  ip link set lo up
  openssl ocsp -index "'"$B/out/index.txt"'" -port 18082 -rsigner "'"$B/out/issuer.pem"'" -rkey "'"$key"'" -CA "'"$B/out/issuer.pem"'" -ignore_err >/dev/null 2>&1 &
  pid=$!
  # Probe with a real request: a bare connect would make it spin.
  p=$(head -1 "'"$B/out/paths.txt"'")
  for _ in $(seq 50); do curl -s -o /dev/null -m 2 "http://127.0.0.1:18082${p#/ocsp}" && break; sleep 0.2; done
  # No warm-up: it caches nothing, and the idle connections wrk leaves at
  # the end of a run would make it spin.
  rows=(); measure "openssl ocsp close" $pid http://127.0.0.1:18082 /ocsp 1 0
  kill $pid
  printf "%s\n" "${rows[@]}"
' 2>/dev/null || true)
[ -n "$ossl" ] && rows+=("$ossl")

echo
printf '%-28s %10s %10s %10s %12s\n' "server ($N certs, $HOT hot)" "req/s" "p50" "p99" "CPU us/resp"
printf '%s\n' "${rows[@]}"
