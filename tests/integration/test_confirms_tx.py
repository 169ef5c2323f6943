"""Publisher confirms and transactions."""
import pytest

import wutil
from wutil import channel_error
from amqp_raw import RawConnection


@pytest.fixture
def raw(server):
    c = RawConnection(server.host, server.port)
    assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
    c.open_channel(1)
    yield c
    c.close()


def declare_temp(c, ch=1):
    return c.call(ch, "queue.declare", 0, "", False, False, True, True, False, {},
                  expect="queue.declare_ok").args[0]


def collect_confirms(c, n, timeout=10):
    """Read until delivery tags 1..n are all confirmed; returns (acked, nacked, frames)."""
    acked, nacked, frames = set(), set(), []
    while len(acked) + len(nacked) < n:
        m = c.read_method(timeout)
        frames.append(m)
        if m.name not in ("basic.ack", "basic.nack"):
            continue
        tag, multiple = m.args[0], m.args[1]
        target = nacked if m.name == "basic.nack" else acked
        if multiple:
            assert tag > max(acked | nacked | {0}), "multiple confirm going backwards: %r" % m
            target.update(t for t in range(1, tag + 1) if t not in acked and t not in nacked)
        else:
            assert tag not in acked and tag not in nacked, "tag %d confirmed twice" % tag
            target.add(tag)
    return acked, nacked, frames


def test_confirm_select_and_every_publish_acked(raw):
    q = declare_temp(raw)
    raw.call(1, "confirm.select", False, expect="confirm.select_ok")
    n = 50
    for i in range(n):
        raw.publish(1, "", q, b"m%d" % i)
    acked, nacked, _ = collect_confirms(raw, n)
    assert acked == set(range(1, n + 1))
    assert not nacked


def test_confirm_select_nowait(raw):
    q = declare_temp(raw)
    raw.send_method(1, "confirm.select", True)
    raw.publish(1, "", q, b"x")
    acked, _n, frames = collect_confirms(raw, 1)
    assert acked == {1}
    assert all(f.name != "confirm.select_ok" for f in frames)


def test_unroutable_messages_are_confirmed(raw):
    raw.call(1, "confirm.select", False, expect="confirm.select_ok")
    raw.publish(1, "amq.direct", "no-binding-for-this-key", b"lost")
    raw.publish(1, "", "no-such-queue-anywhere", b"lost too")
    acked, nacked, _ = collect_confirms(raw, 2)
    assert acked == {1, 2}


def test_mandatory_unroutable_return_comes_before_ack(raw):
    raw.call(1, "confirm.select", False, expect="confirm.select_ok")
    raw.publish(1, "amq.direct", "no-binding-for-this-key", b"bounce", mandatory=True)
    m = raw.read_method()
    assert m.name == "basic.return"
    assert m.args[0] == 312 and m.args[1] == "NO_ROUTE"
    assert raw.read_message() == b"bounce"
    m = raw.read_method()
    assert m.name == "basic.ack" and m.args[0] == 1


def test_confirm_tags_continue_across_mixed_publishes(raw):
    q = declare_temp(raw)
    raw.call(1, "confirm.select", False, expect="confirm.select_ok")
    raw.publish(1, "", q, b"1")
    raw.publish(1, "amq.direct", "nowhere", b"2")
    raw.publish(1, "", q, b"3")
    acked, _n, _f = collect_confirms(raw, 3)
    assert acked == {1, 2, 3}
    raw.publish(1, "", q, b"4")
    acked, _n, _f = collect_confirms(raw, 1)
    assert acked == {4}


def test_confirm_select_twice_is_fine(raw):
    raw.call(1, "confirm.select", False, expect="confirm.select_ok")
    raw.call(1, "confirm.select", False, expect="confirm.select_ok")


def test_confirm_on_transactional_channel_406(conn):
    ch = conn.channel()
    ch.tx_select()
    with channel_error(406):
        ch.confirm_delivery()


