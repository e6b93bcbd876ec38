#!/usr/bin/env bash
# pg_compare.sh — the same single lucid-server on SQLite and on PostgreSQL
# (issue 14): stats ingest (bench/ingest), tasks end to end (bench/tasks_e2e)
# and the scheduler's persisted placements (bench/scheduler_bench, in process).
# PostgreSQL is a throwaway one (tests/http/pg_harness.py: initdb in a
# temporary directory, unix socket, fsync off — so its figures are an upper
# bound for a real server, where commits wait for the disk like SQLite's
# write_durable()). Prints each bench's own `key: value` lines, machine
# included, under a "== <bench> on <database>" header; never asserts.
#
#   bench/pg_compare.sh [BIN_DIR]        (default build/bin)
# Sizes: INGEST_ARGS, TASKS_ARGS, SCHED_ARGS (environment) override the defaults.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${1:-$here/build/bin}" && pwd)
INGEST_ARGS=${INGEST_ARGS:-"--nodes 500 --connections 32 --seconds 10 --probe-baseline-seconds 0"}
TASKS_ARGS=${TASKS_ARGS:-"--agents 50 --submitters 4 --seconds 10 --latency-seconds 5"}
SCHED_ARGS=${SCHED_ARGS:-"--devices 1000 --tasks 100000 --db-devices 500 --db-tasks 10000"}

tmp=$(mktemp -d /tmp/lucid-pg-compare-XXXXXX)
state=$tmp/pg-state.json
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  python3 "$here/tests/http/pg_harness.py" stop "$state" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

python3 "$here/tests/http/pg_harness.py" start "$state"
new_pg_db() {
  LUCID_TEST_PG_STATE=$state python3 -c "import sys; sys.path.insert(0, '$here/tests/http'); import pg_harness; print(pg_harness.cluster().new_database())"
}

# Starts lucid-server on database $1 in directory $2; sets url, server_pid, token.
start_server() {
  local db=$1 dir=$2
  mkdir -p "$dir"
  rm -f "$dir/port"
  "$bin/lucid-server" --listen 127.0.0.1:0 --db "$db" --key-file "$dir/server.key" --data-dir "$dir/data" \
    --outbox-dir "$dir/outbox" --port-file "$dir/port" --quiet \
    `# the limits the benches lift for a server they start themselves (every client is 127.0.0.1)` \
    --rate-join 100000000 --max-connections-per-address 0 --rate-cluster-minute 100000000 \
    --rate-cluster-hour 1000000000 --rate-cluster-burst 100000000 >"$dir/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 600); do [ -s "$dir/port" ] && break; sleep 0.05; done
  [ -s "$dir/port" ] || { cat "$dir/server.log"; exit 1; }
  url="http://127.0.0.1:$(cat "$dir/port")"
  token=$("$bin/lucidctl" --db "$db" --server-key-file "$dir/server.key" admin create-token --role super_admin --ttl 2h | tail -1)
}
stop_server() {
  kill "$server_pid"
  wait "$server_pid" || true
  server_pid=""
}

for engine in sqlite postgresql; do
  for bench in ingest tasks_e2e; do
    dir=$tmp/$engine-$bench
    if [ $engine = sqlite ]; then db=$dir/lucid.db; else db=$(new_pg_db); fi
    start_server "$db" "$dir"
    echo "== $bench on $engine"
    if [ $bench = ingest ]; then
      # shellcheck disable=SC2086
      "$bin/ingest" --url "$url" --token "$token" --server-pid "$server_pid" $INGEST_ARGS
    else
      # shellcheck disable=SC2086
      "$bin/tasks_e2e" --url "$url" --token "$token" $TASKS_ARGS
    fi
    stop_server
  done
  echo "== scheduler_bench on $engine"
  if [ $engine = sqlite ]; then
    # shellcheck disable=SC2086
    "$bin/scheduler_bench" $SCHED_ARGS
  else
    # shellcheck disable=SC2086
    "$bin/scheduler_bench" $SCHED_ARGS --database "$(new_pg_db)"
  fi
done
