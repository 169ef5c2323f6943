"""Access control as RabbitMQ: users, vhosts and per-vhost configure/write/read permissions.

Users and permissions come from a RabbitMQ definitions file (--load-definitions, re-read on
SIGHUP); every check goes through real pika clients.
"""
import json
import os
import signal
import subprocess

import pika.exceptions as pexc
import pytest

import wutil
from conftest import SERVER_BIN

pytestmark = pytest.mark.needs_own_server

ALICE = {"configure": r"^alice\.", "write": r"^alice\.|^amq\.default$", "read": r"^alice\."}


def definitions(alice=None, extra_users=()):
    users = [{"name": "alice", "password": "alice-pw", "tags": ""},
             {"name": "reader", "password": "reader-pw", "tags": ["monitoring"]},
             {"name": "devonly", "password": "dev-pw", "tags": ""}]
    users += list(extra_users)
    permissions = [dict(user="alice", vhost="/", **(alice or ALICE)),
                   {"user": "reader", "vhost": "/", "configure": "", "write": "^$", "read": ".*"},
                   {"user": "devonly", "vhost": "dev", "configure": ".*", "write": ".*", "read": ".*"}]
    return {"rabbit_version": "3.10.8", "vhosts": [{"name": "/"}, {"name": "dev"}],
            "users": users, "permissions": permissions}


def write_defs(path, doc):
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f)
    os.replace(path + ".tmp", path)


@pytest.fixture
def acl_server(server_factory, tmp_path):
    path = str(tmp_path / "definitions.json")
    write_defs(path, definitions())
    srv = server_factory(extra_args=["--load-definitions", path])
    srv.definitions_path = path
    yield srv


@pytest.fixture
def as_user(acl_server):
    conns = []

    def make(user, password, **kw):
        c = wutil.connect(acl_server, user=user, password=password, **kw)
        conns.append(c)
        return c

    yield make
    for c in conns:
        wutil.close_quietly(c)


def refused(ei, kind, name, user, vhost="/"):
    assert ei.value.reply_text == "ACCESS_REFUSED - access to %s '%s' in vhost '%s' refused for user '%s'" % (
        kind, name, vhost, user), ei.value.reply_text


def guest_setup(srv, uniq):
    """As guest (full access): an exchange g.x and a queue g.q bound to it, with one message."""
    conn = wutil.connect(srv)
    ch = conn.channel()
    gx, gq = uniq("g.x"), uniq("g.q")
    ch.exchange_declare(gx, "direct")
    ch.queue_declare(gq)
    ch.queue_bind(gq, gx, routing_key="k")
    ch.basic_publish(gx, "k", b"hello")
    wutil.wait_count(ch, gq, 1)
    conn.close()
    return gx, gq


# ---------------------------------------------------------------- configure

def test_configure_allowed_and_refused(acl_server, as_user, uniq):
    gx, gq = guest_setup(acl_server, uniq)
    conn = as_user("alice", "alice-pw")
    ch = conn.channel()
    ch.queue_declare("alice.q", durable=True)
    ch.exchange_declare("alice.x", "fanout")
    ch.queue_declare(gq, passive=True)  # passive declares need no permission
    ch.exchange_declare(gx, passive=True)

    with wutil.channel_error(403) as ei:
        ch.queue_declare("other.q")
    refused(ei, "queue", "other.q", "alice")
    ch = conn.channel()
    with wutil.channel_error(403) as ei:
        ch.exchange_declare("other.x", "topic")
    refused(ei, "exchange", "other.x", "alice")
    ch = conn.channel()
    with wutil.channel_error(403) as ei:
        ch.queue_delete(gq)
    refused(ei, "queue", gq, "alice")
    ch = conn.channel()
    with wutil.channel_error(403) as ei:
        ch.exchange_delete(gx)
    refused(ei, "exchange", gx, "alice")
    ch = conn.channel()
    with wutil.channel_error(403) as ei:
        ch.queue_declare("")  # a server-named queue is amq.gen-...: not ^alice\.
    assert "access to queue 'amq.gen-" in ei.value.reply_text
    ch = conn.channel()
    ch.queue_delete("alice.q")
    ch.exchange_delete("alice.x")
    # The connection survived every refusal: they are channel errors.
    assert conn.is_open


def test_dead_letter_exchange_needs_write_on_it(acl_server, as_user, uniq):
    gx, _ = guest_setup(acl_server, uniq)
    ch = as_user("alice", "alice-pw").channel()
    ch.exchange_declare("alice.dlx", "fanout")
    ch.queue_declare("alice.dlq", arguments={"x-dead-letter-exchange": "alice.dlx"})
    with wutil.channel_error(403) as ei:
        ch.queue_declare("alice.dlq2", arguments={"x-dead-letter-exchange": gx})
    refused(ei, "exchange", gx, "alice")


