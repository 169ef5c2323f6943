"""Exchange declaration rules and routing (direct, fanout, topic, headers, e2e)."""
import pytest

import wutil
from wutil import channel_error


def drain(ch, queue):
    """All bodies currently ready in queue (basic.get until empty)."""
    out = []
    while True:
        m, _p, body = ch.basic_get(queue, auto_ack=True)
        if m is None:
            return out
        out.append(body)


@pytest.fixture
def pub(conn):
    """A channel in confirm mode: basic_publish returns after the broker routed the message."""
    c = conn.channel()
    c.confirm_delivery()
    return c


def make_queue(ch, uniq):
    return ch.queue_declare(uniq("q"), exclusive=True).method.queue


@pytest.mark.parametrize("xtype", ["direct", "fanout", "topic", "headers"])
def test_declare_each_type_and_redeclare_identically(ch, uniq, xtype):
    x = uniq("x")
    ch.exchange_declare(x, exchange_type=xtype)
    ch.exchange_declare(x, exchange_type=xtype)  # identical redeclare is fine
    ch.exchange_declare(x, exchange_type=xtype, passive=True)
    ch.exchange_delete(x)


@pytest.mark.parametrize("name,xtype", [
    ("amq.direct", "direct"), ("amq.fanout", "fanout"), ("amq.topic", "topic"),
    ("amq.headers", "headers"), ("amq.match", "headers"),
])
def test_builtin_exchanges_exist(ch, name, xtype):
    ch.exchange_declare(name, exchange_type=xtype, passive=True)


def test_passive_declare_missing_exchange_404(conn, uniq):
    ch = conn.channel()
    with channel_error(404) as ei:
        ch.exchange_declare(uniq("x"), passive=True)
    assert ei.value.reply_text.startswith("NOT_FOUND")
    assert conn.is_open  # only the channel dies
    conn.channel().queue_declare("", exclusive=True)


def test_redeclare_with_other_type_406(conn, uniq):
    x = uniq("x")
    ch = conn.channel()
    ch.exchange_declare(x, exchange_type="direct")
    with channel_error(406) as ei:
        ch.exchange_declare(x, exchange_type="fanout")
    assert ei.value.reply_text.startswith("PRECONDITION_FAILED")
    conn.channel().exchange_delete(x)


def test_redeclare_with_other_durability_406(conn, uniq):
    x = uniq("x")
    ch = conn.channel()
    ch.exchange_declare(x, exchange_type="direct", durable=False)
    with channel_error(406):
        ch.exchange_declare(x, exchange_type="direct", durable=True)
    conn.channel().exchange_delete(x)


def test_redeclare_with_other_auto_delete_406(conn, uniq):
    x = uniq("x")
    ch = conn.channel()
    ch.exchange_declare(x, exchange_type="direct")
    with channel_error(406):
        ch.exchange_declare(x, exchange_type="direct", auto_delete=True)
    conn.channel().exchange_delete(x)


def test_passive_declare_ignores_type_mismatch(conn, uniq):
    x = uniq("x")
    ch = conn.channel()
    ch.exchange_declare(x, exchange_type="topic")
    ch.exchange_declare(x, exchange_type="direct", passive=True)
    ch.exchange_delete(x)


def test_declare_reserved_amq_prefix_403(conn, uniq):
    ch = conn.channel()
    with channel_error(403) as ei:
        ch.exchange_declare("amq.foo-" + uniq(), exchange_type="direct")
    assert ei.value.reply_text.startswith("ACCESS_REFUSED")


def test_redeclare_existing_amq_direct_equivalent_ok_other_type_406(conn):
    # the amq. prefix check only applies to exchanges that do not exist yet
    ch = conn.channel()
    ch.exchange_declare("amq.direct", exchange_type="direct", durable=True)
    with channel_error(406):
        ch.exchange_declare("amq.direct", exchange_type="fanout", durable=True)


def test_unknown_exchange_type_503(conn, uniq):
    ch = conn.channel()
    with wutil.connection_error(503) as ei:
        ch.exchange_declare(uniq("x"), exchange_type="no-such-type")
    assert ei.value.reply_text.startswith("COMMAND_INVALID")


def test_default_exchange_cannot_be_declared(conn):
    ch = conn.channel()
    with channel_error(403):
        ch.exchange_declare("", exchange_type="direct")


def test_default_exchange_cannot_be_deleted(conn):
    ch = conn.channel()
    with channel_error(403):
        ch.exchange_delete("")


