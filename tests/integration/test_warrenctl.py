"""warrenctl (tools/warrenctl): rabbitmqctl's verbs through the management API, one test per verb,
authenticating with the server's token file (DATA_DIR/.warrenctl-token) unless --user is given."""
import json
import os
import signal
import stat
import subprocess

import pika
import pytest

import wutil
from conftest import SERVER_BIN, SEED_DIR
import test_seed

WARRENCTL = os.path.join(os.path.dirname(SERVER_BIN), "warrenctl")

pytestmark = pytest.mark.needs_own_server  # the token file belongs to a server the suite started


def ctl_env(srv, **extra):
    env = dict(os.environ)
    for k in ("WARREN_USER", "WARREN_PASSWORD"):
        env.pop(k, None)
    env["WARREN_URL"] = "http://127.0.0.1:%d" % srv.management_port
    env["WARREN_DATA_DIR"] = srv.data_dir
    env.update(extra)
    return env


def ctl(srv, *args, expect=0, **extra):
    r = subprocess.run([WARRENCTL] + list(args), env=ctl_env(srv, **extra), capture_output=True, timeout=30)
    out, err = r.stdout.decode(), r.stderr.decode()
    if expect is not None:
        assert r.returncode == expect, "warrenctl %s: exit %d, stdout=%r stderr=%r" % (
            " ".join(args), r.returncode, out, err)
    return out if expect == 0 else (r.returncode, out, err)


def table(out):
    """Lines after the banner(s) as lists of cells; the first is the header row."""
    lines = [l for l in out.splitlines() if l and not l.endswith("...")]
    return [l.split("\t") for l in lines]


def rows(srv, *args):
    return json.loads(ctl(srv, "--formatter", "json", *args))


@pytest.fixture
def uname(uniq):
    return uniq("u").replace(".", "-")


def test_token_file_is_private(server):
    path = os.path.join(server.data_dir, ".warrenctl-token")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert len(open(path).read().strip()) >= 32


def test_list_users(server):
    out = ctl(server, "list_users")
    assert out.splitlines()[0] == "Listing users ..."
    t = table(out)
    assert t[0] == ["user", "tags"]
    assert ["guest", "[administrator]"] in t
    assert {"user": "guest", "tags": ["administrator"]} in rows(server, "list_users")
    quiet = ctl(server, "-q", "list_users")
    assert "Listing" not in quiet and quiet.splitlines()[0] == "user\ttags"


def test_add_user(server, uname):
    assert ctl(server, "add_user", uname, "pw1") == 'Adding user "%s" ...\n' % uname
    assert any(r["user"] == uname and r["tags"] == [] for r in rows(server, "list_users"))
    code, _, err = ctl(server, "add_user", uname, "pw1", expect=70)  # rabbitmqctl's codes and texts
    assert 'User "%s" already exists' % uname in err


def test_delete_user(server, uname):
    ctl(server, "add_user", uname, "pw")
    ctl(server, "delete_user", uname)
    assert not any(r["user"] == uname for r in rows(server, "list_users"))
    code, _, err = ctl(server, "delete_user", uname, expect=67)
    assert "User %s does not exist" % uname in err


def test_change_password(server, uname):
    ctl(server, "add_user", uname, "old")
    ctl(server, "set_user_tags", uname, "management")
    ctl(server, "change_password", uname, "new")
    ctl(server, "--user", uname, "--password", "new", "list_vhosts")
    ctl(server, "--user", uname, "--password", "old", "list_vhosts", expect=77)
    assert any(r["user"] == uname and r["tags"] == ["management"] for r in rows(server, "list_users"))
    ctl(server, "change_password", uname + "-none", "x", expect=67)


def test_set_user_tags(server, uname):
    ctl(server, "add_user", uname, "pw")
    out = ctl(server, "set_user_tags", uname, "administrator", "monitoring")
    assert out == 'Setting tags for user "%s" to [administrator, monitoring] ...\n' % uname
    assert any(r["user"] == uname and r["tags"] == ["administrator", "monitoring"] for r in rows(server, "list_users"))
    ctl(server, "set_user_tags", uname)
    assert any(r["user"] == uname and r["tags"] == [] for r in rows(server, "list_users"))


def test_list_vhosts_add_delete_vhost(server, uname):
    assert table(ctl(server, "list_vhosts"))[0] == ["name"]
    ctl(server, "add_vhost", uname)
    assert {"name": uname} in rows(server, "list_vhosts")
    ctl(server, "add_vhost", uname)  # exists already: nothing to do, as rabbitmqctl
    ctl(server, "delete_vhost", uname)
    assert {"name": uname} not in rows(server, "list_vhosts")
    ctl(server, "delete_vhost", uname, expect=65)