# ---------------------------------------------------------------- write

def test_write_allowed_and_refused(acl_server, as_user, uniq):
    gx, gq = guest_setup(acl_server, uniq)
    conn = as_user("alice", "alice-pw")
    ch = conn.channel()
    ch.confirm_delivery()
    ch.exchange_declare("alice.x", "fanout")
    ch.queue_declare("alice.q")
    ch.queue_bind("alice.q", "alice.x")
    ch.basic_publish("alice.x", "", b"one")
    ch.basic_publish("", "alice.q", b"two")  # write on amq.default is granted
    wutil.wait_count(ch, "alice.q", 2)

    with wutil.channel_error(403) as ei:
        ch.basic_publish(gx, "k", b"nope")
    refused(ei, "exchange", gx, "alice")

    # queue.bind: write on the queue ...
    ch = conn.channel()
    with wutil.channel_error(403) as ei:
        ch.queue_bind(gq, "alice.x")
    refused(ei, "queue", gq, "alice")
    # ... and read on the exchange
    ch = conn.channel()
    with wutil.channel_error(403) as ei:
        ch.queue_bind("alice.q", gx, routing_key="k")
    refused(ei, "exchange", gx, "alice")
    ch = conn.channel()
    with wutil.channel_error(403) as ei:
        ch.queue_unbind(gq, gx, routing_key="k")
    refused(ei, "queue", gq, "alice")
    # exchange.bind: write on the destination, read on the source
    ch = conn.channel()
    with wutil.channel_error(403) as ei:
        ch.exchange_bind(destination=gx, source="alice.x")
    refused(ei, "exchange", gx, "alice")
    ch = conn.channel()
    with wutil.channel_error(403) as ei:
        ch.exchange_bind(destination="alice.x", source=gx)
    refused(ei, "exchange", gx, "alice")


def test_default_exchange_is_checked_as_amq_default(as_user, uniq):
    ch = as_user("reader", "reader-pw").channel()
    ch.confirm_delivery()
    with wutil.channel_error(403) as ei:
        ch.basic_publish("", "whatever", b"x")
    refused(ei, "exchange", "amq.default", "reader")


# ---------------------------------------------------------------- read

def test_read_allowed_and_refused(acl_server, as_user, uniq):
    gx, gq = guest_setup(acl_server, uniq)
    conn = as_user("alice", "alice-pw")
    ch = conn.channel()
    with wutil.channel_error(403) as ei:
        ch.basic_get(gq)
    refused(ei, "queue", gq, "alice")
    ch = conn.channel()
    with wutil.channel_error(403) as ei:
        ch.basic_consume(gq, lambda *a: None)
    refused(ei, "queue", gq, "alice")
    ch = conn.channel()
    with wutil.channel_error(403) as ei:
        ch.queue_purge(gq)
    refused(ei, "queue", gq, "alice")

    # reader: read on everything, nothing else
    rconn = as_user("reader", "reader-pw")
    rch = rconn.channel()
    _m, _p, body = wutil.get_one(rch, gq, auto_ack=False)
    assert body == b"hello"
    rch.basic_nack(_m.delivery_tag, requeue=True)
    got = wutil.collect(rconn, rch, gq, 1)
    assert [b for _m, _p, b in got] == [b"hello"]
    rch2 = rconn.channel()
    rch2.queue_purge(gq)
    with wutil.channel_error(403) as ei:
        rch2.queue_declare("reader.q")
    refused(ei, "queue", "reader.q", "reader")


# ---------------------------------------------------------------- vhosts

def test_vhost_without_permissions_is_530(acl_server, as_user):
    with pytest.raises(pexc.ProbableAccessDeniedError) as ei:
        wutil.connect(acl_server, user="devonly", password="dev-pw")
    assert "530" in str(ei.value) and "access to vhost '/' refused for user 'devonly'" in str(ei.value)
    # Its own vhost is fine, and it is separate from "/".
    ch = as_user("devonly", "dev-pw", virtual_host="dev").channel()
    ch.queue_declare("dev.q")
    with pytest.raises(pexc.ProbableAccessDeniedError) as ei:
        wutil.connect(acl_server, user="alice", password="alice-pw", virtual_host="dev")
    assert "access to vhost 'dev' refused for user 'alice'" in str(ei.value)


