#!/usr/bin/python3
"""ttl_expiry.py HOST PORT [N] [DUE_S] [PID] -- how fast a broker expires a backlog of N messages.

Declares a durable queue without consumers and publishes N (default 1,000,000) persistent 16-byte
messages to it with pika (no confirms), each with an `expiration` that makes it due DUE_S seconds
(default 100) after the start, so the whole backlog is due at once. Then polls the queue's length
until it is empty. Prints the publish rate, the length when the backlog fell due (N unless the
publishing overran), the time from due to empty and the expiry rate, and, given the broker's PID,
its peak RSS (VmHWM) and its RSS when empty. Uses guest/guest; the queue's name is unique per run
and it is deleted at the end."""
import sys
import time
import uuid

import pika


def rss_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    due_s = float(sys.argv[4]) if len(sys.argv) > 4 else 100.0
    pid = int(sys.argv[5]) if len(sys.argv) > 5 else None
    params = pika.ConnectionParameters(host, port, credentials=pika.PlainCredentials("guest", "guest"),
                                       heartbeat=0)
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    queue = "ttl-bench-" + uuid.uuid4().hex[:8]
    ch.queue_declare(queue, durable=True)
    body = b"x" * 16
    t0 = time.monotonic()
    due = t0 + due_s
    for i in range(n):
        left_ms = max(0, int((due - time.monotonic()) * 1000))
        ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2, expiration=str(left_ms)))
        if i % 10000 == 0:
            conn.process_data_events(0)
    published = time.monotonic()
    print("published %d messages in %.1f s (%.0f/s)" % (n, published - t0, n / (published - t0)), flush=True)

    def length():
        return ch.queue_declare(queue, passive=True).method.message_count

    while time.monotonic() < due - 0.5:
        time.sleep(0.1)
    before = length()
    while time.monotonic() < due:
        time.sleep(0.005)
    while length() > 0:
        time.sleep(0.02)
    empty = time.monotonic()
    print("length just before due %d; empty %.2f s after due: %.0f messages expired/s" %
          (before, empty - due, before / max(empty - due, 1e-3)))
    if pid is not None:
        print("broker peak RSS %d MiB, RSS when empty %d MiB" %
              (rss_kib(pid, "VmHWM") // 1024, rss_kib(pid, "VmRSS") // 1024))
    ch.queue_delete(queue)
    conn.close()


if __name__ == "__main__":
    main()
