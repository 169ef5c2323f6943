"""Publishing and consuming: properties, body sizes, returns, consumers."""
import datetime
import decimal
import struct
import time

import pika
import pika.exceptions as pexc
import pytest

import wutil
from wutil import channel_error
from amqp_raw import (FRAME_BODY, FRAME_HEADER, FRAME_METHOD, RawConnection,
                      frame, method_payload)

FRAME_MAX = 131072
MAX_BODY_PER_FRAME = FRAME_MAX - 8


def pattern(n):
    """Deterministic non-repeating-ish body of n bytes."""
    block = bytes(range(256)) * 16
    reps = n // len(block) + 1
    return (block * reps)[:n]


def test_all_basic_properties_round_trip(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    headers = {
        "str": "text \u00e9\u4e2d",
        "bytes": b"\x00\x01\xfe\xff",
        "int32": -123456,
        "int64": 2 ** 40 + 7,
        "true": True,
        "false": False,
        "decimal": decimal.Decimal("3.14159"),
        "timestamp": datetime.datetime(2021, 5, 6, 7, 8, 9),
        "none": None,
        "list": [1, "two", [3, b"four"], {"five": 5}],
        "nested": {"level1": {"level2": {"deep": "value", "n": 42}}, "empty": {}},
        "empty-string": "",
    }
    props = pika.BasicProperties(
        content_type="application/x-warren",
        content_encoding="gzip",
        headers=headers,
        delivery_mode=2,
        priority=7,
        correlation_id="corr-\u00e9-1",
        reply_to="reply.queue",
        expiration="600000",
        message_id="msg-0001",
        timestamp=1_600_000_000,
        type="warren.test",
        user_id=conn._impl.params.credentials.username,
        app_id="warren-system-tests",
        cluster_id="cluster-x",
    )
    ch.basic_publish("", q, b"props", props)
    m, got, body = wutil.get_one(ch, q, auto_ack=True)
    assert body == b"props"
    for attr in ("content_type", "content_encoding", "delivery_mode", "priority",
                 "correlation_id", "reply_to", "expiration", "message_id", "timestamp",
                 "type", "user_id", "app_id", "cluster_id"):
        assert getattr(got, attr) == getattr(props, attr), attr
    expected = dict(headers)
    assert got.headers == expected


def test_no_properties_round_trip_as_none(ch):
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"bare")
    _m, got, body = wutil.get_one(ch, q, auto_ack=True)
    assert body == b"bare"
    for attr in ("content_type", "content_encoding", "headers", "delivery_mode", "priority",
                 "correlation_id", "reply_to", "expiration", "message_id", "timestamp",
                 "type", "user_id", "app_id", "cluster_id"):
        assert getattr(got, attr) is None, attr


def test_raw_content_header_bytes_are_preserved(server, uniq):
    """Every field-table type RabbitMQ knows, built by hand, comes back byte for byte."""
    table = bytearray()

    def field(name, tag, payload):
        table.extend(bytes([len(name)]) + name + tag + payload)

    field(b"t", b"t", b"\x01")
    field(b"b", b"b", struct.pack("!b", -5))
    field(b"B", b"B", struct.pack("!B", 250))
    field(b"s", b"s", struct.pack("!h", -300))
    field(b"u", b"u", struct.pack("!H", 65000))
    field(b"I", b"I", struct.pack("!i", -70000))
    field(b"i", b"i", struct.pack("!I", 4000000000))
    field(b"l", b"l", struct.pack("!q", -(2 ** 50)))
    field(b"f", b"f", struct.pack("!f", 1.5))
    field(b"d", b"d", struct.pack("!d", -2.25))
    field(b"D", b"D", b"\x02" + struct.pack("!i", 31415))
    field(b"S", b"S", struct.pack("!I", 5) + b"hello")
    field(b"x", b"x", struct.pack("!I", 3) + b"\x00\xff\x10")
    field(b"T", b"T", struct.pack("!Q", 1700000000))
    field(b"V", b"V", b"")
    inner = b"\x01kS" + struct.pack("!I", 1) + b"v"
    field(b"F", b"F", struct.pack("!I", len(inner)) + inner)
    arr = b"I" + struct.pack("!i", 1) + b"S" + struct.pack("!I", 2) + b"ab" + b"V"
    field(b"A", b"A", struct.pack("!I", len(arr)) + arr)
    headers = struct.pack("!I", len(table)) + bytes(table)
    # property flags: content-type (bit 15), headers (bit 13), delivery-mode (bit 12)
    flags = (1 << 15) | (1 << 13) | (1 << 12)
    props = b"\x04text" + headers + b"\x01"
    body = b"raw-body"
    with RawConnection(server.host, server.port) as c:
        assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
        c.open_channel(1)
        q = c.call(1, "queue.declare", 0, "", False, False, True, True, False, {},
                   expect="queue.declare_ok").args[0]
        c.call(1, "confirm.select", False, expect="confirm.select_ok")
        header = struct.pack("!HHQH", 60, 0, len(body), flags) + props
        c.send(frame(FRAME_METHOD, 1, method_payload("basic.publish", 0, "", q, False, False))
               + frame(FRAME_HEADER, 1, header) + frame(FRAME_BODY, 1, body))
        assert c.read_method().name == "basic.ack"
        c.call(1, "basic.get", 0, q, True, expect="basic.get_ok")
        ftype, _ch, payload = c.read_frame()
        assert ftype == FRAME_HEADER
        assert payload == header
        ftype, _ch, payload = c.read_frame()
        assert (ftype, payload) == (FRAME_BODY, body)


