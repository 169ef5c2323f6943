"""The answer to each protocol header, and a session in AMQP 0-8 (issue 8, finding 12).

As RabbitMQ 3.10.8: `AMQP 0 0 9 1` and AMQP 0-9 (`AMQP 1 1 0 9`) get connection.start 0-9; AMQP
0-8 (`AMQP 1 1 8 0`, and `AMQP 1 1 9 1` as printed in the 0-8 spec) gets connection.start 8-0
with no capabilities, and 0-8's framing from then on; any other header gets the 0-9-1 header and
a closed socket.  Every test also passes against RabbitMQ (WARREN_TEST_EXTERNAL).
"""
import base64
import json
import socket
import urllib.request

import pytest

import wutil
from amqp_raw import PROTOCOL_HEADER, PROTOCOL_HEADER_0_8, RawConnection

HEADER_0_9 = b"AMQP\x01\x01\x00\x09"
HEADER_0_8_SPEC = b"AMQP\x01\x01\x09\x01"


def answer_to(server, header):
    """Everything the server sends after `header` until it closes the socket."""
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(header)
        data = b""
        s.settimeout(5)
        try:
            while True:
                chunk = s.recv(100)
                if not chunk:
                    return data
                data += chunk
        except ConnectionResetError:
            return data


@pytest.mark.parametrize("header,version,has_capabilities", [
    (PROTOCOL_HEADER, [0, 9], True),
    (HEADER_0_9, [0, 9], True),
    (PROTOCOL_HEADER_0_8, [8, 0], False),
    (HEADER_0_8_SPEC, [8, 0], False),
], ids=["0-9-1", "0-9", "0-8", "0-8-spec"])
def test_served_header_gets_start_and_a_session(server, header, version, has_capabilities):
    with RawConnection(server.host, server.port, header=header) as c:
        assert c.handshake(server.user, server.password).name == "connection.open_ok"
        assert c.start_args[0:2] == version
        assert c.start_args[3:] == [b"PLAIN AMQPLAIN", b"en_US"]
        assert bool(c.start_args[2]["capabilities"]) == has_capabilities
        assert c.open_channel(1).args == ([] if version == [8, 0] else [b""])
        c.send_method(0, "connection.close", 200, "bye", 0, 0)
        c.expect("connection.close_ok")


@pytest.mark.parametrize("header", [
    b"AMQP\x00\x00\x0a\x00", b"AMQP\x01\x01\x00\x0a", b"AMQP\x00\x00\x08\x00", b"AMQP\x00\x00\x09\x00",
    b"AMQP\x00\x01\x00\x00", b"AMQP\x03\x01\x00\x00", b"BOGUSHDR", b"XXXXXXXX", b"HTTP/1.1",
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
], ids=["0-10", "1-1-0-10", "0-0-8-0", "0-0-9-0", "amqp-1.0", "amqp-1.0-sasl", "garbage", "garbage-x", "http-token",
        "http-request"])
def test_other_header_gets_0_9_1_header_and_close(server, header):
    assert answer_to(server, header) == PROTOCOL_HEADER


def open_0_8(server, header=PROTOCOL_HEADER_0_8):
    c = RawConnection(server.host, server.port, header=header)
    assert c.handshake(server.user, server.password).name == "connection.open_ok"
    c.open_channel(1)
    return c


