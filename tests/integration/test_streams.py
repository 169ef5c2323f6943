"""Streams (x-queue-type=stream) over AMQP 0-9-1, as RabbitMQ 3.10.8 behaves (every text here was
checked against it): declare rules, x-stream-offset (first, last, next, numeric, timestamp,
interval), the x-stream-offset header, independent consumers, retention by bytes and age,
restarts and kill -9, and what streams refuse (basic.get, auto-ack, no prefetch, purge)."""
import base64
import datetime
import json
import os
import time
import urllib.error
import urllib.request

import pika
import pytest

import wutil

S = {"x-queue-type": "stream"}


def declare(ch, name, **args):
    return ch.queue_declare(name, durable=True, arguments={**S, **args})


def publish(ch, queue, bodies, **props):
    """Publishes with confirms, so everything is in the stream when this returns."""
    ch.confirm_delivery()
    for b in bodies:
        ch.basic_publish("", queue, b, pika.BasicProperties(**props))


def consume(conn, queue, n, offset=None, prefetch=10, timeout=5.0, ack=True):
    """Starts a consumer at `offset` and collects n deliveries: (body, properties, method)."""
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)
    got = []

    def on(c, m, p, b):
        got.append((b, p, m))
        if ack:
            c.basic_ack(m.delivery_tag)

    args = {} if offset is None else {"x-stream-offset": offset}
    tag = ch.basic_consume(queue, on, arguments=args)
    wutil.wait_until(lambda: len(got) >= n, timeout=timeout, conn=conn, what="%d deliveries" % n)
    wutil.pump(conn, 0.2)  # and no more than n arrive
    ch.basic_cancel(tag)
    return got


def bodies(got):
    return [b for b, _, _ in got]


def offsets(got):
    return [p.headers["x-stream-offset"] for _, p, _ in got]


def cleanup(connect, name):
    try:
        connect().channel().queue_delete(name)
    except Exception:
        pass


