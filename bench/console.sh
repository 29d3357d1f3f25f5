#!/usr/bin/env bash
# Certificate search and the console's pages on a store of a million
# certificates (SQLite, and PostgreSQL when PNCPKI_TEST_POSTGRES is set):
# server time per request, median, p95 and max.
# Usage: bench/console.sh [-n 1000000] [-runs 30] [-postgres URL]
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench/console "$@"
