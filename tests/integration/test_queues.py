"""Queue declaration rules, exclusivity, auto-delete, purge, delete, bindings."""

import wutil
from wutil import channel_error


def test_server_named_queue(ch):
    ok = ch.queue_declare("", exclusive=True)
    assert ok.method.queue.startswith("amq.gen-")
    assert len(ok.method.queue) > len("amq.gen-")
    assert ok.method.message_count == 0
    assert ok.method.consumer_count == 0
    other = ch.queue_declare("", exclusive=True).method.queue
    assert other != ok.method.queue


def test_declare_returns_name_and_counts(ch, uniq):
    q = uniq("q")
    ok = ch.queue_declare(q, auto_delete=False)
    assert ok.method.queue == q
    assert (ok.method.message_count, ok.method.consumer_count) == (0, 0)
    ch.queue_delete(q)


def test_passive_declare_missing_queue_404(conn, uniq):
    ch = conn.channel()
    with channel_error(404) as ei:
        ch.queue_declare(uniq("missing"), passive=True)
    assert ei.value.reply_text.startswith("NOT_FOUND")
    assert conn.is_open


def test_passive_declare_reports_message_and_consumer_counts(connect, uniq):
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    q = uniq("q")
    ch.queue_declare(q)
    for i in range(3):
        ch.basic_publish("", q, b"m%d" % i)
    ok = ch.queue_declare(q, passive=True)
    assert (ok.method.message_count, ok.method.consumer_count) == (3, 0)

    cons = conn.channel()
    cons.basic_qos(prefetch_count=1)
    got = []
    cons.basic_consume(q, lambda c, m, p, b: got.append(m))
    wutil.wait_until(lambda: len(got) == 1, conn=conn, what="one delivery")
    ok = ch.queue_declare(q, passive=True)
    # unacked messages are not counted as ready
    assert (ok.method.message_count, ok.method.consumer_count) == (2, 1)
    cons.close()
    ch.queue_delete(q)


def test_active_redeclare_reports_counts(ch, uniq):
    ch.confirm_delivery()
    q = uniq("q")
    ch.queue_declare(q)
    ch.basic_publish("", q, b"x")
    ch.basic_publish("", q, b"y")
    ok = ch.queue_declare(q)
    assert ok.method.message_count == 2
    ch.queue_delete(q)


def test_redeclare_with_other_durability_406(conn, uniq):
    q = uniq("q")
    ch = conn.channel()
    ch.queue_declare(q, durable=False)
    with channel_error(406) as ei:
        ch.queue_declare(q, durable=True)
    assert ei.value.reply_text.startswith("PRECONDITION_FAILED")
    conn.channel().queue_delete(q)


def test_redeclare_with_other_auto_delete_406(conn, uniq):
    q = uniq("q")
    ch = conn.channel()
    ch.queue_declare(q, auto_delete=False)
    with channel_error(406):
        ch.queue_declare(q, auto_delete=True)
    conn.channel().queue_delete(q)


def test_redeclare_with_other_arguments_406(conn, uniq):
    q = uniq("q")
    ch = conn.channel()
    ch.queue_declare(q, arguments={"x-max-length": 10})
    with channel_error(406):
        ch.queue_declare(q, arguments={"x-max-length": 20})
    conn.channel().queue_delete(q)


def test_declare_reserved_amq_prefix_403(conn, uniq):
    ch = conn.channel()
    with channel_error(403):
        ch.queue_declare("amq.mine-" + uniq())


def test_exclusive_queue_locked_for_other_connections_405(connect, uniq):
    owner = connect()
    q = uniq("q")
    owner.channel().queue_declare(q, exclusive=True)
    other = connect()
    with channel_error(405) as ei:
        other.channel().queue_declare(q, exclusive=True)
    assert ei.value.reply_text.startswith("RESOURCE_LOCKED")
    with channel_error(405):
        other.channel().queue_declare(q, passive=True)
    with channel_error(405):
        other.channel().basic_consume(q, lambda *a: None)
    with channel_error(405):
        other.channel().queue_delete(q)
    # the owner still can use it from any of its channels
    owner.channel().queue_declare(q, passive=True)


