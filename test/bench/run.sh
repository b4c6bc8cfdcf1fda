#!/usr/bin/env bash
# HTTP benchmarks against a node this script starts itself (make bench runs it
# with the test profile's services up). Each run is bounded in time; figures
# are printed beside the seed's. Load goes to 127.0.0.1 only.
#
#   BENCH_SECONDS   duration of each wrk run (default 10)
#   BENCH_FIXED_RUNS  runs of each fixed-rate view row (default 3; the row is
#                     the median run by p99)
#   BENCH_PORT      node port (default 18181)
#   BENCH_ONLY      get | add | share: run only those routes (default: all)
#   BENCH_WRITERS   users for the add route (default 1000 per second of BENCH_SECONDS)
#   BENCH_WRK_THREADS  wrk threads (default 1: a second competes for the cores)
#   BENCH_SHARE_OWNERS      users creating shares, each with a 3-item list (default 100)
#   BENCH_SHARE_RECIPIENTS  users adding from a share (default BENCH_WRITERS)
#   BENCH_SHARE_SPREAD      shares of the spread view variant (default 100; 0 skips it)
#   BENCH_RENDER_SECONDS    duration of the render load run (default 60)
#   BENCH_RENDER_BURST      concurrent requests of the render burst (default 500)
# The render section (BENCH_ONLY=render, test/bench/render_bench.cpp) starts
# nodes with browsers: one browser with one page back to back (the machine's
# limit for a page), then the default pool (3 x 2) under a load of 50
# clients and a burst, cache hits of one content, a share viewed 1,000 times,
# browser memory over a run with recycling, and renders under load while
# browsers recycle (the pool, and one browser). Other sections run their
# nodes with BROWSER_POOL_SIZE=0 (no browsers), as before the renderer;
# BENCH_BROWSERS=3 runs them with the default pool (share creation then
# waits for its preview within VANTAGE_PREVIEW_BUDGET_MS).
# The share section (BENCH_ONLY=share) starts the node with the share rate
# limits raised out of the way (VANTAGE_SHARE_CREATE_LIMIT=100000000,
# VANTAGE_SHARE_LOOKUP_LIMIT=1000000000; the limiter still runs) and restarts
# it once with VANTAGE_VIEW_BATCH_MAX=1. Views are checked against the stored
# view_count; fixed_rate measures views at the bar's fixed 5,000/s.
# It needs the services' environment (VANTAGE_REDIS_URL for
# rate_limit_bench; VANTAGE_DATABASE_URL, if set, to wait for the outbox to
# drain between runs so one run's events are not published during the next).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BIN=${VANTAGE_BIN:-$ROOT/build/vantage}
SECS=${BENCH_SECONDS:-10}
PORT=${BENCH_PORT:-18181}
URL=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
NODE_PID=

RL_PREFIX=
cleanup() {
  local rc=$?
  if (( rc != 0 )) && [[ -s $WORK/node.log ]]; then
    echo "bench: failed (exit $rc); the node's last log lines:" >&2
    tail -n 20 "$WORK/node.log" >&2
  fi
  if [[ -n $NODE_PID ]] && kill -0 "$NODE_PID" 2>/dev/null; then
    kill "$NODE_PID"
    wait "$NODE_PID" 2>/dev/null || true
  fi
  # What this run made: its users, their wishlists, items and shares (a run
  # makes 10,000 writers with 23 items each). Left in the test profile's
  # database they pile up run after run (millions of items: later runs then
  # write into indexes larger than PostgreSQL's buffers), and the shares
  # (30-day default expiry) would all fall due together when a scenario
  # advances its clock by a month, keeping the expiry sweep busy with them
  # instead of the scenario's share.
  if [[ -n ${VANTAGE_DATABASE_URL:-} ]] && command -v psql >/dev/null; then
    psql "$VANTAGE_DATABASE_URL" -qAt \
      -c "DELETE FROM wishlists WHERE owner_id LIKE 'usr_bench_${RUN:-none}_%'" \
      -c "DELETE FROM users WHERE id LIKE 'usr_bench_${RUN:-none}_%'" >/dev/null 2>&1 || true
  fi
  # The bench node's rate-limit keys (best effort; they expire anyway).
  if [[ -n $RL_PREFIX && -n ${VANTAGE_REDIS_URL:-} ]] && command -v redis-cli >/dev/null; then
    redis-cli -u "$VANTAGE_REDIS_URL" --scan --pattern "${RL_PREFIX}*" 2>/dev/null \
      | xargs -r -n 500 redis-cli -u "$VANTAGE_REDIS_URL" UNLINK >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Fresh statistics before each measurement. The set-up (and the run before)
# bulk-loads tables that may never have been analyzed (make bench starts
# from an empty database): the node's prepared statements then keep plans
# made for empty tables, e.g. a sequential scan of wishlist_shares for
# every view's counter update until autovacuum's next analyze (seen: 6,184
# scans reading 123 million rows in one share section, twice the
# PostgreSQL CPU per view). A real deployment's tables are analyzed.
analyze_database() {
  [[ -n ${VANTAGE_DATABASE_URL:-} ]] && command -v psql >/dev/null || return 0
  psql "$VANTAGE_DATABASE_URL" -qAt -c "ANALYZE" >/dev/null 2>&1 || true
}

command -v wrk >/dev/null || { echo "bench: wrk is missing (scripts/deps.sh installs it)" >&2; exit 1; }

ONLY=${BENCH_ONLY:-}
case $ONLY in ""|get|add|share|render) ;; *) echo "bench: BENCH_ONLY must be get, add, share or render" >&2; exit 2 ;; esac
RUN=$(date +%s)

if [[ $ONLY != share && $ONLY != render ]]; then
  echo "==> bench: CAF region round trips and I/O pool isolation"
  "$ROOT/build/test/region_bench"
fi

# Something already answering on the port would be measured instead of our
# node (ours would fail to bind and the health check would still pass).
if curl -s -o /dev/null --max-time 1 "$URL/healthz" 2>/dev/null; then
  echo "bench: something already listens on $URL; pick another BENCH_PORT" >&2
  exit 1
fi