BODY_SIZES = [0, 1, 2, 4096, MAX_BODY_PER_FRAME - 1, MAX_BODY_PER_FRAME, MAX_BODY_PER_FRAME + 1,
              2 * MAX_BODY_PER_FRAME, 2 * MAX_BODY_PER_FRAME + 1, 1024 * 1024,
              16 * 1024 * 1024]


@pytest.mark.parametrize("size", BODY_SIZES)
def test_body_sizes_round_trip(ch, size):
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    body = pattern(size)
    ch.basic_publish("", q, body)
    _m, _p, got = wutil.get_one(ch, q, timeout=20, auto_ack=True)
    assert len(got) == size
    assert got == body


def test_body_sizes_consumed(conn):
    """The same boundaries through basic.consume instead of basic.get."""
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    bodies = [pattern(n) for n in BODY_SIZES[:-1]]
    for b in bodies:
        ch.basic_publish("", q, b)
    got = wutil.collect(conn, ch, q, len(bodies), timeout=20)
    assert [b for _m, _p, b in got] == bodies


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_body_128_mib(ch):
    size = 128 * 1024 * 1024
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    body = pattern(size)
    ch.basic_publish("", q, body)
    _m, _p, got = wutil.get_one(ch, q, timeout=120, auto_ack=True)
    assert len(got) == size
    assert got == body


def test_raw_exact_frame_max_body_frame_is_accepted(server):
    """A body frame of exactly frame_max octets (payload frame_max - 8) is legal."""
    body = pattern(MAX_BODY_PER_FRAME)
    with RawConnection(server.host, server.port) as c:
        assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
        c.open_channel(1)
        q = c.call(1, "queue.declare", 0, "", False, False, True, True, False, {},
                   expect="queue.declare_ok").args[0]
        c.publish(1, "", q, body)
        m = c.call(1, "basic.get", 0, q, True)
        deadline = time.monotonic() + 5
        while m.name == "basic.get_empty" and time.monotonic() < deadline:
            time.sleep(0.05)
            m = c.call(1, "basic.get", 0, q, True)
        assert m.name == "basic.get_ok"
        assert c.read_message() == body


def test_mandatory_unroutable_is_returned_312(conn, uniq):
    ch = conn.channel()
    x = uniq("x")
    ch.exchange_declare(x, exchange_type="direct")
    returned = []
    ch.add_on_return_callback(lambda c, m, p, b: returned.append((m, p, b)))
    ch.basic_publish(x, "nobody-home", b"bounce", pika.BasicProperties(message_id="r1"),
                     mandatory=True)
    wutil.wait_until(lambda: returned, conn=conn, what="basic.return")
    m, p, b = returned[0]
    assert m.reply_code == 312
    assert m.reply_text == "NO_ROUTE"
    assert m.exchange == x and m.routing_key == "nobody-home"
    assert p.message_id == "r1" and b == b"bounce"
    ch.exchange_delete(x)


