"""Routing and binding work per destination is O(1) (issue 8, finding 9): de-duplicating the queues
a message reaches was a linear search per queue (50,000 queues on one fanout exchange: about 10^9
comparisons per publish), and bindings were found by scanning the exchange's list. The bounds
below are generous for this machine and far below what the quadratic code took (minutes to hours).
Set WARREN_SCALE_REPORT=1 to print the timings."""
import os
import time

import pytest

import amqp_raw
import wutil
from amqp_raw import FRAME_METHOD, RawConnection, frame, method_payload

QUEUES = 50000
KEYS = 50000
MESSAGES = 1000


def report(what, seconds, count):
    if os.environ.get("WARREN_SCALE_REPORT"):
        print("\n%s: %.2f s (%.0f/s)" % (what, seconds, count / seconds))


def raw(server):
    c = RawConnection(server.host, server.port, timeout=120)
    assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
    c.open_channel(1)
    return c


def send_batched(c, frames, batch=2000):
    for i in range(0, len(frames), batch):
        c.send(b"".join(frames[i:i + batch]))


def sync(c):
    """A round trip: everything sent before was handled."""
    c.call(1, "basic.qos", 0, 0, False, expect="basic.qos_ok")


@pytest.mark.soak
@pytest.mark.timeout(420)
def test_publish_to_50000_queues_on_one_fanout(own_server, uniq):
    c = raw(own_server)
    try:
        exchange = uniq("fan")
        c.call(1, "exchange.declare", 0, exchange, "fanout", False, False, True, False, False, {},
               expect="exchange.declare_ok")
        prefix = uniq("q")
        names = ["%s-%d" % (prefix, i) for i in range(QUEUES)]
        started = time.monotonic()
        # Exclusive: gone with the connection. x-max-length 1 keeps memory flat: each queue holds
        # only the newest message.
        frames = []
        for name in names:
            frames.append(frame(FRAME_METHOD, 1, method_payload(
                "queue.declare", 0, name, False, False, True, False, True, {"x-max-length": 1})))
            frames.append(frame(FRAME_METHOD, 1, method_payload("queue.bind", 0, name, exchange, "", True, {})))
        send_batched(c, frames)
        sync(c)
        report("declare+bind %d queues" % QUEUES, time.monotonic() - started, QUEUES)

        c.call(1, "confirm.select", False, expect="confirm.select_ok")
        started = time.monotonic()
        body = b"m" * 16
        batch = b"".join(frame(FRAME_METHOD, 1, method_payload("basic.publish", 0, exchange, "", False, False)) +
                         frame(amqp_raw.FRAME_HEADER, 1, amqp_raw.content_header(len(body))) +
                         frame(amqp_raw.FRAME_BODY, 1, body) for _ in range(MESSAGES))
        c.send(batch)
        confirmed = 0
        while confirmed < MESSAGES:
            m = c.read_method(timeout=300)
            assert m.name == "basic.ack", m
            confirmed = m.args[0]
        elapsed = time.monotonic() - started
        report("publish %d messages to %d queues" % (MESSAGES, QUEUES), elapsed, MESSAGES)
        # The linear de-duplication took about 10^9 comparisons per message: over 400 s of CPU here.
        assert elapsed < 240
        for name in (names[0], names[QUEUES // 2], names[-1]):
            ok = c.call(1, "queue.declare", 0, name, True, False, False, False, False, {},
                        expect="queue.declare_ok")
            assert ok.args[1] == 1  # reached exactly once per message, capped at the newest
        started = time.monotonic()
        c.call(1, "exchange.delete", 0, exchange, False, False, expect="exchange.delete_ok")
        report("delete the exchange with %d bindings" % QUEUES, time.monotonic() - started, QUEUES)
    finally:
        c.close()
    wutil.assert_healthy(own_server)


@pytest.mark.timeout(300)
def test_bind_and_unbind_50000_keys_on_one_exchange(own_server, uniq):
    c = raw(own_server)
    try:
        exchange = queue = uniq("keys")
        c.call(1, "exchange.declare", 0, exchange, "direct", False, False, True, False, False, {},
               expect="exchange.declare_ok")
        c.call(1, "queue.declare", 0, queue, False, False, True, False, False, {}, expect="queue.declare_ok")
        # Long keys with a common prefix: a scan compares every byte of every key it passes.
        keys = ["%s-%d" % ("k" * 240, i) for i in range(KEYS)]
        started = time.monotonic()
        send_batched(c, [frame(FRAME_METHOD, 1, method_payload("queue.bind", 0, queue, exchange, k, True, {}))
                         for k in keys])
        sync(c)
        bound = time.monotonic() - started
        report("bind %d keys" % KEYS, bound, KEYS)
        c.publish(1, exchange, keys[-1], b"last")
        assert c.call(1, "basic.get", 0, queue, True, expect="basic.get_ok").args[3] == keys[-1]
        assert c.read_message() == b"last"
        started = time.monotonic()
        # queue.unbind has no no-wait flag: pipeline them and count the replies.
        send_batched(c, [frame(FRAME_METHOD, 1, method_payload("queue.unbind", 0, queue, exchange, k, {}))
                         for k in keys[:-1]])
        for _ in range(KEYS - 1):
            m = c.read_method(timeout=240)
            assert m.name == "queue.unbind_ok", m
        unbound = time.monotonic() - started
        report("unbind %d keys" % (KEYS - 1), unbound, KEYS)
        assert bound + unbound < 30  # each used to scan every binding of the exchange: minutes
        c.publish(1, exchange, keys[0], b"gone")
        c.publish(1, exchange, keys[-1], b"still")
        assert c.call(1, "basic.get", 0, queue, True, expect="basic.get_ok").args[3] == keys[-1]
        assert c.read_message() == b"still"
        assert c.call(1, "basic.get", 0, queue, True).name == "basic.get_empty"
        c.call(1, "queue.delete", 0, queue, False, False, False, expect="queue.delete_ok")
        c.call(1, "exchange.delete", 0, exchange, False, False, expect="exchange.delete_ok")
    finally:
        c.close()
    wutil.assert_healthy(own_server)
