"""RabbitMQ protocol extensions that clients use: alternate exchanges, direct reply-to,
consumer priorities."""
import pika
import pytest

import wutil
from wutil import channel_error

REPLY_TO = "amq.rabbitmq.reply-to"


def test_alternate_exchange_receives_unroutable(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    ae, x = uniq("ae"), uniq("x")
    ch.exchange_declare(ae, exchange_type="fanout")
    ch.exchange_declare(x, exchange_type="direct", arguments={"alternate-exchange": ae})
    q_main = ch.queue_declare("", exclusive=True).method.queue
    q_ae = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q_main, x, routing_key="known")
    ch.queue_bind(q_ae, ae)
    ch.basic_publish(x, "known", b"routed")
    ch.basic_publish(x, "unknown", b"to-ae", mandatory=True)  # not returned: the AE routes it
    assert wutil.get_one(ch, q_main, auto_ack=True)[2] == b"routed"
    m, _p, body = wutil.get_one(ch, q_ae, auto_ack=True)
    assert body == b"to-ae"
    assert m.exchange == x and m.routing_key == "unknown"
    assert ch.basic_get(q_main, auto_ack=True)[0] is None
    ch.exchange_delete(x)
    ch.exchange_delete(ae)


def test_missing_alternate_exchange_means_unroutable(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    x = uniq("x")
    ch.exchange_declare(x, exchange_type="direct", arguments={"alternate-exchange": uniq("nope")})
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish(x, "k", b"lost", mandatory=True)
    ch.exchange_delete(x)


def test_direct_reply_to_round_trip(connect, uniq):
    requester = connect()
    responder = connect()
    rch = requester.channel()
    replies = []
    rch.basic_consume(REPLY_TO, lambda c, m, p, b: replies.append((m, p, b)), auto_ack=True)
    sch = responder.channel()
    service = sch.queue_declare(uniq("rpc"), exclusive=True).method.queue
    rch.basic_publish("", service, b"ping",
                      pika.BasicProperties(reply_to=REPLY_TO, correlation_id="c-1"))
    m, props, body = wutil.get_one(sch, service, auto_ack=True)
    assert body == b"ping"
    assert props.reply_to.startswith(REPLY_TO + ".")
    sch.basic_publish("", props.reply_to, b"pong",
                      pika.BasicProperties(correlation_id=props.correlation_id))
    wutil.wait_until(lambda: replies, conn=requester, what="the direct reply")
    m, p, b = replies[0]
    assert b == b"pong" and p.correlation_id == "c-1"


def test_direct_reply_to_without_consumer_406(conn, uniq):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    with channel_error(406):
        ch.basic_publish("", q, b"x", pika.BasicProperties(reply_to=REPLY_TO))
        ch.queue_declare("", exclusive=True)


def test_direct_reply_to_requires_no_ack(conn):
    ch = conn.channel()
    with channel_error(406):
        ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=False)


def test_consumer_priority_prefers_higher(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    low, high = conn.channel(), conn.channel()
    got_low, got_high = [], []
    low.basic_consume(q, lambda c, m, p, b: got_low.append(b), auto_ack=True)
    high.basic_consume(q, lambda c, m, p, b: got_high.append(b), auto_ack=True,
                       arguments={"x-priority": 10})
    for i in range(10):
        ch.basic_publish("", q, b"%d" % i)
    wutil.wait_until(lambda: len(got_low) + len(got_high) == 10, conn=conn, what="10 deliveries")
    assert len(got_high) == 10 and got_low == []


def test_consumer_priority_falls_back_when_high_is_full(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    low, high = conn.channel(), conn.channel()
    high.basic_qos(prefetch_count=2)
    got_low, got_high = [], []
    low.basic_consume(q, lambda c, m, p, b: got_low.append(b), auto_ack=True)
    high.basic_consume(q, lambda c, m, p, b: got_high.append(b), auto_ack=False,
                       arguments={"x-priority": 10})
    for i in range(6):
        ch.basic_publish("", q, b"%d" % i)
    wutil.wait_until(lambda: len(got_low) + len(got_high) == 6, conn=conn, what="6 deliveries")
    assert len(got_high) == 2 and len(got_low) == 4