# The share limits are raised so they never refuse a bench request (the
# limiter still runs, so its Redis round trip is measured), under a prefix of
# this run's own: the lookup key of 127.0.0.1 would otherwise stay far ahead
# for other nodes of the profile sharing the default "rl:" prefix.
RL_PREFIX="rlbench:$RUN:$$:"
start_node() { # extra VAR=value settings for this node
  echo "==> bench: starting node on $URL${1:+ ($*)}"
  # Rendered images go to this run's own folder (removed at exit): a render
  # run writes a few GB.
  env VANTAGE_HTTP_PORT="$PORT" VANTAGE_LOG_LEVEL=warn BROWSER_POOL_SIZE="${BENCH_BROWSERS:-0}" \
    VANTAGE_OBJECT_STORE_DIR="$WORK/objects" \
    VANTAGE_SHARE_CREATE_LIMIT=100000000 VANTAGE_SHARE_LOOKUP_LIMIT=1000000000 \
    VANTAGE_RATE_LIMIT_PREFIX="$RL_PREFIX" "$@" "$BIN" node >>"$WORK/node.log" 2>&1 &
  NODE_PID=$!
  local deadline=$((SECONDS + 30))
  until curl -fs -o /dev/null --max-time 1 "$URL/healthz"; do
    if ! kill -0 "$NODE_PID" 2>/dev/null || (( SECONDS >= deadline )); then
      echo "bench: node did not become healthy" >&2; cat "$WORK/node.log" >&2; exit 1
    fi
    sleep 0.1
  done
  kill -0 "$NODE_PID" 2>/dev/null || { echo "bench: node exited" >&2; cat "$WORK/node.log" >&2; exit 1; }
}
stop_node() {
  [[ -n $NODE_PID ]] || return 0
  kill "$NODE_PID" 2>/dev/null || true
  local deadline=$((SECONDS + 20))
  while kill -0 "$NODE_PID" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.1; done
  if kill -0 "$NODE_PID" 2>/dev/null; then
    echo "bench: node $NODE_PID ignored SIGTERM; killing it" >&2
    kill -KILL "$NODE_PID"
  fi
  wait "$NODE_PID" 2>/dev/null || true
  NODE_PID=
}
peak_rss_mib() { echo $(( $(awk '/VmHWM/ {print $2}' "/proc/$NODE_PID/status") / 1024 )); }