def test_set_list_clear_permissions(server, uname):
    ctl(server, "add_user", uname, "pw")
    ctl(server, "add_vhost", uname)
    try:
        out = ctl(server, "set_permissions", "-p", uname, uname, "^c", "^w", "^r")
        assert out == 'Setting permissions for user "%s" in vhost "%s" ...\n' % (uname, uname)
        out = ctl(server, "list_permissions", "-p", uname)
        assert out.splitlines()[0] == 'Listing permissions for vhost "%s" ...' % uname
        assert table(out) == [["user", "configure", "write", "read"], [uname, "^c", "^w", "^r"]]
        t = table(ctl(server, "list_user_permissions", uname))
        assert t == [["vhost", "configure", "write", "read"], [uname, "^c", "^w", "^r"]]
        ctl(server, "clear_permissions", "-p", uname, uname)
        assert rows(server, "list_permissions", "-p", uname) == []
        ctl(server, "list_permissions", "-p", uname + "-none", expect=65)
        ctl(server, "set_permissions", uname + "-none", ".*", ".*", ".*", expect=67)
        ctl(server, "set_permissions", "-p", uname + "-none", uname, ".*", ".*", ".*", expect=69)
        ctl(server, "list_user_permissions", uname + "-none", expect=69)
    finally:
        ctl(server, "delete_vhost", uname)


def test_list_queues(server, conn, uniq):
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q, durable=True)
    for _ in range(3):
        ch.basic_publish("", q, b"x")
    wutil.wait_count(ch, q, 3)
    out = ctl(server, "list_queues")
    assert "Listing queues for vhost / ..." in out
    t = table(out)
    assert t[0] == ["name", "messages"] and [q, "3"] in t
    cols = ["name", "messages", "messages_ready", "messages_unacknowledged", "consumers", "durable",
            "auto_delete", "exclusive"]
    t = table(ctl(server, "list_queues", *cols))
    assert t[0] == cols and [q, "3", "3", "0", "0", "true", "false", "false"] in t
    assert {"name": q, "consumers": 0} in rows(server, "list_queues", "-p", "/", "name", "consumers")
    ctl(server, "list_queues", "bogus", expect=64)


def test_list_exchanges(server, conn, uniq):
    ex = uniq("ex")
    conn.channel().exchange_declare(ex, "topic")
    t = table(ctl(server, "list_exchanges"))
    assert t[0] == ["name", "type"] and [ex, "topic"] in t and ["amq.fanout", "fanout"] in t


def test_list_bindings(server, conn, uniq):
    ch = conn.channel()
    ex, q = uniq("ex"), uniq("q")
    ch.exchange_declare(ex, "direct")
    ch.queue_declare(q)
    ch.queue_bind(q, ex, "rk")
    t = table(ctl(server, "list_bindings"))
    assert t[0] == ["source_name", "source_kind", "destination_name", "destination_kind", "routing_key", "arguments"]
    assert [ex, "exchange", q, "queue", "rk", "[]"] in t


def test_list_connections_and_close_connection(server, connect):
    before = {c["name"] for c in rows(server, "list_connections")}
    connect()
    mine = [c for c in rows(server, "list_connections") if c["name"] not in before]
    assert len(mine) == 1 and mine[0]["state"] == "running" and mine[0]["user"] == server.user
    t = table(ctl(server, "list_connections"))
    assert t[0] == ["name", "user", "peer_host", "peer_port", "state"]
    name = mine[0]["name"]
    assert [name, server.user, "127.0.0.1", str(mine[0]["peer_port"]), "running"] in t
    ctl(server, "close_connection", name, "bye")
    wutil.wait_until(lambda: name not in [c["name"] for c in rows(server, "list_connections")], timeout=5)
    ctl(server, "close_connection", "no such connection", "x", expect=69)


def test_list_connections_columns(server, uniq):
    name = uniq("conn")
    conn = pika.BlockingConnection(wutil.params(server, client_properties={"connection_name": name}))
    try:
        found = [r for r in rows(server, "list_connections", "user_provided_name", "client_properties", "protocol")
                 if r.get("user_provided_name") == name]
        assert len(found) == 1
        assert found[0]["client_properties"]["connection_name"] == name
        assert found[0]["protocol"] == "AMQP 0-9-1"
        t = table(ctl(server, "list_connections", "user_provided_name", "vhost"))
        assert t[0] == ["user_provided_name", "vhost"] and [name, "/"] in t
        code, _, err = ctl(server, "list_connections", "bogus", expect=64)
        assert "Invalid column: bogus" in err and "user_provided_name" in err
    finally:
        wutil.close_quietly(conn)


