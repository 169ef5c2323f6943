"""Connection handshake, login, negotiation and heartbeats."""
import time

import pika.exceptions as pexc
import pytest

import wutil
from amqp_raw import FRAME_HEARTBEAT, RawConnection

EXPECTED_CAPABILITIES = [
    "publisher_confirms", "exchange_exchange_bindings", "basic.nack",
    "consumer_cancel_notify", "connection.blocked", "authentication_failure_close",
    "per_consumer_qos",
]


def test_guest_login_works(server):
    conn = wutil.connect(server)
    try:
        assert conn.is_open
        ch = conn.channel()
        assert ch.is_open
    finally:
        conn.close()
    assert conn.is_closed


def test_wrong_password_is_refused_with_403(server):
    with pytest.raises(pexc.ProbableAuthenticationError) as ei:
        wutil.connect(server, password="definitely-wrong")
    assert "403" in str(ei.value) and "ACCESS_REFUSED" in str(ei.value)


def test_wrong_password_raw_close_403(server):
    # authentication_failure_close: the server says connection.close 403 instead of tune
    with RawConnection(server.host, server.port) as c:
        reply = c.handshake(user=server.user, password="nope")
        assert reply.name == "connection.close"
        assert reply.args[0] == 403
        assert reply.args[1].startswith("ACCESS_REFUSED")
        assert c.wait_for_eof(5)


def test_unknown_user_is_refused(server):
    with pytest.raises(pexc.ProbableAuthenticationError):
        wutil.connect(server, user="no-such-user-xyz", password="guest")


def test_unknown_vhost_is_530_on_connection_open(server):
    with pytest.raises(pexc.ProbableAccessDeniedError) as ei:
        wutil.connect(server, virtual_host="no-such-vhost")
    assert "530" in str(ei.value) and "NOT_ALLOWED" in str(ei.value)


def test_unknown_vhost_raw_close_names_connection_open(server):
    with RawConnection(server.host, server.port) as c:
        reply = c.handshake(user=server.user, password=server.password, vhost="no-such-vhost")
        assert reply.name == "connection.close"
        code, text, class_id, method_id = reply.args
        assert code == 530
        assert text.startswith("NOT_ALLOWED")
        assert (class_id, method_id) == (10, 40)


def test_server_properties_capabilities(conn):
    props = conn._impl.server_properties
    caps = props["capabilities"]
    for cap in EXPECTED_CAPABILITIES:
        assert caps.get(cap) is True, "capability %s missing or not true: %r" % (cap, caps)
    for key in ("product", "version", "platform"):
        assert key in props


def test_connection_start_fields(server):
    with RawConnection(server.host, server.port) as c:
        c.send(b"AMQP\x00\x00\x09\x01")
        start = c.expect("connection.start")
        major, minor, props, mechanisms, locales = start.args
        assert (major, minor) == (0, 9)
        assert b"PLAIN" in mechanisms.split()
        assert b"en_US" in locales.split()
        assert isinstance(props.get("capabilities"), dict)


def test_tune_defaults_channel_max_2047_frame_max_131072(server):
    with RawConnection(server.host, server.port) as c:
        # client asks for 0 (= no limit) on both, so the server's values win
        reply = c.handshake(user=server.user, password=server.password,
                            channel_max=0, frame_max=0)
        assert reply.name == "connection.open_ok"
        channel_max, frame_max, heartbeat = c.tune_args
        assert channel_max == 2047
        assert frame_max == 131072
        assert heartbeat == 60


def test_pika_negotiated_limits(conn):
    p = conn._impl.params
    assert p.channel_max == 2047
    assert p.frame_max == 131072


def test_many_channels_on_one_connection(conn, uniq):
    channels = [conn.channel() for _ in range(50)]
    numbers = {c.channel_number for c in channels}
    assert len(numbers) == 50
    q = uniq("q")
    channels[0].queue_declare(q, auto_delete=False)
    for c in channels:
        c.basic_publish("", q, b"x")
    wutil.wait_count(channels[-1], q, 50)
    channels[1].queue_delete(q)


def test_clean_connection_close_gets_close_ok(server):
    with RawConnection(server.host, server.port) as c:
        assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
        c.open_channel(1)
        m = c.call(0, "connection.close", 200, "bye", 0, 0)
        assert m.name == "connection.close_ok"
        # (RabbitMQ leaves closing the socket to the client that sent close)