metric() { # NAME: the first sample of NAME on the node's /metrics
  # awk reads to the end: exiting at the match would close the pipe under
  # curl (write error 23, which pipefail makes fatal) on a long /metrics.
  curl -fs "$URL/metrics" | awk -v n="$1" '$1 == n && !found { print $2; found = 1 }'
}
lookup_check_buckets() { # "le cumulative-count" of the gateway's share-lookup check histogram
  curl -fs "$URL/metrics" | awk '/^vantage_rate_limit_check_seconds_bucket\{rule="share_lookup",le="/ {
    match($1, /,le="[^"]*"/); print substr($1, RSTART + 5, RLENGTH - 6), $2 }'
}
check_quantiles() { # BEFORE AFTER (lookup_check_buckets files): "checks p50_ms p99_ms" in between
  # Linear within a bucket, as Prometheus' histogram_quantile.
  awk 'NR == FNR { b[$1] = $2; next } { le[++n] = $1; c[n] = $2 - b[$1] } END {
    total = c[n]; if (total <= 0) { print 0, "-", "-"; exit }
    for (k = 1; k <= 2; k++) {
      rank = (k == 1 ? 0.5 : 0.99) * total; lo = 0; below = 0
      for (i = 1; i <= n; i++) {
        if (c[i] >= rank) { v = le[i] == "+Inf" ? lo : lo + (le[i] - lo) * (rank - below) / (c[i] - below); break }
        lo = le[i]; below = c[i]
      }
      q[k] = sprintf("%.3f", v * 1000)
    }
    print total, q[1], q[2] }' "$1" "$2"
}
metric_total() { # NAME: the sum of NAME's samples over all its labels
  curl -fs "$URL/metrics" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { t += $2 } END { printf "%d", t }'
}
wait_pages() { # N: until N warm pages are free
  local deadline=$((SECONDS + 60))
  until [[ $(curl -fs "$URL/healthz" | sed 's/.*"available":\([0-9]*\).*/\1/') -ge $1 ]]; do
    (( SECONDS < deadline )) || { echo "bench: browsers did not start" >&2; exit 1; }
    sleep 0.2
  done
}
render_rows=()
render_row() { # LABEL RESULT-LINE SEED
  local label=$1 line=$2 seed=$3
  declare -A f
  for kv in $line; do [[ $kv == *=* ]] && f[${kv%%=*}]=${kv#*=}; done
  render_rows+=("$(printf '| %s | %s | %s / %s / %s / %s | %s / %s ms | %s / %s ms | %s / %s ms | %s | %s |' \
    "$label" "${f[ok_per_s]}" "${f[ok]}" "${f[rejected]}" "${f[timeouts]}" "${f[other]}" \
    "${f[e2e_p50]}" "${f[e2e_p99]}" "${f[render_p50]}" "${f[render_p99]}" \
    "${f[reject_p50]}" "${f[reject_p99]}" \
    "queue ${f[queue_p50]}, prepare ${f[prepare_p50]}, load ${f[load_p50]}, capture+encode ${f[capture_p50]}, upload ${f[upload_p50]}" "$seed")")
}
live_browsers() { # browser processes of the node that have not exited
  ps -o stat=,comm= --ppid "$NODE_PID" | awk '$1 !~ /^Z/ && $2 ~ /chrom/' | wc -l
}
recycling_row() { # BROWSERS PAGES RECYCLE-AFTER CLIENTS: a load run while browsers recycle
  local secs=$((RSECS / 2)) out restarts sampler
  echo "==> bench: renders under load, $1 x $2 pages recycled every $3"
  start_node BROWSER_POOL_SIZE="$1" BROWSER_PAGES="$2" BROWSER_RECYCLE_AFTER="$3"
  wait_pages $(($1 * $2))
  # The most browsers alive at once, sampled every 100 ms during the load.
  echo 0 >"$WORK/most_browsers"
  ( most=0
    while :; do
      n=$(live_browsers)
      (( n > most )) && { most=$n; echo "$most" >"$WORK/most_browsers"; }
      sleep 0.1
    done ) &
  sampler=$!
  out=$("$RB" "$URL" load --concurrency "$4" --seconds "$secs"); echo "$out"
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  restarts=$(metric_total og_renderer_browser_restarts_total)
  render_row "$1 browser(s) x $2 pages, $4 clients for $secs s, recycled every $3 ($restarts restarts, at most $(cat "$WORK/most_browsers") browsers alive)" \
    "$(grep '^RESULT' <<<"$out")" "p50 512 / p99 4,210 ms, 1.8% errors"
  stop_node
}
render_section() {
  local RB="$ROOT/build/test/render_bench" out
  local RSECS=${BENCH_RENDER_SECONDS:-60} BURST=${BENCH_RENDER_BURST:-500}
  echo "==> bench: renders, one browser with one page, back to back (the limit)"
  start_node BROWSER_POOL_SIZE=1 BROWSER_PAGES=1
  wait_pages 1
  "$RB" "$URL" sequential --requests 20 >/dev/null # warm
  out=$("$RB" "$URL" sequential --requests 200); echo "$out"
  render_row "1 browser x 1 page, back to back (200 renders)" "$(grep '^RESULT' <<<"$out")" "single render p50 478-521 ms"
  LIMIT=$(grep '^RESULT' <<<"$out" | sed 's/.*ok_per_s=\([0-9.]*\).*/\1/')
  stop_node

  echo "==> bench: renders, default pool (3 browsers x 2 pages)"
  start_node BROWSER_POOL_SIZE=3 BROWSER_PAGES=2 BROWSER_RECYCLE_AFTER=0
  wait_pages 6
  "$RB" "$URL" sequential --requests 12 >/dev/null
  out=$("$RB" "$URL" sequential --requests 100); echo "$out"
  render_row "pool 3x2, one at a time (100 renders)" "$(grep '^RESULT' <<<"$out")" "single render p50 478-521 ms"
  # Thumbnails that compress like photographs (the demo ones are drawings).
  local photos="${VANTAGE_CATALOG_DIR:-${VANTAGE_DATA_DIR:-$ROOT/var/run}/catalog}/images"
  "$RB" --make-photos "$photos"
  out=$("$RB" "$URL" sequential --requests 100 --images \
    /catalog/images/photo_1.png,/catalog/images/photo_2.png,/catalog/images/photo_3.png,/catalog/images/photo_4.png)
  echo "$out"
  render_row "pool 3x2, one at a time, photo-like thumbnails" "$(grep '^RESULT' <<<"$out")" "single render p50 478-521 ms"
  out=$("$RB" "$URL" load --concurrency 50 --seconds "$RSECS"); echo "$out"
  render_row "pool 3x2, 50 clients for ${RSECS} s" "$(grep '^RESULT' <<<"$out")" "p50 512 / p99 4,210 ms, 1.8% errors"
  LOAD_RPS=$(grep '^RESULT' <<<"$out" | sed 's/.*ok_per_s=\([0-9.]*\).*/\1/')
  out=$("$RB" "$URL" burst --requests "$BURST"); echo "$out"
  render_row "pool 3x2, burst of $BURST at once" "$(grep '^RESULT' <<<"$out")" "p50 512 / p99 4,210 ms, 1.8% errors"
  local before after
  before=$(metric og_renderer_renders_total)
  out=$("$RB" "$URL" repeat --requests 1000); echo "$out"
  after=$(metric og_renderer_renders_total)
  render_row "same content 1,000 times (renders: $((${after%.*} - ${before%.*})))" "$(grep '^RESULT' <<<"$out")" "-"

  # A share viewed 1,000 times (its HTML page and preview image each), from
  # before its creation: the one render it needs happens there.
  local tok wl st
  before=$(metric og_renderer_renders_total)
  tok=$("$BIN" token --sub "usr_bench_render_$RUN" --name "Maya C.")
  wl=$(curl -fs -XPOST "$URL/api/v2/wishlists" -H "Authorization: Bearer $tok" \
    -H 'Content-Type: application/json' -d '{"title":"Render bench"}' | sed 's/.*"wishlist_id":"\([^"]*\)".*/\1/')
  for p in 002 006 011 015; do
    curl -fs -o /dev/null -XPOST "$URL/api/v2/wishlists/$wl/items" -H "Authorization: Bearer $tok" \
      -H 'Content-Type: application/json' -d "{\"product_id\":\"prd_$p\"}"
  done
  st=$(curl -fs -XPOST "$URL/api/v2/wishlists/$wl/share" -H "Authorization: Bearer $tok" \
    -H 'Content-Type: application/json' -d '{"channel":"link"}' | sed 's/.*"share_token":"\([^"]*\)".*/\1/')
  for i in $(seq 1 1000); do
    echo "url = \"$URL/wishlists/shared/$st\""; echo "output = /dev/null"
    echo "url = \"$URL/social/$st/preview.png\""; echo "output = /dev/null"
  done >"$WORK/views.curl"
  VIEW_CODES=$(curl -s -w '%{http_code}\n' -K "$WORK/views.curl" | sort | uniq -c | awk '{printf "%s%s x %s", sep, $2, $1; sep=", "}')
  after=$(metric og_renderer_renders_total)
  SHARE_RENDERS=$((${after%.*} - ${before%.*}))
  stop_node

  echo "==> bench: browser memory over 1,000 renders, recycled every 200"
  start_node BROWSER_POOL_SIZE=3 BROWSER_PAGES=2 BROWSER_RECYCLE_AFTER=200
  wait_pages 6
  local mem=() done_renders=0
  while (( done_renders < 1000 )); do
    "$RB" "$URL" sequential --requests 100 >/dev/null
    done_renders=$((done_renders + 100))
    mem+=("$(awk -v b="$(metric og_renderer_memory_bytes)" 'BEGIN { printf "%.0f", b / 1048576 }')")
  done
  MEM="${mem[*]}"
  stop_node

  # Recycling under load: the default pool restarting each browser every
  # 100 renders under 50 clients, and one browser with two pages restarting
  # every 50 under 4 clients (its queue waits for nothing but renders). The
  # restart count says how many recycles the run saw.
  recycling_row 3 2 100 50
  recycling_row 1 2 50 4
  echo
  echo "| renders | renders/s | ok / 503 / 504 / other | accepted p50 / p99 | render step p50 / p99 | 503 after p50 / p99 | phases p50 (ms) | seed |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s
' "${render_rows[@]}"
  echo
  echo "- limit (1 browser x 1 page back to back): $LIMIT renders/s; pool 3x2 under load: $LOAD_RPS renders/s ($(awk -v a="$LOAD_RPS" -v b="$LIMIT" 'BEGIN { printf "%.0f", 100 * a / b }')% of the limit; bar >= 80%)"
  echo "- one share viewed 1,000 times (HTML page + preview image each; statuses: $VIEW_CODES): $SHARE_RENDERS renders (bar: once)"
  echo "- PSS of the 3 browsers' process trees after each 100 renders (MiB; recycled every 200): $MEM (seed: ~110 MB per browser, 520 MB per pod)"
}
if [[ $ONLY == render ]]; then
  render_section
  exit 0
fi

start_node

# A wishlist with 6 items to read back.
TOKEN=$("$BIN" token --sub usr_bench_reader --name "Bench Reader")
WL=$(curl -fs -XPOST "$URL/api/v2/wishlists" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' -d '{"title":"Bench"}' | sed 's/.*"wishlist_id":"\([^"]*\)".*/\1/')
for p in 001 002 003 004 005 006; do
  curl -fs -XPOST "$URL/api/v2/wishlists/$WL/items" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d "{\"product_id\":\"prd_$p\"}" >/dev/null
