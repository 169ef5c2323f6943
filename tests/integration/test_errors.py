"""Channel- and connection-level errors and what survives them."""
import pika
import pytest

import wutil
from wutil import channel_error, connection_error
from amqp_raw import FRAME_HEADER, FRAME_METHOD, RawConnection, content_header, frame, method_payload


@pytest.fixture
def raw(server):
    c = RawConnection(server.host, server.port)
    assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
    yield c
    c.close()


def declare_args(name="", passive=False, exclusive=True, auto_delete=True):
    return (0, name, passive, False, exclusive, auto_delete, False, {})


def test_method_on_never_opened_channel_504(raw):
    raw.send_method(5, "queue.declare", *declare_args())
    code, text, class_id, method_id = raw.wait_for_close()
    assert code == 504
    assert text.startswith("CHANNEL_ERROR")
    assert (class_id, method_id) == (50, 10)


def test_method_on_closed_channel_504(raw):
    raw.open_channel(1)
    assert raw.call(1, "channel.close", 200, "bye", 0, 0).name == "channel.close_ok"
    raw.send_method(1, "queue.declare", *declare_args())
    code, text, class_id, method_id = raw.wait_for_close()
    assert code == 504
    assert (class_id, method_id) == (50, 10)


def test_publish_on_closed_channel_504(raw):
    raw.open_channel(3)
    raw.call(3, "channel.close", 200, "bye", 0, 0, expect="channel.close_ok")
    raw.publish(3, "", "anything", b"x")
    code, _text, class_id, method_id = raw.wait_for_close()
    assert code == 504
    assert (class_id, method_id) == (60, 40)


def test_second_channel_open_504(raw):
    raw.open_channel(1)
    raw.send_method(1, "channel.open", "")
    code, _text, class_id, method_id = raw.wait_for_close()
    assert code == 504
    assert (class_id, method_id) == (20, 10)


def test_channel_method_on_channel_zero_504(raw):
    raw.send_method(0, "queue.declare", *declare_args())
    code, _text, class_id, method_id = raw.wait_for_close()
    assert code == 504
    assert (class_id, method_id) == (50, 10)


def test_publish_on_channel_zero_504(raw):
    raw.publish(0, "", "anything", b"x")
    code, _text, class_id, method_id = raw.wait_for_close()
    assert code == 504
    assert (class_id, method_id) == (60, 40)


def test_unsolicited_channel_close_ok_503(raw):
    raw.open_channel(1)
    raw.send_method(1, "channel.close_ok")
    code, text, class_id, method_id = raw.wait_for_close()
    assert code == 503
    assert text.startswith("COMMAND_INVALID")
    assert (class_id, method_id) == (20, 41)


def test_channel_flow_false_not_implemented_540(raw):
    raw.open_channel(1)
    raw.send_method(1, "channel.flow", False)
    code, _text, class_id, method_id = raw.wait_for_close()
    assert code == 540
    assert (class_id, method_id) == (20, 20)


def test_channel_flow_true_is_acknowledged(raw):
    raw.open_channel(1)
    m = raw.call(1, "channel.flow", True)
    assert m.name == "channel.flow_ok" and m.args == [True]


def test_raw_publish_immediate_540(raw):
    raw.open_channel(1)  # (pika cannot set 'immediate', hence raw)
    raw.send(frame(FRAME_METHOD, 1, method_payload("basic.publish", 0, "", "q", False, True))
             + frame(FRAME_HEADER, 1, content_header(0)))
    code, text, class_id, method_id = raw.wait_for_close()
    assert code == 540
    assert text.startswith("NOT_IMPLEMENTED")
    assert (class_id, method_id) == (60, 40)


def test_publish_to_missing_exchange_404(conn, uniq):
    ch = conn.channel()
    with channel_error(404) as ei:
        ch.basic_publish(uniq("missing-x"), "rk", b"x")
        ch.queue_declare("", exclusive=True)  # synchronous call to collect the close
    assert ei.value.reply_text.startswith("NOT_FOUND")
    assert conn.is_open


def test_publish_to_missing_exchange_in_confirm_mode_404(conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    with channel_error(404):
        ch.basic_publish(uniq("missing-x"), "rk", b"x")


def test_channel_error_leaves_other_channels_alone(conn, uniq):
    good = conn.channel()
    q = good.queue_declare("", exclusive=True).method.queue
    bad = conn.channel()
    with channel_error(404):
        bad.queue_declare(uniq("missing"), passive=True)
    assert good.is_open and conn.is_open
    good.basic_publish("", q, b"still fine")
    assert wutil.get_one(good, q, auto_ack=True)[2] == b"still fine"


def test_channel_error_requeues_that_channels_unacked(conn, uniq):
    pub = conn.channel()
    pub.confirm_delivery()
    q = pub.queue_declare("", exclusive=True).method.queue
    pub.basic_publish("", q, b"m")
    ch = conn.channel()
    wutil.get_one(ch, q)  # unacked on ch
    with channel_error(404):
        ch.queue_declare(uniq("missing"), passive=True)
    wutil.wait_count(pub, q, 1)
    m, _p, body = pub.basic_get(q, auto_ack=True)
    assert body == b"m" and m.redelivered is True


def test_methods_after_server_channel_close_are_ignored_until_close_ok(raw, uniq):
    raw.open_channel(1)
    raw.send_method(1, "queue.declare", *declare_args(uniq("missing"), passive=True))
    raw.send_method(1, "queue.declare", *declare_args())  # pipelined, must be discarded
    m = raw.read_method()
    assert m.name == "channel.close" and m.args[0] == 404
    raw.send_method(1, "channel.close_ok")
    raw.open_channel(1)  # the channel number is free again
    m = raw.call(1, "queue.declare", *declare_args())
    assert m.name == "queue.declare_ok"


def test_connection_error_closes_all_channels(connect, uniq):
    conn = connect()
    ch1 = conn.channel()
    ch2 = conn.channel()
    with connection_error(503):
        ch1.exchange_declare(uniq("x"), exchange_type="bogus-type")
    assert conn.is_closed
    assert ch2.is_closed


def test_exclusive_queue_of_failed_connection_is_removed(connect, uniq):
    conn = connect()
    q = uniq("q")
    conn.channel().queue_declare(q, exclusive=True)
    with connection_error(503):
        conn.channel().exchange_declare(uniq("x"), exchange_type="bogus-type")
    other = connect()

    def gone():
        ch = other.channel()
        try:
            ch.queue_declare(q, passive=True)
        except pika.exceptions.ChannelClosedByBroker as e:
            return e.reply_code == 404
        ch.close()
        return False

    wutil.wait_until(gone, timeout=5, what="exclusive queue removal")


def test_channel_open_on_channel_zero_504(raw):
    raw.send_method(0, "channel.open", "")
    code, _text, class_id, method_id = raw.wait_for_close()
    assert code == 504
    assert (class_id, method_id) == (20, 10)


def test_highest_channel_number_opens(raw):
    raw.open_channel(2047)
    m = raw.call(2047, "queue.declare", *declare_args())
    assert m.name == "queue.declare_ok"
