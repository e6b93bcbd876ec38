#!/usr/bin/env bash
# pg_replicas.sh — 1, 2 and 3 lucid-server replicas on one PostgreSQL
# database (issue 14), each driven at the same time by its own bench client:
#   - stats ingest (bench/ingest: its nodes report to that replica);
#   - tasks end to end (bench/tasks_e2e: its agents and submits go to that
#     replica — the task engine is per replica, docs/decisions.md).
# On this 2-core machine the replicas and the clients share the cores, so the
# figure that shows the scaling is the server CPU per request, not the total
# rate. PostgreSQL is a throwaway one (tests/http/pg_harness.py, fsync off).
# Prints every client's own `key: value` lines under "== <bench>, N
# replica(s), client K", then one summary line per run; never asserts.
#
#   bench/pg_replicas.sh [BIN_DIR]        (default build/bin)
# REPLICAS (default "1 2 3"), INGEST_ARGS, TASKS_ARGS override the defaults.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${1:-$here/build/bin}" && pwd)
REPLICAS=${REPLICAS:-"1 2 3"}
INGEST_ARGS=${INGEST_ARGS:-"--nodes 200 --connections 16 --seconds 10 --probe-baseline-seconds 0"}
TASKS_ARGS=${TASKS_ARGS:-"--agents 30 --submitters 2 --seconds 10 --latency-seconds 0"}

tmp=$(mktemp -d /tmp/lucid-pg-replicas-XXXXXX)
state=$tmp/pg-state.json
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  python3 "$here/tests/http/pg_harness.py" stop "$state" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GB", $2 / 1048576}' /proc/meminfo), $(uname -sr)"
echo "command: $0 $*"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$here/tests/http/pg_harness.py" start "$state"
new_pg_db() {
  LUCID_TEST_PG_STATE=$state python3 -c "import sys; sys.path.insert(0, '$here/tests/http'); import pg_harness; print(pg_harness.cluster().new_database())"
}

# Starts replica $3 on database $1 under directory $2; every replica uses the
# first one's signing key (what replicas share). Appends to pids and urls.
start_replica() {
  local db=$1 dir=$2/r$3
  mkdir -p "$dir"
  "$bin/lucid-server" --listen 127.0.0.1:0 --db "$db" --key-file "$2/server.key" --data-dir "$dir/data" \
    --outbox-dir "$dir/outbox" --port-file "$dir/port" --quiet \
    --rate-join 100000000 --max-connections-per-address 0 --rate-cluster-minute 100000000 \
    --rate-cluster-hour 1000000000 --rate-cluster-burst 100000000 >"$dir/server.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 600); do [ -s "$dir/port" ] && break; sleep 0.05; done
  [ -s "$dir/port" ] || { cat "$dir/server.log"; exit 1; }
  urls+=("http://127.0.0.1:$(cat "$dir/port")")
}

cpu_seconds() {  # utime + stime of pid $1, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}

for n in $REPLICAS; do
  for bench in ingest tasks_e2e; do
    dir=$tmp/$n-$bench
    mkdir -p "$dir"
    db=$(new_pg_db)
    pids=()
    urls=()
    for i in $(seq 1 "$n"); do start_replica "$db" "$dir" "$i"; done
    token=$("$bin/lucidctl" --db "$db" --server-key-file "$dir/server.key" admin create-token --role super_admin --ttl 2h | tail -1)
    cpu0=()
    for p in "${pids[@]}"; do cpu0+=("$(cpu_seconds "$p")"); done
    t0=$(date +%s.%N)
    clients=()
    for i in $(seq 1 "$n"); do
      if [ $bench = ingest ]; then
        # shellcheck disable=SC2086
        "$bin/ingest" --url "${urls[$((i - 1))]}" --token "$token" --server-pid "${pids[$((i - 1))]}" $INGEST_ARGS \
          >"$dir/client$i.out" 2>&1 &
      else
        # shellcheck disable=SC2086
        "$bin/tasks_e2e" --url "${urls[$((i - 1))]}" --token "$token" $TASKS_ARGS >"$dir/client$i.out" 2>&1 &
      fi
      clients+=($!)
    done
    failed=0
    for c in "${clients[@]}"; do wait "$c" || failed=1; done
    t1=$(date +%s.%N)
    cpu=0
    for i in "${!pids[@]}"; do
      cpu=$(awk -v a="$cpu" -v b="$(cpu_seconds "${pids[$i]}")" -v c="${cpu0[$i]}" 'BEGIN {print a + b - c}')
    done
    for i in $(seq 1 "$n"); do
      echo "== $bench, $n replica(s), client $i"
      cat "$dir/client$i.out"
    done
    if [ $bench = ingest ]; then key=ingest_ok_200; rate_key=ingest_ok_per_s; else key=tasks_completed_total; rate_key=tasks_per_second; fi
    total=$(cat "$dir"/client*.out | awk -F': ' -v k="$key" '$1 == k {s += $2} END {print s + 0}')
    rate=$(cat "$dir"/client*.out | awk -F': ' -v k="$rate_key" '$1 == k {split($2, v, " "); s += v[1]} END {print s + 0}')
    awk -v n="$n" -v b="$bench" -v r="$rate" -v t="$total" -v cpu="$cpu" -v w="$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" \
      -v f="$failed" 'BEGIN {
        printf "summary: %s, %d replica(s): %.0f/s summed over the clients; %d done; servers %.2f cores over %.1f s; %.3f ms server CPU per request%s\n",
          b, n, r, t, cpu / w, w, t > 0 ? cpu * 1000 / t : 0, f ? " (a client failed: see its output)" : "" }'
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
    pids=()
  done
done
