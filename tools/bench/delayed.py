#!/usr/bin/python3
"""delayed.py PORT PID [MESSAGES] [SIZE] [DUE_AFTER_S] [durable|transient] -- the delayed-message
benchmark against a
running warren-server (guest/guest on 127.0.0.1:PORT, process PID): declares a durable
x-delayed-message exchange (x-delayed-type direct) bound to a queue (durable by default; a durable
queue delivers only as fast as its delivery horizon is made durable, about 1,024 messages per
fsync, so `transient` measures the firing itself), publishes MESSAGES
(default 1,000,000) persistent messages of SIZE bytes (default 100) with confirms, each with an
x-delay that makes it due DUE_AFTER_S seconds (default 60) after publishing started, in publish
order; a consumer (no-ack) then receives them. Prints one JSON line: publish time (until the last
confirm), fire time (from the first due moment until the last delivery), the server's peak RSS
(VmHWM) and its RSS after publishing. Uses the raw client of tests/integration (no pika), so the
client is not the bottleneck of the publish side.

  build/bin/warren-server --port 5800 --data-dir /tmp/delayed-bench &
  /usr/bin/python3 tools/bench/delayed.py 5800 $!
"""
import json
import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "integration"))
import amqp_raw  # noqa: E402
from amqp_raw import FRAME_BODY, FRAME_HEADER, FRAME_METHOD, frame, method_payload  # noqa: E402


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def connect(port):
    c = amqp_raw.RawConnection("127.0.0.1", port, timeout=30)
    c.handshake()
    c.open_channel(1)
    return c


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    due_after = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
    durable_queue = (sys.argv[6] if len(sys.argv) > 6 else "durable") == "durable"
    x, q = "bench-delayed-x-%d" % os.getpid(), "bench-delayed-q-%d" % os.getpid()

    pub = connect(port)
    pub.call(1, "exchange.declare", 0, x, "x-delayed-message", False, True, False, False, False,
             {"x-delayed-type": "direct"}, expect="exchange.declare_ok")
    pub.call(1, "queue.declare", 0, q, False, durable_queue, False, False, False, {}, expect="queue.declare_ok")
    pub.call(1, "queue.bind", 0, q, x, "k", False, {}, expect="queue.bind_ok")
    pub.call(1, "confirm.select", False, expect="confirm.select_ok")

    acked = [0]

    def read_acks():
        while acked[0] < n:
            m = pub.read_method(timeout=600)
            if m.name == "basic.ack":
                tag, multiple = m.args
                acked[0] = tag if multiple else max(acked[0], tag)
            elif m.name == "basic.nack":
                raise SystemExit("nacked: %r" % (m,))

    reader = threading.Thread(target=read_acks, daemon=True)
    method = frame(FRAME_METHOD, 1, method_payload("basic.publish", 0, x, "k", False, False))
    body = frame(FRAME_BODY, 1, b"b" * size)
    start = time.monotonic()
    due_at = start + due_after
    reader.start()
    chunk = []
    for i in range(n):
        delay = max(1, int((due_at - time.monotonic()) * 1000))
        props = amqp_raw.encode_table({"x-delay": delay}) + b"\x02"
        header = frame(FRAME_HEADER, 1, struct.pack("!HHQH", 60, 0, size, 0x2000 | 0x1000) + props)
        chunk.append(method + header + body)
        if len(chunk) == 1000:
            pub.send(b"".join(chunk))
            chunk.clear()
    if chunk:
        pub.send(b"".join(chunk))
    reader.join(timeout=600)
    published = time.monotonic() - start
    rss_after_publish = status_kib(pid, "VmRSS")
    if published > due_after:
        print("warning: publishing took %.1f s, longer than DUE_AFTER_S; messages fired meanwhile" % published,
              file=sys.stderr)

    con = connect(port)
    con.call(1, "basic.consume", 0, q, "", False, True, False, False, {}, expect="basic.consume_ok")
    got = 0
    first = last = None
    buf = bytearray()
    sock = con.sock
    sock.settimeout(due_after + 600)
    buf += con.buf
    while got < n:
        chunk_in = sock.recv(1 << 20)
        if not chunk_in:
            raise SystemExit("consumer connection closed after %d messages" % got)
        buf += chunk_in
        off = 0
        while len(buf) - off >= 8:
            ftype, _ch, fsize = struct.unpack_from("!BHI", buf, off)
            if len(buf) - off < fsize + 8:
                break
            if ftype == FRAME_METHOD and buf[off + 7:off + 11] == b"\x00\x3c\x00\x3c":
                got += 1
                if first is None:
                    first = time.monotonic()
            off += fsize + 8
        del buf[:off]
    last = time.monotonic()
    fire = last - due_at
    print(json.dumps({
        "messages": n, "size": size, "durable_queue": durable_queue,
        "publish_s": round(published, 2), "publish_msg_per_s": round(n / published),
        "first_delivery_after_due_s": round(first - due_at, 3),
        "fire_s": round(fire, 2), "fire_msg_per_s": round(n / max(fire, 1e-9)),
        "rss_after_publish_mib": round(rss_after_publish / 1024, 1),
        "peak_rss_mib": round(status_kib(pid, "VmHWM") / 1024, 1),
    }))
    pub.call(1, "exchange.delete", 0, x, False, False, expect="exchange.delete_ok")
    pub.call(1, "queue.delete", 0, q, False, False, False, expect="queue.delete_ok")


if __name__ == "__main__":
    main()
