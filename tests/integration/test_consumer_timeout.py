"""Consumer acknowledgement timeout (RabbitMQ's consumer_timeout and x-consumer-timeout): a
delivery made with manual acknowledgement and left unacknowledged past the timeout closes its
channel with 406 and RabbitMQ's text; everything the channel had unacknowledged is requeued."""
import time

import pika
import pika.exceptions as pexc
import pytest

import wutil

pytestmark = pytest.mark.needs_own_server  # the timeouts are server settings (or RabbitMQ 3.12's argument)


def timeout_text(channel, ms):
    return ("PRECONDITION_FAILED - delivery acknowledgement on channel %d timed out. Timeout value used: %d ms. "
            "This timeout value can be configured, see consumers doc guide to learn more" % (channel, ms))


def publish(ch, queue, body, persistent=False):
    ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2 if persistent else 1))


def hold_until_closed(conn, ch, queue, limit, **consume_kw):
    """Consumes from `queue` without acknowledging until the broker closes the channel (at most
    `limit` seconds). -> (seconds from the first delivery to the close, the deliveries, the error)."""
    deliveries = []
    ch.basic_consume(queue, lambda c, m, p, b: deliveries.append((time.monotonic(), m, b)), **consume_kw)
    conn.call_later(limit, ch.stop_consuming)  # returns without the error: the test fails below
    with pytest.raises(pexc.ChannelClosedByBroker) as ei:
        ch.start_consuming()
    closed_at = time.monotonic()
    assert deliveries, "nothing was delivered"
    return closed_at - deliveries[0][0], deliveries, ei.value


def redelivered_bodies(srv, queue, n):
    conn = wutil.connect(srv)
    try:
        got = wutil.collect(conn, conn.channel(), queue, n, timeout=5.0)
        return [(m.redelivered, b) for m, p, b in got]
    finally:
        wutil.close_quietly(conn)


def test_unacked_delivery_closes_the_channel_and_comes_back_redelivered(server_factory, uniq):
    srv = server_factory(extra_args=["--consumer-timeout", "1000"])
    conn = wutil.connect(srv)
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q)
    publish(ch, q, b"one")
    publish(ch, q, b"two")
    waited, deliveries, err = hold_until_closed(conn, ch, q, limit=10)
    assert (err.reply_code, err.reply_text) == (406, timeout_text(ch.channel_number, 1000))
    assert 0.9 <= waited <= 2.0, waited  # one timer for the oldest delivery, not a once-a-minute check
    assert [b for _, _, b in deliveries] == [b"one", b"two"]
    assert conn.is_open  # only the channel is closed
    # Every delivery the channel held is requeued, in order, flagged redelivered.
    assert redelivered_bodies(srv, q, 2) == [(True, b"one"), (True, b"two")]
    wutil.close_quietly(conn)


def test_basic_get_without_ack_times_out_too(server_factory, uniq):
    # As RabbitMQ: a basic.get delivery sits in the channel's unacknowledged deliveries like any.
    srv = server_factory(extra_args=["--consumer-timeout", "500"])
    conn = wutil.connect(srv)
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q)
    publish(ch, q, b"got")
    method, _, body = wutil.get_one(ch, q, auto_ack=False)
    assert body == b"got"
    started = time.monotonic()
    wutil.wait_until(lambda: ch.is_closed, timeout=5, conn=conn, what="the channel to be closed")
    assert time.monotonic() - started <= 1.5
    assert conn.is_open
    assert redelivered_bodies(srv, q, 1) == [(True, b"got")]
    wutil.close_quietly(conn)


def test_acknowledging_in_time_keeps_the_channel(server_factory, uniq):
    srv = server_factory(extra_args=["--consumer-timeout", "1000"])
    conn = wutil.connect(srv)
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q)
    ch.basic_qos(prefetch_count=1)
    acked = []

    def on_message(c, m, p, b):
        # Each held 0.6 s: the timer armed for the first one fires with that one acked and
        # re-arms for the one held then.
        conn.call_later(0.6, lambda: (c.basic_ack(m.delivery_tag), acked.append(b)))

    for i in range(5):
        publish(ch, q, b"m%d" % i)
    ch.basic_consume(q, on_message)
    wutil.wait_until(lambda: len(acked) == 5, timeout=10, conn=conn, what="5 acks")
    wutil.pump(conn, 1.5)  # past the timeout of the last delivery, acked
    assert ch.is_open and acked == [b"m%d" % i for i in range(5)]
    wutil.close_quietly(conn)


def test_no_ack_consumers_are_not_timed(server_factory, uniq):
    srv = server_factory(extra_args=["--consumer-timeout", "300"])
    conn = wutil.connect(srv)
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q)
    publish(ch, q, b"a")
    got = wutil.collect(conn, ch, q, 1, auto_ack=True)
    assert got[0][2] == b"a"
    ch.basic_consume(q, lambda *a: None, auto_ack=True)
    publish(ch, q, b"b")
    wutil.pump(conn, 1.2)
    assert ch.is_open
    wutil.close_quietly(conn)


@pytest.mark.parametrize("server_ms,queue_ms,low,high", [(None, 400, 0.35, 1.4), (500, 2500, 2.4, 3.5)],
                         ids=["shorter-than-the-servers-default", "longer-than-the-servers"])