done

# Users for the write routes: COUNT tokens for ID_1..ID_COUNT written as a
# Lua table NAME to FILE, each user then created with its default list (one
# add of prd_024, in parallel, outside the measurement).
make_writers() { # ID DISPLAY-NAME COUNT TABLE-NAME FILE
  local id=$1 display=$2 count=$3 table=$4 file=$5
  "$BIN" token --sub "$id" --name "$display" --count "$count" >"$WORK/$table.txt"
  { echo "$table = {"; sed 's/.*/  "&",/' "$WORK/$table.txt"; echo "}"; } >"$file"
  local sep=""
  while read -r tok; do
    printf '%surl = "%s/api/v2/wishlists/my/items"\nheader = "Authorization: Bearer %s"\n' "$sep" "$URL" "$tok"
    printf 'header = "Content-Type: application/json"\ndata = "{\\"product_id\\":\\"prd_024\\"}"\n'
    printf 'output = "/dev/null"\n'
    sep=$'next\n'
  done <"$WORK/$table.txt" >"$WORK/$table.curl"
  curl -fsS --no-progress-meter --parallel --parallel-max 16 -K "$WORK/$table.curl"
}

# Writers: WRITERS users, each with a default wishlist made before the run,
# and a request sequence over distinct (user, product) pairs so that every
# add in the measured window is a real insert (the table counts 201s). Each
# writer has 23 products to add: the default covers 1,000 adds a second per
# second of the run.
WRITERS=${BENCH_WRITERS:-$((1000 * SECS))}
if [[ -z $ONLY || $ONLY == add ]]; then
  make_writers "usr_bench_${RUN}" "Writer" "$WRITERS" tokens "$WORK/tokens.lua"
fi

