"""Direct reply-to under attack (issue 8, finding 6): replies to a client that stops reading are
dropped once its connection holds kDirectReplyBacklogBytes (16 MiB) of unread output, so the
server's memory stays bounded and the replier is never stalled; reply-to names are only valid in
the vhost that issued them (RabbitMQ 3.10 does not scope them: a tenant boundary Warren keeps);
names come from a CSPRNG."""
import socket

import pika
import pika.exceptions as pexc
import pytest

import wutil
from amqp_raw import FRAME_BODY, FRAME_HEADER, FRAME_METHOD, RawConnection, _enc_shortstr, content_header, frame, \
    method_payload
from test_management_api import ok

REPLY_TO = "amq.rabbitmq.reply-to"
REPLY_TO_FLAG = 0x0200  # basic properties: reply-to


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def reply_name(srv, requester_publish, service):
    """The rewritten reply-to of the request the requester sent to `service`."""
    responder = wutil.connect(srv)
    try:
        ch = responder.channel()
        requester_publish()
        _m, props, _b = wutil.get_one(ch, service, auto_ack=True)
        return props.reply_to
    finally:
        wutil.close_quietly(responder)


@pytest.mark.measures_rss
@pytest.mark.needs_own_server
@pytest.mark.timeout(180)
def test_replies_to_a_client_that_stops_reading_are_dropped_with_bounded_memory(own_server, uniq):
    srv = own_server
    service = uniq("rpc")
    setup = wutil.connect(srv)
    setup.channel().queue_declare(service)
    # The requester consumes its replies, sends one request, then never reads its socket again.
    requester = RawConnection(srv.host, srv.port, timeout=10)
    requester.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        assert requester.handshake().name == "connection.open_ok"
        requester.open_channel(1)
        requester.call(1, "basic.consume", 0, REPLY_TO, "", False, True, False, False, {}, expect="basic.consume_ok")

        def send_request():
            props = _enc_shortstr(REPLY_TO)
            requester.send(frame(FRAME_METHOD, 1, method_payload("basic.publish", 0, "", service, False, False)) +
                           frame(FRAME_HEADER, 1, content_header(3, flags=REPLY_TO_FLAG, props=props)) +
                           frame(FRAME_BODY, 1, b"req"))

        name = reply_name(srv, send_request, service)
        assert name.startswith(REPLY_TO + ".")

        replier = wutil.connect(srv)
        try:
            ch = replier.channel()
            ch.confirm_delivery()
            body = b"r" * (100 * 1024)
            before = rss_bytes(srv.proc.pid)
            delivered = dropped = 0
            for _ in range(2000):  # 200 MB of replies
                try:
                    ch.basic_publish("", name, body, mandatory=True)
                    delivered += 1
                except pexc.UnroutableError:
                    dropped += 1
            grown = rss_bytes(srv.proc.pid) - before
        finally:
            wutil.close_quietly(replier)
        # 16 MiB of backlog plus slack; without the limit all 200 MB stayed buffered.
        assert grown < 80 * 1024 * 1024, "RSS grew by %d MiB" % (grown >> 20)
        assert dropped > 1000 and delivered >= 1, (delivered, dropped)
    finally:
        requester.close()
        wutil.close_quietly(setup)
    wutil.assert_healthy(srv)


@pytest.mark.needs_own_server
def test_reply_to_name_from_one_vhost_does_not_reach_another(own_server, uniq):
    srv = own_server
    ok(srv, "PUT", "vhosts/tenant-b")
    ok(srv, "PUT", "permissions/tenant-b/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    service = uniq("rpc")
    requester = wutil.connect(srv)
    intruder = wutil.connect(srv, virtual_host="tenant-b")
    try:
        rch = requester.channel()
        rch.queue_declare(service)
        replies = []
        rch.basic_consume(REPLY_TO, lambda c, m, p, b: replies.append(b), auto_ack=True)
        name = reply_name(srv, lambda: rch.basic_publish("", service, b"req", pika.BasicProperties(reply_to=REPLY_TO)),
                          service)
        ich = intruder.channel()
        ich.confirm_delivery()
        with pytest.raises(pexc.UnroutableError):
            ich.basic_publish("", name, b"forged", mandatory=True)
        with pytest.raises(pexc.ChannelClosedByBroker) as ei:
            ich.queue_declare(name, passive=True)
        assert ei.value.reply_code == 404
        # The name still works in its own vhost.
        responder = wutil.connect(srv)
        try:
            responder.channel().basic_publish("", name, b"real")
        finally:
            wutil.close_quietly(responder)
        wutil.wait_until(lambda: replies, conn=requester, what="the reply")
        wutil.pump(requester, 0.2)
        assert replies == [b"real"]
    finally:
        wutil.close_quietly(intruder)
        wutil.close_quietly(requester)


def test_reply_to_names_are_long_and_unique(connect, uniq):
    conn = connect()
    ch = conn.channel()
    service = ch.queue_declare(uniq("rpc"), exclusive=True).method.queue
    names = set()
    for _ in range(20):
        c = conn.channel()
        c.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
        c.basic_publish("", service, b"req", pika.BasicProperties(reply_to=REPLY_TO))
        _m, props, _b = wutil.get_one(ch, service, auto_ack=True)
        suffix = props.reply_to[len(REPLY_TO) + 1:]
        assert len(suffix) >= 40, props.reply_to
        names.add(props.reply_to)
        c.close()
    assert len(names) == 20
