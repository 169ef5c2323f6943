"""Topic permissions as RabbitMQ's (set_topic_permissions): routing-key regexes per user, vhost and
topic exchange, checked on publish (write) and on binding and unbinding (read). Every expectation
here was first run against Debian's RabbitMQ 3.10.8 (reply codes and texts)."""

import pika.exceptions as pexc
import pytest

import wutil
from test_management_api import api, ok
from test_warrenctl import ctl, rows, table

pytestmark = pytest.mark.needs_own_server


def refused(key, exchange="amq.topic", user="t", vhost="/"):
    return "ACCESS_REFUSED - access to topic '%s' in exchange '%s' in vhost '%s' refused for user '%s'" % (
        key, exchange, vhost, user)


@pytest.fixture
def srv(server_factory):
    srv = server_factory()
    ctl(srv, "add_user", "t", "t-pw")
    ctl(srv, "set_permissions", "-p", "/", "t", ".*", ".*", ".*")
    ctl(srv, "set_topic_permissions", "-p", "/", "t", "amq.topic", r"^a\.", r"^r\.")
    return srv


def connect_as(srv, user="t", password="t-pw"):
    return wutil.connect(srv, user=user, password=password)


def publish(conn, exchange, key):
    """Publishes and makes a round trip, so that a refusal closes the channel here."""
    ch = conn.channel()
    ch.basic_publish(exchange, key, b"x")
    ch.queue_declare("", exclusive=True)
    ch.close()


def test_publish_to_a_topic_exchange_needs_write_on_the_routing_key(srv):
    conn = connect_as(srv)
    try:
        publish(conn, "amq.topic", "a.ok")
        with pytest.raises(pexc.ChannelClosedByBroker) as ei:
            publish(conn, "amq.topic", "b.x")
        assert ei.value.reply_code == 403 and ei.value.reply_text == refused("b.x")
        publish(conn, "amq.direct", "b.x")  # other exchange types are never checked
        ch = conn.channel()
        ch.exchange_declare("mytopic", "topic")
        publish(conn, "mytopic", "b.x")  # no topic permission for this exchange: all keys allowed
    finally:
        wutil.close_quietly(conn)


def test_only_topic_exchanges_are_checked(srv):
    ctl(srv, "set_topic_permissions", "-p", "/", "t", "amq.direct", "^nothing$", "^nothing$")
    conn = connect_as(srv)
    try:
        publish(conn, "amq.direct", "anything")
        ch = conn.channel()
        ch.queue_declare("tq-direct")
        ch.queue_bind("tq-direct", "amq.direct", "anything")
    finally:
        wutil.close_quietly(conn)


def test_binding_and_unbinding_need_read_on_the_binding_key(srv):
    conn = connect_as(srv)
    try:
        ch = conn.channel()
        ch.queue_declare("tq")
        ch.queue_bind("tq", "amq.topic", "r.ok")
        ch.queue_unbind("tq", "amq.topic", "r.ok")
        with wutil.channel_error(403) as ei:
            ch.queue_bind("tq", "amq.topic", "x.no")
        assert ei.value.reply_text == refused("x.no")
        ch = conn.channel()
        with wutil.channel_error(403):
            ch.queue_unbind("tq", "amq.topic", "x.no")
        ch = conn.channel()
        ch.exchange_declare("fan", "fanout")
        ch.exchange_bind("fan", "amq.topic", "r.ok")
        with wutil.channel_error(403) as ei:
            ch.exchange_bind("fan", "amq.topic", "x.no")
        assert ei.value.reply_text == refused("x.no")
        ch = conn.channel()
        with wutil.channel_error(403):
            ch.exchange_unbind("fan", "amq.topic", "x.no")
    finally:
        wutil.close_quietly(conn)


