"""Malformed input on raw sockets.  After every case a normal pika client must still
connect, publish and consume (the `healthy_after` fixture checks that at teardown).

Reply codes are the ones RabbitMQ 3.10 sends; where RabbitMQ just drops the TCP
connection without a connection.close, the test accepts exactly that (and, for
unknown methods, a connection.close 540 NOT_IMPLEMENTED as the sane alternative).
"""
import socket
import struct
import time

import pytest

import wutil
from amqp_raw import (FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD, PROTOCOL_HEADER,
                      ConnectionGone, Method, RawConnection, content_header, frame,
                      method_payload)


@pytest.fixture(autouse=True)
def healthy_after(server):
    yield
    wutil.assert_healthy(server)


@pytest.fixture
def raw(server):
    c = RawConnection(server.host, server.port)
    assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
    c.open_channel(1)
    yield c
    c.close()


def expect_close(c, code, timeout=5.0):
    got = c.wait_for_close(timeout)
    assert got[0] == code, "expected connection.close %d, got %r" % (code, got)
    return got


# --------------------------------------------------------------------------
# protocol header

# (What each header gets: test_protocol_headers.py.)

def test_header_sent_in_pieces_is_accepted(server):
    with RawConnection(server.host, server.port) as c:
        for b in PROTOCOL_HEADER:
            c.send(bytes([b]))
            time.sleep(0.01)
        assert c.expect("connection.start").args[0:2] == [0, 9]


def test_disconnect_before_header_completes(server):
    for _ in range(20):
        s = socket.create_connection((server.host, server.port), timeout=5)
        s.sendall(b"AMQ")
        s.close()


def test_many_abrupt_disconnects_mid_handshake(server):
    for i in range(30):
        c = RawConnection(server.host, server.port)
        c.send(PROTOCOL_HEADER)
        if i % 2:
            c.expect("connection.start")
        c.close()


# --------------------------------------------------------------------------
# framing errors after a valid handshake

def test_wrong_frame_end_octet_501(raw):
    raw.send_frame(FRAME_METHOD, 1, method_payload("queue.declare", 0, "", False, False, True,
                                                   True, False, {}), end=0x00)
    code, text, _c, _m = expect_close(raw, 501)
    assert text.startswith("FRAME_ERROR")


def test_wrong_frame_end_on_channel_zero_501(raw):
    raw.send_frame(FRAME_HEARTBEAT, 0, b"", end=0xAB)
    expect_close(raw, 501)


def test_frame_larger_than_frame_max_501(raw):
    big = method_payload("queue.declare", 0, "x", False, False, False, False, False,
                         {"pad": "x" * 140000})
    raw.send_frame(FRAME_METHOD, 1, big)
    code, text, _c, _m = expect_close(raw, 501)
    assert text.startswith("FRAME_ERROR")


def test_oversized_body_frame_501(raw):
    # RabbitMQ tolerates payloads up to frame_max (8 octets of "fudge" for old clients
    # that forgot the frame overhead); one octet more is a frame error.
    body = b"b" * (131072 + 1)
    raw.send(frame(FRAME_METHOD, 1, method_payload("basic.publish", 0, "", "nowhere", False, False))
             + frame(FRAME_HEADER, 1, content_header(len(body))) + frame(FRAME_BODY, 1, body))
    expect_close(raw, 501)


def test_frame_size_fudge_of_8_octets_is_tolerated(raw):
    q = raw.call(1, "queue.declare", 0, "", False, False, True, True, False, {}).args[0]
    body = b"f" * 131072  # payload == frame_max, frame == frame_max + 8
    raw.send(frame(FRAME_METHOD, 1, method_payload("basic.publish", 0, "", q, False, False))
             + frame(FRAME_HEADER, 1, content_header(len(body))) + frame(FRAME_BODY, 1, body))
    deadline = time.monotonic() + 5
    while True:
        m = raw.call(1, "basic.get", 0, q, True)
        if m.name == "basic.get_ok" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert m.name == "basic.get_ok"
    assert raw.read_message() == body


def test_frame_size_announced_huge_501_without_waiting_for_payload(raw):
    raw.send(struct.pack("!BHI", FRAME_METHOD, 1, 0x7FFFFFFF))
    expect_close(raw, 501, timeout=3)


def test_frame_max_is_the_negotiated_value(server):
    with RawConnection(server.host, server.port) as c:
        assert c.handshake(user=server.user, password=server.password,
                           frame_max=4096).name == "connection.open_ok"
        c.open_channel(1)
        # a frame of exactly 4096 octets is fine ...
        overhead = len(method_payload("queue.declare", 0, "", False, False, True, True, False,
                                      {"p": ""}))
        pad = "x" * (4096 - 8 - overhead)
        args = (0, "", False, False, True, True, False, {"p": pad})
        assert len(frame(FRAME_METHOD, 1, method_payload("queue.declare", *args))) == 4096
        assert c.call(1, "queue.declare", *args).name == "queue.declare_ok"
        # ... and so is up to 8 octets more (RabbitMQ's fudge), but not 9
        c.send_method(1, "queue.declare", 0, "", False, False, True, True, False,
                      {"p": pad + "x" * 9})
        expect_close(c, 501)