def test_the_queue_argument_overrides_the_servers_timeout(server_factory, uniq, server_ms, queue_ms, low, high):
    srv = server_factory(extra_args=["--consumer-timeout", str(server_ms)] if server_ms else [])
    conn = wutil.connect(srv)
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q, arguments={"x-consumer-timeout": queue_ms})
    publish(ch, q, b"x")
    waited, _, err = hold_until_closed(conn, ch, q, limit=10)
    assert (err.reply_code, err.reply_text) == (406, timeout_text(ch.channel_number, queue_ms))
    assert low <= waited <= high, waited
    wutil.close_quietly(conn)


def test_the_earliest_deadline_on_a_channel_wins(server_factory, uniq):
    # Better than RabbitMQ, which looks at the oldest delivery only: a later delivery from a queue
    # with a shorter timeout closes the channel on its own deadline.
    srv = server_factory(extra_args=["--consumer-timeout", "5000"])
    conn = wutil.connect(srv)
    ch = conn.channel()
    slow, fast = uniq("slow"), uniq("fast")
    ch.queue_declare(slow)
    ch.queue_declare(fast, arguments={"x-consumer-timeout": 300})
    publish(ch, slow, b"slow")
    wutil.get_one(ch, slow, auto_ack=False)
    publish(ch, fast, b"fast")
    waited, _, err = hold_until_closed(conn, ch, fast, limit=10)
    assert (err.reply_code, err.reply_text) == (406, timeout_text(ch.channel_number, 300))
    assert waited <= 1.3, waited
    assert redelivered_bodies(srv, slow, 1) == [(True, b"slow")]
    wutil.close_quietly(conn)


def test_bad_x_consumer_timeout_is_refused(server, uniq):
    conn = wutil.connect(server)
    try:
        for value, problem in ((-1, "{value_negative,-1}"), ("60000", "{unacceptable_type,longstr}"),
                               (True, "{unacceptable_type,bool}")):
            ch = conn.channel()
            q = uniq("q")
            with wutil.channel_error(406) as ei:
                ch.queue_declare(q, arguments={"x-consumer-timeout": value})
            assert ei.value.reply_text == ("PRECONDITION_FAILED - invalid arg 'x-consumer-timeout' for queue '%s' in "
                                           "vhost '/': %s" % (q, problem))
        ch = conn.channel()
        q = uniq("q")
        with wutil.channel_error(406) as ei:
            ch.queue_declare(q, durable=True, arguments={"x-queue-type": "stream", "x-consumer-timeout": 1000})
        assert ei.value.reply_text == ("PRECONDITION_FAILED - invalid arg 'x-consumer-timeout' for queue '%s' in "
                                       "vhost '/' of queue type rabbit_stream_queue" % q)
        ch = conn.channel()
        q = uniq("q")
        ch.queue_declare(q, arguments={"x-consumer-timeout": 0}, exclusive=True)  # 0 is a value, as in RabbitMQ
    finally:
        wutil.close_quietly(conn)


def test_the_configuration_file_key(server_factory, uniq, tmp_path):
    conf = tmp_path / "warren.conf"
    conf.write_text("consumer_timeout = 700\n")
    srv = server_factory(extra_args=["--config", str(conf)])
    conn = wutil.connect(srv)
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q)
    publish(ch, q, b"x")
    waited, _, err = hold_until_closed(conn, ch, q, limit=10)
    assert err.reply_text == timeout_text(ch.channel_number, 700)
    assert 0.65 <= waited <= 1.7, waited
    wutil.close_quietly(conn)
    assert "consumer_timeout: ignored" not in srv.log_text()


def test_undefined_turns_it_off(server_factory, uniq):
    srv = server_factory(extra_args=["--consumer-timeout", "undefined"])
    conn = wutil.connect(srv)
    ch = conn.channel()
    q, short = uniq("q"), uniq("short")
    ch.queue_declare(q)
    ch.queue_declare(short, arguments={"x-consumer-timeout": 300})
    publish(ch, q, b"x")
    ch.basic_consume(q, lambda *a: None)
    wutil.pump(conn, 1.0)
    assert ch.is_open
    # The queue's own timeout still applies.
    publish(ch, short, b"y")
    ch.basic_consume(short, lambda *a: None)
    wutil.wait_until(lambda: ch.is_closed, timeout=5, conn=conn, what="the channel to be closed")
    wutil.close_quietly(conn)


@pytest.mark.timeout(90)
def test_the_requeued_message_survives_kill_9(server_factory, uniq):
    srv = server_factory(extra_args=["--consumer-timeout", "500"])
    conn = wutil.connect(srv)
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q, durable=True)
    ch.confirm_delivery()
    publish(ch, q, b"durable", persistent=True)
    _, _, err = hold_until_closed(conn, ch, q, limit=10)
    assert err.reply_code == 406
    wutil.close_quietly(conn)
    srv.restart(kill=True)
    conn = wutil.connect(srv)
    try:
        ch = conn.channel()
        method, _, body = wutil.get_one(ch, q, auto_ack=True)
        assert (body, method.redelivered) == (b"durable", True)
        assert ch.basic_get(q, auto_ack=True)[0] is None
    finally:
        wutil.close_quietly(conn)
