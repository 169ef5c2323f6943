#!/bin/bash
# page_in_stall.sh SERVER PERF LABEL: the end-to-end latency of a 1000 msg/s transient probe queue
# while one consumer drains a 1M-message persistent backlog (1 KiB) of another queue: how long
# the broker thread stalls other clients while a long queue pages in. Prints one line:
#   LABEL probe e2e us p50 .. p99 .. p99.9 .. max ..; probe consumed N; drain R msg/s (N)
# Example (docs/PERFORMANCE.md): tools/bench/page_in_stall.sh build/bin/warren-server build/bin/warren-perf new
set -u
SERVER=$1 PERF=$2 LABEL=$3
D=$(mktemp -d /tmp/page-in-stall.XXXX)
PORT=$(/usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
MPORT=$(/usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
$SERVER --port $PORT --management-port $MPORT --data-dir $D/data > $D/log 2>&1 &
SP=$!
for i in $(seq 50); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
URI=amqp://guest:guest@127.0.0.1:$PORT/%2F
$PERF --uri $URI -x 1 -y 0 -u deep --durable --persistent -s 1024 -c 1000 -C 1000000 --quiet > $D/fill.json 2>/dev/null
$PERF --uri $URI -x 0 -y 1 -u deep --predeclared -q 1000 -A 100 -z 14 --quiet > $D/drain.json 2>/dev/null &
DP=$!
sleep 1
$PERF --uri $URI -x 1 -y 1 -u probe -s 16 -r 1000 -a -z 12 --warmup 2 --quiet > $D/probe.json 2>/dev/null
wait $DP
kill $SP; wait $SP
/usr/bin/python3 - $D $LABEL <<'PY'
import json, sys
d, label = sys.argv[1], sys.argv[2]
p = json.loads(open(d + "/probe.json").read().strip().splitlines()[-1])
dr = json.loads(open(d + "/drain.json").read().strip().splitlines()[-1])
l = p["latency_us"]
print("%s probe e2e us p50 %d p99 %d p99.9 %d max %d; probe consumed %d; drain %.0f msg/s (%d)" % (label, l["p50"], l["p99"], l["p999"], l["max"], p["consumed"], dr["consume_rate"], dr["consumed"]))
PY
rm -rf $D
