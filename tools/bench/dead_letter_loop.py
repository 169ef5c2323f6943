#!/usr/bin/python3
"""dead_letter_loop.py HOST PORT [SECONDS] [IN_FLIGHT] [MODE] -- a dead-letter retry loop's
throughput against a running broker (guest/guest), with pika.

MODE ttl (default): work queue A (dead-letter exchange -> B); its consumer rejects every
message without requeue; retry queue B (x-message-ttl 0, dead-letter exchange -> A) sends it
straight back. One loop = a rejection and an expiry, two dead-letterings.

MODE limit: A is a quorum queue with x-delivery-limit 0 (dead-letter exchange -> B); its
consumer nacks with requeue, so each message is dead-lettered with reason delivery_limit; a
consumer of B acks it and publishes it to A again.

IN_FLIGHT messages (default 100) circulate for SECONDS (default 10); prints loops per second.
Queues are durable (quorum in limit mode), messages transient, names unique per run."""
import sys
import time
import uuid

import pika


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
    in_flight = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    mode = sys.argv[5] if len(sys.argv) > 5 else "ttl"
    params = pika.ConnectionParameters(host, port, credentials=pika.PlainCredentials("guest", "guest"))
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    tag = uuid.uuid4().hex[:8]
    xa, xb, qa, qb = ("dll-%s-%s" % (n, tag) for n in ("xa", "xb", "a", "b"))
    ch.exchange_declare(xa, "fanout")
    ch.exchange_declare(xb, "fanout")
    if mode == "ttl":
        ch.queue_declare(qa, durable=True, arguments={"x-dead-letter-exchange": xb})
        ch.queue_declare(qb, durable=True, arguments={"x-dead-letter-exchange": xa, "x-message-ttl": 0})
    else:
        ch.queue_declare(qa, durable=True, arguments={"x-queue-type": "quorum", "x-delivery-limit": 0,
                                                      "x-dead-letter-exchange": xb})
        ch.queue_declare(qb, durable=True, arguments={"x-queue-type": "quorum"})
    ch.queue_bind(qa, xa)
    ch.queue_bind(qb, xb)
    loops = [0]

    def on_a(c, m, p, b):
        loops[0] += 1
        if mode == "ttl":
            c.basic_reject(m.delivery_tag, requeue=False)
        else:
            c.basic_nack(m.delivery_tag, requeue=True)

    def on_b(c, m, p, b):
        c.basic_publish("", qa, b)
        c.basic_ack(m.delivery_tag)

    ch.basic_qos(prefetch_count=200)
    ch.basic_consume(qa, on_a)
    if mode != "ttl":
        ch.basic_consume(qb, on_b)
    for i in range(in_flight):
        ch.basic_publish("", qa, b"m%d" % i)
    conn.process_data_events(time_limit=1.0)  # warm up
    start, first = time.monotonic(), loops[0]
    while time.monotonic() - start < seconds:
        conn.process_data_events(time_limit=0.5)
    elapsed = time.monotonic() - start
    print("%s mode: %d loops in %.1f s = %.0f loops/s (%d in flight)" %
          (mode, loops[0] - first, elapsed, (loops[0] - first) / elapsed, in_flight))
    ch.queue_delete(qa)
    ch.queue_delete(qb)
    ch.exchange_delete(xa)
    ch.exchange_delete(xb)
    conn.close()


if __name__ == "__main__":
    main()