def test_unknown_frame_type_501(raw):
    raw.send_frame(9, 1, b"")
    expect_close(raw, 501)


def test_garbage_after_handshake_501(raw):
    raw.send(b"\xff" * 32)
    expect_close(raw, 501)


def test_heartbeat_on_nonzero_channel_505(raw):
    raw.send_frame(FRAME_HEARTBEAT, 1, b"")
    code, text, _c, _m = expect_close(raw, 505)
    assert text.startswith("UNEXPECTED_FRAME")


def _connection_dropped_or_540(c):
    try:
        got = c.wait_for_close(5)
    except ConnectionGone:
        return  # RabbitMQ 3.10: the reader crashes on unknown_method_id, TCP is dropped
    assert got[0] == 540, "unknown method: expected 540 NOT_IMPLEMENTED or a dropped connection, got %r" % (got,)


def test_unknown_method_id_ends_connection(raw):
    raw.send_frame(FRAME_METHOD, 1, struct.pack("!HH", 60, 999))
    _connection_dropped_or_540(raw)


def test_unknown_class_id_ends_connection(raw):
    raw.send_frame(FRAME_METHOD, 1, struct.pack("!HH", 77, 10))
    _connection_dropped_or_540(raw)


def test_unknown_connection_method_ends_connection(raw):
    raw.send_frame(FRAME_METHOD, 0, struct.pack("!HH", 10, 99))
    _connection_dropped_or_540(raw)


# As RabbitMQ 3.10.8: the short strings of every method but basic.publish must be UTF-8. (RabbitMQ
# lets surrogates and code points past U+10FFFF through; Warren does not, so that every name it
# shows in JSON is well-formed: the cases here are refused by both.)
@pytest.mark.parametrize("name,args", [
    ("queue.declare", (0, b"q\xff\xfe", False, False, False, False, False, {})),
    ("exchange.declare", (0, b"x\xc0\xaf", "direct", False, False, False, False, False, {})),
    ("queue.bind", (0, "amq.gen-none", "amq.direct", b"\xe0\x80\xaf", False, {})),
    ("basic.get", (0, b"\xff", False)),
])
def test_short_string_that_is_not_utf8_501(raw, name, args):
    raw.send_method(1, name, *args)
    got = expect_close(raw, 501)
    assert got[1] == "FRAME_ERROR - Malformed UTF-8 in shortstr"


def test_basic_publish_takes_routing_key_bytes_as_they_are(raw):
    q = raw.call(1, "queue.declare", 0, "", False, False, True, True, False, {}).args[0]
    raw.publish(1, "", b"\xff\xfe", b"unroutable")
    assert raw.call(1, "queue.declare", 0, q, True, False, True, True, False, {}).args[1] == 0


def test_content_header_without_publish_505(raw):
    raw.send_frame(FRAME_HEADER, 1, content_header(5))
    code, text, _c, _m = expect_close(raw, 505)
    assert text.startswith("UNEXPECTED_FRAME")


def test_body_without_publish_505(raw):
    raw.send_frame(FRAME_BODY, 1, b"abc")
    expect_close(raw, 505)


def test_method_instead_of_content_header_505(raw):
    raw.send_frame(FRAME_METHOD, 1, method_payload("basic.publish", 0, "", "nowhere", False, False))
    raw.send_method(1, "queue.declare", 0, "", False, False, True, True, False, {})
    code, _text, class_id, method_id = expect_close(raw, 505)
    assert (class_id, method_id) == (60, 40)


def test_content_header_for_wrong_class_505(raw):
    raw.send_frame(FRAME_METHOD, 1, method_payload("basic.publish", 0, "", "nowhere", False, False))
    raw.send_frame(FRAME_HEADER, 1, struct.pack("!HHQH", 50, 0, 0, 0))
    expect_close(raw, 505)


def test_body_after_zero_size_header_505(raw):
    raw.send_frame(FRAME_METHOD, 1, method_payload("basic.publish", 0, "", "nowhere", False, False))
    raw.send_frame(FRAME_HEADER, 1, content_header(0))
    raw.send_frame(FRAME_BODY, 1, b"abc")
    expect_close(raw, 505)


