"""basic.qos: per-consumer and per-channel (global) prefetch limits."""
import time

import pytest

import amqp_raw
import wutil

SETTLE = 0.4  # seconds to let the broker push as much as it is allowed to


def settle(conn, count, n, what="deliveries"):
    """Wait until count() reaches n, give the broker SETTLE more seconds, check it stayed n."""
    wutil.wait_until(lambda: count() >= n, conn=conn, what="%d %s" % (n, what))
    wutil.pump(conn, SETTLE)
    assert count() == n


def fill(conn, q, n):
    pub = conn.channel()
    pub.confirm_delivery()
    for i in range(n):
        pub.basic_publish("", q, b"%d" % i)
    pub.close()


@pytest.fixture
def two_queues(connect, uniq):
    conn = connect()
    setup = conn.channel()
    qs = []
    for _ in range(2):
        q = uniq("q")
        setup.queue_declare(q, exclusive=True)
        qs.append(q)
    for q in qs:
        fill(conn, q, 10)
    return conn, qs


def consume_into(ch, q, sink, **kw):
    return ch.basic_consume(q, lambda c, m, p, b: sink.append(m), **kw)


def test_prefetch_limits_unacked_per_consumer(two_queues):
    conn, (q, _) = two_queues
    ch = conn.channel()
    ch.basic_qos(prefetch_count=3)
    got = []
    consume_into(ch, q, got)
    settle(conn, lambda: len(got), 3)
    ch.basic_ack(got[0].delivery_tag)
    settle(conn, lambda: len(got), 4)
    ch.basic_ack(got[-1].delivery_tag, multiple=True)
    settle(conn, lambda: len(got), 7)


def test_prefetch_one_delivers_one_at_a_time(two_queues):
    conn, (q, _) = two_queues
    ch = conn.channel()
    ch.basic_qos(prefetch_count=1)
    got = []
    consume_into(ch, q, got)
    for expected in range(1, 11):
        wutil.wait_until(lambda: len(got) == expected, conn=conn, what="delivery %d" % expected)
        wutil.pump(conn, 0.05)
        assert len(got) == expected
        ch.basic_ack(got[-1].delivery_tag)
    assert [m.delivery_tag for m in got] == list(range(1, 11))


def test_nack_requeue_frees_prefetch_slot(two_queues):
    conn, (q, _) = two_queues
    ch = conn.channel()
    ch.basic_qos(prefetch_count=2)
    got = []
    consume_into(ch, q, got)
    settle(conn, lambda: len(got), 2)
    ch.basic_reject(got[0].delivery_tag, requeue=False)
    wutil.wait_until(lambda: len(got) == 3, conn=conn, what="delivery after reject")


def test_prefetch_zero_is_unlimited(two_queues):
    conn, (q, _) = two_queues
    ch = conn.channel()
    ch.basic_qos(prefetch_count=0)
    got = []
    consume_into(ch, q, got)
    wutil.wait_until(lambda: len(got) == 10, conn=conn, what="all 10 deliveries")


def test_no_qos_is_unlimited(two_queues):
    conn, (q, _) = two_queues
    ch = conn.channel()
    got = []
    consume_into(ch, q, got)
    wutil.wait_until(lambda: len(got) == 10, conn=conn, what="all 10 deliveries")


def test_per_consumer_limit_applies_to_each_consumer(two_queues):
    conn, (q1, q2) = two_queues
    ch = conn.channel()
    ch.basic_qos(prefetch_count=2, global_qos=False)
    got1, got2 = [], []
    consume_into(ch, q1, got1)
    consume_into(ch, q2, got2)
    settle(conn, lambda: len(got1) + len(got2), 4)
    assert (len(got1), len(got2)) == (2, 2)


