"""Acknowledgements, negative acknowledgements, requeueing and recovery."""
import pytest

import wutil
from wutil import channel_error


@pytest.fixture
def loaded(connect, uniq):
    """A queue holding b'0'..b'4' and a connection; returns (conn, queue)."""
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    q = uniq("q")
    ch.queue_declare(q)
    for i in range(5):
        ch.basic_publish("", q, b"%d" % i)
    ch.close()
    yield conn, q
    if conn.is_open:
        try:
            conn.channel().queue_delete(q)
        except Exception:
            pass


def get_n(ch, q, n):
    out = []
    for _ in range(n):
        m, _p, body = wutil.get_one(ch, q)
        out.append((m, body))
    return out


def bodies_in_queue(conn, q, expect_n=None):
    """Drain q; with expect_n, first wait until that many are ready (requeue may lag)."""
    ch = conn.channel()
    if expect_n is not None:
        wutil.wait_count(ch, q, expect_n)
    out = []
    while True:
        m, _p, body = ch.basic_get(q, auto_ack=True)
        if m is None:
            break
        out.append((body, m.redelivered))
    ch.close()
    return out


def test_ack_removes_message(loaded):
    conn, q = loaded
    ch = conn.channel()
    (m, body), = get_n(ch, q, 1)
    assert body == b"0"
    ch.basic_ack(m.delivery_tag)
    ch.close()
    wutil.wait_count(conn.channel(), q, 4)
    assert [b for b, _r in bodies_in_queue(conn, q, 4)] == [b"1", b"2", b"3", b"4"]


def test_ack_multiple(loaded):
    conn, q = loaded
    ch = conn.channel()
    got = get_n(ch, q, 5)
    ch.basic_ack(got[2][0].delivery_tag, multiple=True)  # acks 0, 1, 2
    ch.close()  # 3 and 4 go back
    assert bodies_in_queue(conn, q, 2) == [(b"3", True), (b"4", True)]


def test_ack_zero_multiple_acks_everything(loaded):
    conn, q = loaded
    ch = conn.channel()
    get_n(ch, q, 5)
    ch.basic_ack(0, multiple=True)
    ch.close()
    assert bodies_in_queue(conn, q, 0) == []


def test_nack_multiple_requeue(loaded):
    conn, q = loaded
    ch = conn.channel()
    got = get_n(ch, q, 3)
    ch.basic_nack(got[-1][0].delivery_tag, multiple=True, requeue=True)
    again = get_n(ch, q, 5)
    assert [b for _m, b in again] == [b"0", b"1", b"2", b"3", b"4"]
    assert [m.redelivered for m, _b in again] == [True, True, True, False, False]
    ch.basic_ack(0, multiple=True)


def test_nack_without_requeue_drops(loaded):
    conn, q = loaded
    ch = conn.channel()
    got = get_n(ch, q, 2)
    ch.basic_nack(got[1][0].delivery_tag, multiple=True, requeue=False)
    ch.close()
    assert [b for b, _r in bodies_in_queue(conn, q, 3)] == [b"2", b"3", b"4"]


def test_reject_without_requeue_drops(loaded):
    conn, q = loaded
    ch = conn.channel()
    (m, body), = get_n(ch, q, 1)
    ch.basic_reject(m.delivery_tag, requeue=False)
    ch.close()
    assert [b for b, _r in bodies_in_queue(conn, q, 4)] == [b"1", b"2", b"3", b"4"]


def test_reject_requeue_redelivers_first(loaded):
    conn, q = loaded
    ch = conn.channel()
    (m, body), = get_n(ch, q, 1)
    ch.basic_reject(m.delivery_tag, requeue=True)
    (m2, body2), = get_n(ch, q, 1)
    assert body2 == b"0" and m2.redelivered is True
    ch.basic_ack(m2.delivery_tag)


def test_requeued_messages_return_to_original_position(loaded):
    conn, q = loaded
    ch = conn.channel()
    got = get_n(ch, q, 4)  # 0 1 2 3 out, 4 ready
    tags = {body: m.delivery_tag for m, body in got}
    ch.basic_reject(tags[b"2"], requeue=True)
    ch.basic_reject(tags[b"0"], requeue=True)
    ch.close()  # 1 and 3 go back too
    assert bodies_in_queue(conn, q, 5) == [(b"0", True), (b"1", True), (b"2", True),
                                        (b"3", True), (b"4", False)]