def test_default_exchange_cannot_be_bound_to(conn, uniq):
    ch = conn.channel()
    q = ch.queue_declare(uniq("q"), exclusive=True).method.queue
    with channel_error(403):
        ch.queue_bind(q, "", routing_key="anything")


def test_amq_exchanges_cannot_be_deleted(conn):
    ch = conn.channel()
    with channel_error(403):
        ch.exchange_delete("amq.direct")


def test_delete_missing_exchange_is_ok(ch, uniq):
    ch.exchange_delete(uniq("x"))


def test_delete_if_unused_on_bound_exchange_406(conn, uniq):
    ch = conn.channel()
    x = uniq("x")
    ch.exchange_declare(x, exchange_type="direct")
    q = make_queue(ch, uniq)
    ch.queue_bind(q, x, routing_key="k")
    with channel_error(406):
        ch.exchange_delete(x, if_unused=True)
    ch2 = conn.channel()
    ch2.exchange_declare(x, passive=True)  # still there
    ch2.queue_unbind(q, x, routing_key="k")
    ch2.exchange_delete(x, if_unused=True)
    with channel_error(404):
        ch2.exchange_declare(x, passive=True)


def test_delete_exchange_removes_its_bindings(conn, pub, uniq):
    ch = conn.channel()
    x = uniq("x")
    ch.exchange_declare(x, exchange_type="fanout")
    q = make_queue(ch, uniq)
    ch.queue_bind(q, x)
    ch.exchange_delete(x)
    ch.exchange_declare(x, exchange_type="fanout")
    pub.basic_publish(x, "", b"after-recreate")
    assert drain(ch, q) == []
    ch.exchange_delete(x)


def test_a_publishing_channel_sees_its_exchange_deleted_and_declared_again(conn, pub, uniq):
    # The same channel publishes before and after each change: what it found for the name before
    # must not be used after the exchange went (deleted, auto-deleted, declared anew).
    ch = conn.channel()
    x, xa = uniq("x"), uniq("xa")
    ch.exchange_declare(x, exchange_type="fanout")
    q1, q2 = make_queue(ch, uniq), make_queue(ch, uniq)
    ch.queue_bind(q1, x)
    pub.basic_publish(x, "", b"first")
    ch.exchange_delete(x)
    ch.exchange_declare(x, exchange_type="fanout")
    ch.queue_bind(q2, x)
    pub.basic_publish(x, "", b"second")
    assert drain(ch, q1) == [b"first"]
    assert drain(ch, q2) == [b"second"]

    ch.exchange_declare(xa, exchange_type="fanout", auto_delete=True)
    ch.queue_bind(q1, xa)
    pub.basic_publish(xa, "", b"third")
    ch.queue_unbind(q1, xa)  # the last binding: xa goes
    with channel_error(404) as e:
        pub.basic_publish(xa, "", b"fourth")
    assert e.value.reply_text == "NOT_FOUND - no exchange '%s' in vhost '/'" % xa
    assert drain(ch, q1) == [b"third"]
    ch.exchange_delete(x)


def test_auto_delete_exchange_goes_when_last_binding_goes(conn, uniq):
    ch = conn.channel()
    x = uniq("x")
    ch.exchange_declare(x, exchange_type="direct", auto_delete=True)
    q = make_queue(ch, uniq)
    ch.queue_bind(q, x, routing_key="a")
    ch.queue_bind(q, x, routing_key="b")
    ch.queue_unbind(q, x, routing_key="a")
    ch.exchange_declare(x, passive=True)
    ch.queue_unbind(q, x, routing_key="b")
    with channel_error(404):
        ch.exchange_declare(x, passive=True)


def test_direct_routing(conn, pub, uniq):
    ch = conn.channel()
    x = uniq("x")
    ch.exchange_declare(x, exchange_type="direct")
    q1, q2, q3 = (make_queue(ch, uniq) for _ in range(3))
    ch.queue_bind(q1, x, routing_key="red")
    ch.queue_bind(q2, x, routing_key="red")
    ch.queue_bind(q2, x, routing_key="green")
    ch.queue_bind(q3, x, routing_key="blue")
    for key in ("red", "green", "blue", "black", "RED"):
        pub.basic_publish(x, key, key.encode())
    assert drain(ch, q1) == [b"red"]
    assert drain(ch, q2) == [b"red", b"green"]
    assert drain(ch, q3) == [b"blue"]
    ch.exchange_delete(x)