def test_list_channels(server, conn):
    conn.channel()
    t = table(ctl(server, "list_channels"))
    assert t[0] == ["name", "user", "consumer_count", "messages_unacknowledged"]
    assert len(t) >= 2


def test_list_consumers(server, conn, uniq):
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q)
    ch.basic_consume(q, lambda *a: None, consumer_tag="ctag-" + q)
    t = table(ctl(server, "list_consumers", "-p", "/"))
    assert t[0] == ["queue_name", "channel_pid", "consumer_tag", "ack_required", "prefetch_count", "active", "arguments"]
    assert any(r[0] == q and r[2] == "ctag-" + q and r[3] == "true" for r in t[1:])


def test_purge_queue(server, conn, uniq):
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q)
    ch.basic_publish("", q, b"x")
    ch.basic_publish("", q, b"y")
    wutil.wait_count(ch, q, 2)
    out = ctl(server, "purge_queue", q)
    assert out == "Purging queue '%s' in vhost '/' ...\n" % q
    wutil.wait_count(ch, q, 0)
    ctl(server, "purge_queue", q + "-none", expect=69)


def test_delete_queue(server, conn, uniq):
    ch = conn.channel()
    q = uniq("q")
    ch.queue_declare(q)
    ch.basic_publish("", q, b"x")
    wutil.wait_count(ch, q, 1)
    out = ctl(server, "delete_queue", "-p", "/", q)
    assert "Queue was successfully deleted with 1 messages" in out
    assert not any(r["name"] == q for r in rows(server, "list_queues"))
    ctl(server, "delete_queue", q, expect=64)


def test_status(server):
    out = ctl(server, "status")
    assert out.startswith("Status of node ")
    assert "RabbitMQ version: " in out
    assert "rabbitmq_version" in json.loads(ctl(server, "--formatter", "json", "status"))


def test_await_startup(server_factory):
    srv = server_factory()
    ctl(srv, "await_startup", "--timeout", "10")
    srv.stop()
    code, _, err = ctl(srv, "await_startup", "--timeout", "1", expect=69)


def test_export_import_definitions(server, tmp_path):
    path = str(tmp_path / "defs.json")
    code, _, err = ctl(server, "export_definitions", path, expect=None)
    if code == 69:
        assert "not supported by this server" in err
        pytest.skip("this server has no /api/definitions yet")
    assert code == 0, err
    with open(path) as f:
        defs = json.load(f)
    assert any(u["name"] == server.user for u in defs["users"])
    ctl(server, "import_definitions", path)


def test_exit_codes(server, tmp_path):
    code, _, _ = ctl(server, "no_such_verb", expect=None)
    assert code == 64
    ctl(server, "add_user", "only-one-arg", expect=64)
    ctl(server, "--user", server.user, "--password", "wrong", "list_users", expect=77)
    ctl(server, "--user", server.user, "--password", server.password, "list_users")
    ctl(server, "list_users", expect=77, WARREN_DATA_DIR="/nonexistent")
    ctl(server, "list_users", expect=69, WARREN_URL="http://127.0.0.1:1")
    # A stale or forged token is refused.
    (tmp_path / ".warrenctl-token").write_text("f" * 64 + "\n")
    ctl(server, "list_users", expect=77, WARREN_DATA_DIR=str(tmp_path))


@pytest.mark.timeout(120)
def test_seed_tutorial_with_warrenctl(server_factory, tmp_path):
    """The seed tutorial's four commands verbatim, then its producer and consumer as user/pass."""
    srv = server_factory()
    env = ctl_env(srv)
    env["PATH"] = os.path.dirname(WARRENCTL) + os.pathsep + env.get("PATH", "")
    for cmd in ("warrenctl add_user user pass",
                "warrenctl set_user_tags user administrator",
                "warrenctl set_permissions -p / user '.*' '.*' '.*'",
                "warrenctl list_users"):
        r = subprocess.run(cmd, shell=True, env=env, capture_output=True, timeout=30)
        assert r.returncode == 0, "%s: %r %r" % (cmd, r.stdout, r.stderr)
    assert "user\t[administrator]" in r.stdout.decode().splitlines()
    test_seed.run_producer(SEED_DIR, srv.port)
    proc = test_seed.start_consumer(SEED_DIR, srv.port)
    try:
        test_seed.wait_for_line(proc, test_seed.EXPECTED_LINE)
    finally:
        test_seed.stop_consumer(proc, signal.SIGTERM)