def test_exclusive_queue_deleted_when_connection_closes(connect, uniq):
    owner = connect()
    q = uniq("q")
    owner.channel().queue_declare(q, exclusive=True)
    owner.close()
    conn = connect()

    def gone():
        ch = conn.channel()
        try:
            ch.queue_declare(q, passive=True)
        except Exception as e:  # 404 closes the channel
            return getattr(e, "reply_code", None) == 404
        ch.close()
        return False

    wutil.wait_until(gone, timeout=5, what="exclusive queue deletion")


def test_auto_delete_queue_survives_until_first_consumer_then_goes_with_last(connect, uniq):
    conn = connect()
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q, auto_delete=True)
    wutil.pump(conn, 0.3)
    ch.queue_declare(q, passive=True)  # never had a consumer: still there

    c1 = conn.channel()
    c2 = conn.channel()
    t1 = c1.basic_consume(q, lambda *a: None)
    t2 = c2.basic_consume(q, lambda *a: None)
    c1.basic_cancel(t1)
    wutil.pump(conn, 0.2)
    ok = ch.queue_declare(q, passive=True)  # one consumer left
    assert ok.method.consumer_count == 1
    c2.basic_cancel(t2)

    def gone():
        probe = conn.channel()
        try:
            probe.queue_declare(q, passive=True)
        except Exception as e:
            return getattr(e, "reply_code", None) == 404
        probe.close()
        return False

    wutil.wait_until(gone, timeout=5, what="auto-delete queue deletion")


def test_auto_delete_queue_goes_when_consumer_channel_closes(connect, uniq):
    conn = connect()
    q = uniq("q")
    conn.channel().queue_declare(q, auto_delete=True)
    c = conn.channel()
    c.basic_consume(q, lambda *a: None)
    c.close()

    def gone():
        probe = conn.channel()
        try:
            probe.queue_declare(q, passive=True)
        except Exception as e:
            return getattr(e, "reply_code", None) == 404
        probe.close()
        return False

    wutil.wait_until(gone, timeout=5, what="auto-delete queue deletion")


def test_purge_returns_count(ch, uniq):
    ch.confirm_delivery()
    q = uniq("q")
    ch.queue_declare(q, exclusive=True)
    for i in range(7):
        ch.basic_publish("", q, b"p")
    assert ch.queue_purge(q).method.message_count == 7
    assert wutil.message_count(ch, q) == 0
    assert ch.queue_purge(q).method.message_count == 0


def test_purge_keeps_unacked_messages(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    q = uniq("q")
    ch.queue_declare(q, exclusive=True)
    for body in (b"a", b"b", b"c"):
        ch.basic_publish("", q, body)
    m, _p, body = ch.basic_get(q)
    assert body == b"a"
    assert ch.queue_purge(q).method.message_count == 2
    ch.basic_nack(m.delivery_tag, requeue=True)
    wutil.wait_count(ch, q, 1)


def test_purge_missing_queue_404(conn, uniq):
    with channel_error(404):
        conn.channel().queue_purge(uniq("missing"))


def test_delete_returns_message_count(ch, uniq):
    ch.confirm_delivery()
    q = uniq("q")
    ch.queue_declare(q)
    for i in range(4):
        ch.basic_publish("", q, b"d")
    assert ch.queue_delete(q).method.message_count == 4


def test_delete_missing_queue_is_ok(ch, uniq):
    assert ch.queue_delete(uniq("missing")).method.message_count == 0


def test_delete_if_unused_with_consumer_406(conn, uniq):
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q)
    cons = conn.channel()
    tag = cons.basic_consume(q, lambda *a: None)
    with channel_error(406) as ei:
        ch.queue_delete(q, if_unused=True)
    assert ei.value.reply_text.startswith("PRECONDITION_FAILED")
    cons.basic_cancel(tag)
    conn.channel().queue_delete(q, if_unused=True)