def test_0_8_session(server, uniq):
    exchange, queue = uniq("x"), uniq("q")
    with open_0_8(server) as c:
        assert c.call(1, "access.request", "/data", False, True, True, True, True,
                      expect="access.request_ok").args == [1]
        c.call(1, "exchange.declare", 1, exchange, "direct", False, False, False, False, False, {},
               expect="exchange.declare_ok")
        assert c.call(1, "queue.declare", 1, queue, False, False, True, False, False, {},
                      expect="queue.declare_ok").args == [queue, 0, 0]
        c.call(1, "queue.bind", 1, queue, exchange, "k", False, {}, expect="queue.bind_ok")
        c.call(1, "basic.qos", 0, 10, False, expect="basic.qos_ok")
        c.publish(1, exchange, "k", b"one")
        c.publish(1, exchange, "k", b"two")

        assert c.call(1, "basic.get", 1, queue, False, expect="basic.get_ok").args == [1, False, exchange, "k", 1]
        assert c.read_message() == b"one"
        assert c.call(1, "basic.consume", 1, queue, "ctag", False, False, False, False,
                      expect="basic.consume_ok").args == ["ctag"]
        assert c.expect("basic.deliver").args == ["ctag", 2, False, exchange, "k"]
        assert c.read_message() == b"two"
        c.send_method(1, "basic.ack", 2, False)

        # 0-8's basic.recover (60, 100) is 0-9-1's recover-async: no reply, and tag 1 comes back.
        c.send_method(1, "basic.recover_async", True)
        assert c.expect("basic.deliver").args == ["ctag", 3, True, exchange, "k"]
        assert c.read_message() == b"one"
        c.send_method(1, "basic.recover", True)
        replies = {m.name: m.args for m in (c.read_method(), c.read_method())}
        assert replies == {"basic.recover_ok": [], "basic.deliver": ["ctag", 4, True, exchange, "k"]}
        c.send_method(1, "basic.ack", 4, False)
        c.call(1, "basic.cancel", "ctag", False, expect="basic.cancel_ok")
        assert c.call(1, "queue.delete", 1, queue, False, False, False, expect="queue.delete_ok").args == [0]
        c.call(1, "exchange.delete", 1, exchange, False, False, expect="exchange.delete_ok")
        c.call(1, "channel.close", 200, "", 0, 0, expect="channel.close_ok")
        c.send_method(0, "connection.close", 200, "bye", 0, 0)
        c.expect("connection.close_ok")


def test_0_8_errors_are_reported_in_0_8(server, uniq):
    missing = uniq("missing")
    with open_0_8(server, HEADER_0_8_SPEC) as c:
        c.send_method(1, "queue.declare", 1, missing, True, False, False, False, False, {})
        assert c.expect("channel.close").args == [404, "NOT_FOUND - no queue '%s' in vhost '/'" % missing, 50, 10]
        c.send_method(1, "channel.close_ok")
        c.open_channel(2)
        c.send_method(2, "basic.recover_async", False)
        # wait_for_close only knows connection.close by 0-8's ids (10, 60).
        assert c.wait_for_close() == (540, "NOT_IMPLEMENTED - requeue=false", 60, 100)


@pytest.mark.parametrize("payload", [b"\x00\x55\x00\x0a\x00", b"\x00\x28\x00\x1e" + b"\x00" * 10],
                         ids=["confirm.select", "exchange.bind"])
def test_0_9_1_only_method_ends_a_0_8_connection(server, payload):
    # RabbitMQ just closes the socket; Warren closes the connection with 540 NOT_IMPLEMENTED first.
    with open_0_8(server) as c:
        c.send_frame(1, 1, payload)
        assert c.wait_for_eof(8)


def test_management_api_shows_each_connections_protocol(server):
    def protocols():
        req = urllib.request.Request("http://%s:%d/api/connections" % (server.host, server.management_port))
        token = base64.b64encode(("%s:%s" % (server.user, server.password)).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return {c["peer_port"]: c.get("protocol") for c in json.loads(resp.read())}

    expected = {}
    conns = []
    try:
        for header, name in [(PROTOCOL_HEADER, "AMQP 0-9-1"), (HEADER_0_9, "AMQP 0-9-1"),
                             (PROTOCOL_HEADER_0_8, "AMQP 0-8"), (HEADER_0_8_SPEC, "AMQP 0-8")]:
            c = RawConnection(server.host, server.port, header=header)
            conns.append(c)
            assert c.handshake(server.user, server.password).name == "connection.open_ok"
            expected[c.sock.getsockname()[1]] = name
        # RabbitMQ lists a connection once its stats are emitted (every 5 s).
        wutil.wait_until(lambda: set(expected) <= set(protocols()), timeout=15, interval=0.2,
                         what="connections listed")
        assert {port: name for port, name in protocols().items() if port in expected} == expected
    finally:
        for c in conns:
            c.close()