def test_body_longer_than_declared_size_505(raw):
    # RabbitMQ keeps waiting for the (never matching) remaining size; the next
    # method frame on the channel is then an unexpected frame.
    raw.send_frame(FRAME_METHOD, 1, method_payload("basic.publish", 0, "", "nowhere", False, False))
    raw.send_frame(FRAME_HEADER, 1, content_header(3))
    raw.send_frame(FRAME_BODY, 1, b"abcdef")
    raw.send_method(1, "queue.declare", 0, "", False, False, True, True, False, {})
    code, text, class_id, method_id = expect_close(raw, 505)
    assert (class_id, method_id) == (60, 40)


def test_method_on_never_opened_channel_504(raw):
    raw.send_method(7, "queue.declare", 0, "", False, False, True, True, False, {})
    code, text, _c, _m = expect_close(raw, 504)
    assert text.startswith("CHANNEL_ERROR")


def test_content_interleaved_across_channels_is_fine(raw):
    raw.open_channel(2)
    q = raw.call(1, "queue.declare", 0, "", False, False, True, True, False, {}).args[0]
    pub = method_payload("basic.publish", 0, "", q, False, False)
    raw.send(frame(FRAME_METHOD, 1, pub) + frame(FRAME_METHOD, 2, pub)
             + frame(FRAME_HEADER, 2, content_header(2)) + frame(FRAME_HEADER, 1, content_header(2))
             + frame(FRAME_BODY, 1, b"c1") + frame(FRAME_BODY, 2, b"c2"))
    bodies = set()
    deadline = time.monotonic() + 5
    while len(bodies) < 2 and time.monotonic() < deadline:
        m = raw.call(1, "basic.get", 0, q, True)
        if m.name == "basic.get_ok":
            bodies.add(raw.read_message())
        else:
            time.sleep(0.05)
    assert bodies == {b"c1", b"c2"}


def test_body_split_into_many_small_frames(raw):
    q = raw.call(1, "queue.declare", 0, "", False, False, True, True, False, {}).args[0]
    body = bytes(range(256)) * 4
    data = frame(FRAME_METHOD, 1, method_payload("basic.publish", 0, "", q, False, False))
    data += frame(FRAME_HEADER, 1, content_header(len(body)))
    for i in range(0, len(body), 7):
        data += frame(FRAME_BODY, 1, body[i:i + 7])
    raw.send(data)
    deadline = time.monotonic() + 5
    while True:
        m = raw.call(1, "basic.get", 0, q, True)
        if m.name == "basic.get_ok" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert m.name == "basic.get_ok"
    assert raw.read_message() == body


def test_disconnect_in_the_middle_of_a_message(server):
    with RawConnection(server.host, server.port) as c:
        assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
        c.open_channel(1)
        c.send(frame(FRAME_METHOD, 1, method_payload("basic.publish", 0, "", "x", False, False))
               + frame(FRAME_HEADER, 1, content_header(1000)) + frame(FRAME_BODY, 1, b"a" * 10))
        c.send(struct.pack("!BHI", FRAME_BODY, 1, 990) + b"partial")


def test_disconnect_in_the_middle_of_a_frame_header(server):
    with RawConnection(server.host, server.port) as c:
        assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
        c.send(b"\x01\x00")


# --------------------------------------------------------------------------
# handshake negotiation errors: RabbitMQ never opens the connection and drops it

def _negotiation_fails(c):
    """The server must not proceed to connection.open-ok; it ends the connection."""
    try:
        m = c.read_method(8)
    except ConnectionGone:
        return
    assert isinstance(m, Method) and m.name == "connection.close", m


@pytest.mark.parametrize("channel_max,frame_max", [(0, 1024), (0, 200000), (5000, 131072)],
                         ids=["frame_max-below-4096", "frame_max-above-server",
                              "channel_max-above-server"])
def test_tune_ok_outside_limits_is_refused(server, channel_max, frame_max):
    with RawConnection(server.host, server.port) as c:
        c.send(PROTOCOL_HEADER)
        c.expect("connection.start")
        c.send_method(0, "connection.start_ok", {}, "PLAIN",
                      b"\x00" + server.user.encode() + b"\x00" + server.password.encode(), "en_US")
        c.expect("connection.tune")
        c.send_method(0, "connection.tune_ok", channel_max, frame_max, 0)
        c.send_method(0, "connection.open", "/", "", False)
        _negotiation_fails(c)


def test_unknown_auth_mechanism_is_refused(server):
    with RawConnection(server.host, server.port) as c:
        c.send(PROTOCOL_HEADER)
        c.expect("connection.start")
        c.send_method(0, "connection.start_ok", {}, "NO-SUCH-MECH", b"whatever", "en_US")
        _negotiation_fails(c)


def test_method_before_handshake_finishes_is_refused(server):
    with RawConnection(server.host, server.port) as c:
        c.send(PROTOCOL_HEADER)
        c.expect("connection.start")
        c.send_method(1, "channel.open", "")
        try:
            m = c.read_method(8)
        except ConnectionGone:
            return
        assert m.name == "connection.close"