def test_a_change_applies_to_open_connections_and_survives_a_restart(srv):
    conn = connect_as(srv)
    try:
        ctl(srv, "set_topic_permissions", "-p", "/", "t", "amq.topic", r"^c\.", ".*")
        publish(conn, "amq.topic", "c.x")
        with pytest.raises(pexc.ChannelClosedByBroker):
            publish(conn, "amq.topic", "a.x")
        ctl(srv, "clear_topic_permissions", "-p", "/", "t", "amq.topic")
        publish(conn, "amq.topic", "a.x")
    finally:
        wutil.close_quietly(conn)
    ctl(srv, "set_topic_permissions", "-p", "/", "t", "amq.topic", "^{username}\\.", ".*")
    srv.restart()
    assert rows(srv, "list_topic_permissions", "-p", "/") == [
        {"user": "t", "exchange": "amq.topic", "write": "^{username}\\.", "read": ".*"}]
    conn = connect_as(srv)
    try:
        publish(conn, "amq.topic", "t.mine")  # {username} stands for the user
        with pytest.raises(pexc.ChannelClosedByBroker) as ei:
            publish(conn, "amq.topic", "u.theirs")
        assert ei.value.reply_text == refused("u.theirs")
    finally:
        wutil.close_quietly(conn)


def test_deleting_the_user_or_vhost_removes_them(srv):
    ctl(srv, "add_vhost", "v2")
    ctl(srv, "set_permissions", "-p", "v2", "t", ".*", ".*", ".*")
    ctl(srv, "set_topic_permissions", "-p", "v2", "t", "amq.topic", "^a", "^a")
    assert len(ok(srv, "GET", "topic-permissions")) == 2
    ctl(srv, "delete_vhost", "v2")
    assert [p["vhost"] for p in ok(srv, "GET", "topic-permissions")] == ["/"]
    ctl(srv, "delete_user", "t")
    assert ok(srv, "GET", "topic-permissions") == []
    srv.restart()
    assert ok(srv, "GET", "topic-permissions") == []


def test_warrenctl_verbs(srv):
    out = ctl(srv, "set_topic_permissions", "-p", "/", "t", "ex2", "^w", "^r")
    assert out.splitlines()[0] == 'Setting topic permissions on "ex2" for user "t" in vhost "/" ...'
    out = ctl(srv, "list_topic_permissions", "-p", "/")
    assert out.splitlines()[0] == 'Listing topic permissions for vhost "/" ...'
    assert table(out) == [["user", "exchange", "write", "read"], ["t", "amq.topic", r"^a\.", r"^r\."],
                          ["t", "ex2", "^w", "^r"]]
    assert table(ctl(srv, "list_user_topic_permissions", "t")) == [
        ["vhost", "exchange", "write", "read"], ["/", "amq.topic", r"^a\.", r"^r\."], ["/", "ex2", "^w", "^r"]]
    out = ctl(srv, "clear_topic_permissions", "-p", "/", "t", "ex2")
    assert out.splitlines()[0] == 'Clearing topic permissions on "ex2" for user "t" in vhost "/" ...'
    assert [r["exchange"] for r in rows(srv, "list_user_topic_permissions", "t")] == ["amq.topic"]
    ctl(srv, "clear_topic_permissions", "-p", "/", "t")
    assert rows(srv, "list_user_topic_permissions", "t") == []
    ctl(srv, "clear_topic_permissions", "-p", "/", "t")  # none left: nothing to do, as rabbitmqctl
    code, out, err = ctl(srv, "set_topic_permissions", "nobody", "amq.topic", ".*", ".*", expect=None)
    assert code == 67 and "nobody" in err
    code, out, err = ctl(srv, "set_topic_permissions", "t", "amq.topic", "[", ".*", expect=None)
    assert code != 0 and "regular expression" in err


