"""RabbitMQ queue arguments and message TTL that unchanged clients rely on:
x-message-ttl, per-message expiration, x-max-length / x-overflow, dead-lettering
(x-dead-letter-exchange / -routing-key, x-death), x-expires, x-max-priority and
x-single-active-consumer."""
import time

import pika
import pika.exceptions as pexc
import pytest

import wutil
from wutil import channel_error


@pytest.fixture
def pub(conn):
    c = conn.channel()
    c.confirm_delivery()
    return c


def declare(ch, uniq, **arguments):
    q = uniq("q")
    ch.queue_declare(q, exclusive=True, arguments=arguments or None)
    return q


def bodies(ch, q):
    out = []
    while True:
        m, _p, b = ch.basic_get(q, auto_ack=True)
        if m is None:
            return out
        out.append(b)


def test_queue_message_ttl_expires_messages(conn, pub, uniq):
    x = uniq("x")
    pub.exchange_declare(x, exchange_type="fanout")
    q_ttl = declare(pub, uniq, **{"x-message-ttl": 200})
    q_plain = declare(pub, uniq)
    pub.queue_bind(q_ttl, x)
    pub.queue_bind(q_plain, x)
    pub.basic_publish(x, "", b"short-lived")
    time.sleep(0.6)
    assert pub.basic_get(q_ttl, auto_ack=True)[0] is None
    assert pub.basic_get(q_plain, auto_ack=True)[2] == b"short-lived"
    pub.exchange_delete(x)


def test_queue_message_ttl_zero_drops_unless_consumer_ready(conn, pub, uniq):
    q = declare(pub, uniq, **{"x-message-ttl": 0})
    pub.basic_publish("", q, b"gone")
    time.sleep(0.1)
    assert pub.basic_get(q, auto_ack=True)[0] is None


def test_per_message_expiration(conn, pub, uniq):
    q = declare(pub, uniq)
    pub.basic_publish("", q, b"short", pika.BasicProperties(expiration="200"))
    pub.basic_publish("", q, b"long", pika.BasicProperties(expiration="60000"))
    time.sleep(0.5)
    m, props, body = pub.basic_get(q, auto_ack=True)
    assert body == b"long"
    assert props.expiration == "60000"  # expiration is delivered as published
    assert pub.basic_get(q, auto_ack=True)[0] is None


def test_invalid_expiration_406(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    q = declare(ch, uniq)
    with channel_error(406):
        ch.basic_publish("", q, b"x", pika.BasicProperties(expiration="soon"))


def test_max_length_drops_head(conn, pub, uniq):
    q = declare(pub, uniq, **{"x-max-length": 3})
    for i in range(5):
        pub.basic_publish("", q, b"%d" % i)
    assert bodies(pub, q) == [b"2", b"3", b"4"]


def test_max_length_bytes(conn, pub, uniq):
    q = declare(pub, uniq, **{"x-max-length-bytes": 10})
    for b in (b"aaaa", b"bbbb", b"cccc"):
        pub.basic_publish("", q, b)
    assert bodies(pub, q) == [b"bbbb", b"cccc"]


def test_overflow_reject_publish_nacks(conn, pub, uniq):
    q = declare(pub, uniq, **{"x-max-length": 2, "x-overflow": "reject-publish"})
    pub.basic_publish("", q, b"1")
    pub.basic_publish("", q, b"2")
    with pytest.raises(pexc.NackError):
        pub.basic_publish("", q, b"3")
    assert bodies(pub, q) == [b"1", b"2"]


def _dlx_setup(ch, uniq, **source_args):
    dlx = uniq("dlx")
    ch.exchange_declare(dlx, exchange_type="direct")
    dead = declare(ch, uniq)
    ch.queue_bind(dead, dlx, routing_key="dead")
    args = {"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dead"}
    args.update(source_args)
    src = declare(ch, uniq, **args)
    return dlx, dead, src


def test_dead_letter_on_reject(conn, pub, uniq):
    dlx, dead, src = _dlx_setup(pub, uniq)
    pub.basic_publish("", src, b"bad", pika.BasicProperties(headers={"orig": 1}))
    m, _p, _b = wutil.get_one(pub, src)
    pub.basic_reject(m.delivery_tag, requeue=False)
    m, props, body = wutil.get_one(pub, dead, auto_ack=True)
    assert body == b"bad"
    assert m.exchange == dlx and m.routing_key == "dead"
    assert props.headers["orig"] == 1
    death = props.headers["x-death"]
    assert isinstance(death, list) and len(death) == 1
    d = death[0]
    assert d["reason"] == "rejected"
    assert d["queue"] == src
    assert d["exchange"] == ""
    assert d["routing-keys"] == [src]
    assert d["count"] == 1
    assert props.headers["x-first-death-reason"] == "rejected"
    assert props.headers["x-first-death-queue"] == src
    pub.exchange_delete(dlx)


def test_dead_letter_on_nack_keeps_original_routing_key_without_override(conn, pub, uniq):
    dlx = uniq("dlx")
    pub.exchange_declare(dlx, exchange_type="fanout")
    dead = declare(pub, uniq)
    pub.queue_bind(dead, dlx)
    src = declare(pub, uniq, **{"x-dead-letter-exchange": dlx})
    pub.basic_publish("", src, b"n")
    m, _p, _b = wutil.get_one(pub, src)
    pub.basic_nack(m.delivery_tag, requeue=False)
    m, props, body = wutil.get_one(pub, dead, auto_ack=True)
    assert m.routing_key == src
    assert props.headers["x-death"][0]["reason"] == "rejected"
    pub.exchange_delete(dlx)


def test_dead_letter_on_ttl_expiry(conn, pub, uniq):
    dlx, dead, src = _dlx_setup(pub, uniq, **{"x-message-ttl": 100})
    pub.basic_publish("", src, b"expired")
    m, props, body = wutil.get_one(pub, dead, auto_ack=True)
    assert body == b"expired"
    assert props.headers["x-death"][0]["reason"] == "expired"
    pub.exchange_delete(dlx)


def test_dead_letter_on_max_length(conn, pub, uniq):
    dlx, dead, src = _dlx_setup(pub, uniq, **{"x-max-length": 1})
    pub.basic_publish("", src, b"first")
    pub.basic_publish("", src, b"second")
    m, props, body = wutil.get_one(pub, dead, auto_ack=True)
    assert body == b"first"
    assert props.headers["x-death"][0]["reason"] == "maxlen"
    assert bodies(pub, src) == [b"second"]
    pub.exchange_delete(dlx)


def test_queue_expires_when_unused(conn, uniq):
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q, arguments={"x-expires": 300})
    ch.queue_declare(q, passive=True)  # (a declare renews the lease, so do not poll)
    time.sleep(1.2)
    with channel_error(404):
        ch.queue_declare(q, passive=True)


