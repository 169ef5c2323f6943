"""Publishing: what is checked before a body is taken in, how content assembly holds memory, the
user_id rule, and the management API's publish under the disk alarm."""
import re

import pika
import pytest

import wutil
from amqp_raw import (FRAME_BODY, FRAME_HEADER, FRAME_METHOD, RawConnection, content_header, frame,
                      method_payload)
from test_management_api import api, ok

MiB = 1 << 20


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^%s:\s+(\d+) kB" % field, f.read(), re.M).group(1))


def publish_frame(channel, exchange, key=""):
    return frame(FRAME_METHOD, channel, method_payload("basic.publish", 0, exchange, key, False, False))


@pytest.mark.needs_own_server  # RabbitMQ waits for the whole content before it looks
def test_publish_to_a_missing_exchange_fails_at_basic_publish(server):
    with RawConnection(server.host, server.port) as c:
        c.handshake()
        c.open_channel(1)
        c.send(publish_frame(1, "no-such-exchange"))  # no content header follows
        m = c.read_method(timeout=5)
        assert m.name == "channel.close", m
        assert m.args[0] == 404 and m.args[1] == "NOT_FOUND - no exchange 'no-such-exchange' in vhost '/'", m


@pytest.mark.needs_own_server
def test_headers_declaring_128_mib_on_2047_channels_hold_no_memory(own_server):
    pid = own_server.proc.pid
    with RawConnection(own_server.host, own_server.port, timeout=30) as c:
        c.handshake()
        rss0, vm0 = status_kb(pid, "VmRSS"), status_kb(pid, "VmSize")
        channels = c.channel_max
        assert channels == 2047
        opens = b"".join(frame(FRAME_METHOD, n, method_payload("channel.open", "")) for n in range(1, channels + 1))
        c.send(opens)
        for _ in range(channels):
            c.expect("channel.open_ok", timeout=30)
        # Every channel but the last starts a 128 MiB publish; the last one's basic.qos-ok then
        # says every header before it has been handled (a connection's frames go in order).
        headers = b"".join(publish_frame(n, "", "q") + frame(FRAME_HEADER, n, content_header(128 * MiB))
                           for n in range(1, channels))
        c.send(headers)
        c.call(channels, "basic.qos", 0, 1, False, expect="basic.qos_ok", timeout=30)
        wutil.assert_healthy(own_server)
        rss, vm = status_kb(pid, "VmRSS"), status_kb(pid, "VmSize")
        # 2,047 x 128 MiB would be 256 GiB of address space; nothing of it is reserved.
        assert rss - rss0 < 64 * 1024, (rss0, rss)
        assert vm - vm0 < 1024 * 1024, (vm0, vm)
    wutil.assert_healthy(own_server)


@pytest.mark.needs_own_server
def test_bytes_under_assembly_are_capped_per_connection(server_factory):
    # --max-message-size 1 MiB: a connection may hold 2 MiB of half-assembled publishes.
    srv = server_factory(extra_args=["--max-message-size", str(MiB)])
    with RawConnection(srv.host, srv.port, timeout=10) as c:
        c.handshake()
        chunk = b"b" * (c.frame_max - 8)
        for n in (1, 2, 3):
            c.open_channel(n)
        closed = None
        try:
            for n in (1, 2, 3):
                data = publish_frame(n, "", "q") + frame(FRAME_HEADER, n, content_header(1000000))
                sent = 0
                while sent + len(chunk) < 900000:
                    data += frame(FRAME_BODY, n, chunk)
                    sent += len(chunk)
                c.send(data)
            closed = c.wait_for_close(timeout=10)
        except (BrokenPipeError, ConnectionResetError):
            closed = c.wait_for_close(timeout=10)
        code, text = closed[0], closed[1]
        assert code == 506 and text.startswith("RESOURCE_ERROR - ") and "2097152 bytes" in text, closed
    wutil.assert_healthy(srv)


def test_user_id_must_be_the_authenticated_user(server, conn):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"mine", pika.BasicProperties(user_id=server.user))
    assert wutil.get_one(ch, q, auto_ack=True)[2] == b"mine"
    with wutil.channel_error(406) as ei:
        ch.basic_publish("", q, b"forged", pika.BasicProperties(user_id="someone-else"))
        ch.queue_declare(q, passive=True)  # the close arrives before this answer
    assert ei.value.reply_text == ("PRECONDITION_FAILED - user_id property set to 'someone-else' but "
                                   "authenticated user was '%s'" % server.user)


def test_http_publish_applies_the_user_id_rule(server):
    body = {"routing_key": "nowhere", "payload": "x", "payload_encoding": "string",
            "properties": {"user_id": "someone-else"}}
    status, reply, _ = api(server, "POST", "exchanges/%2F/amq.default/publish", body)
    assert status == 400, reply
    assert reply["reason"] == ("406 PRECONDITION_FAILED - user_id property set to 'someone-else' but "
                               "authenticated user was '%s'" % server.user)
    body["properties"]["user_id"] = server.user
    assert ok(server, "POST", "exchanges/%2F/amq.default/publish", body) == {"routed": False}


@pytest.mark.needs_own_server
def test_impersonator_may_set_any_user_id(own_server):
    ok(own_server, "PUT", "users/imp", {"password": "imp-pw", "tags": "management,impersonator"})
    ok(own_server, "PUT", "permissions/%2F/imp", {"configure": ".*", "write": ".*", "read": ".*"})
    conn = wutil.connect(own_server, user="imp", password="imp-pw")
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"on behalf", pika.BasicProperties(user_id="someone-else"))
    _, props, body = wutil.get_one(ch, q, auto_ack=True)
    assert body == b"on behalf" and props.user_id == "someone-else"
    wutil.close_quietly(conn)
    reply = ok(own_server, "POST", "exchanges/%2F/amq.default/publish",
               {"routing_key": "nowhere", "payload": "x", "payload_encoding": "string",
                "properties": {"user_id": "someone-else"}}, user="imp", password="imp-pw")
    assert reply == {"routed": False}


@pytest.mark.needs_own_server
def test_http_publish_is_refused_during_the_disk_alarm(server_factory):
    srv = server_factory(extra_args=["--disk-free-limit", str(1 << 60)])  # more than any disk has free
    wutil.wait_until(lambda: "disk alarm" in srv.log_text(), timeout=15, what="the disk alarm")
    ok(srv, "PUT", "queues/%2F/held", {"durable": True})
    status, reply, _ = api(srv, "POST", "exchanges/%2F/amq.default/publish",
                           {"routing_key": "held", "payload": "x", "payload_encoding": "string", "properties": {}})
    assert status == 503, reply
    assert reply["error"] == "service_unavailable" and "disk" in reply["reason"], reply
    assert ok(srv, "GET", "queues/%2F/held")["messages"] == 0
    # The broker thread was not held: everything else still answers.
    assert ok(srv, "GET", "overview")