def test_channel_close_and_reopen_same_number(server):
    with RawConnection(server.host, server.port) as c:
        assert c.handshake(user=server.user, password=server.password).name == "connection.open_ok"
        c.open_channel(1)
        assert c.call(1, "channel.close", 200, "bye", 0, 0).name == "channel.close_ok"
        c.open_channel(1)
        ok = c.call(1, "queue.declare", 0, "", False, False, True, True, False, {})
        assert ok.name == "queue.declare_ok"
        assert ok.args[0].startswith("amq.gen-")


def test_silent_client_is_dropped_after_missed_heartbeats(server):
    with RawConnection(server.host, server.port) as c:
        reply = c.handshake(user=server.user, password=server.password, heartbeat=1)
        assert reply.name == "connection.open_ok"
        t0 = time.monotonic()
        # we send nothing at all from now on
        assert c.wait_for_eof(8), "server kept a silent connection with heartbeat=1 open"
        elapsed = time.monotonic() - t0
        assert 1.0 <= elapsed <= 6.0, "dropped after %.2f s" % elapsed


def test_server_sends_heartbeats_and_keeps_live_client(server):
    with RawConnection(server.host, server.port) as c:
        reply = c.handshake(user=server.user, password=server.password, heartbeat=1)
        assert reply.name == "connection.open_ok"
        heartbeats = 0
        deadline = time.monotonic() + 3.5
        next_beat = time.monotonic()
        while time.monotonic() < deadline:
            if time.monotonic() >= next_beat:
                c.send_frame(FRAME_HEARTBEAT, 0, b"")
                next_beat += 0.4
            try:
                ftype, channel, payload = c.read_frame(0.1)
            except TimeoutError:
                continue
            assert ftype == FRAME_HEARTBEAT and channel == 0 and payload == b""
            heartbeats += 1
        assert heartbeats >= 2, "only %d heartbeats from the server in 3.5 s" % heartbeats
        # still alive: a channel opens fine
        c.open_channel(1)


def test_heartbeat_zero_keeps_silent_client(server):
    with RawConnection(server.host, server.port) as c:
        assert c.handshake(user=server.user, password=server.password,
                           heartbeat=0).name == "connection.open_ok"
        assert not c.wait_for_eof(2.5)
        c.open_channel(1)


def test_pika_heartbeat_negotiation(server):
    conn = wutil.connect(server, heartbeat=5)
    try:
        assert conn._impl.params.heartbeat == 5
        ch = conn.channel()
        ch.queue_declare("", exclusive=True)
    finally:
        conn.close()


@pytest.mark.needs_own_server
def test_server_heartbeat_flag_is_proposed_in_tune(server_factory):
    srv = server_factory(heartbeat=1)
    with RawConnection(srv.host, srv.port) as c:
        assert c.handshake(user=srv.user, password=srv.password, heartbeat=1).name == "connection.open_ok"
        assert c.tune_args[2] == 1
        assert c.wait_for_eof(8)


@pytest.mark.needs_own_server
def test_custom_default_user(server_factory):
    srv = server_factory(user="alice", password="s3cret")
    conn = wutil.connect(srv)
    conn.channel().queue_declare("", exclusive=True)
    conn.close()
    with pytest.raises(pexc.ProbableAuthenticationError):
        wutil.connect(srv, password="wrong")


@pytest.mark.needs_own_server
def test_guest_may_only_log_in_from_loopback(server_factory, private_network):
    with private_network.inside():
        srv = server_factory(bind="0.0.0.0", wrapper=private_network.wrapper)
        wutil.connect(srv).close()  # from loopback: fine
        with pytest.raises(pexc.ProbableAuthenticationError) as ei:
            wutil.connect(srv, host=private_network.ip)
    assert "403" in str(ei.value) and "ACCESS_REFUSED" in str(ei.value)


@pytest.mark.needs_own_server
def test_other_users_may_log_in_from_anywhere(server_factory, private_network):
    with private_network.inside():
        srv = server_factory(bind="0.0.0.0", user="remote", password="pw", wrapper=private_network.wrapper)
        conn = wutil.connect(srv, host=private_network.ip)
        conn.channel().queue_declare("", exclusive=True)
        conn.close()
