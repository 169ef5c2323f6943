#!/bin/bash
# tls_compare.sh -- scenarios a and b of ../shared/bench/compare.sh over TLS, side by side with
# Debian's RabbitMQ over TLS, in one interleaved run that also has both brokers in plain TCP.
#
# The shared load generator speaks plain AMQP only, so each TLS run goes through a local stunnel
# client (TLS 1.3, the same for both brokers): amqpperf -> stunnel -> the broker's TLS listener.
# stunnel's own CPU is spent on this machine for both brokers alike; on 2 cores it caps the TLS
# figures, so the TLS ratio understates the broker difference rather than overstating it.
#
# Starts its own RabbitMQ node (tls-bench@localhost: AMQP 5690, AMQPS 5691, dist 25690, data
# under /tmp/rmq-tls; not the shared 5680 node) and a fresh warren-server, and stops both.
# Needs rabbitmq-server, stunnel4 and librabbitmq-dev (apt-get install). ROUNDS, DURATION as in
# compare.sh; SCENARIOS defaults to "a b".
set -euo pipefail
HERE=$(cd "$(dirname "$0")/../.." && pwd)
SERVER=${WARREN_SERVER:-$HERE/build/bin/warren-server}
BENCH=${BENCH_DIR:-$HERE/../shared/bench}
export SCENARIOS=${SCENARIOS:-"a b"}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/warren-tls-bench.XXXXXX")
RMQ=/tmp/rmq-tls
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
W_PORT=$(free_port); W_SSL=$(free_port); W_MGMT=$(free_port); T_RMQ=$(free_port); T_W=$(free_port)
export RABBITMQ_NODENAME=tls-bench@localhost RABBITMQ_NODE_PORT=5690 RABBITMQ_DIST_PORT=25690
export RABBITMQ_MNESIA_BASE=$RMQ/mnesia RABBITMQ_LOG_BASE=$RMQ/log RABBITMQ_ENABLED_PLUGINS_FILE=$RMQ/enabled_plugins
export RABBITMQ_CONFIG_FILE=$RMQ/rabbitmq RABBITMQ_FEATURE_FLAGS_FILE=$RMQ/feature_flags
W_PID=""; S_PID=""
cleanup() {
  [ -n "$S_PID" ] && kill "$S_PID" 2>/dev/null
  [ -n "$W_PID" ] && kill "$W_PID" 2>/dev/null
  HOME=$RMQ rabbitmqctl -n "$RABBITMQ_NODENAME" stop > /dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
  -keyout ca.key -out ca.pem 2> /dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout server.key -out server.csr 2> /dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext \
  -out server.pem 2> /dev/null

rm -rf "$RMQ" && mkdir -p "$RMQ/mnesia" "$RMQ/log"
cp ca.pem server.pem server.key "$RMQ/"
echo "[]." > "$RMQ/enabled_plugins"
cat > "$RMQ/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:5690
listeners.ssl.default = 127.0.0.1:5691
ssl_options.cacertfile = $RMQ/ca.pem
ssl_options.certfile = $RMQ/server.pem
ssl_options.keyfile = $RMQ/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
loopback_users = none
EOF
chown -R rabbitmq:rabbitmq "$RMQ"
(HOME=$RMQ setsid rabbitmq-server > "$RMQ/server.out" 2>&1 &)
for _ in $(seq 90); do HOME=$RMQ rabbitmqctl -n "$RABBITMQ_NODENAME" status > /dev/null 2>&1 && break; sleep 1; done
HOME=$RMQ rabbitmqctl -n "$RABBITMQ_NODENAME" await_startup > /dev/null

"$SERVER" --port "$W_PORT" --bind 127.0.0.1 --management-port "$W_MGMT" --data-dir "$WORK/data" \
  --ssl-port "$W_SSL" --ssl-certfile server.pem --ssl-keyfile server.key --ssl-cacertfile ca.pem \
  --ssl-verify verify_none > "$WORK/warren.log" 2>&1 &
W_PID=$!
for _ in $(seq 100); do grep -q "accepting AMQP 0-9-1 connections" "$WORK/warren.log" && break; sleep 0.1; done

cat > stunnel.conf <<EOF
foreground = yes
pid =
debug = 3
[rabbitmq]
client = yes
accept = 127.0.0.1:$T_RMQ
connect = 127.0.0.1:5691
sslVersion = TLSv1.3
[warren]
client = yes
accept = 127.0.0.1:$T_W
connect = 127.0.0.1:$W_SSL
sslVersion = TLSv1.3
EOF
stunnel stunnel.conf > "$WORK/stunnel.log" 2>&1 &
S_PID=$!
sleep 1

NAMES="rabbitmq warren rabbitmq-tls warren-tls" OUT=${OUT:-/tmp/warren-tls-bench-$(date +%Y%m%d-%H%M%S)} \
  bash "$BENCH/compare.sh" 5690 "$W_PORT" "$T_RMQ" "$T_W"