def test_mandatory_to_missing_queue_via_default_exchange_returned(conn, uniq):
    ch = conn.channel()
    returned = []
    ch.add_on_return_callback(lambda c, m, p, b: returned.append(m))
    ch.basic_publish("", uniq("no-such-queue"), b"x", mandatory=True)
    wutil.wait_until(lambda: returned, conn=conn, what="basic.return")
    assert returned[0].reply_code == 312


def test_mandatory_unroutable_with_confirms_raises_unroutable(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    with pytest.raises(pexc.UnroutableError) as ei:
        ch.basic_publish("amq.direct", uniq("unbound-key"), b"u", mandatory=True)
    assert ei.value.messages[0].body == b"u"
    # the channel stays usable
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"routable", mandatory=True)


def test_non_mandatory_unroutable_is_dropped_silently(conn, uniq):
    ch = conn.channel()
    returned = []
    ch.add_on_return_callback(lambda c, m, p, b: returned.append(m))
    ch.basic_publish("amq.direct", uniq("unbound"), b"x")
    wutil.pump(conn, 0.3)
    assert returned == []
    assert ch.is_open


def test_mandatory_routable_not_returned(conn):
    ch = conn.channel()
    returned = []
    ch.add_on_return_callback(lambda c, m, p, b: returned.append(m))
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"fine", mandatory=True)
    wutil.pump(conn, 0.3)
    assert returned == []
    assert wutil.get_one(ch, q, auto_ack=True)[2] == b"fine"


def test_deliver_fields(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    x = uniq("x")
    ch.exchange_declare(x, exchange_type="topic")
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, x, routing_key="a.#")
    for i in range(3):
        ch.basic_publish(x, "a.b.%d" % i, b"%d" % i)
    cons = conn.channel()
    got = wutil.collect(conn, cons, q, 3, auto_ack=False, consumer_tag="my-tag")
    tags = [m.delivery_tag for m, _p, _b in got]
    assert tags == [1, 2, 3]  # per channel, starting at 1
    for i, (m, _p, b) in enumerate(got):
        assert m.consumer_tag == "my-tag"
        assert m.exchange == x
        assert m.routing_key == "a.b.%d" % i
        assert m.redelivered is False
        assert b == b"%d" % i
    ch.exchange_delete(x)


def test_round_robin_between_two_consumers(connect):
    conn = connect()
    setup = conn.channel()
    q = setup.queue_declare("", exclusive=True).method.queue
    c1, c2 = conn.channel(), conn.channel()
    got1, got2 = [], []
    c1.basic_consume(q, lambda c, m, p, b: got1.append(b), auto_ack=True)
    c2.basic_consume(q, lambda c, m, p, b: got2.append(b), auto_ack=True)
    pub = conn.channel()
    pub.confirm_delivery()
    for i in range(10):
        pub.basic_publish("", q, b"%d" % i)
    wutil.wait_until(lambda: len(got1) + len(got2) == 10, conn=conn, what="10 deliveries")
    assert len(got1) == 5 and len(got2) == 5
    assert sorted(got1 + got2, key=int) == [b"%d" % i for i in range(10)]
    # strict alternation
    assert {int(b) % 2 for b in got1} in ({0}, {1})


def test_basic_get_message_count_and_get_empty(ch):
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    assert ch.basic_get(q) == (None, None, None)
    for i in range(3):
        ch.basic_publish("", q, b"%d" % i)
    counts = []
    for i in range(3):
        m, _p, body = ch.basic_get(q, auto_ack=True)
        assert body == b"%d" % i
        assert m.redelivered is False
        counts.append(m.message_count)
    assert counts == [2, 1, 0]
    assert ch.basic_get(q, auto_ack=True) == (None, None, None)


def test_basic_get_missing_queue_404(conn, uniq):
    with channel_error(404):
        conn.channel().basic_get(uniq("missing"))


def test_consume_missing_queue_404(conn, uniq):
    with channel_error(404):
        conn.channel().basic_consume(uniq("missing"), lambda *a: None)


def test_server_cancels_consumer_when_queue_deleted(conn, uniq):
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q)
    cancelled = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame))
    tag = ch.basic_consume(q, lambda *a: None)
    other = conn.channel()
    other.queue_delete(q)
    wutil.wait_until(lambda: cancelled, conn=conn, what="basic.cancel from the server")
    assert cancelled[0].method.consumer_tag == tag
    assert ch.is_open
    ch.queue_declare("", exclusive=True)