def api(server, path):
    req = urllib.request.Request(
        "http://%s:%d%s" % (server.host, server.management_port, path),
        headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


@pytest.mark.parametrize("kw,text", [
    (dict(durable=False), "invalid property 'non-durable' for queue '%s' in vhost '/'"),
    (dict(durable=True, exclusive=True), "invalid property 'exclusive-owner' for queue '%s' in vhost '/'"),
    (dict(durable=True, auto_delete=True), "invalid property 'auto-delete' for queue '%s' in vhost '/'"),
])
def test_streams_must_be_durable_not_exclusive_not_auto_delete(connect, uniq, kw, text):
    name = uniq("s")
    with wutil.channel_error(406) as ei:
        connect().channel().queue_declare(name, arguments=S, **kw)
    assert ei.value.reply_text == "PRECONDITION_FAILED - " + text % name


def test_server_named_stream_refused(ch):
    with wutil.channel_error(406) as ei:
        ch.queue_declare("", durable=True, arguments=S)
    assert ei.value.reply_text == ("PRECONDITION_FAILED - Cannot declare a server-named queue for type "
                                   "rabbit_stream_queue")


@pytest.mark.parametrize("arg,value,problem", [
    ("x-max-length", 10, " of queue type rabbit_stream_queue"),
    ("x-message-ttl", 1000, " of queue type rabbit_stream_queue"),
    ("x-expires", 1000, " of queue type rabbit_stream_queue"),
    ("x-dead-letter-exchange", "dlx", " of queue type rabbit_stream_queue"),
    ("x-max-priority", 5, " of queue type rabbit_stream_queue"),
    ("x-overflow", "drop-head", " of queue type rabbit_stream_queue"),
    ("x-single-active-consumer", True, " of queue type rabbit_stream_queue"),
    ("x-queue-mode", "lazy", " of queue type rabbit_stream_queue"),
    ("x-delivery-limit", 3, " of queue type rabbit_stream_queue"),
    ("x-max-age", "0s", ": invalid_max_age"),
    ("x-max-age", "1d", ": invalid_max_age"),
    ("x-max-age", 10, ": {unacceptable_type,signedint}"),
    ("x-stream-max-segment-size-bytes", -1, ": {value_negative,-1}"),
    ("x-max-length-bytes", -5, ": {value_negative,-5}"),
    ("x-initial-cluster-size", 0, ": {value_zero,0}"),
    ("x-queue-leader-locator", "bad", ": invalid_queue_locator_arg"),
])
def test_stream_argument_refusals(connect, uniq, arg, value, problem):
    name = uniq("s")
    with wutil.channel_error(406) as ei:
        declare(connect().channel(), name, **{arg: value})
    assert ei.value.reply_text == "PRECONDITION_FAILED - invalid arg '%s' for queue '%s' in vhost '/'%s" % (
        arg, name, problem)


def test_segment_size_limit(connect, uniq):
    with wutil.channel_error(406) as ei:
        declare(connect().channel(), uniq("s"), **{"x-stream-max-segment-size-bytes": 3000000001})
    assert ei.value.reply_text == "PRECONDITION_FAILED - Exceeded max value for x-stream-max-segment-size-bytes"


def test_accepted_stream_arguments(connect, uniq):
    ch = connect().channel()
    for args in [{"x-max-length-bytes": 1000}, {"x-max-age": "7D"}, {"x-max-age": "1h"}, {"x-max-age": "30m"},
                 {"x-max-age": "10s"}, {"x-max-age": "1Y"}, {"x-max-age": "1M"},
                 {"x-stream-max-segment-size-bytes": 3000000000}, {"x-initial-cluster-size": 1},
                 {"x-queue-leader-locator": "client-local"}, {"x-queue-leader-locator": "balanced"},
                 {"x-unknown": "kept"}]:
        name = uniq("s")
        ok = declare(ch, name, **args).method
        assert (ok.message_count, ok.consumer_count) == (0, 0)
        ch.queue_delete(name)


def test_consume_from_first_last_next_and_numeric_offsets(connect, uniq):
    name = uniq("s")
    ch = connect().channel()
    declare(ch, name)
    try:
        publish(ch, name, [b"m%d" % i for i in range(10)])
        conn = connect()
        got = consume(conn, name, 10, "first")
        assert bodies(got) == [b"m%d" % i for i in range(10)]
        assert offsets(got) == list(range(10))
        assert [m.redelivered for _, _, m in got] == [False] * 10
        assert all(m.routing_key == name and m.exchange == "" for _, _, m in got)
        assert bodies(consume(conn, name, 1, "last")) == [b"m9"]
        assert bodies(consume(conn, name, 6, 4)) == [b"m%d" % i for i in range(4, 10)]
        assert bodies(consume(conn, name, 10, -1)) == [b"m%d" % i for i in range(10)]
        assert bodies(consume(conn, name, 10, 0)) == [b"m%d" % i for i in range(10)]
        # "next" (the default) waits for new messages.
        for offset in (None, "next"):
            cch = conn.channel()
            cch.basic_qos(prefetch_count=10)
            got = []
            cch.basic_consume(name, lambda c, m, p, b: (got.append((b, p.headers)), c.basic_ack(m.delivery_tag)),
                              arguments={} if offset is None else {"x-stream-offset": offset})
            wutil.pump(conn, 0.3)
            assert got == []
            ch.basic_publish("", name, b"new")
            wutil.wait_until(lambda: len(got) == 1, conn=conn, what="the new message")
            assert got[0][0] == b"new"
            cch.close()
        # An offset past the end waits for that very offset (offsets 10 and 11 exist now).
        cch = conn.channel()
        cch.basic_qos(prefetch_count=10)
        got = []
        cch.basic_consume(name, lambda c, m, p, b: (got.append(p.headers["x-stream-offset"]),
                                                    c.basic_ack(m.delivery_tag)),
                          arguments={"x-stream-offset": 14})
        publish(ch, name, [b"later"] * 4)
        wutil.wait_until(lambda: len(got) == 2, conn=conn, what="offsets 14 and 15")
        wutil.pump(conn, 0.2)
        assert got == [14, 15]
    finally:
        cleanup(connect, name)


def test_offset_header_is_added_to_existing_properties(connect, uniq):
    name = uniq("s")
    ch = connect().channel()
    declare(ch, name)
    try:
        publish(ch, name, [b"a"], headers={"h": 3, "a": "b"}, content_type="text/plain", delivery_mode=1,
                message_id="id-1")
        (_, p, _), = consume(connect(), name, 1, "first")
        assert p.headers == {"h": 3, "a": "b", "x-stream-offset": 0}
        assert list(p.headers)[-1] == "x-stream-offset"
        assert (p.content_type, p.message_id, p.delivery_mode) == ("text/plain", "id-1", 1)
    finally:
        cleanup(connect, name)


def test_consume_from_a_timestamp_and_an_interval(connect, uniq):
    name = uniq("s")
    ch = connect().channel()
    declare(ch, name)
    try:
        publish(ch, name, [b"old%d" % i for i in range(3)])
        time.sleep(2.2)
        between = datetime.datetime.now() - datetime.timedelta(seconds=1)
        publish(ch, name, [b"new%d" % i for i in range(3)])
        conn = connect()
        assert bodies(consume(conn, name, 3, between)) == [b"new0", b"new1", b"new2"]
        past = datetime.datetime.now() - datetime.timedelta(hours=1)
        assert len(consume(conn, name, 6, past)) == 6
        assert len(consume(conn, name, 6, "1h")) == 6
        assert bodies(consume(conn, name, 3, "2s")) == [b"new0", b"new1", b"new2"]
    finally:
        cleanup(connect, name)


def test_several_consumers_read_the_same_messages(connect, uniq):
    name = uniq("s")
    ch = connect().channel()
    declare(ch, name)
    try:
        publish(ch, name, [b"%d" % i for i in range(300)])
        conns = [connect() for _ in range(3)]
        chans = []
        got = [[] for _ in conns]
        for i, c in enumerate(conns):
            cc = c.channel()
            cc.basic_qos(prefetch_count=7)
            cc.basic_consume(name, lambda c_, m, p, b, i=i: (got[i].append(b), c_.basic_ack(m.delivery_tag)),
                             arguments={"x-stream-offset": "first"})
            chans.append(cc)
        deadline = time.monotonic() + 10
        while any(len(g) < 300 for g in got) and time.monotonic() < deadline:
            for c in conns:
                c.process_data_events(0.02)
        for g in got:
            assert g == [b"%d" % i for i in range(300)]
        # Nothing was removed; declare-ok reports the stream's messages as RabbitMQ does (its count
        # lags by its stats interval), and no consumers.
        ok = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            ok = ch.queue_declare(name, passive=True).method
            if ok.message_count == 300:
                break
            time.sleep(0.5)
        assert (ok.message_count, ok.consumer_count) == (300, 0)
    finally:
        cleanup(connect, name)


def test_unacked_deliveries_are_bounded_by_the_prefetch_and_nack_is_refused(connect, uniq):
    name = uniq("s")
    ch = connect().channel()
    declare(ch, name)
    try:
        publish(ch, name, [b"%d" % i for i in range(20)])
        conn = connect()
        got = consume(conn, name, 5, "first", prefetch=5, ack=False)
        assert len(got) == 5  # no more without acks
        for requeue in (True, False):
            conn = connect()
            cch = conn.channel()
            cch.basic_qos(prefetch_count=20)
            cch.basic_consume(name, lambda c, m, p, b: c.basic_nack(m.delivery_tag, requeue=requeue),
                              arguments={"x-stream-offset": "first"})
            with wutil.connection_error(540) as ei:
                wutil.pump(conn, 2)
            assert ei.value.reply_text == ("NOT_IMPLEMENTED - basic.nack and basic.reject not supported by stream "
                                           "queues queue '%s' in vhost '/'" % name)
    finally:
        cleanup(connect, name)


def test_basic_get_auto_ack_and_missing_prefetch_are_refused(connect, uniq):
    name = uniq("s")
    declare(connect().channel(), name)
    label = "queue '%s' in vhost '/'" % name
    try:
        for no_ack in (False, True):
            with wutil.connection_error(540) as ei:
                connect().channel().basic_get(name, auto_ack=no_ack)
            assert ei.value.reply_text == "NOT_IMPLEMENTED - basic.get not supported by stream queues " + label
        with wutil.channel_error(406) as ei:
            connect().channel().basic_consume(name, lambda *a: None)
        assert ei.value.reply_text == "PRECONDITION_FAILED - consumer prefetch count is not set for '%s'" % label
        with wutil.channel_error(406):
            c = connect().channel()
            c.basic_qos(prefetch_count=10, global_qos=True)
            c.basic_consume(name, lambda *a: None)
        with wutil.connection_error(540) as ei:
            c = connect().channel()
            c.basic_qos(prefetch_count=10)
            c.basic_consume(name, lambda *a: None, auto_ack=True)
        assert ei.value.reply_text == ("NOT_IMPLEMENTED - automatic acknowledgement not supported by stream "
                                       "queues " + label)
        with wutil.connection_error(540) as ei:
            connect().channel().queue_purge(name)
        assert ei.value.reply_text == "NOT_IMPLEMENTED - queue.purge not supported by stream queues " + label
    finally:
        cleanup(connect, name)


def test_management_api_shows_type_and_count(server, connect, uniq):
    name = uniq("s")
    ch = connect().channel()
    declare(ch, name, **{"x-max-age": "1h"})
    try:
        publish(ch, name, [b"x"] * 10)
        deadline = time.monotonic() + 15
        while True:
            q = api(server, "/api/queues/%2F/" + name)
            if q.get("messages") == 10 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert (q["type"], q["messages"], q["messages_ready"], q["messages_unacknowledged"]) == ("stream", 10, 10, 0)
        assert q["arguments"] == {"x-max-age": "1h", "x-queue-type": "stream"}
        assert q["durable"] is True
        req = urllib.request.Request(
            "http://%s:%d/api/queues/%%2F/%s/get" % (server.host, server.management_port, name),
            data=json.dumps({"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}).encode(),
            headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode(),
                     "Content-Type": "application/json"}, method="POST")
        with pytest.raises(urllib.error.HTTPError) as ei:
            urllib.request.urlopen(req, timeout=10)
        assert ei.value.code == 400
        assert json.load(ei.value)["reason"] == (
            "540 basic.get not supported by stream queues queue '%s' in vhost '/'" % name)
    finally:
        cleanup(connect, name)


# ---- Warren's own servers: retention (segment sizes are exact in Warren, chunked in RabbitMQ) and
# restarts ----

@pytest.mark.needs_own_server
def test_retention_by_bytes_drops_whole_segments(own_server):
    conn = wutil.connect(own_server)
    ch = conn.channel()
    name = "retained"
    declare(ch, name, **{"x-max-length-bytes": 3000, "x-stream-max-segment-size-bytes": 1000})
    publish(ch, name, [b"%03d" % i + b"." * 97 for i in range(100)])  # 100 x 100 bytes: segments of 10
    got = consume(conn, name, 20, "first", prefetch=50)
    first = offsets(got)[0]
    # At most 3000 bytes kept plus the open segment's growth: the oldest whole segments went.
    assert first % 10 == 0 and 60 <= first <= 80, first
    assert bodies(got)[0].startswith(b"%03d" % first)
    ok = ch.queue_declare(name, passive=True).method
    assert ok.message_count == 100 - first
    own_server.restart()
    conn = wutil.connect(own_server)
    got = consume(conn, name, 100 - first, "first", prefetch=50)
    assert offsets(got) == list(range(first, 100))


@pytest.mark.needs_own_server
@pytest.mark.timeout(60)
def test_retention_by_age_on_the_timer(own_server):
    conn = wutil.connect(own_server)
    ch = conn.channel()
    name = "aged"
    declare(ch, name, **{"x-max-age": "2s", "x-stream-max-segment-size-bytes": 500})
    publish(ch, name, [b"." * 100 for _ in range(12)])  # segments of 5: two closed, one open
    assert ch.queue_declare(name, passive=True).method.message_count == 12
    wutil.wait_until(lambda: ch.queue_declare(name, passive=True).method.message_count == 2, timeout=10,
                     interval=0.2, what="the closed segments to age out")
    got = consume(conn, name, 2, "first")
    assert offsets(got) == [10, 11]


@pytest.mark.needs_own_server
@pytest.mark.parametrize("kill", [False, True])
def test_offsets_continue_after_a_restart(own_server, kill):
    conn = wutil.connect(own_server)
    ch = conn.channel()
    declare(ch, "st", **{"x-stream-max-segment-size-bytes": 2000})
    publish(ch, "st", [b"a%d" % i for i in range(50)], delivery_mode=1)  # transient: a stream keeps them
    wutil.close_quietly(conn)
    own_server.restart(kill=kill)
    conn = wutil.connect(own_server)
    ch = conn.channel()
    assert ch.queue_declare("st", passive=True).method.message_count == 50
    publish(ch, "st", [b"b%d" % i for i in range(5)])
    got = consume(conn, "st", 55, "first", prefetch=100)
    assert offsets(got) == list(range(55))
    assert bodies(got)[-5:] == [b"b%d" % i for i in range(5)]
    assert api(own_server, "/api/queues/%2F/st")["type"] == "stream"


@pytest.mark.needs_own_server
@pytest.mark.timeout(120)
def test_reading_a_long_stream_from_the_start_does_not_stall_other_clients(own_server):
    conn = wutil.connect(own_server)
    ch = conn.channel()
    declare(ch, "long")
    body = b"." * 1024
    for _ in range(30000):
        ch.basic_publish("", "long", body)
    wutil.wait_until(lambda: ch.queue_declare("long", passive=True).method.message_count == 30000, timeout=30,
                     interval=0.1, what="30000 messages in the stream")
    reader = wutil.connect(own_server)
    rch = reader.channel()
    rch.basic_qos(prefetch_count=2000)
    got = [0]

    def on(c, m, p, b):
        got[0] += 1
        if got[0] % 500 == 0:
            c.basic_ack(m.delivery_tag, multiple=True)

    rch.basic_consume("long", on, arguments={"x-stream-offset": "first"})
    other = wutil.connect(own_server).channel()
    other.queue_declare("probe")
    worst = 0.0
    rounds = 0
    while got[0] < 30000:
        reader.process_data_events(0)
        start = time.monotonic()
        other.basic_publish("", "probe", b"x")
        assert other.basic_get("probe", auto_ack=True)[0] is not None
        worst = max(worst, time.monotonic() - start)
        rounds += 1
    assert rounds > 10
    print("publish+get round trips during the read: %d, worst %.3f s" % (rounds, worst))
    slowdown = 3.0 if os.environ.get("WARREN_SANITIZER") else 1.0
    assert worst < 0.5 * slowdown, "a publish+get round trip took %.3f s" % worst
