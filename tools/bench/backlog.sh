#!/bin/bash
# backlog.sh [MESSAGES] [SIZE] -- the durable-store backlog benchmark: publishes MESSAGES
# persistent messages of SIZE bytes (default 5,000,000 x 1 KiB) with confirms into one durable
# queue of a fresh warren-server, samples the server's resident memory while publishing, restarts
# it (kill -9) and reports how long recovery took, then drains the queue with a manual-ack
# consumer while sampling memory again. Uses the shared load generator (../shared/bench).
# Needs several GiB of free disk under ${TMPDIR:-/tmp}.
set -euo pipefail
N=${1:-5000000}
SIZE=${2:-1024}
HERE=$(cd "$(dirname "$0")/../.." && pwd)
SERVER=${WARREN_SERVER:-$HERE/build/bin/warren-server}
BENCH=${BENCH_DIR:-$HERE/../shared/bench}
PERF=$BENCH/bin/amqpperf
[ -x "$PERF" ] || make -s -C "$BENCH"
DATA=$(mktemp -d "${TMPDIR:-/tmp}/warren-backlog.XXXXXX")
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG=$DATA/server.log
PID=""
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT

start() {
  "$SERVER" --port "$PORT" --bind 127.0.0.1 --data-dir "$DATA/data" --log-level info >> "$LOG" 2>&1 &
  PID=$!
  for _ in $(seq 600); do
    grep -q "accepting AMQP 0-9-1 connections" <(tail -n 5 "$LOG") && return 0
    sleep 0.1
  done
  echo "server did not start; see $LOG" >&2; tail "$LOG" >&2; exit 1
}
# Samples the server's RSS every 0.5 s into $1 until the file $2 exists.
sample_rss() {
  local out=$1 stop=$2
  : > "$out"
  while [ ! -e "$stop" ]; do
    awk '/VmRSS/ {print $2}' /proc/$PID/status 2>/dev/null >> "$out" || true
    sleep 0.5
  done
}
peak_mib() { sort -n "$1" | tail -1 | awk '{printf "%.0f", $1/1024}'; }

start
sample_rss "$DATA/rss-publish" "$DATA/stop1" &
SAMPLER=$!
t0=$(date +%s%N)
"$PERF" -P "$PORT" -u backlog --durable --persistent -s "$SIZE" -x 1 -y 0 -c 1000 -C "$N" -z 3600 --quiet > "$DATA/publish.json"
t1=$(date +%s%N)
touch "$DATA/stop1"; wait "$SAMPLER"
echo "published $N x $SIZE B persistent with confirms in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1e9}') s; peak RSS while publishing: $(peak_mib "$DATA/rss-publish") MiB"

echo "data dir: $(du -sh "$DATA/data" | cut -f1)"
kill -9 "$PID"; wait "$PID" 2>/dev/null || true
start
grep "recovered" "$LOG" | tail -1 | sed 's/^.*\[info\] /after kill -9: /'

sample_rss "$DATA/rss-drain" "$DATA/stop2" &
SAMPLER=$!
t0=$(date +%s%N)
"$PERF" -P "$PORT" -u backlog --durable --predeclared -s "$SIZE" -x 0 -y 1 -q 100 -D "$N" -z 3600 --quiet > "$DATA/drain.json"
t1=$(date +%s%N)
touch "$DATA/stop2"; wait "$SAMPLER"
rate=$(/usr/bin/python3 -c 'import json,sys; print("%.0f" % json.load(open(sys.argv[1]))["consume_rate"])' "$DATA/drain.json")
echo "drained $N in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1e9}') s ($rate msg/s); peak RSS while draining: $(peak_mib "$DATA/rss-drain") MiB"