def test_duplicate_binding_delivers_once(conn, pub, uniq):
    ch = conn.channel()
    x = uniq("x")
    ch.exchange_declare(x, exchange_type="topic")
    q = make_queue(ch, uniq)
    ch.queue_bind(q, x, routing_key="a.*")
    ch.queue_bind(q, x, routing_key="a.*")
    ch.queue_bind(q, x, routing_key="#")
    pub.basic_publish(x, "a.b", b"once")
    assert drain(ch, q) == [b"once"]
    ch.exchange_delete(x)


def test_fanout_ignores_routing_key(conn, pub, uniq):
    ch = conn.channel()
    x = uniq("x")
    ch.exchange_declare(x, exchange_type="fanout")
    qs = [make_queue(ch, uniq) for _ in range(3)]
    for i, q in enumerate(qs):
        ch.queue_bind(q, x, routing_key="key-%d" % i)
    pub.basic_publish(x, "whatever", b"fan")
    for q in qs:
        assert drain(ch, q) == [b"fan"]
    ch.exchange_delete(x)


def test_default_exchange_routes_by_queue_name(conn, pub, uniq):
    ch = conn.channel()
    q = make_queue(ch, uniq)
    pub.basic_publish("", q, b"direct-to-queue")
    m, _p, body = wutil.get_one(ch, q, auto_ack=True)
    assert body == b"direct-to-queue"
    assert m.exchange == "" and m.routing_key == q


def test_amq_direct_routes(conn, pub, uniq):
    ch = conn.channel()
    q = make_queue(ch, uniq)
    ch.queue_bind(q, "amq.direct", routing_key=q)
    pub.basic_publish("amq.direct", q, b"via-amq.direct")
    assert drain(ch, q) == [b"via-amq.direct"]


TOPIC_CASES = {
    "a.*": (["a.b", "a.c"], ["a", "a.b.c", "b.a", ""]),
    "a.#": (["a", "a.b", "a.b.c"], ["b", "b.a", "ab"]),
    "#": (["", "a", "a.b.c", "x.y"], []),
    "a.#.b": (["a.b", "a.x.b", "a.x.y.b"], ["a.x.c", "a", "b.a.b", "a.b.c"]),
    "*.b.*": (["x.b.y", "a.b.c"], ["b.c", "a.b", "a.b.c.d"]),
    "#.z": (["z", "a.z", "a.b.z"], ["z.a", "az"]),
    "*": (["a", "bcd"], ["a.b"]),
    "a.*.#": (["a.b", "a.b.c"], ["a", "b.a"]),
    "exact.key": (["exact.key"], ["exact", "exact.key.more", "exact.keys"]),
}


def test_topic_routing_patterns(conn, pub, uniq):
    ch = conn.channel()
    x = uniq("x")
    ch.exchange_declare(x, exchange_type="topic")
    queues = {}
    for pattern in TOPIC_CASES:
        q = make_queue(ch, uniq)
        ch.queue_bind(q, x, routing_key=pattern)
        queues[pattern] = q
    keys = sorted({k for yes, no in TOPIC_CASES.values() for k in yes + no})
    for key in keys:
        pub.basic_publish(x, key, key.encode())
    for pattern, (yes, no) in TOPIC_CASES.items():
        got = {b.decode() for b in drain(ch, queues[pattern])}
        for key in yes:
            assert key in got, "pattern %r should match %r" % (pattern, key)
        for key in no:
            assert key not in got, "pattern %r must not match %r" % (pattern, key)
    ch.exchange_delete(x)


def test_headers_exchange_all_and_any(conn, pub, uniq):
    ch = conn.channel()
    x = uniq("x")
    ch.exchange_declare(x, exchange_type="headers")
    q_all, q_any, q_default = (make_queue(ch, uniq) for _ in range(3))
    ch.queue_bind(q_all, x, arguments={"x-match": "all", "format": "pdf", "type": "report"})
    ch.queue_bind(q_any, x, arguments={"x-match": "any", "format": "pdf", "type": "report"})
    ch.queue_bind(q_default, x, arguments={"format": "pdf", "type": "report"})  # all is default
    import pika
    cases = [
        ("both", {"format": "pdf", "type": "report"}),
        ("both+extra", {"format": "pdf", "type": "report", "lang": "en"}),
        ("format-only", {"format": "pdf"}),
        ("type-only", {"type": "report"}),
        ("wrong-values", {"format": "zip", "type": "log"}),
        ("none", None),
    ]
    for name, headers in cases:
        pub.basic_publish(x, "ignored", name.encode(),
                          pika.BasicProperties(headers=headers))
    assert drain(ch, q_all) == [b"both", b"both+extra"]
    assert drain(ch, q_default) == [b"both", b"both+extra"]
    assert drain(ch, q_any) == [b"both", b"both+extra", b"format-only", b"type-only"]
    ch.exchange_delete(x)