def test_unacked_requeued_when_channel_closes(loaded):
    conn, q = loaded
    ch = conn.channel()
    get_n(ch, q, 3)
    probe = conn.channel()
    assert wutil.message_count(probe, q) == 2
    ch.close()
    wutil.wait_count(probe, q, 5)
    assert [b for b, _r in bodies_in_queue(conn, q, 5)] == [b"0", b"1", b"2", b"3", b"4"]


def test_unacked_requeued_when_connection_closes(connect, loaded):
    conn, q = loaded
    other = connect()
    ch = other.channel()
    got = []
    ch.basic_qos(prefetch_count=2)
    ch.basic_consume(q, lambda c, m, p, b: got.append(b))
    wutil.wait_until(lambda: len(got) == 2, conn=other, what="2 deliveries")
    other.close()
    wutil.wait_count(conn.channel(), q, 5)
    assert bodies_in_queue(conn, q, 5) == [(b"0", True), (b"1", True), (b"2", False),
                                        (b"3", False), (b"4", False)]


def test_consumer_redelivery_after_nack(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"again")
    seen = []

    def on_msg(c, m, p, b):
        seen.append((b, m.redelivered))
        if len(seen) == 1:
            c.basic_nack(m.delivery_tag, requeue=True)
        else:
            c.basic_ack(m.delivery_tag)

    ch.basic_consume(q, on_msg)
    wutil.wait_until(lambda: len(seen) == 2, conn=conn, what="redelivery")
    assert seen == [(b"again", False), (b"again", True)]


def test_basic_recover_requeue(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    for i in range(3):
        ch.basic_publish("", q, b"%d" % i)
    seen = []
    ch.basic_consume(q, lambda c, m, p, b: seen.append((b, m.redelivered, m.delivery_tag)))
    wutil.wait_until(lambda: len(seen) == 3, conn=conn, what="3 deliveries")
    ch.basic_recover(requeue=True)
    wutil.wait_until(lambda: len(seen) == 6, conn=conn, what="3 redeliveries")
    assert [(b, r) for b, r, _t in seen] == [(b"0", False), (b"1", False), (b"2", False),
                                             (b"0", True), (b"1", True), (b"2", True)]
    assert [t for _b, _r, t in seen] == [1, 2, 3, 4, 5, 6]  # fresh tags for redeliveries
    ch.basic_ack(6, multiple=True)


def test_ack_unknown_delivery_tag_406(conn):
    ch = conn.channel()
    with channel_error(406) as ei:
        ch.basic_ack(42)
        ch.queue_declare("", exclusive=True)  # synchronous call to collect the close
    assert ei.value.reply_text.startswith("PRECONDITION_FAILED")
    assert "unknown delivery tag" in ei.value.reply_text
    assert conn.is_open
    conn.channel().queue_declare("", exclusive=True)


def test_double_ack_406(loaded):
    conn, q = loaded
    ch = conn.channel()
    (m, _b), = get_n(ch, q, 1)
    ch.basic_ack(m.delivery_tag)
    with channel_error(406):
        ch.basic_ack(m.delivery_tag)
        ch.queue_declare("", exclusive=True)


def test_reject_unknown_delivery_tag_406(conn):
    ch = conn.channel()
    with channel_error(406):
        ch.basic_reject(7, requeue=True)
        ch.queue_declare("", exclusive=True)


def test_nack_unknown_delivery_tag_406(conn):
    ch = conn.channel()
    with channel_error(406):
        ch.basic_nack(7, requeue=False)
        ch.queue_declare("", exclusive=True)


def test_ack_of_auto_ack_delivery_406(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"noack")
    m, _p, _b = wutil.get_one(ch, q, auto_ack=True)
    with channel_error(406):
        ch.basic_ack(m.delivery_tag)
        ch.queue_declare("", exclusive=True)


def test_delivery_tags_are_per_channel(loaded):
    conn, q = loaded
    ch1 = conn.channel()
    ch2 = conn.channel()
    (m1, _), = get_n(ch1, q, 1)
    (m2, _), = get_n(ch2, q, 1)
    assert m1.delivery_tag == 1 and m2.delivery_tag == 1
    ch2.basic_ack(1)
    ch1.basic_ack(1)
    ch1.close()
    ch2.close()
    assert [b for b, _r in bodies_in_queue(conn, q, 3)] == [b"2", b"3", b"4"]


def test_ack_on_wrong_channel_406(loaded):
    conn, q = loaded
    ch1 = conn.channel()
    ch2 = conn.channel()
    get_n(ch1, q, 2)
    with channel_error(406):
        ch2.basic_ack(2)
        ch2.queue_declare("", exclusive=True)
