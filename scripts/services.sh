#!/usr/bin/env bash
# Local services for one profile (run | test): PostgreSQL 15, Redis and the
# embedded Kafka (`vantage kafka`, a librdkafka mock cluster).
#
#   scripts/services.sh start  PROFILE   start what is not running yet (idempotent)
#   scripts/services.sh stop   PROFILE   stop what start started, by pid
#   scripts/services.sh status PROFILE   show each service (exit 3 if one is down)
#   scripts/services.sh env    PROFILE   print `export` lines for the node/tests
#   scripts/services.sh stop-postgres|start-postgres|stop-redis|start-redis|stop-kafka|start-kafka PROFILE
#                                        one service alone (fault-injection tests)
#   scripts/services.sh fresh-database test   drop and recreate the test profile's
#                                        database (empty, unmigrated); `make test`
#                                        and `make bench` start from one
#
# Each profile has its own data folder var/PROFILE/ and ports, so `make test`
# runs beside `make run`. Defaults (overridable from the environment):
#   run:  VANTAGE_PG_PORT=55432 VANTAGE_REDIS_PORT=56379 VANTAGE_HTTP_PORT=8080
#   test: VANTAGE_PG_PORT=55433 VANTAGE_REDIS_PORT=56380 VANTAGE_HTTP_PORT=18080
# KAFKA_BOOTSTRAP_SERVERS set: use that cluster and start no embedded Kafka.
# VANTAGE_BIN: the vantage binary (default build/vantage).
# VANTAGE_SERVICE_TIMEOUT: seconds to wait for each service (default 60).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PG_BIN=${VANTAGE_PG_BIN:-/usr/lib/postgresql/15/bin}
TIMEOUT=${VANTAGE_SERVICE_TIMEOUT:-60}

log() { echo "services[$PROFILE]: $*" >&2; }
die() { echo "services[${PROFILE:-?}]: error: $*" >&2; exit 1; }

usage() {
  echo "usage: $0 start|stop|status|env|start-postgres|stop-postgres|start-redis|stop-redis|start-kafka|stop-kafka|fresh-database run|test" >&2
  exit 2
}

[[ $# -eq 2 ]] || usage
CMD=$1
PROFILE=$2
case "$PROFILE" in
  run)  DEF_PG=55432 DEF_REDIS=56379 DEF_HTTP=8080 ;;
  test) DEF_PG=55433 DEF_REDIS=56380 DEF_HTTP=18080 ;;
  *) usage ;;
esac
PG_PORT=${VANTAGE_PG_PORT:-$DEF_PG}
REDIS_PORT=${VANTAGE_REDIS_PORT:-$DEF_REDIS}
HTTP_PORT=${VANTAGE_HTTP_PORT:-$DEF_HTTP}

