#!/usr/bin/env bash
# HTTP benchmarks against a node this script starts itself (make bench runs it
# with the test profile's services up). Each run is bounded in time; figures
# are printed beside the seed's. Load goes to 127.0.0.1 only.
#
#   BENCH_SECONDS   duration of each wrk run (default 10)
#   BENCH_PORT      node port (default 18181)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BIN=${VANTAGE_BIN:-$ROOT/build/vantage}
SECS=${BENCH_SECONDS:-10}
PORT=${BENCH_PORT:-18181}
URL=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
NODE_PID=

cleanup() {
  if [[ -n $NODE_PID ]] && kill -0 "$NODE_PID" 2>/dev/null; then
    kill "$NODE_PID"
    wait "$NODE_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "bench: wrk is missing (scripts/deps.sh installs it)" >&2; exit 1; }

echo "==> bench: CAF region round trips and I/O pool isolation"
"$ROOT/build/test/region_bench"

echo "==> bench: starting node on $URL"
VANTAGE_HTTP_PORT=$PORT VANTAGE_LOG_LEVEL=warn "$BIN" node >"$WORK/node.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 100); do
  curl -fs "$URL/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "$URL/healthz" >/dev/null || { echo "bench: node did not become healthy" >&2; cat "$WORK/node.log" >&2; exit 1; }

# A wishlist with 6 items to read back.
TOKEN=$("$BIN" token --sub usr_bench_reader --name "Bench Reader")
WL=$(curl -fs -XPOST "$URL/api/v2/wishlists" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"title":"Bench"}' | sed 's/.*"wishlist_id":"\([^"]*\)".*/\1/')
for p in 001 002 003 004 005 006; do
  curl -fs -XPOST "$URL/api/v2/wishlists/$WL/items" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d "{\"product_id\":\"prd_$p\"}" >/dev/null
done

# Writers: 400 users x 24 products, so nearly every add is a real insert.
RUN=$(date +%s)
{
  echo "tokens = {"
  for i in $(seq 1 400); do
    echo "  \"$("$BIN" token --sub "usr_bench_${RUN}_$i" --name "Writer $i")\","
  done
  echo "}"
} >"$WORK/tokens.lua"

cat >"$WORK/add.lua" <<LUA
dofile("$WORK/tokens.lua")
local counter = 0
request = function()
  counter = counter + 1
  local t = tokens[(counter * 7919 + math.random(1, 400)) % 400 + 1]
  local p = string.format("prd_%03d", math.random(1, 24))
  return wrk.format("POST", "/api/v2/wishlists/my/items",
    {["Authorization"] = "Bearer " .. t, ["Content-Type"] = "application/json"},
    '{"product_id":"' .. p .. '"}')
end
LUA

cat >"$WORK/get_wl.lua" <<LUA
request = function()
  return wrk.format("GET", "/api/v2/wishlists/$WL", {["Authorization"] = "Bearer $TOKEN"})
end
LUA

cat >"$WORK/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.2f %.2f %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    summary.requests))
end
LUA

results=()
run() {
  local name=$1 conns=$2 seed=$3 script=$4 path=$5
  local out
  cat "$script" "$WORK/report.lua" >"$WORK/run.lua"
  out=$(wrk -t2 -c"$conns" -d"${SECS}s" --latency -s "$WORK/run.lua" "$URL$path" | grep '^RESULT')
  read -r _ rps p50 p99 errors total <<<"$out"
  results+=("$(printf '| %-34s | %4s | %9s | %7s ms | %7s ms | %6s | %s |' "$name" "$conns" "$rps" "$p50" "$p99" "$errors" "$seed")")
}

echo "==> bench: wrk ${SECS}s per route"
echo 'request = function() return wrk.format("GET", "/api/v2/products/prd_007") end' >"$WORK/get_product.lua"
run "GET /api/v2/products/{id}" 64 "-" "$WORK/get_product.lua" "/api/v2/products/prd_007"
run "GET /api/v2/wishlists/{id} (6 items)" 64 "-" "$WORK/get_wl.lua" "/api/v2/wishlists/$WL"
run "POST /api/v2/wishlists/my/items" 32 "add from shared p50 28 / p99 112 ms" "$WORK/add.lua" "/api/v2/wishlists/my/items"

RSS=$(awk '/VmHWM/ {print $2}' "/proc/$NODE_PID/status")
echo
echo "| route | conns | req/s | p50 | p99 | errors | seed figure |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${results[@]}"
echo
echo "node peak RSS: $((RSS / 1024)) MiB (VmHWM)"