def test_headers_exchange_presence_only_and_int_values(conn, pub, uniq):
    import pika
    ch = conn.channel()
    x = uniq("x")
    ch.exchange_declare(x, exchange_type="headers")
    q_int, q_empty = (make_queue(ch, uniq) for _ in range(2))
    ch.queue_bind(q_int, x, arguments={"x-match": "all", "level": 3})
    ch.queue_bind(q_empty, x, arguments={"x-match": "all"})  # no conditions: matches everything
    pub.basic_publish(x, "", b"three", pika.BasicProperties(headers={"level": 3}))
    pub.basic_publish(x, "", b"four", pika.BasicProperties(headers={"level": 4}))
    pub.basic_publish(x, "", b"noheaders")
    assert drain(ch, q_int) == [b"three"]
    assert drain(ch, q_empty) == [b"three", b"four", b"noheaders"]
    ch.exchange_delete(x)


def test_exchange_to_exchange_binding_routes_through(conn, pub, uniq):
    ch = conn.channel()
    src, dst = uniq("src"), uniq("dst")
    ch.exchange_declare(src, exchange_type="topic")
    ch.exchange_declare(dst, exchange_type="direct")
    ch.exchange_bind(destination=dst, source=src, routing_key="orders.*")
    q = make_queue(ch, uniq)
    ch.queue_bind(q, dst, routing_key="orders.new")
    pub.basic_publish(src, "orders.new", b"routed-twice")
    pub.basic_publish(src, "orders.old", b"stops-at-dst")
    pub.basic_publish(src, "other", b"stops-at-src")
    assert drain(ch, q) == [b"routed-twice"]
    ch.exchange_unbind(destination=dst, source=src, routing_key="orders.*")
    pub.basic_publish(src, "orders.new", b"after-unbind")
    assert drain(ch, q) == []
    ch.exchange_delete(src)
    ch.exchange_delete(dst)


def test_exchange_binding_cycle_delivers_once(conn, pub, uniq):
    ch = conn.channel()
    a, b = uniq("a"), uniq("b")
    ch.exchange_declare(a, exchange_type="fanout")
    ch.exchange_declare(b, exchange_type="fanout")
    ch.exchange_bind(destination=b, source=a)
    ch.exchange_bind(destination=a, source=b)
    q = make_queue(ch, uniq)
    ch.queue_bind(q, a)
    ch.queue_bind(q, b)
    pub.basic_publish(a, "", b"loop")
    assert drain(ch, q) == [b"loop"]
    ch.exchange_delete(a)
    ch.exchange_delete(b)


def test_exchange_bind_missing_source_404(conn, uniq):
    ch = conn.channel()
    dst = uniq("dst")
    ch.exchange_declare(dst, exchange_type="fanout")
    with channel_error(404):
        ch.exchange_bind(destination=dst, source=uniq("missing"))
    conn.channel().exchange_delete(dst)


def test_internal_exchange_rejects_direct_publish_403(conn, uniq):
    ch = conn.channel()
    x = uniq("internal")
    ch.exchange_declare(x, exchange_type="fanout", internal=True)
    with channel_error(403) as ei:
        ch.basic_publish(x, "", b"nope")
        ch.exchange_declare(x, passive=True)  # a synchronous call to collect the error
    assert ei.value.reply_text.startswith("ACCESS_REFUSED")
    conn.channel().exchange_delete(x)


def test_internal_exchange_receives_via_e2e_binding(conn, pub, uniq):
    ch = conn.channel()
    src, internal = uniq("src"), uniq("internal")
    ch.exchange_declare(src, exchange_type="fanout")
    ch.exchange_declare(internal, exchange_type="fanout", internal=True)
    ch.exchange_bind(destination=internal, source=src)
    q = make_queue(ch, uniq)
    ch.queue_bind(q, internal)
    pub.basic_publish(src, "", b"through-internal")
    assert drain(ch, q) == [b"through-internal"]
    ch.exchange_delete(src)
    ch.exchange_delete(internal)