def test_definitions_survive_a_restart(acl_server):
    # Stopped as soon as its port accepts: the SIGTERM handler is installed before the listener
    # opens, so the stop is clean (not the signal's default action) and waits for the store.
    assert acl_server.stop() == 0
    # Started again without the file: users, vhosts and permissions come from the store.
    acl_server.extra_args = []
    acl_server.start()
    conn = wutil.connect(acl_server, user="devonly", password="dev-pw", virtual_host="dev")
    conn.channel().queue_declare("dev.q2")
    conn.close()
    conn = wutil.connect(acl_server, user="alice", password="alice-pw")
    with wutil.channel_error(403):
        conn.channel().queue_declare("other.q")
    wutil.close_quietly(conn)


# ---------------------------------------------------------------- live changes

def _reload(srv, doc):
    before = srv.log_text().count("loaded definitions from")
    write_defs(srv.definitions_path, doc)
    srv.proc.send_signal(signal.SIGHUP)
    wutil.wait_until(lambda: srv.log_text().count("loaded definitions from") > before, timeout=5,
                     what="definitions reloaded")


def test_permission_change_applies_to_the_next_operation(acl_server, as_user):
    conn = as_user("alice", "alice-pw")
    ch = conn.channel()
    ch.queue_declare("alice.live1")
    ch.basic_get("alice.live1")
    # Narrow alice to read-only on "/": the open channel is refused at its next configure.
    _reload(acl_server, definitions(alice={"configure": "^$", "write": "^$", "read": r"^alice\."}))
    ch.basic_get("alice.live1")  # read still granted
    with wutil.channel_error(403) as ei:
        ch.queue_declare("alice.live2")
    refused(ei, "queue", "alice.live2", "alice")
    # Widened again: the same connection may configure once more.
    _reload(acl_server, definitions(alice={"configure": ".*", "write": ".*", "read": ".*"}))
    conn.channel().queue_declare("other.live3")
    assert conn.is_open


def test_publish_refused_after_permission_change(acl_server, as_user):
    conn = as_user("alice", "alice-pw")
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare("alice.pub")
    ch.basic_publish("", "alice.pub", b"1")
    _reload(acl_server, definitions(alice={"configure": r"^alice\.", "write": r"^alice\.", "read": r"^alice\."}))
    with wutil.channel_error(403) as ei:
        ch.basic_publish("", "alice.pub", b"2")
    refused(ei, "exchange", "amq.default", "alice")


# ---------------------------------------------------------------- loopback users

def test_loopback_users_flag(server_factory, private_network, tmp_path):
    ip = private_network.ip
    path = str(tmp_path / "definitions.json")
    write_defs(path, definitions())
    with private_network.inside():
        # --loopback-users alice: guest may connect from anywhere, alice only from localhost.
        srv = server_factory(bind="0.0.0.0", wrapper=private_network.wrapper,
                             extra_args=["--load-definitions", path, "--loopback-users", "alice"])
        wutil.connect(srv, host=ip).close()  # guest
        wutil.connect(srv, user="alice", password="alice-pw").close()  # alice from loopback
        with pytest.raises(pexc.ProbableAuthenticationError) as ei:
            wutil.connect(srv, host=ip, user="alice", password="alice-pw")
        assert "403" in str(ei.value) and "ACCESS_REFUSED" in str(ei.value)
        # Empty list: nobody is restricted.
        srv2 = server_factory(bind="0.0.0.0", wrapper=private_network.wrapper, extra_args=["--loopback-users", ""])
        wutil.connect(srv2, host=ip).close()  # guest from a non-loopback address


# ---------------------------------------------------------------- invalid files

@pytest.mark.parametrize("content,message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"users": [{"name": "x", "password_hash": "abc",
                            "hashing_algorithm": "rabbit_password_hashing_md5"}]}),
     "unsupported hashing_algorithm"),
    (json.dumps({"users": [{"name": "x", "password": "p"}],
                 "permissions": [{"user": "x", "vhost": "/", "configure": "(", "write": "", "read": ""}]}),
     "invalid regular expression"),
])
def test_invalid_definitions_file_stops_the_server(tmp_path, content, message):
    path = tmp_path / "definitions.json"
    path.write_text(content)
    data = tmp_path / "data"
    data.mkdir()
    proc = subprocess.run([SERVER_BIN, "--port", "0", "--bind", "127.0.0.1", "--data-dir", str(data),
                           "--load-definitions", str(path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "invalid definitions file" in out and message in out, out


def test_missing_definitions_file_stops_the_server(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    proc = subprocess.run([SERVER_BIN, "--port", "0", "--bind", "127.0.0.1", "--data-dir", str(data),
                           "--load-definitions", str(tmp_path / "nope.json")],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "cannot read the definitions file" in proc.stdout + proc.stderr