def test_management_api(srv):
    base = "topic-permissions/%2F/t"
    assert ok(srv, "GET", base) == [{"user": "t", "vhost": "/", "exchange": "amq.topic", "write": r"^a\.",
                                      "read": r"^r\."}]
    assert ok(srv, "GET", "users/t/topic-permissions") == ok(srv, "GET", base)
    assert ok(srv, "GET", "vhosts/%2F/topic-permissions") == ok(srv, "GET", base)
    status, body, _ = api(srv, "PUT", base, {"exchange": "amq.topic", "write": "[", "read": ".*"})
    assert status == 400 and "regular expression" in body["reason"]
    status, body, _ = api(srv, "PUT", base, {"write": "^w", "read": ".*"})
    assert status == 400 and body["reason"] == "[{key_missing,exchange}]"
    for path in ("topic-permissions/%2F/nobody", "topic-permissions/nowhere/t"):
        status, body, _ = api(srv, "PUT", path, {"exchange": "x", "write": "", "read": ""})
        assert status == 400 and body["reason"] == "vhost_or_user_not_found", path
    assert ok(srv, "GET", base)[0]["write"] == r"^a\."  # the bad ones changed nothing

    # Publishing and binding through the API are checked like AMQP.
    ok(srv, "PUT", "users/t", {"password": "t-pw", "tags": "management"})
    as_t = {"user": "t", "password": "t-pw"}
    status, body, _ = api(srv, "POST", "exchanges/%2F/amq.topic/publish",
                          {"properties": {}, "routing_key": "b.x", "payload": "x", "payload_encoding": "string"},
                          **as_t)
    assert status == 401 and body["reason"] == refused("b.x")[len("ACCESS_REFUSED - "):]
    assert ok(srv, "POST", "exchanges/%2F/amq.topic/publish",
              {"properties": {}, "routing_key": "a.x", "payload": "x", "payload_encoding": "string"},
              **as_t) == {"routed": False}
    ok(srv, "PUT", "queues/%2F/tq-api", {})
    status, body, _ = api(srv, "POST", "bindings/%2F/e/amq.topic/q/tq-api", {"routing_key": "x.no"}, **as_t)
    assert status == 401 and "access to topic 'x.no'" in body["reason"]
    ok(srv, "POST", "bindings/%2F/e/amq.topic/q/tq-api", {"routing_key": "r.ok"}, **as_t)

    assert api(srv, "DELETE", base)[0] == 204
    assert api(srv, "GET", base)[0] == 404  # none left
    assert api(srv, "DELETE", base)[0] == 404
    assert api(srv, "PUT", base, {"exchange": "amq.topic", "write": ".*", "read": ".*"})[0] == 201
    assert api(srv, "PUT", base, {"exchange": "amq.topic", "write": ".*", "read": ".*"})[0] == 204


def test_definitions_round_trip_and_all_or_nothing(srv):
    exported = ok(srv, "GET", "definitions")
    assert exported["topic_permissions"] == [{"user": "t", "vhost": "/", "exchange": "amq.topic",
                                             "write": r"^a\.", "read": r"^r\."}]
    bad = dict(exported, topic_permissions=exported["topic_permissions"] + [
        {"user": "t", "vhost": "/", "exchange": "e2", "write": "(", "read": ".*"}])
    bad["users"] = exported["users"] + [{"name": "newbie", "password_hash": "", "tags": ""}]
    status, body, _ = api(srv, "POST", "definitions", bad)
    assert status == 400 and "topic_permissions[1]" in body["reason"]
    assert all(u["name"] != "newbie" for u in ok(srv, "GET", "users"))  # nothing half-applied
    status, body, _ = api(srv, "POST", "definitions", dict(exported, topic_permissions=[
        {"user": "ghost", "vhost": "/", "exchange": "e2", "write": ".*", "read": ".*"}]))
    assert status == 400 and "unknown user 'ghost'" in body["reason"]

    ctl(srv, "clear_topic_permissions", "-p", "/", "t")
    assert api(srv, "POST", "definitions", exported)[0] in (201, 204)
    assert ok(srv, "GET", "topic-permissions") == exported["topic_permissions"]