def test_raw_server_cancel_notification(server, uniq):
    q = uniq("q")
    with RawConnection(server.host, server.port) as c:
        assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
        c.open_channel(1)
        c.open_channel(2)
        c.call(1, "queue.declare", 0, q, False, False, False, False, False, {},
               expect="queue.declare_ok")
        c.call(1, "basic.consume", 0, q, "ctag-x", False, False, False, False, {},
               expect="basic.consume_ok")
        c.send_method(2, "queue.delete", 0, q, False, False, False)
        seen = {}
        for _ in range(2):
            m = c.read_method()
            seen[m.name] = m
        assert seen["basic.cancel"].channel == 1
        assert seen["basic.cancel"].args[0] == "ctag-x"
        assert seen["queue.delete_ok"].channel == 2


def test_exclusive_consumer_blocks_others_403(connect, uniq):
    conn = connect()
    q = uniq("q")
    ch = conn.channel()
    ch.queue_declare(q)
    ch.basic_consume(q, lambda *a: None, exclusive=True)
    other = connect().channel()
    with channel_error(403) as ei:
        other.basic_consume(q, lambda *a: None)
    assert ei.value.reply_text.startswith("ACCESS_REFUSED")
    conn.channel().queue_delete(q)


def test_exclusive_consume_when_queue_has_consumer_403(connect, uniq):
    conn = connect()
    q = uniq("q")
    ch = conn.channel()
    ch.queue_declare(q)
    ch.basic_consume(q, lambda *a: None)
    with channel_error(403):
        conn.channel().basic_consume(q, lambda *a: None, exclusive=True)
    conn.channel().queue_delete(q)


def raw_open(server):
    c = RawConnection(server.host, server.port)
    assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
    c.open_channel(1)
    return c


def test_consumer_tag_reuse_on_same_channel_530(server):
    with raw_open(server) as c:
        q = c.call(1, "queue.declare", 0, "", False, False, True, True, False, {}).args[0]
        c.call(1, "basic.consume", 0, q, "dup", False, False, False, False, {},
               expect="basic.consume_ok")
        c.send_method(1, "basic.consume", 0, q, "dup", False, False, False, False, {})
        code, text, class_id, method_id = c.wait_for_close()
        assert code == 530
        assert text.startswith("NOT_ALLOWED")
        assert (class_id, method_id) == (60, 20)


def test_consumer_tag_may_repeat_on_other_channel(server):
    with raw_open(server) as c:
        c.open_channel(2)
        q = c.call(1, "queue.declare", 0, "", False, False, True, True, False, {}).args[0]
        c.call(1, "basic.consume", 0, q, "same", False, False, False, False, {},
               expect="basic.consume_ok")
        c.call(2, "basic.consume", 0, q, "same", False, False, False, False, {},
               expect="basic.consume_ok")


def test_server_generated_consumer_tags(server):
    with raw_open(server) as c:
        q = c.call(1, "queue.declare", 0, "", False, False, True, True, False, {}).args[0]
        t1 = c.call(1, "basic.consume", 0, q, "", False, True, False, False, {},
                    expect="basic.consume_ok").args[0]
        t2 = c.call(1, "basic.consume", 0, q, "", False, True, False, False, {},
                    expect="basic.consume_ok").args[0]
        assert t1.startswith("amq.ctag-") and t2.startswith("amq.ctag-")
        assert t1 != t2
        assert c.call(1, "basic.cancel", t1, False).args == [t1]


def test_cancel_unknown_consumer_tag_is_ok(server):
    with raw_open(server) as c:
        m = c.call(1, "basic.cancel", "never-existed", False)
        assert m.name == "basic.cancel_ok" and m.args == ["never-existed"]


