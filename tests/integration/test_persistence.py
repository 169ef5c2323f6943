"""Durability across server restarts (graceful and kill -9).  Needs private servers."""
import signal

import pika
import pika.exceptions as pexc
import pytest

import wutil

pytestmark = [pytest.mark.needs_own_server, pytest.mark.timeout(90)]

PERSISTENT = pika.BasicProperties(delivery_mode=2)


def publish_confirmed(srv, exchange, key, bodies, props=PERSISTENT):
    conn = wutil.connect(srv)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for b in bodies:
            ch.basic_publish(exchange, key, b, props)
    finally:
        conn.close()


def queue_exists(srv, q):
    conn = wutil.connect(srv)
    try:
        conn.channel().queue_declare(q, passive=True)
        return True
    except pexc.ChannelClosedByBroker as e:
        assert e.reply_code == 404
        return False
    finally:
        wutil.close_quietly(conn)


def setup_durable(srv, q):
    conn = wutil.connect(srv)
    try:
        conn.channel().queue_declare(q, durable=True)
    finally:
        conn.close()


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_persistent_messages_in_durable_queue_survive_restart(own_server, how):
    q = "durable-q"
    setup_durable(own_server, q)
    bodies = [b"persist-%d" % i for i in range(50)] + [b"", b"x" * 300000]
    publish_confirmed(own_server, "", q, bodies,
                      pika.BasicProperties(delivery_mode=2, message_id="id-1",
                                           headers={"h": "v"}))
    own_server.restart(kill=(how == "kill9"))
    got = wutil.get_all(own_server, q, with_properties=True)
    assert [b for b, _p in got] == bodies
    assert got[0][1].message_id == "id-1" and got[0][1].headers == {"h": "v"}
    assert got[0][1].delivery_mode == 2


def test_transient_messages_in_durable_queue_are_lost_on_restart(own_server):
    q = "durable-mixed"
    setup_durable(own_server, q)
    publish_confirmed(own_server, "", q, [b"p1"], PERSISTENT)
    publish_confirmed(own_server, "", q, [b"t1"], pika.BasicProperties(delivery_mode=1))
    publish_confirmed(own_server, "", q, [b"p2"], PERSISTENT)
    own_server.restart()
    assert wutil.get_all(own_server, q) == [b"p1", b"p2"]


def test_non_durable_queue_is_gone_after_restart(own_server):
    conn = wutil.connect(own_server)
    conn.channel().queue_declare("transient-q", durable=False)
    conn.close()
    publish_confirmed(own_server, "", "transient-q", [b"m"])
    own_server.restart()
    assert not queue_exists(own_server, "transient-q")


def test_acked_messages_stay_gone_after_restart(own_server):
    q = "durable-acked"
    setup_durable(own_server, q)
    publish_confirmed(own_server, "", q, [b"a", b"b", b"c"])
    conn = wutil.connect(own_server)
    ch = conn.channel()
    m, _p, body = wutil.get_one(ch, q)
    assert body == b"a"
    ch.basic_ack(m.delivery_tag)
    conn.close()
    own_server.restart()
    assert wutil.get_all(own_server, q) == [b"b", b"c"]


def test_unacked_message_is_kept_across_kill9(own_server):
    q = "durable-unacked"
    setup_durable(own_server, q)
    publish_confirmed(own_server, "", q, [b"held"])
    conn = wutil.connect(own_server)
    ch = conn.channel()
    wutil.get_one(ch, q)  # delivered, never acked
    own_server.kill9()
    wutil.close_quietly(conn)
    own_server.start()
    assert wutil.get_all(own_server, q) == [b"held"]


def test_durable_exchange_and_binding_survive_restart(own_server):
    conn = wutil.connect(own_server)
    ch = conn.channel()
    ch.exchange_declare("dx", exchange_type="topic", durable=True)
    ch.exchange_declare("tx", exchange_type="topic", durable=False)
    ch.queue_declare("dq", durable=True)
    ch.queue_bind("dq", "dx", routing_key="a.#")
    conn.close()
    own_server.restart()
    conn = wutil.connect(own_server)
    ch = conn.channel()
    ch.exchange_declare("dx", exchange_type="topic", passive=True)
    with wutil.channel_error(404):
        ch.exchange_declare("tx", passive=True)
    conn.close()
    publish_confirmed(own_server, "dx", "a.b.c", [b"routed-after-restart"])
    assert wutil.get_all(own_server, "dq") == [b"routed-after-restart"]


def test_server_named_durable_queue_survives(own_server):
    conn = wutil.connect(own_server)
    q = conn.channel().queue_declare("", durable=True).method.queue
    conn.close()
    publish_confirmed(own_server, "", q, [b"m"])
    own_server.restart()
    assert wutil.get_all(own_server, q) == [b"m"]


def test_repeated_restarts_keep_data(own_server):
    q = "durable-repeat"
    setup_durable(own_server, q)
    for i in range(3):
        publish_confirmed(own_server, "", q, [b"r%d" % i])
        own_server.restart(kill=(i == 1))
    assert wutil.get_all(own_server, q) == [b"r0", b"r1", b"r2"]


def test_sigterm_stops_the_server_promptly(own_server):
    conn = wutil.connect(own_server)  # an open client must not block shutdown
    proc = own_server.proc
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=5)
    own_server.proc = None
    wutil.close_quietly(conn)
    own_server.start()
    wutil.assert_healthy(own_server)


def test_default_user_created_on_first_start_only(server_factory, tmp_path):
    data = str(tmp_path / "data")
    import os
    os.makedirs(data)
    srv = server_factory(data_dir=data, user="first", password="one")
    wutil.connect(srv).close()
    srv.stop()
    # a second start on the same data dir with other default credentials keeps the first user
    srv2 = server_factory(data_dir=data, user="second", password="two", port=srv.port)
    conn = wutil.connect(srv2, user="first", password="one")
    conn.close()