cat >"$WORK/add.lua" <<LUA
dofile("$WORK/tokens.lua")
local threads = {}
setup = function(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
init = function(args)
  counter = 0
  created = 0
end
request = function()
  local idx = counter * ${BENCH_WRK_THREADS:-1} + tid
  counter = counter + 1
  local u = idx % #tokens + 1
  local p = string.format("prd_%03d", math.floor(idx / #tokens) % 23 + 1)
  return wrk.format("POST", "/api/v2/wishlists/my/items",
    {["Authorization"] = "Bearer " .. tokens[u], ["Content-Type"] = "application/json"},
    '{"product_id":"' .. p .. '"}')
end
response = function(status, headers, body)
  if status == 201 then created = created + 1 end
end
LUA

cat >"$WORK/get_wl.lua" <<LUA
request = function()
  return wrk.format("GET", "/api/v2/wishlists/$WL", {["Authorization"] = "Bearer $TOKEN"})
end
LUA

# The RESULT line every wrk run prints (both done() functions below call it).
cat >"$WORK/result.lua" <<'LUA'
write_result = function(summary, latency)
  io.write(string.format("RESULT %.0f %.2f %.2f %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    summary.requests))
end
LUA

cat >"$WORK/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local inserts = 0
  for _, t in ipairs(threads or {}) do inserts = inserts + (t:get("created") or 0) end
  io.write(string.format("INSERTS %d\n", inserts))
  write_result(summary, latency)
end
LUA

results=()
run() {
  local name=$1 conns=$2 seed=$3 script=$4 path=$5
  local out
  analyze_database
  cat "$script" "$WORK/result.lua" "$WORK/report.lua" >"$WORK/run.lua"
  # One wrk thread: a second one competes with the node for the 2 cores.
  local threads=${BENCH_WRK_THREADS:-1}
  out=$(wrk -t"$threads" -c"$conns" -d"${SECS}s" --latency -s "$WORK/run.lua" "$URL$path")
  read -r _ rps p50 p99 errors total <<<"$(grep '^RESULT' <<<"$out")"
  local inserts
  inserts=$(grep '^INSERTS' <<<"$out" | awk '{print $2}')
  [[ $inserts == 0 ]] && inserts="-"
  results+=("$(printf '| %-36s | %4s | %7s | %6s | %5s ms | %6s ms | %6s | %s |' "$name" "$conns" "$rps" "$inserts" "$p50" "$p99" "$errors" "$seed")")
}

echo "==> bench: wrk ${SECS}s per route"
echo 'request = function() return wrk.format("GET", "/api/v2/products/prd_007") end' >"$WORK/get_product.lua"
[[ -z $ONLY || $ONLY == get ]] && run "GET /api/v2/products/{id}" 64 "-" "$WORK/get_product.lua" "/api/v2/products/prd_007"
[[ -z $ONLY || $ONLY == get ]] && run "GET /api/v2/wishlists/{id} (6 items)" 64 "-" "$WORK/get_wl.lua" "/api/v2/wishlists/$WL"
[[ -n ${BENCH_ADD_CONNS:-} ]] && run "POST my/items (c=$BENCH_ADD_CONNS)" "$BENCH_ADD_CONNS" "-" "$WORK/add.lua" "/api/v2/wishlists/my/items"
[[ -z $ONLY || $ONLY == add ]] && run "POST /api/v2/wishlists/my/items" 32 "add from shared p50 28 / p99 112 ms" "$WORK/add.lua" "/api/v2/wishlists/my/items"

# Reads at a fixed 10,000 req/s (the issue's bar), latency measured from each
# request's scheduled time: wrk above measures at saturation instead.
fixed=()
if [[ -z $ONLY || $ONLY == get ]]; then
  for target in "/api/v2/products/prd_007|GET product" "/api/v2/wishlists/$WL|GET wishlist"; do
    path=${target%%|*} label=${target#*|}
    read -r _ rps p50 p99 p999 errors <<<"$("$ROOT/build/test/fixed_rate" "$URL" 10000 "$SECS" 32 "$path" \
      "Authorization: Bearer $TOKEN" | grep '^RESULT')"
    fixed+=("$(printf '| %-14s at a fixed 10,000 req/s | 32 | %6s | %5s ms | %5s ms | %5s ms | %s |' "$label" "$rps" "$p50" "$p99" "$p999" "$errors")")
  done
fi

RSS=$(peak_rss_mib)

# ---------------------------------------------------------------------------
# Sharing (issue: share create, shared views, add from a share, rate limits).
# The node above runs with the share limits raised; every run's counts are
# checked against what the node stored.
share_rows=()
share_notes=()
if [[ -z $ONLY || $ONLY == share ]]; then
  echo "==> bench: share setup"
  SHARE_OWNERS=${BENCH_SHARE_OWNERS:-100}
  RECIPIENTS=${BENCH_SHARE_RECIPIENTS:-$WRITERS}
  SPREAD=${BENCH_SHARE_SPREAD:-100}
  # A string field of a one-line JSON answer (bodies end without a newline).
  json_field() { local v; v=$(sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"); echo "$v"; }
  # POST with the owner's token; prints the body, fails on a non-2xx answer.
  post() {
    curl -fsS -XPOST "$URL$1" -H "Authorization: Bearer $2" \
      -H 'Content-Type: application/json' -d "$3"
  }

  # The view owner: one wishlist with 6 items; a hot share for the JSON view,
  # one for the HTML view, SPREAD more for the spread variant.
  OWNER=$("$BIN" token --sub "usr_bench_${RUN}_share_owner" --name "Share Owner")
  VWL=$(post /api/v2/wishlists "$OWNER" '{"title":"Shared bench"}' | json_field wishlist_id)
  for p in 001 002 003 004 005 006; do
    post "/api/v2/wishlists/$VWL/items" "$OWNER" "{\"product_id\":\"prd_$p\"}" >/dev/null
  done
  new_share() { post "/api/v2/wishlists/$1/share" "$OWNER" '{"channel":"link"}' | json_field share_token; }
  T_JSON=$(new_share "$VWL")
  T_HTML=$(new_share "$VWL")
  : >"$WORK/spread.txt"
  for _ in $(seq 1 "$SPREAD"); do new_share "$VWL" >>"$WORK/spread.txt"; done
  # Activate every share actor before measuring (one counted view each).
  for t in "$T_JSON" "$T_HTML" $(cat "$WORK/spread.txt"); do
    curl -fs -o /dev/null "$URL/api/v2/wishlists/shared/$t"
  done

  # The add source: a second wishlist of the owner with prd_001..prd_023 and
  # one share; recipients' default lists hold prd_024 only, so an add of
  # (recipient, product) is an insert the first time.
  AWL=$(post /api/v2/wishlists "$OWNER" '{"title":"Shared bench: add source"}' | json_field wishlist_id)
  for i in $(seq 1 23); do
    post "/api/v2/wishlists/$AWL/items" "$OWNER" "$(printf '{"product_id":"prd_%03d"}' "$i")" >/dev/null
  done
  T_ADD=$(new_share "$AWL")

  # Share creators: SHARE_OWNERS users, each owning a wishlist with 3 items.
  cat >"$WORK/mk_owner.sh" <<SH
set -euo pipefail
tok=\$("$BIN" token --sub "usr_bench_${RUN}_sharer_\$1" --name "Sharer \$1")
wl=\$(curl -fsS -XPOST "$URL/api/v2/wishlists" -H "Authorization: Bearer \$tok" \
  -H 'Content-Type: application/json' -d '{"title":"Mine"}' | sed 's/.*"wishlist_id":"\([^"]*\)".*/\1/')
for p in 001 002 003; do
  curl -fsS -o /dev/null -XPOST "$URL/api/v2/wishlists/\$wl/items" -H "Authorization: Bearer \$tok" \
    -H 'Content-Type: application/json' -d "{\"product_id\":\"prd_\$p\"}"
done
echo "  {\"\$tok\", \"\$wl\"},"
SH
  { echo "owners = {"; seq 1 "$SHARE_OWNERS" | xargs -P 8 -I{} bash "$WORK/mk_owner.sh" {}; echo "}"; } >"$WORK/owners.lua"
  (( $(grep -c '"ey' "$WORK/owners.lua") == SHARE_OWNERS )) || { echo "bench: share owner setup failed" >&2; exit 1; }

  # Recipients: RECIPIENTS users with a default list made before the run.
  make_writers "usr_bench_${RUN}_recipient" "Recipient" "$RECIPIENTS" rtokens "$WORK/rtokens.lua"

  # wrk scripts. Each counts statuses per thread and the requests it built
  # (sent): a view is counted by the node once it is answered, so a view
  # still in flight when wrk stops is stored but never seen by wrk.
  cat >"$WORK/count.lua" <<'LUA'
local threads = {}
setup = function(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
init = function(args)
  counter = 0; sent = 0; n200 = 0; n201 = 0; n429 = 0; nother = 0
end
response = function(status, headers, body)
  if status == 200 then n200 = n200 + 1
  elseif status == 201 then n201 = n201 + 1
  elseif status == 429 then n429 = n429 + 1
  else nother = nother + 1 end
end
done = function(summary, latency, requests)
  local c = {sent = 0, n200 = 0, n201 = 0, n429 = 0, nother = 0}
  for _, t in ipairs(threads) do
    for k, _ in pairs(c) do c[k] = c[k] + (t:get(k) or 0) end
  end
  io.write(string.format("COUNTS %d %d %d %d %d\n", c.n200, c.n201, c.n429, c.nother, c.sent))
  write_result(summary, latency)
end
-- the next request's index over all wrk threads
next_index = function()
  local idx = counter * ${WRK_THREADS} + tid
  counter = counter + 1
  sent = sent + 1
  return idx
end
LUA
  sed -i "s/\${WRK_THREADS}/${BENCH_WRK_THREADS:-1}/" "$WORK/count.lua"
  cat >"$WORK/share_create.lua" <<LUA
dofile("$WORK/owners.lua")
request = function()
  local o = owners[next_index() % #owners + 1]
  return wrk.format("POST", "/api/v2/wishlists/" .. o[2] .. "/share",
    {["Authorization"] = "Bearer " .. o[1], ["Content-Type"] = "application/json"},
    '{"channel":"link"}')
end
LUA
  view_script() { # path-prefix token-list-file
    { echo "tokens = {"; sed 's/.*/  "&",/' "$2"; echo "}"
      echo "request = function()"
      echo "  return wrk.format(\"GET\", \"$1\" .. tokens[next_index() % #tokens + 1])"
      echo "end"; }
  }
  echo "$T_JSON" >"$WORK/t_json.txt"
  echo "$T_HTML" >"$WORK/t_html.txt"
  view_script /api/v2/wishlists/shared/ "$WORK/t_json.txt" >"$WORK/view_json.lua"
  view_script /wishlists/shared/ "$WORK/t_html.txt" >"$WORK/view_html.lua"
  view_script /api/v2/wishlists/shared/ "$WORK/spread.txt" >"$WORK/view_spread.lua"
  cat >"$WORK/add_shared.lua" <<LUA
dofile("$WORK/rtokens.lua")
request = function()
  local idx = next_index()
  local u = idx % #rtokens + 1
  local p = string.format("prd_%03d", math.floor(idx / #rtokens) % 23 + 1)
  return wrk.format("POST", "/api/v2/wishlists/my/items",
    {["Authorization"] = "Bearer " .. rtokens[u], ["Content-Type"] = "application/json"},
    '{"product_id":"' .. p .. '","source":"shared_wishlist","source_token":"$T_ADD"}')
end
LUA

  # The stored view count of the shares in a token file (owner's list route).
  stored_views() {
    local list
    list=$(curl -fsS "$URL/api/v2/wishlists/$VWL/shares" -H "Authorization: Bearer $OWNER")
    local sum=0 t v
    while read -r t; do
      v=$(grep -o "\"share_token\":\"$t\"[^}]*" <<<"$list" | grep -o '"view_count":[0-9]*' | cut -d: -f2)
      [[ -n $v ]] || { echo "bench: share $t missing from the owner's list" >&2; return 1; }
      sum=$((sum + v))
    done <"$1"
    echo "$sum"
  }
  # Stored views once views answered after wrk stopped have committed.
  settled_views() {
    local a b
    a=$(stored_views "$1")
    for _ in $(seq 1 20); do
      sleep 0.25
      b=$(stored_views "$1")
      [[ $a == "$b" ]] && break
      a=$b
    done
    echo "$a"
  }
  # Waits (up to 60 s) for the relay to publish the events a run wrote, so
  # they are not published during the next run. Needs psql and the DB URL.
  drain_outbox() {
    local label=$1
    [[ -n ${VANTAGE_DATABASE_URL:-} ]] && command -v psql >/dev/null || { sleep 1; return 0; }
    local q="SELECT count(*) FROM event_outbox WHERE sent_at IS NULL"
    local left start=$SECONDS
    left=$(psql "$VANTAGE_DATABASE_URL" -Atc "$q" 2>/dev/null || echo "?")
    local first=$left
    while [[ $left != 0 && $left != "?" ]] && (( SECONDS - start < 60 )); do
      sleep 0.5
      left=$(psql "$VANTAGE_DATABASE_URL" -Atc "$q" 2>/dev/null || echo "?")
    done
    [[ $first == 0 ]] || share_notes+=("outbox after $label: $first unsent when the load stopped, $left after $((SECONDS - start)) s")
  }
  # CPU ticks (user + system) of the processes sharing the 2 cores, to see
  # where a request's time goes: node, PostgreSQL (postmaster and backends),
  # Redis, the embedded Kafka, and the machine's total busy time (the rest is
  # wrk, the kernel and anything else running).
  pid_from() { [[ -r $1 ]] && head -n1 "$1" | tr -dc '0-9'; }
  PG_PID=$(pid_from "${VANTAGE_DATA_DIR:-/nonexistent}/pg/data/postmaster.pid" || true)
  REDIS_PID=$(pid_from "${VANTAGE_DATA_DIR:-/nonexistent}/redis/redis.pid" || true)
  KAFKA_PID=$(pid_from "${VANTAGE_KAFKA_PID_FILE:-/nonexistent}" || true)
  ticks() {
    local t=0 p
    for p in "$@"; do
      [[ -r /proc/$p/stat ]] && t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo "$t"
  }
  cpu_snapshot() {
    local pg=()
    [[ -n $PG_PID ]] && pg=("$PG_PID" $(pgrep -P "$PG_PID" || true))
    echo "$(ticks "$NODE_PID") $(ticks "${pg[@]}") $(ticks $REDIS_PID) $(ticks $KAFKA_PID)" \
      "$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat)"
  }
  fmt() { printf "%'d" "$1"; }

  # share_run NAME CONNS SEED BAR SCRIPT PATH [TOKENFILE]: one wrk run; with
  # TOKENFILE, the stored view-count delta of those shares is compared with
  # the 200s wrk saw. BAR: "p99<MS" and optionally ",rps>=N".
  # SCRIPT "fixed:RATE" runs fixed_rate at RATE req/s instead of wrk,
  # over PATH followed by each token of TOKENFILE.
  share_run() {
    local name=$1 conns=$2 seed=$3 bar=$4 script=$5 path=$6 tokens=${7:-}
    local before=0 after=0 cpu0 cpu1 out late=
    local rps p50 p99 errors total n200 n201 n429 nother sent
    analyze_database
    [[ -n $tokens ]] && before=$(stored_views "$tokens")
    lookup_check_buckets >"$WORK/checks0"
    if [[ $script == fixed:* ]]; then
      # BENCH_FIXED_RUNS runs back to back; the row is the run with the
      # median p99 (this host's noise moves one run's p99 by 2x), its
      # counts and CPU are those of all runs together, and every run's p99
      # is printed.
      local paths=() t runs=${BENCH_FIXED_RUNS:-3} r results=() median
      while read -r t; do paths+=("$path$t"); done <"$tokens"
      cpu0=$(cpu_snapshot)
      for ((r = 0; r < runs; r++)); do
        out=$("$ROOT/build/test/fixed_rate" "$URL" "${script#fixed:}" "$SECS" "$conns" "${paths[@]}")
        results+=("$(grep '^RESULT' <<<"$out") $(grep '^COUNTS' <<<"$out")")
      done
      cpu1=$(cpu_snapshot)
      # Fields: RESULT rps p50 p99 p999 errors COUNTS 200s requests late.
      median=$(printf '%s\n' "${results[@]}" | sort -k4,4g | sed -n "$(((runs + 1) / 2))p")
      read -r _ rps p50 p99 _ _ <<<"$median"
      read -r errors n200 total late <<<"$(printf '%s\n' "${results[@]}" \
        | awk '{ e += $6; ok += $8; n += $9; l += $10 } END { print e, ok, n, l }')"
      n201=0 n429=0 nother=$errors sent=$total
      (( runs > 1 )) && share_notes+=("$name: p99 of each of $runs runs of ${SECS} s: $(printf '%s\n' "${results[@]}" \
        | awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $4 }') ms (the row shows the median run; counts and CPU are of all runs)")
    else
      cat "$WORK/result.lua" "$WORK/count.lua" "$script" >"$WORK/run.lua"
      cpu0=$(cpu_snapshot)
      out=$(wrk -t"${BENCH_WRK_THREADS:-1}" -c"$conns" -d"${SECS}s" --latency -s "$WORK/run.lua" "$URL$path")
      cpu1=$(cpu_snapshot)
      read -r _ rps p50 p99 errors total <<<"$(grep '^RESULT' <<<"$out")"
      read -r _ n200 n201 n429 nother sent <<<"$(grep '^COUNTS' <<<"$out")"
    fi
    lookup_check_buckets >"$WORK/checks1"
    local counted="-" codes
    if [[ -n $tokens ]]; then
      after=$(settled_views "$tokens")
      local delta=$((after - before))
      if (( delta == n200 )); then counted="$(fmt "$n200") 200s = $(fmt "$delta") stored: match"
      elif (( delta > n200 && delta <= sent )); then
        counted="$(fmt "$n200") 200s, $(fmt "$delta") stored: +$((delta - n200)) in flight when the load stopped (<= $(fmt "$sent") sent): all counted"
      elif (( delta < n200 )); then counted="$(fmt "$n200") 200s, $(fmt "$delta") stored: MISSING $((n200 - delta))"
      else counted="$(fmt "$n200") 200s, $(fmt "$delta") stored: EXTRA $((delta - sent)) beyond $(fmt "$sent") sent"
      fi
      codes="$(fmt "$n200") 200"
    else
      codes="$(fmt "$n201") 201 / $(fmt "$n200") 200"
    fi
    (( n429 > 0 )) && codes+=" / $n429 429"
    (( nother > 0 )) && codes+=" / $nother other"
    [[ -n $late ]] && codes+=" ($(fmt "$late") sent > 1 ms late)"
    # Bar verdict.
    local verdict=pass maxp99=${bar#p99<} minrps=
    maxp99=${maxp99%%,*}
    [[ $bar == *rps\>=* ]] && minrps=${bar#*rps>=}
    awk -v a="$p99" -v b="$maxp99" 'BEGIN { exit !(a < b) }' || verdict=FAIL
    [[ -n $minrps ]] && ! awk -v a="$rps" -v b="$minrps" 'BEGIN { exit !(a >= b) }' && verdict=FAIL
    [[ -n $tokens && $counted != *"all counted"* && $counted != *match* ]] && verdict=FAIL
    local bartxt="p99 < $maxp99 ms${minrps:+, >= $minrps req/s}${tokens:+, every view counted}: $verdict"
    [[ $bar == - ]] && bartxt="-"
    local pg_us redis_us kafka_us all_us
    # CPU per request in microseconds: node, pg, redis, kafka, machine total.
    local per cpu_us
    per=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" -v n="$total" 'BEGIN {
      split(a, x, " "); split(b, y, " ")
      for (i = 1; i <= 5; i++) printf "%.0f ", n ? (y[i] - x[i]) / hz * 1e6 / n : 0 }')
    read -r cpu_us pg_us redis_us kafka_us all_us <<<"$per"
    share_notes+=("CPU per request, $name: node $cpu_us us, PostgreSQL $pg_us us, Redis $redis_us us, Kafka (embedded) $kafka_us us; machine busy $all_us us (rest: wrk, kernel, others $((all_us - cpu_us - pg_us - redis_us - kafka_us)) us)")
    echo "    $name: $rps req/s, p50 $p50 ms, p99 $p99 ms, $codes${tokens:+, $counted}"
    share_rows+=("$(printf '| %-44s | %3s | %6s | %8s ms | %8s ms | %s | %s | %s us | %s | %s | %s |' \
      "$name" "$conns" "$(fmt "$rps")" "$p50" "$p99" "$errors" "$codes" "$cpu_us" "$counted" "$seed" "$bartxt")")
    # The rate-limit check as the gateway saw it (the issue's "from the
    # gateway"): its histogram over the run, for runs that look shares up.
    local checks c50 c99
    read -r checks c50 c99 <<<"$(check_quantiles "$WORK/checks0" "$WORK/checks1")"
    if (( checks > 0 )); then
      local cverdict=pass
      awk -v a="$c50" 'BEGIN { exit !(a < 0.3) }' || cverdict=FAIL
      echo "    rate-limit check from the gateway, $name: $(fmt "$checks") checks, p50 $c50 ms, p99 $c99 ms"
      share_rows+=("$(printf '| %-44s | %3s | %s checks | %8s ms | %8s ms | - | - | - | - | %s | %s |' \
        "rate-limit check from the gateway: $name" "$conns" "$(fmt "$checks")" "$c50" "$c99" \
        "p50 0.6 / p99 1.8 ms" "p50 < 0.3 ms: $cverdict")")
    fi
    drain_outbox "$name"
  }

  echo "==> bench: share routes, wrk ${SECS}s each"
  drain_outbox "setup (and earlier runs)"
  # Reference on the same node: the owner's read of the viewed wishlist (the
  # same 6 items, no rate limit, no commit) at the views' concurrency.
  printf 'request = function() next_index(); return wrk.format("GET", "/api/v2/wishlists/%s", {["Authorization"] = "Bearer %s"}) end\n' \
    "$VWL" "$OWNER" >"$WORK/get_vwl.lua"
  share_run "reference: GET /api/v2/wishlists/{id} (6 items)" 64 "-" "-" \
    "$WORK/get_vwl.lua" "/api/v2/wishlists/$VWL"
  share_run "POST /api/v2/wishlists/{id}/share" 50 "p50 487 / p99 1,442 ms" "p99<20" \
    "$WORK/share_create.lua" "/api/v2/wishlists/x/share"
  share_run "GET /api/v2/wishlists/shared/{token}, 1 share" 64 "p50 32 / p99 145 ms" "p99<5,rps>=5000" \
    "$WORK/view_json.lua" "/api/v2/wishlists/shared/$T_JSON" "$WORK/t_json.txt"
  # The bar's own rate, latency from each request's scheduled time (like the
  # fixed-rate reads above); no request is in flight when it returns.
  if [[ -x $ROOT/build/test/fixed_rate ]]; then
    share_run "GET /api/v2/wishlists/shared/{token}, 1 share, at a fixed 5,000/s" 64 "p50 32 / p99 145 ms" "p99<5,rps>=5000" \
      fixed:5000 /api/v2/wishlists/shared/ "$WORK/t_json.txt"
  fi
  share_run "GET /wishlists/shared/{token} (HTML), 1 share" 64 "p50 32 / p99 145 ms" "p99<5,rps>=5000" \
    "$WORK/view_html.lua" "/wishlists/shared/$T_HTML" "$WORK/t_html.txt"
  if [[ -x $ROOT/build/test/fixed_rate ]]; then
    share_run "GET /wishlists/shared/{token} (HTML), 1 share, at a fixed 5,000/s" 64 "p50 32 / p99 145 ms" "p99<5,rps>=5000" \
      fixed:5000 /wishlists/shared/ "$WORK/t_html.txt"
  fi
  if (( SPREAD > 0 )); then
    share_run "GET /api/v2/wishlists/shared/{token}, $SPREAD shares" 64 "p50 32 / p99 145 ms" "p99<5,rps>=5000" \
      "$WORK/view_spread.lua" "/api/v2/wishlists/shared/x" "$WORK/spread.txt"
  fi
  share_run "POST my/items from a share, $(fmt "$RECIPIENTS") users" 32 "p50 28 / p99 112 ms" "p99<10" \
    "$WORK/add_shared.lua" "/api/v2/wishlists/my/items"
  SHARE_RSS=$(peak_rss_mib)

  echo "==> bench: rate limiter (rate_limit_bench, node idle)"
  RL_OUT=$("$ROOT/build/test/rate_limit_bench" 2>&1) || true
  echo "$RL_OUT"

  # Group commit off: every view its own commit (a node started again).
  stop_node
  start_node VANTAGE_VIEW_BATCH_MAX=1
  curl -fs -o /dev/null "$URL/api/v2/wishlists/shared/$T_JSON"
  share_run "GET /api/v2/wishlists/shared/{token}, 1 share, VANTAGE_VIEW_BATCH_MAX=1" 64 "p50 32 / p99 145 ms" "p99<5,rps>=5000" \
    "$WORK/view_json.lua" "/api/v2/wishlists/shared/$T_JSON" "$WORK/t_json.txt"
  B1_RSS=$(peak_rss_mib)
fi

echo
if (( ${#results[@]} )); then
echo "| route | conns | req/s | 201s | p50 | p99 | errors | seed figure |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${results[@]}"
fi
if (( ${#fixed[@]} )); then
  echo
  echo "| reads | conns | req/s | p50 | p99 | p99.9 | errors |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${fixed[@]}"
fi
if (( ${#results[@]} )); then
  echo
  echo "node peak RSS: $RSS MiB (VmHWM)"
fi
if (( ${#share_rows[@]} )); then
  echo
  echo "| share route | conns | req/s | p50 | p99 | errors | statuses | node CPU/req | counted (200s vs stored view_count delta) | seed | bar |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${share_rows[@]}"
  # rate_limit_bench: "<name, 26 columns> threads checks checks/s p50us p99us p999us allowed"
  while IFS= read -r line; do
    name=$(sed 's/ *$//' <<<"${line:0:26}")
    read -r th checks cps p50 p99 p999 allowed <<<"${line:26}"
    [[ $th =~ ^[0-9]+$ ]] || continue
    verdict=pass
    awk -v a="$p50" 'BEGIN { exit !(a < 300) }' || verdict=FAIL
    printf '| rate-limit check: %-26s | %s thr | %s checks/s | %s ms | %s ms | - | %s allowed | - | - | p50 0.6 / p99 1.8 ms | p50 < 0.3 ms: %s |\n' \
      "$name" "$th" "$(printf "%'d" "${cps%.*}")" "$(awk -v v="$p50" 'BEGIN { printf "%.3f", v / 1000 }')" \
      "$(awk -v v="$p99" 'BEGIN { printf "%.3f", v / 1000 }')" "$allowed" "$verdict"
  done <<<"$RL_OUT"
  echo
  for n in "${share_notes[@]}"; do echo "- $n"; done
  grep -q WARNING <<<"$RL_OUT" && grep WARNING <<<"$RL_OUT"
  echo
  echo "node peak RSS after the share runs: $SHARE_RSS MiB (VmHWM); node with VANTAGE_VIEW_BATCH_MAX=1: $B1_RSS MiB"
fi
if [[ -z $ONLY ]]; then
  stop_node
  render_section
fi