def test_tx_on_confirm_channel_406(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    with channel_error(406):
        ch.tx_select()


def test_pika_confirmed_persistent_publish_to_durable_queue(conn, uniq):
    import pika
    ch = conn.channel()
    ch.confirm_delivery()
    q = uniq("durable")
    ch.queue_declare(q, durable=True)
    for i in range(20):
        ch.basic_publish("", q, b"p%d" % i, pika.BasicProperties(delivery_mode=2))
    assert wutil.message_count(ch, q) == 20
    ch.queue_delete(q)


# --------------------------------------------------------------------------
# transactions

def test_tx_publish_commit_delivers(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.tx_select()
    ch.basic_publish("", q, b"a")
    ch.basic_publish("", q, b"b")
    probe = conn.channel()
    assert wutil.message_count(probe, q) == 0
    ch.tx_commit()
    wutil.wait_count(probe, q, 2)
    assert probe.basic_get(q, auto_ack=True)[2] == b"a"
    assert probe.basic_get(q, auto_ack=True)[2] == b"b"


def test_tx_publish_rollback_discards(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.tx_select()
    ch.basic_publish("", q, b"never")
    ch.tx_rollback()
    ch.basic_publish("", q, b"committed")
    ch.tx_commit()
    probe = conn.channel()
    wutil.wait_count(probe, q, 1)
    assert probe.basic_get(q, auto_ack=True)[2] == b"committed"


def test_tx_stays_transactional_after_commit(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.tx_select()
    ch.basic_publish("", q, b"1")
    ch.tx_commit()
    ch.basic_publish("", q, b"2")
    probe = conn.channel()
    wutil.wait_count(probe, q, 1)
    wutil.pump(conn, 0.2)
    assert wutil.message_count(probe, q) == 1
    ch.tx_commit()
    wutil.wait_count(probe, q, 2)


def test_uncommitted_publishes_dropped_when_channel_closes(conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.tx_select()
    ch.basic_publish("", q, b"lost")
    ch.close()
    probe = conn.channel()
    wutil.pump(conn, 0.2)
    assert wutil.message_count(probe, q) == 0


def _queue_with(conn, bodies):
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    for b in bodies:
        ch.basic_publish("", q, b)
    return q


def test_tx_ack_applied_only_on_commit(conn):
    q = _queue_with(conn, [b"x"])
    ch = conn.channel()
    ch.tx_select()
    m, _p, _b = wutil.get_one(ch, q)
    ch.basic_ack(m.delivery_tag)
    ch.tx_rollback()  # the ack is forgotten: the message is still unacked
    ch.close()
    probe = conn.channel()
    wutil.wait_count(probe, q, 1)

    ch = conn.channel()
    ch.tx_select()
    m, _p, _b = wutil.get_one(ch, q)
    ch.basic_ack(m.delivery_tag)
    ch.tx_commit()
    ch.close()
    wutil.pump(conn, 0.2)
    assert wutil.message_count(probe, q) == 0


def test_tx_reject_applied_on_commit(conn):
    q = _queue_with(conn, [b"x"])
    ch = conn.channel()
    ch.tx_select()
    m, _p, _b = wutil.get_one(ch, q)
    ch.basic_reject(m.delivery_tag, requeue=True)
    probe = conn.channel()
    wutil.pump(conn, 0.2)
    assert wutil.message_count(probe, q) == 0  # not requeued yet
    ch.tx_commit()
    wutil.wait_count(probe, q, 1)


def test_tx_commit_without_select_406(conn):
    ch = conn.channel()
    with channel_error(406) as ei:
        ch.tx_commit()
    assert ei.value.reply_text.startswith("PRECONDITION_FAILED")


def test_tx_rollback_without_select_406(conn):
    ch = conn.channel()
    with channel_error(406):
        ch.tx_rollback()


def test_tx_select_twice_is_fine(conn):
    ch = conn.channel()
    ch.tx_select()
    ch.tx_select()
    ch.tx_commit()


def test_empty_commit_and_rollback(conn):
    ch = conn.channel()
    ch.tx_select()
    ch.tx_commit()
    ch.tx_rollback()
    ch.tx_commit()