def test_delete_if_empty_with_messages_406(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    q = uniq("q")
    ch.queue_declare(q)
    ch.basic_publish("", q, b"keep")
    with channel_error(406):
        ch.queue_delete(q, if_empty=True)
    ch2 = conn.channel()
    assert wutil.message_count(ch2, q) == 1
    ch2.queue_purge(q)
    ch2.queue_delete(q, if_empty=True)


def test_bind_to_missing_exchange_404(conn, uniq):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    with channel_error(404):
        ch.queue_bind(q, uniq("missing-x"), routing_key="k")


def test_bind_missing_queue_404(conn, uniq):
    with channel_error(404):
        conn.channel().queue_bind(uniq("missing-q"), "amq.direct", routing_key="k")


def test_bind_empty_queue_name_uses_last_declared(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind("", "amq.direct", routing_key=q)  # "" means the channel's last declared queue
    ch.basic_publish("amq.direct", q, b"by-default-name")
    _m, _p, body = wutil.get_one(ch, q, auto_ack=True)
    assert body == b"by-default-name"


def test_unbind_stops_routing(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    x = uniq("x")
    ch.exchange_declare(x, exchange_type="direct")
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, x, routing_key="k")
    ch.basic_publish(x, "k", b"one")
    ch.queue_unbind(q, x, routing_key="k")
    ch.basic_publish(x, "k", b"two")
    _m, _p, body = wutil.get_one(ch, q, auto_ack=True)
    assert body == b"one"
    assert ch.basic_get(q, auto_ack=True)[0] is None
    ch.queue_unbind(q, x, routing_key="never-bound")  # unbinding a missing binding is fine
    ch.exchange_delete(x)


def test_deleting_queue_removes_bindings(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    x = uniq("x")
    ch.exchange_declare(x, exchange_type="fanout")
    q = uniq("q")
    ch.queue_declare(q)
    ch.queue_bind(q, x)
    ch.queue_delete(q)
    ch.queue_declare(q)
    ch.basic_publish(x, "", b"should-not-arrive")
    assert wutil.message_count(ch, q) == 0
    ch.queue_delete(q)
    ch.exchange_delete(x)


def test_fifo_order(ch, uniq):
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(200):
        ch.basic_publish("", q, b"%d" % i)
    got = []
    for i in range(200):
        m, _p, body = ch.basic_get(q, auto_ack=True)
        got.append(body)
    assert got == [b"%d" % i for i in range(200)]


def test_long_and_utf8_names(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    long_name = ("q" + uniq())[:20].ljust(255, "z")
    utf8_name = "очередь-队列-" + uniq()
    for q in (long_name, utf8_name):
        ok = ch.queue_declare(q, exclusive=True)
        assert ok.method.queue == q
        ch.basic_publish("", q, q.encode())
        m, _p, body = wutil.get_one(ch, q, auto_ack=True)
        assert body == q.encode() and m.routing_key == q
    x = "обмен-" + uniq()
    ch.exchange_declare(x, exchange_type="fanout")
    ch.queue_bind(utf8_name, x)
    ch.basic_publish(x, "", b"via-utf8-exchange")
    m, _p, body = wutil.get_one(ch, utf8_name, auto_ack=True)
    assert m.exchange == x
    ch.exchange_delete(x)


def test_empty_queue_name_means_last_declared(server):
    from amqp_raw import RawConnection
    with RawConnection(server.host, server.port) as c:
        assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
        c.open_channel(1)
        q = c.call(1, "queue.declare", 0, "", False, False, True, True, False, {}).args[0]
        c.publish(1, "", q, b"x")
        assert c.call(1, "queue.purge", 0, "", False).name == "queue.purge_ok"
        assert c.call(1, "basic.get", 0, "", True).name == "basic.get_empty"
        assert c.call(1, "basic.consume", 0, "", "t1", False, True, False, False, {}).name \
            == "basic.consume_ok"
        assert c.call(1, "basic.cancel", "t1", False).name == "basic.cancel_ok"
        assert c.call(1, "queue.delete", 0, "", False, False, False).name == "queue.delete_ok"


def test_empty_queue_name_without_declared_queue_404(server):
    from amqp_raw import RawConnection
    with RawConnection(server.host, server.port) as c:
        assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
        c.open_channel(1)
        m = c.call(1, "queue.purge", 0, "", False)
        assert m.name == "channel.close" and m.args[0] == 404
