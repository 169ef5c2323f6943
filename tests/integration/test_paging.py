"""Backlogs larger than a durable queue's memory window: the tail lives only in the store and is
read back in order as consumers drain the queue, across restarts too. The server runs with a
tiny window so that a few thousand messages exercise paging."""
import time

import pika
import pytest

import wutil

pytestmark = [pytest.mark.needs_own_server, pytest.mark.timeout(120)]

WINDOW = 50
PERSISTENT = pika.BasicProperties(delivery_mode=2)
TRANSIENT = pika.BasicProperties(delivery_mode=1)


@pytest.fixture
def paging_server(server_factory):
    return server_factory(extra_args=["--queue-memory-window", str(WINDOW)])


def publish(srv, queue, numbers, props=PERSISTENT):
    conn = wutil.connect(srv)
    ch = conn.channel()
    ch.confirm_delivery()
    for n in numbers:
        ch.basic_publish("", queue, b"%08d" % n, props)
    conn.close()


def declare(srv, queue):
    conn = wutil.connect(srv)
    count = conn.channel().queue_declare(queue, durable=True).method.message_count
    conn.close()
    return count


def consume_all(srv, queue, expected, ack=True):
    conn = wutil.connect(srv)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=100 if ack else 0)
    got = []
    for method, _props, body in ch.consume(queue, inactivity_timeout=5):
        if method is None:
            break
        got.append((int(body), method.redelivered))
        if ack:
            ch.basic_ack(method.delivery_tag)
        if len(got) == expected:
            break
    conn.close()
    return got


def test_backlog_beyond_window_drains_in_order(paging_server):
    declare(paging_server, "paged")
    publish(paging_server, "paged", range(3000))
    assert declare(paging_server, "paged") == 3000
    got = consume_all(paging_server, "paged", 3000)
    assert [n for n, _ in got] == list(range(3000))
    assert declare(paging_server, "paged") == 0


def test_paged_backlog_survives_kill9_and_restart(paging_server):
    declare(paging_server, "paged-restart")
    publish(paging_server, "paged-restart", range(2000))
    paging_server.restart(kill=True)
    assert declare(paging_server, "paged-restart") == 2000
    first = consume_all(paging_server, "paged-restart", 700)
    paging_server.restart()
    rest = consume_all(paging_server, "paged-restart", 1300)
    assert [n for n, _ in first + rest] == list(range(2000))


def test_transient_messages_paged_out_are_dropped_at_restart(paging_server):
    declare(paging_server, "paged-mixed")
    publish(paging_server, "paged-mixed", range(0, 500))
    publish(paging_server, "paged-mixed", range(500, 1000), TRANSIENT)
    assert declare(paging_server, "paged-mixed") == 1000
    paging_server.restart()
    assert declare(paging_server, "paged-mixed") == 500
    got = consume_all(paging_server, "paged-mixed", 500)
    assert [n for n, _ in got] == list(range(500))


def test_purge_and_get_count_paged_messages(paging_server):
    declare(paging_server, "paged-purge")
    publish(paging_server, "paged-purge", range(400))
    conn = wutil.connect(paging_server)
    ch = conn.channel()
    method, _p, body = ch.basic_get("paged-purge", auto_ack=True)
    assert body == b"%08d" % 0 and method.message_count == 399
    assert ch.queue_purge("paged-purge").method.message_count == 399
    method, _p, _b = ch.basic_get("paged-purge", auto_ack=True)
    assert method is None
    conn.close()
    paging_server.restart()
    assert declare(paging_server, "paged-purge") == 0


def test_unacked_paged_messages_come_back_redelivered(paging_server):
    declare(paging_server, "paged-unacked")
    publish(paging_server, "paged-unacked", range(300))
    got = consume_all(paging_server, "paged-unacked", 300, ack=False)
    assert [n for n, _ in got] == list(range(300))
    paging_server.restart(kill=True)
    again = consume_all(paging_server, "paged-unacked", 300)
    assert [n for n, _ in again] == list(range(300))
    assert all(redelivered for _, redelivered in again)


def queue_length(srv, queue):
    conn = wutil.connect(srv)
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def test_a_paged_backlog_expires_on_time_without_consumers(paging_server, uniq):
    # Before deadlines were stored, each page-in restarted the TTL of what it read back: a backlog
    # of 20 windows took about 20 TTLs to expire.
    q = uniq("q")
    conn = wutil.connect(paging_server)
    conn.channel().queue_declare(q, durable=True, arguments={"x-message-ttl": 3000})
    conn.close()
    publish(paging_server, q, range(20 * WINDOW))
    published = time.monotonic()
    wutil.wait_until(lambda: queue_length(paging_server, q) == 0, timeout=published + 3 + 5 - time.monotonic(),
                     what="the whole backlog expired about 3 s after it was published")


def test_a_message_ttl_counts_from_its_publish_across_a_kill9(paging_server, uniq):
    q = uniq("q")
    conn = wutil.connect(paging_server)
    conn.channel().queue_declare(q, durable=True, arguments={"x-message-ttl": 8000})
    conn.close()
    t0 = time.monotonic()
    publish(paging_server, q, range(3 * WINDOW))  # in memory and paged
    published = time.monotonic()
    time.sleep(4)
    paging_server.kill9()
    paging_server.start()
    if time.monotonic() < t0 + 7.5:
        assert queue_length(paging_server, q) == 3 * WINDOW  # none due yet
    # Due 8 s after the publish; had the restart started the TTL again, 8 s after the restart.
    wutil.wait_until(lambda: queue_length(paging_server, q) == 0, timeout=published + 8 + 2.5 - time.monotonic(),
                     what="the messages expired 8 s after their publish, not after the restart")