def test_queue_with_consumer_does_not_expire(conn, uniq):
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q, arguments={"x-expires": 300})
    tag = ch.basic_consume(q, lambda *a: None)
    wutil.pump(conn, 1.0)
    ch.queue_declare(q, passive=True)
    ch.basic_cancel(tag)
    ch.queue_delete(q)


def test_priority_queue_delivers_highest_first(conn, pub, uniq):
    q = declare(pub, uniq, **{"x-max-priority": 10})
    for prio in (1, 9, 5, None, 10, 20):
        props = pika.BasicProperties(priority=prio) if prio is not None else None
        pub.basic_publish("", q, b"%s" % str(prio).encode(), props)
    # priorities above the maximum count as the maximum; no priority counts as 0
    assert bodies(pub, q) == [b"10", b"20", b"9", b"5", b"1", b"None"]


def test_single_active_consumer(conn, pub, uniq):
    q = declare(pub, uniq, **{"x-single-active-consumer": True})
    c1, c2 = conn.channel(), conn.channel()
    got1, got2 = [], []
    t1 = c1.basic_consume(q, lambda c, m, p, b: got1.append(b), auto_ack=True)
    c2.basic_consume(q, lambda c, m, p, b: got2.append(b), auto_ack=True)
    for i in range(4):
        pub.basic_publish("", q, b"%d" % i)
    wutil.wait_until(lambda: len(got1) == 4, conn=conn, what="4 deliveries to the active one")
    assert got2 == []
    c1.basic_cancel(t1)
    pub.basic_publish("", q, b"next")
    wutil.wait_until(lambda: got2 == [b"next"], conn=conn, what="failover to the second")


@pytest.mark.parametrize("args", [
    {"x-message-ttl": -1},
    {"x-max-length": -1},
    {"x-max-length": "ten"},
    {"x-expires": 0},
    {"x-overflow": "drop-everything"},
], ids=["ttl-negative", "maxlen-negative", "maxlen-string", "expires-zero", "overflow-bogus"])
def test_invalid_queue_arguments_406(conn, uniq, args):
    with channel_error(406) as ei:
        conn.channel().queue_declare(uniq("q"), arguments=args)
    assert ei.value.reply_text.startswith("PRECONDITION_FAILED")


def test_passive_declare_does_not_check_arguments(conn, uniq):
    ch = conn.channel()
    q = declare(ch, uniq, **{"x-max-length": 5})
    ch.queue_declare(q, passive=True, arguments={"x-max-length": 99})