def test_global_limit_is_shared_by_the_channel(two_queues):
    conn, (q1, q2) = two_queues
    ch = conn.channel()
    ch.basic_qos(prefetch_count=3, global_qos=True)
    got1, got2 = [], []
    consume_into(ch, q1, got1)
    consume_into(ch, q2, got2)
    settle(conn, lambda: len(got1) + len(got2), 3)
    assert len(got1) == 3  # the first consumer took all the credit before the second existed
    ch.basic_ack(got1[0].delivery_tag)
    settle(conn, lambda: len(got1) + len(got2), 4)


def test_global_limit_does_not_cross_channels(two_queues):
    conn, (q1, q2) = two_queues
    ch1, ch2 = conn.channel(), conn.channel()
    ch1.basic_qos(prefetch_count=2, global_qos=True)
    got1, got2 = [], []
    consume_into(ch1, q1, got1)
    consume_into(ch2, q2, got2)
    settle(conn, lambda: len(got1) + len(got2), 12)
    assert len(got1) == 2
    assert len(got2) == 10


def test_auto_ack_consumer_ignores_prefetch(two_queues):
    conn, (q, _) = two_queues
    ch = conn.channel()
    ch.basic_qos(prefetch_count=1)
    got = []
    consume_into(ch, q, got, auto_ack=True)
    wutil.wait_until(lambda: len(got) == 10, conn=conn, what="all 10 deliveries")


def test_basic_get_is_not_limited_by_prefetch(two_queues):
    conn, (q, _) = two_queues
    ch = conn.channel()
    ch.basic_qos(prefetch_count=1)
    for i in range(3):
        m, _p, body = ch.basic_get(q)
        assert body == b"%d" % i


def test_existing_consumer_keeps_its_prefetch(two_queues):
    conn, (q, _) = two_queues
    ch = conn.channel()
    ch.basic_qos(prefetch_count=1)
    got = []
    consume_into(ch, q, got)
    settle(conn, lambda: len(got), 1)
    ch.basic_qos(prefetch_count=5)  # only affects consumers created from now on
    ch.basic_ack(got[0].delivery_tag)
    settle(conn, lambda: len(got), 2)


def test_prefetch_size_not_implemented_540(conn):
    ch = conn.channel()
    with wutil.connection_error(540) as ei:
        ch.basic_qos(prefetch_size=1000, prefetch_count=1)
    assert ei.value.reply_text.startswith("NOT_IMPLEMENTED")


@pytest.mark.parametrize("stalled", ["prefetch_full_no_acks", "socket_not_read"])
def test_a_stalled_consumer_does_not_hold_up_a_publisher(server, connect, uniq, stalled):
    """A consumer that stopped taking messages leaves its queue buffering: the publisher's
    12000 messages of 4 KiB are all confirmed (as in RabbitMQ, whose queues never wait for their
    consumers), though the queue's backlog passes the point where it paces publishers to fast
    consumers (Queue::kFlowHighWatermark, 4000)."""
    consumer = connect()
    ch = consumer.channel()
    q = uniq("q")
    ch.queue_declare(q, exclusive=True)
    if stalled == "prefetch_full_no_acks":
        ch.basic_qos(prefetch_count=1)
        ch.basic_consume(q, lambda *a: None)
    else:
        ch.basic_consume(q, lambda *a: None, auto_ack=True)  # and the socket is never read again
    n, body = 12000, b"x" * 4096
    with amqp_raw.RawConnection(server.host, server.port, timeout=10.0) as pub:
        pub.handshake(server.user, server.password)
        pub.open_channel(1)
        pub.call(1, "confirm.select", False, expect="confirm.select_ok")
        for _ in range(0, n, 500):
            for _ in range(500):
                pub.publish(1, "", q, body)  # a publisher held up for good times out here
        confirmed, deadline = 0, time.monotonic() + 30
        while confirmed < n and time.monotonic() < deadline:
            m = pub.read_method(timeout=10.0)
            assert m.name == "basic.ack", m
            confirmed = max(confirmed, m.args[0])
        assert confirmed == n