def test_cancel_stops_deliveries(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    got = []
    tag = ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
    ch.basic_publish("", q, b"1")
    wutil.wait_until(lambda: got, conn=conn, what="first delivery")
    ch.basic_cancel(tag)
    ch.basic_publish("", q, b"2")
    wutil.pump(conn, 0.3)
    assert got == [b"1"]
    wutil.wait_count(ch, q, 1)


def test_consume_then_publish_from_other_connection(connect):
    consumer_conn = connect()
    publisher_conn = connect()
    ch = consumer_conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
    pub = publisher_conn.channel()
    for i in range(100):
        pub.basic_publish("", q, b"%d" % i)
    wutil.wait_until(lambda: len(got) == 100, timeout=10, conn=consumer_conn,
                     what="100 deliveries")
    assert got == [b"%d" % i for i in range(100)]


def test_deliveries_respect_a_small_negotiated_frame_max(server):
    """The server splits bodies by the frame_max the client negotiated (here 4096)."""
    body = pattern(4096 * 5 + 123)
    with RawConnection(server.host, server.port) as c:
        assert c.handshake(user=server.user, password=server.password,
                           frame_max=4096).name == "connection.open_ok"
        c.open_channel(1)
        q = c.call(1, "queue.declare", 0, "", False, False, True, True, False, {},
                   expect="queue.declare_ok").args[0]
        data = frame(FRAME_METHOD, 1, method_payload("basic.publish", 0, "", q, False, False))
        data += frame(FRAME_HEADER, 1, struct.pack("!HHQH", 60, 0, len(body), 0))
        for i in range(0, len(body), 4096 - 8):
            data += frame(FRAME_BODY, 1, body[i:i + 4096 - 8])
        c.send(data)
        c.call(1, "basic.consume", 0, q, "small", False, True, False, False, {},
               expect="basic.consume_ok")
        assert c.read_method().name == "basic.deliver"
        ftype, _ch, payload = c.read_frame()
        assert ftype == FRAME_HEADER
        got = b""
        while len(got) < len(body):
            ftype, _ch, payload = c.read_frame()
            assert ftype == FRAME_BODY
            assert len(payload) + 8 <= 4096, "body frame of %d octets" % (len(payload) + 8)
            got += payload
        assert got == body


def _declare_frame(q, passive=False):
    return frame(FRAME_METHOD, 1, method_payload("queue.declare", 0, q, passive, False, False, False, False, {}))


def _publish_frames(q, body):
    return (frame(FRAME_METHOD, 1, method_payload("basic.publish", 0, "", q, False, False))
            + frame(FRAME_HEADER, 1, struct.pack("!HHQH", 60, 0, len(body), 0))
            + frame(FRAME_BODY, 1, body))


def test_raw_frames_pipelined_behind_a_declare_are_handled_after_it_in_order(server, uniq):
    """A declare's answer comes from the broker's side; the frames sent behind it in the same write
    (publishes, one of a body larger than a TCP segment, another declare, gets) wait for it and
    keep their order."""
    q = uniq("pipelined")
    big = pattern(100_000)
    with RawConnection(server.host, server.port) as c:
        assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
        c.open_channel(1)
        get = frame(FRAME_METHOD, 1, method_payload("basic.get", 0, q, True))
        c.send(_declare_frame(q) + _publish_frames(q, big) + _declare_frame(q, passive=True) + get
               + _publish_frames(q, b"small") + get
               + frame(FRAME_METHOD, 1, method_payload("queue.delete", 0, q, False, False, False)))
        first = c.expect("queue.declare_ok")
        assert (first.args[0], first.args[1]) == (q, 0)
        assert c.expect("queue.declare_ok").args[0] == q
        assert c.read_method(skip_content=False).name == "basic.get_ok"
        assert c.read_message() == big
        assert c.read_method(skip_content=False).name == "basic.get_ok"
        assert c.read_message() == b"small"
        assert c.expect("queue.delete_ok").args[0] == 0


def test_raw_a_large_frame_split_behind_a_declare_is_read_whole(server, uniq):
    """The start of a large body frame arrives with a declare, its rest later: the frame is read
    whole once the declare is answered."""
    q = uniq("split")
    big = pattern(120_000)
    data = _publish_frames(q, big)
    with RawConnection(server.host, server.port) as c:
        assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
        c.open_channel(1)
        cut = len(data) - 90_000
        c.send(_declare_frame(q) + data[:cut])
        assert c.expect("queue.declare_ok").args[0] == q
        time.sleep(0.2)
        c.send(data[cut:] + frame(FRAME_METHOD, 1, method_payload("basic.get", 0, q, True)))
        assert c.read_method(skip_content=False).name == "basic.get_ok"
        assert c.read_message() == big
        c.call(1, "queue.delete", 0, q, False, False, False, expect="queue.delete_ok")
