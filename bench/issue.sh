#!/usr/bin/env bash
# Full issuance (CSR -> policy -> lint -> sign -> durable SQLite commit) next
# to bare x509.CreateCertificate with the same CA key, in one run.
# Usage: bench/issue.sh [benchtime] [count]   (defaults: 3s, 3)
set -euo pipefail
cd "$(dirname "$0")/.."
bt=${1:-3s}; count=${2:-3}
out=$(go test -run '^$' -bench 'BenchmarkIssue$|BenchmarkCreateCertificate$' -benchtime "$bt" -count "$count" ./ca/)
echo "$out" | awk '
/^Benchmark/ {
  name=$1; sub(/-[0-9]+$/, "", name)
  for (i = 2; i <= NF; i++) if ($(i+1) == "certs/s") { v[name] = v[name] " " $i; s[name] += $i; n[name]++ }
}
END {
  printf "%-28s %12s   %s\n", "benchmark", "mean certs/s", "runs"
  for (k in s) printf "%-28s %12.0f  %s\n", k, s[k]/n[k], v[k]
  if (n["BenchmarkIssue"] && n["BenchmarkCreateCertificate"]) {
    r = (s["BenchmarkIssue"]/n["BenchmarkIssue"]) / (s["BenchmarkCreateCertificate"]/n["BenchmarkCreateCertificate"])
    printf "full issuance / bare signing: %.1f%% (target >= 40%%)\n", 100*r
  }
}'