DATA_DIR=$ROOT/var/$PROFILE
REDIS_DIR=$DATA_DIR/redis
REDIS_PID=$REDIS_DIR/redis.pid
KAFKA_PID=$DATA_DIR/kafka.pid
KAFKA_LOG=$DATA_DIR/kafka.log
KAFKA_BOOTSTRAP_FILE=$DATA_DIR/kafka.bootstrap
CATALOG_DIR=$DATA_DIR/catalog
BIN=${VANTAGE_BIN:-build/vantage}
[[ $BIN == /* ]] || BIN=$ROOT/$BIN
# A KAFKA_BOOTSTRAP_SERVERS that came from our own `env` output (it carries
# VANTAGE_KAFKA_PID_FILE=this profile's pid file) means the embedded cluster;
# any other value means a real cluster.
EXTERNAL_KAFKA=
if [[ -n ${KAFKA_BOOTSTRAP_SERVERS:-} && ${VANTAGE_KAFKA_PID_FILE:-} != "$KAFKA_PID" ]]; then
  EXTERNAL_KAFKA=$KAFKA_BOOTSTRAP_SERVERS
fi

if [[ $(id -u) -eq 0 ]]; then
  AS_PG=(runuser -u postgres --)
else
  AS_PG=()   # not root: Postgres runs as the current user
fi

# ---------------------------------------------------------------- helpers

# True if something accepts TCP connections on 127.0.0.1:$1.
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True if pid file $1 names a live process whose command line contains $2.
pid_alive() {
  local file=$1 pattern=$2 pid
  [[ -s $file ]] || return 1
  pid=$(head -n1 "$file" | tr -dc '0-9')
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"
}

pid_of() { head -n1 "$1" | tr -dc '0-9'; }

# wait_until DESCRIPTION COMMAND...: polls COMMAND until it succeeds or the
# deadline passes.
wait_until() {
  local what=$1
  shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${TIMEOUT}s waiting for $what"
      return 1
    fi
    sleep 0.1
  done
}

# Waits (deadline) for process $1 to exit.
wait_exit() {
  local pid=$1 deadline=$((SECONDS + ${2:-20}))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# ------------------------------------------------------------- postgres

# Decides where the Postgres data lives: var/PROFILE/pg inside the repo if
# the postgres user can reach it, else /var/lib/vantage/<sha1(repo)>/PROFILE/pg.
pg_locate() {
  PG_HOME=$DATA_DIR/pg
  local fallback
  fallback=/var/lib/vantage/$(printf '%s' "$ROOT" | sha1sum | cut -c1-40)/$PROFILE/pg
  # An existing fallback dir wins (decided on an earlier start).
  if [[ -d $fallback/data ]]; then
    PG_HOME=$fallback
  elif [[ ${#AS_PG[@]} -gt 0 ]]; then
    local probe=$DATA_DIR
    [[ -d $probe ]] || probe=$ROOT
    if ! as_pg test -x "$probe" 2>/dev/null \
      || ((${#PG_HOME} + 25 > 100)); then
      PG_FALLBACK_REASON="the postgres user cannot reach $DATA_DIR (or the path is too long for a socket)"
      PG_HOME=$fallback
    fi
  fi
  PGDATA=$PG_HOME/data
  PG_LOG=$PG_HOME/postgres.log
}

# Runs a command as the postgres user, from / (it may not be able to enter $PWD).
as_pg() { (cd / && "${AS_PG[@]}" "$@"); }

pg_ctl_() { as_pg "$PG_BIN/pg_ctl" "$@"; }

pg_running() {
  [[ -f $PGDATA/PG_VERSION ]] && pg_ctl_ status -D "$PGDATA" >/dev/null 2>&1
}

pg_ready() {
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d postgres -U postgres
}

psql_() {
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"
}

# Server settings passed at every start (so data dirs made by older scripts
# get them too). PostgreSQL's defaults are sized for a small shared host:
# 128 MB of buffers, and a checkpoint at least every 5 minutes or 1 GB of WAL,
# after which each first change of a page writes the whole page to the WAL
# again. A new 16 MB WAL segment is zero-filled and synced while every
# commit waits: 40-70 ms each time, every 3-4 s under 5,000 share views/s
# (p99 of those views 12-48 ms; without the zero-fill 4.0-6.8 ms). Until a
# checkpoint recycles old segments every segment is new, so files are
# created at size instead. Durability is untouched: fsync and
# synchronous_commit stay on, and fdatasync writes the block allocation.
PG_TUNING="-c shared_buffers=512MB -c max_wal_size=4GB -c checkpoint_timeout=15min -c checkpoint_completion_target=0.9 -c wal_compression=lz4 -c wal_init_zero=off"

pg_start() {
  pg_locate
  if [[ -n ${PG_FALLBACK_REASON:-} ]]; then
    log "postgres: $PG_FALLBACK_REASON; using data dir $PG_HOME instead"
  fi
  mkdir -p "$PG_HOME"
  if [[ ${#AS_PG[@]} -gt 0 ]]; then
    chown postgres:postgres "$PG_HOME"
  fi
  chmod 700 "$PG_HOME"

  if [[ ! -f $PGDATA/PG_VERSION ]]; then
    log "postgres: initdb in $PGDATA"
    rm -rf "$PGDATA"
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C \
      --auth=trust >"$PG_HOME/initdb.log" 2>&1 \
      || { cat "$PG_HOME/initdb.log" >&2; die "initdb failed"; }
    # Trust, but only over 127.0.0.1; the socket (inside the data dir) is peer.
    cat >"$PGDATA/pg_hba.conf" <<EOF
# Vantage local development cluster: trust on 127.0.0.1 only.
local   all   all                 peer
host    all   all   127.0.0.1/32  trust
EOF
    cat >>"$PGDATA/postgresql.conf" <<EOF

# --- vantage (scripts/services.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGDATA'
fsync = on
max_connections = 200
EOF
    if [[ ${#AS_PG[@]} -gt 0 ]]; then
      chown postgres:postgres "$PGDATA/pg_hba.conf" "$PGDATA/postgresql.conf"
    fi
  fi

  if pg_running; then
    log "postgres: already running (data $PGDATA)"
  else
    if port_busy "$PG_PORT"; then
      die "port $PG_PORT is in use by something other than this profile's Postgres (set VANTAGE_PG_PORT)"
    fi
    log "postgres: starting on 127.0.0.1:$PG_PORT"
    # New session so a Ctrl-C in the terminal does not reach the postmaster.
    if ! as_pg setsid -w "$PG_BIN/pg_ctl" start -D "$PGDATA" -l "$PG_LOG" -s \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='$PGDATA' $PG_TUNING" \
      -w -t "$TIMEOUT" </dev/null; then
      tail -n 20 "$PG_LOG" >&2 || true
      die "postgres did not start"
    fi
  fi
  wait_until "postgres on port $PG_PORT" pg_ready || {
    tail -n 20 "$PG_LOG" >&2 || true
    die "postgres is not ready on port $PG_PORT (is it running on another port? try: $0 stop $PROFILE)"
  }

  if [[ $(psql_ -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname='vantage'") != 1 ]]; then
    log "postgres: creating role vantage"
    psql_ -d postgres -c "CREATE ROLE vantage LOGIN SUPERUSER"
  fi
  if [[ $(psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='vantage'") != 1 ]]; then
    log "postgres: creating database vantage"
    psql_ -d postgres -c "CREATE DATABASE vantage OWNER vantage"
  fi
  log "postgres: ready at postgresql://vantage@127.0.0.1:$PG_PORT/vantage"
}

# Drops and recreates the profile's database. Tests and benches then see only
# their own rows: the expiry sweep and the outbox purge work on everything
# due, so shares or events an earlier (interrupted) run left behind would
# otherwise be in their way, and bloated tables skew bench figures.
pg_fresh_database() {
  [[ $PROFILE == test ]] || die "fresh-database is for the test profile only (the run profile keeps its data)"
  pg_locate
  pg_running || die "postgres is not running (start it first: $0 start $PROFILE)"
  log "postgres: recreating database vantage (profile $PROFILE)"
  psql_ -d postgres -q -c "DROP DATABASE IF EXISTS vantage WITH (FORCE)" \
    || die "could not drop database vantage"
  psql_ -d postgres -q -c "CREATE DATABASE vantage OWNER vantage" \
    || die "could not create database vantage"
}

pg_stop() {
  pg_locate
  if pg_running; then
    log "postgres: stopping ($PGDATA)"
    pg_ctl_ stop -D "$PGDATA" -m fast -s -w -t "$TIMEOUT" || die "postgres did not stop"
  else
    log "postgres: not running"
  fi
}

pg_status() {
  pg_locate
  if pg_running && pg_ready; then
    echo "postgres  running   127.0.0.1:$PG_PORT  data $PGDATA"
  elif pg_running; then
    echo "postgres  running but not answering on port $PG_PORT  data $PGDATA"
    return 1
  else
    echo "postgres  stopped   data $PGDATA"
    return 1
  fi
}

# ---------------------------------------------------------------- redis

redis_running() { pid_alive "$REDIS_PID" redis-server; }

redis_ping() { [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

redis_start() {
  mkdir -p "$REDIS_DIR"
  if redis_running; then
    log "redis: already running (pid $(pid_of "$REDIS_PID"))"
  else
    rm -f "$REDIS_PID"
    if port_busy "$REDIS_PORT"; then
      die "port $REDIS_PORT is in use by something other than this profile's Redis (set VANTAGE_REDIS_PORT)"
    fi
    log "redis: starting on 127.0.0.1:$REDIS_PORT"
    # The append-only file is the persistence. Each fork (an RDB snapshot,
    # an AOF rewrite) stalls every command for its duration (~1.6 ms here):
    # no snapshots on top of the AOF (by default one a minute under load),
    # and rewrites from 256 MB instead of 64 (every ~35 s in the share bench).
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
      --dir "$REDIS_DIR" --pidfile "$REDIS_PID" --logfile "$REDIS_DIR/redis.log" \
      --appendonly yes --save "" --auto-aof-rewrite-min-size 256mb \
      --protected-mode yes </dev/null >/dev/null \
      || die "redis-server failed to start (see $REDIS_DIR/redis.log)"
  fi
  wait_until "redis on port $REDIS_PORT" redis_ping || {
    tail -n 20 "$REDIS_DIR/redis.log" >&2 || true
    die "redis is not answering on port $REDIS_PORT"
  }
  log "redis: ready at redis://127.0.0.1:$REDIS_PORT"
}

redis_stop() {
  if redis_running; then
    local pid
    pid=$(pid_of "$REDIS_PID")
    log "redis: stopping (pid $pid)"
    kill -TERM "$pid"
    wait_exit "$pid" 30 || { log "redis: still alive, killing"; kill -KILL "$pid" 2>/dev/null || true; }
  else
    log "redis: not running"
  fi
  rm -f "$REDIS_PID"
}

redis_status() {
  if redis_running && redis_ping; then
    echo "redis     running   127.0.0.1:$REDIS_PORT  pid $(pid_of "$REDIS_PID")"
  else
    echo "redis     stopped   (port $REDIS_PORT)"
    return 1
  fi
}

# ---------------------------------------------------------------- kafka

kafka_running() { pid_alive "$KAFKA_PID" kafka; }

kafka_start() {
  if [[ -n $EXTERNAL_KAFKA ]]; then
    log "kafka: using KAFKA_BOOTSTRAP_SERVERS=$EXTERNAL_KAFKA (no embedded cluster)"
    return 0
  fi
  if kafka_running && [[ -s $KAFKA_BOOTSTRAP_FILE ]]; then
    log "kafka: already running (pid $(pid_of "$KAFKA_PID")) at $(head -n1 "$KAFKA_BOOTSTRAP_FILE")"
    return 0
  fi
  if kafka_running; then
    # Alive but without its bootstrap file: it may still be starting.
    log "kafka: process $(pid_of "$KAFKA_PID") is up; waiting for its bootstrap file"
  else
    [[ -x $BIN ]] || die "$BIN not found or not executable (run \`make build\` first, or set VANTAGE_BIN)"
    rm -f "$KAFKA_BOOTSTRAP_FILE" "$KAFKA_PID"
    log "kafka: starting embedded cluster ($BIN kafka)"
    # setsid: its own session, so a Ctrl-C in the terminal does not reach it.
    setsid "$BIN" kafka --bootstrap-file "$KAFKA_BOOTSTRAP_FILE" \
      </dev/null >>"$KAFKA_LOG" 2>&1 &
    echo $! >"$KAFKA_PID"
  fi
  local pid deadline=$((SECONDS + TIMEOUT))
  pid=$(pid_of "$KAFKA_PID")
  until [[ -s $KAFKA_BOOTSTRAP_FILE ]]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$KAFKA_LOG" >&2 || true
      rm -f "$KAFKA_PID"
      die "embedded kafka exited during startup (log $KAFKA_LOG)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$KAFKA_LOG" >&2 || true
      die "timed out after ${TIMEOUT}s waiting for $KAFKA_BOOTSTRAP_FILE"
    fi
    sleep 0.1
  done
  log "kafka: ready at $(head -n1 "$KAFKA_BOOTSTRAP_FILE") (pid $pid)"
}

kafka_stop() {
  if [[ -n $EXTERNAL_KAFKA ]] && ! kafka_running; then
    log "kafka: external cluster, nothing to stop"
    return 0
  fi
  if kafka_running; then
    local pid
    pid=$(pid_of "$KAFKA_PID")
    log "kafka: stopping (pid $pid)"
    kill -TERM "$pid"
    wait_exit "$pid" 20 || { log "kafka: still alive, killing"; kill -KILL "$pid" 2>/dev/null || true; }
  else
    log "kafka: not running"
  fi
  rm -f "$KAFKA_PID" "$KAFKA_BOOTSTRAP_FILE"
}

kafka_status() {
  if [[ -n $EXTERNAL_KAFKA ]]; then
    echo "kafka     external  $EXTERNAL_KAFKA"
  elif kafka_running && [[ -s $KAFKA_BOOTSTRAP_FILE ]]; then
    echo "kafka     running   $(head -n1 "$KAFKA_BOOTSTRAP_FILE")  pid $(pid_of "$KAFKA_PID")"
  else
    echo "kafka     stopped"
    return 1
  fi
}

# ---------------------------------------------------------------- commands

prepare_dirs() {
  mkdir -p "$DATA_DIR" "$CATALOG_DIR"
  # The postgres user must be able to traverse into var/PROFILE/pg.
  chmod 755 "$ROOT/var" "$DATA_DIR" 2>/dev/null || true
}

print_env() {
  local bootstrap=$EXTERNAL_KAFKA pid_file=$KAFKA_PID bootstrap_file=$KAFKA_BOOTSTRAP_FILE
  [[ -z $EXTERNAL_KAFKA ]] || { pid_file=; bootstrap_file=; }
  if [[ -z $bootstrap ]]; then
    if [[ -s $KAFKA_BOOTSTRAP_FILE ]]; then
      bootstrap=$(head -n1 "$KAFKA_BOOTSTRAP_FILE")
    else
      echo "services[$PROFILE]: warning: $KAFKA_BOOTSTRAP_FILE is missing (run: $0 start $PROFILE)" >&2
    fi
  fi
  local -a vars=(
    VANTAGE_PROFILE "$PROFILE"
    VANTAGE_DATA_DIR "$DATA_DIR"
    VANTAGE_HTTP_PORT "$HTTP_PORT"
    VANTAGE_PG_PORT "$PG_PORT"
    VANTAGE_REDIS_PORT "$REDIS_PORT"
    VANTAGE_DATABASE_URL "postgresql://vantage@127.0.0.1:$PG_PORT/vantage"
    VANTAGE_REDIS_URL "redis://127.0.0.1:$REDIS_PORT"
    KAFKA_BOOTSTRAP_SERVERS "$bootstrap"
    VANTAGE_KAFKA_PID_FILE "$pid_file"
    VANTAGE_KAFKA_BOOTSTRAP_FILE "$bootstrap_file"
    VANTAGE_CATALOG_DIR "$CATALOG_DIR"
  )
  local i
  for ((i = 0; i < ${#vars[@]}; i += 2)); do
    local v=${vars[i + 1]}
    if [[ ! $v =~ ^[A-Za-z0-9_./:@,+=-]*$ ]]; then
      v="'${v//\'/\'\\\'\'}'"
    fi
    printf 'export %s=%s\n' "${vars[i]}" "$v"
  done
}

case "$CMD" in
  start)
    prepare_dirs
    pg_start
    redis_start
    kafka_start
    log "all services up (data $DATA_DIR)"
    ;;
  stop)
    rc=0
    kafka_stop || rc=1
    redis_stop || rc=1
    pg_stop || rc=1
    exit $rc
    ;;
  status)
    rc=0
    pg_status || rc=3
    redis_status || rc=3
    kafka_status || rc=3
    exit $rc
    ;;
  env)
    print_env
    ;;
  # One service at a time, for fault-injection tests (a database outage
  # while the node keeps running).
  start-postgres) prepare_dirs; pg_start ;;
  stop-postgres) pg_stop ;;
  start-redis) prepare_dirs; redis_start ;;
  stop-redis) redis_stop ;;
  # A restarted embedded Kafka comes back empty on new ports and rewrites
  # the bootstrap file, which nodes re-read when their cluster goes away.
  start-kafka) prepare_dirs; kafka_start ;;
  stop-kafka) kafka_stop ;;
  fresh-database) pg_fresh_database ;;
  *) usage ;;
esac
