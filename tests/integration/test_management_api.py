"""The management HTTP API (RabbitMQ's /api/...): auth, every endpoint, and rabbitmqadmin.

Uses only urllib (basic auth by hand) so it runs with Debian's stock Python.
"""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request

import pika
import pytest

import wutil


def q(name):
    return urllib.parse.quote(name, safe="")


api = wutil.http_api


def ok(srv, method, path, body=None, expect=(200, 201, 204), **kw):
    status, parsed, _ = api(srv, method, path, body, **kw)
    assert status in expect, "%s %s -> %d %r" % (method, path, status, parsed)
    return parsed


# --------------------------------------------------------------------------
# auth

def test_missing_or_wrong_credentials_get_401_with_realm(server):
    # The bodies as Debian's RabbitMQ 3.10.8 sends them.
    status, body, headers = api(server, "GET", "overview", auth=False)
    assert status == 401 and body is None
    assert headers["WWW-Authenticate"] == 'Basic realm="RabbitMQ Management"'
    status, body, headers = api(server, "GET", "queues", password="wrong-password")
    assert status == 401
    assert body == {"error": "not_authorized", "reason": "Login failed"}
    assert "WWW-Authenticate" in headers
    status, body, _ = api(server, "GET", "overview", user="nobody-such-user", password="x")
    assert status == 401


@pytest.mark.needs_own_server
def test_users_without_management_tags_are_refused_and_management_users_see_their_vhosts(server_factory):
    tmp = tempfile.mkdtemp(prefix="warren-defs-")
    try:
        path = os.path.join(tmp, "defs.json")
        with open(path, "w") as f:
            json.dump({
                "vhosts": [{"name": "/"}, {"name": "mv"}],
                "users": [{"name": "plain", "password": "pw1", "tags": []},
                          {"name": "mgr", "password": "pw2", "tags": ["management"]},
                          {"name": "mon", "password": "pw3", "tags": "monitoring"}],
                "permissions": [{"user": "mgr", "vhost": "mv", "configure": ".*", "write": ".*", "read": ".*"}],
            }, f)
        srv = server_factory(extra_args=["--load-definitions", path])
        status, body, _ = api(srv, "GET", "overview", user="plain", password="pw1")
        assert status == 401
        assert body == {"error": "not_authorised", "reason": "Not management user"}

        status, body, _ = api(srv, "GET", "whoami", user="mgr", password="pw2")
        assert status == 200 and body["name"] == "mgr" and body["tags"] == ["management"]
        names = [v["name"] for v in ok(srv, "GET", "vhosts", user="mgr", password="pw2")]
        assert names == ["mv"]
        status, _, _ = api(srv, "GET", "queues/%2F", user="mgr", password="pw2")
        assert status == 401
        # may declare in its own vhost, not in "/"
        ok(srv, "PUT", "queues/mv/mq", {"durable": False}, user="mgr", password="pw2")
        status, body, _ = api(srv, "PUT", "queues/%2F/mq", {}, user="mgr", password="pw2")
        assert status == 401
        assert [q_["name"] for q_ in ok(srv, "GET", "queues", user="mgr", password="pw2")] == ["mq"]

        # monitoring sees every vhost but cannot change what it has no permissions for
        names = sorted(v["name"] for v in ok(srv, "GET", "vhosts", user="mon", password="pw3"))
        assert names == ["/", "mv"]
        status, _, _ = api(srv, "PUT", "queues/mv/other", {}, user="mon", password="pw3")
        assert status == 401
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# overview, whoami, vhosts

def test_overview_and_whoami(server, uniq):
    overview = ok(server, "GET", "overview")
    for key in ("management_version", "rabbitmq_version", "product_version", "cluster_name", "node"):
        assert isinstance(overview[key], str) and overview[key]
    assert overview["product_name"] == "Warren"
    assert set(overview["object_totals"]) >= {"connections", "channels", "exchanges", "queues", "consumers"}
    assert set(overview["queue_totals"]) >= {"messages", "messages_ready", "messages_unacknowledged"}
    assert "message_stats" in overview
    before = overview["object_totals"]["queues"]
    ok(server, "PUT", "queues/%2F/" + q(uniq("q")), {})
    assert ok(server, "GET", "overview")["object_totals"]["queues"] == before + 1

    me = ok(server, "GET", "whoami")
    assert me["name"] == server.user
    assert "administrator" in me["tags"]


def test_vhosts(server):
    vhosts = ok(server, "GET", "vhosts")
    assert "/" in [v["name"] for v in vhosts]
    v = ok(server, "GET", "vhosts/%2F")
    assert v["name"] == "/"
    assert {"messages", "messages_ready", "messages_unacknowledged"} <= set(v)
    status, body, _ = api(server, "GET", "vhosts/no-such-vhost")
    assert status == 404
    assert body == {"error": "Object Not Found", "reason": "Not Found"}


def test_a_method_the_path_does_not_take_is_405(server):
    for method in ("PATCH", "DELETE", "POST"):
        status, body, _ = api(server, method, "overview")
        assert status == 405 and body is None, method


def test_unknown_paths_and_objects_are_404(server):
    for path in ("nothing-here", "queues/%2F/no-such-queue", "exchanges/%2F/no-such-exchange",
                 "queues/no-such-vhost", "exchanges/no-such-vhost/x"):
        status, body, _ = api(server, "GET", path)
        assert status == 404, path
        assert body["error"] == "Object Not Found"
    status, _, _ = api(server, "DELETE", "queues/%2F/no-such-queue")
    assert status == 404


# --------------------------------------------------------------------------
# exchanges

def test_exchange_create_get_list_delete(server, uniq):
    name = uniq("ex")
    path = "exchanges/%2F/" + q(name)
    status, _, _ = api(server, "PUT", path, {"type": "topic", "durable": True, "arguments": {"x-foo": "bar"}})
    assert status == 201
    status, _, _ = api(server, "PUT", path, {"type": "topic", "durable": True, "arguments": {"x-foo": "bar"}})
    assert status == 204  # already there, equivalent
    e = ok(server, "GET", path)
    assert e == {**e, "name": name, "vhost": "/", "type": "topic", "durable": True, "auto_delete": False,
                 "internal": False, "arguments": {"x-foo": "bar"}}
    assert name in [x["name"] for x in ok(server, "GET", "exchanges")]
    listed = ok(server, "GET", "exchanges/%2F")
    assert name in [x["name"] for x in listed]
    assert "amq.topic" in [x["name"] for x in listed]
    assert ok(server, "GET", "exchanges/%2F/amq.default")["name"] == ""

    # inequivalent redeclare: 400 with the broker's reason
    status, body, _ = api(server, "PUT", path, {"type": "fanout", "durable": True})
    assert status == 400
    assert body["error"] == "bad_request" and "inequivalent" in body["reason"]

    status, _, _ = api(server, "DELETE", path)
    assert status == 204
    status, _, _ = api(server, "GET", path)
    assert status == 404


def test_malformed_json_is_400(server, uniq):
    status, body, _ = api(server, "PUT", "exchanges/%2F/" + q(uniq("ex")), raw_body=b"{not json")
    assert status == 400
    assert body["error"] == "bad_request"
    status, body, _ = api(server, "PUT", "exchanges/%2F/" + q(uniq("ex")), {"type": "no-such-type"})
    assert status in (400, 404)
    status, body, _ = api(server, "POST", "queues/%2F/x/get", raw_body=b"[1,2")
    assert status == 400


def test_amq_prefix_is_refused(server):
    status, body, _ = api(server, "PUT", "exchanges/%2F/amq.mine", {"type": "direct"})
    assert status in (400, 401, 403)
    assert body["reason"]


# --------------------------------------------------------------------------
# queues

def test_queue_create_get_list_delete(server, uniq):
    name = uniq("q")
    path = "queues/%2F/" + q(name)
    status, _, _ = api(server, "PUT", path, {"durable": True, "auto_delete": False,
                                             "arguments": {"x-max-length": 10}})
    assert status == 201
    got = ok(server, "GET", path)
    assert got == {**got, "name": name, "vhost": "/", "durable": True, "auto_delete": False,
                   "exclusive": False, "arguments": {"x-max-length": 10}, "messages": 0,
                   "messages_ready": 0, "messages_unacknowledged": 0, "consumers": 0, "state": "running"}
    assert name in [x["name"] for x in ok(server, "GET", "queues")]
    assert name in [x["name"] for x in ok(server, "GET", "queues/%2F")]
    status, body, _ = api(server, "PUT", path, {"durable": False})
    assert status == 400 and "inequivalent" in body["reason"]
    status, _, _ = api(server, "DELETE", path)
    assert status == 204
    status, _, _ = api(server, "GET", path)
    assert status == 404


def test_queue_declared_over_http_is_visible_over_amqp(server, ch, uniq):
    name = uniq("q")
    ok(server, "PUT", "queues/%2F/" + q(name), {"durable": False})
    ch.basic_publish("", name, b"via-amqp")
    wutil.wait_until(lambda: ok(server, "GET", "queues/%2F/" + q(name))["messages"] == 1, what="message counted")
    ch.queue_delete(name)


@pytest.mark.needs_own_server
def test_durable_definitions_made_over_http_survive_a_restart(own_server, uniq):
    qname, ename = uniq("q"), uniq("ex")
    ok(own_server, "PUT", "queues/%2F/" + q(qname), {"durable": True})
    ok(own_server, "PUT", "exchanges/%2F/" + q(ename), {"type": "fanout", "durable": True})
    ok(own_server, "POST", "bindings/%%2F/e/%s/q/%s" % (q(ename), q(qname)), {"routing_key": "k"})
    published = ok(own_server, "POST", "exchanges/%2F/" + q(ename) + "/publish",
                   {"properties": {"delivery_mode": 2}, "routing_key": "k", "payload": "kept",
                    "payload_encoding": "string"})
    assert published == {"routed": True}
    own_server.restart()
    assert ok(own_server, "GET", "queues/%2F/" + q(qname))["messages"] == 1
    assert ok(own_server, "GET", "exchanges/%2F/" + q(ename))["type"] == "fanout"
    keys = [b["routing_key"] for b in ok(own_server, "GET", "bindings/%%2F/e/%s/q/%s" % (q(ename), q(qname)))]
    assert keys == ["k"]
    msgs = ok(own_server, "POST", "queues/%2F/" + q(qname) + "/get",
              {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"})
    assert msgs[0]["payload"] == "kept"


# --------------------------------------------------------------------------
# publish / get / purge

def test_publish_then_get_round_trip(server, uniq):
    name = uniq("q")
    ok(server, "PUT", "queues/%2F/" + q(name), {})
    props = {"content_type": "text/plain", "delivery_mode": 1, "headers": {"h": "v", "n": 5},
             "correlation_id": "c-1", "message_id": "m-1"}
    r = ok(server, "POST", "exchanges/%2F/amq.default/publish",
           {"properties": props, "routing_key": name, "payload": "hello", "payload_encoding": "string"})
    assert r == {"routed": True}
    r = ok(server, "POST", "exchanges/%2F/amq.default/publish",
           {"properties": {}, "routing_key": name, "payload": base64.b64encode(b"\x00\xff bin").decode(),
            "payload_encoding": "base64"})
    assert r == {"routed": True}
    r = ok(server, "POST", "exchanges/%2F/amq.default/publish",
           {"properties": {}, "routing_key": uniq("nowhere"), "payload": "x", "payload_encoding": "string"})
    assert r == {"routed": False}

    # requeue: the messages stay, and come back redelivered
    msgs = ok(server, "POST", "queues/%2F/" + q(name) + "/get",
              {"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 50000})
    assert len(msgs) == 2
    first, second = msgs
    assert first["payload"] == "hello" and first["payload_encoding"] == "string"
    assert first["payload_bytes"] == 5 and first["redelivered"] is False
    assert first["exchange"] == "" and first["routing_key"] == name
    assert first["message_count"] == 1
    assert first["properties"] == props
    assert second["payload_encoding"] == "base64"
    assert base64.b64decode(second["payload"]) == b"\x00\xff bin"
    assert ok(server, "GET", "queues/%2F/" + q(name))["messages"] == 2

    msgs = ok(server, "POST", "queues/%2F/" + q(name) + "/get",
              {"count": 1, "ackmode": "ack_requeue_false", "encoding": "base64", "truncate": 2})
    assert len(msgs) == 1
    assert msgs[0]["redelivered"] is True
    assert base64.b64decode(msgs[0]["payload"]) == b"he"  # truncated
    assert msgs[0]["payload_bytes"] == 5
    assert ok(server, "GET", "queues/%2F/" + q(name))["messages"] == 1

    status, body, _ = api(server, "POST", "queues/%2F/" + q(name) + "/get", {"count": 1, "ackmode": "bogus"})
    assert status == 400
    status, _, _ = api(server, "POST", "exchanges/%2F/" + q(uniq("none")) + "/publish",
                       {"properties": {}, "routing_key": "", "payload": "", "payload_encoding": "string"})
    assert status == 404


STATS = ("publish", "deliver", "deliver_no_ack", "get", "get_no_ack", "get_empty", "ack", "redeliver",
         "deliver_get")
BROKER_STATS = STATS + ("confirm", "return_unroutable", "drop_unroutable")


def test_message_stats_counts_and_rates(server_factory, uniq):
    """RabbitMQ's message_stats (rates_mode basic): counts and <stat>_details.rate per queue and
    in the overview, the rates taken between samples every --collect-statistics-interval."""
    srv = server_factory(extra_args=["--collect-statistics-interval", "200"])
    name = uniq("q")
    conn = wutil.connect(srv)
    try:
        ch = conn.channel()
        ch.queue_declare(name)
        for i in range(40):
            ch.basic_publish("", name, b"m%d" % i)
        for _ in range(10):
            method, _, _ = ch.basic_get(name, auto_ack=False)
            ch.basic_ack(method.delivery_tag)
        method, _, _ = ch.basic_get(name, auto_ack=False)
        ch.basic_nack(method.delivery_tag, requeue=True)
        ch.basic_get(name, auto_ack=True)  # the requeued one: get_no_ack, redeliver
        got = []
        tag = ch.basic_consume(name, lambda c, m, p, b: got.append(m), auto_ack=True)
        wutil.wait_until(lambda: len(got) == 29, conn=conn, what="29 deliveries")
        assert ch.basic_get(name) == (None, None, None)
        ch.confirm_delivery()
        ch.basic_publish("", uniq("nowhere"), b"dropped")
        with pytest.raises(pika.exceptions.UnroutableError):
            ch.basic_publish("", uniq("nowhere"), b"returned", mandatory=True)

        stats = ok(srv, "GET", "queues/%2F/" + q(name))["message_stats"]
        for key in STATS:
            assert isinstance(stats[key], int), key
            assert isinstance(stats[key + "_details"]["rate"], (int, float)), key
        assert stats["publish"] == 40
        assert stats["get"] == 11 and stats["ack"] == 10
        assert stats["get_no_ack"] == 1 and stats["redeliver"] == 1
        assert stats["deliver_no_ack"] == 29 and stats["deliver"] == 0
        assert stats["deliver_get"] == 41
        assert stats["get_empty"] == 1
        assert "confirm" not in stats
        overview = ok(srv, "GET", "overview")
        for key in BROKER_STATS:
            assert isinstance(overview["message_stats"][key], int), key
            assert isinstance(overview["message_stats"][key + "_details"]["rate"], (int, float)), key
        assert overview["message_stats"]["confirm"] >= 2
        assert overview["message_stats"]["drop_unroutable"] >= 1
        assert overview["message_stats"]["return_unroutable"] >= 1
        assert overview["message_stats"]["get_empty"] >= 1
        assert overview["rates_mode"] == "basic"
        assert overview["message_stats"]["publish"] >= 40
        assert overview["message_stats"]["deliver_get"] >= 41
        assert overview["message_stats"]["ack"] >= 10

        # The sample after the burst shows its rate; later, idle samples bring it back to 0.
        def publish_rate():
            return ok(srv, "GET", "queues/%2F/" + q(name))["message_stats"]["publish_details"]["rate"]
        seen = [publish_rate()]
        wutil.wait_until(lambda: seen.append(publish_rate()) or seen[-1] == 0, timeout=5, what="rate back to 0")
        ch.basic_publish("", name, b"late")
        wutil.wait_until(lambda: publish_rate() > 0, timeout=5, conn=conn, what="a publish rate")
        ch.basic_cancel(tag)
        for i in range(20):
            ch.basic_publish("", name, b"backlog")
        wutil.wait_until(lambda: ok(srv, "GET", "queues/%2F/" + q(name))["messages_ready_details"]["rate"] > 0,
                         timeout=5, conn=conn, what="a rising queue depth")
        totals = ok(srv, "GET", "overview")["queue_totals"]
        for key in ("messages", "messages_ready", "messages_unacknowledged"):
            assert isinstance(totals[key + "_details"]["rate"], (int, float)), key
        assert ok(srv, "GET", "overview")["message_stats"]["publish_details"]["rate"] >= 0
        listed = [x for x in ok(srv, "GET", "queues/%2F") if x["name"] == name][0]
        assert listed["message_stats"]["publish"] == 41 + 20
    finally:
        wutil.close_quietly(conn)


def test_get_reaches_a_pika_consumer_afterwards(server, ch, uniq):
    name = uniq("q")
    ok(server, "PUT", "queues/%2F/" + q(name), {})
    ok(server, "POST", "exchanges/%2F/amq.default/publish",
       {"properties": {}, "routing_key": name, "payload": "to-pika", "payload_encoding": "string"})
    method, props, body = ch.basic_get(name, auto_ack=True)
    assert body == b"to-pika"


def test_purge(server, uniq):
    name = uniq("q")
    ok(server, "PUT", "queues/%2F/" + q(name), {})
    for i in range(3):
        ok(server, "POST", "exchanges/%2F/amq.default/publish",
           {"properties": {}, "routing_key": name, "payload": str(i), "payload_encoding": "string"})
    assert ok(server, "GET", "queues/%2F/" + q(name))["messages_ready"] == 3
    status, _, _ = api(server, "DELETE", "queues/%2F/" + q(name) + "/contents")
    assert status == 204
    assert ok(server, "GET", "queues/%2F/" + q(name))["messages"] == 0


# --------------------------------------------------------------------------
# bindings

def test_bindings_create_list_delete(server, uniq):
    ex, qu = uniq("ex"), uniq("q")
    ok(server, "PUT", "exchanges/%2F/" + q(ex), {"type": "direct"})
    ok(server, "PUT", "queues/%2F/" + q(qu), {})
    status, _, headers = api(server, "POST", "bindings/%%2F/e/%s/q/%s" % (q(ex), q(qu)),
                             {"routing_key": "rk", "arguments": {}})
    assert status == 201
    assert headers["Location"]
    listed = ok(server, "GET", "bindings/%%2F/e/%s/q/%s" % (q(ex), q(qu)))
    assert len(listed) == 1
    b = listed[0]
    assert b == {**b, "source": ex, "vhost": "/", "destination": qu, "destination_type": "queue",
                 "routing_key": "rk", "arguments": {}}
    everything = ok(server, "GET", "bindings")
    assert b in everything
    per_vhost = ok(server, "GET", "bindings/%2F")
    assert b in per_vhost
    # the default exchange's implicit binding is listed too
    assert any(x["source"] == "" and x["destination"] == qu and x["routing_key"] == qu for x in per_vhost)
    assert ok(server, "GET", "queues/%%2F/%s/bindings" % q(qu)) == [x for x in per_vhost if x["destination"] == qu]
    assert b in ok(server, "GET", "exchanges/%%2F/%s/bindings/source" % q(ex))

    r = ok(server, "POST", "exchanges/%2F/" + q(ex) + "/publish",
           {"properties": {}, "routing_key": "rk", "payload": "bound", "payload_encoding": "string"})
    assert r == {"routed": True}

    status, _, _ = api(server, "DELETE", "bindings/%%2F/e/%s/q/%s/%s" % (q(ex), q(qu), q(b["properties_key"])))
    assert status == 204
    assert ok(server, "GET", "bindings/%%2F/e/%s/q/%s" % (q(ex), q(qu))) == []
    status, _, _ = api(server, "DELETE", "bindings/%%2F/e/%s/q/%s/%s" % (q(ex), q(qu), q(b["properties_key"])))
    assert status == 404


def test_exchange_to_exchange_binding(server, uniq):
    src, dst, qu = uniq("src"), uniq("dst"), uniq("q")
    ok(server, "PUT", "exchanges/%2F/" + q(src), {"type": "fanout"})
    ok(server, "PUT", "exchanges/%2F/" + q(dst), {"type": "fanout"})
    ok(server, "PUT", "queues/%2F/" + q(qu), {})
    ok(server, "POST", "bindings/%%2F/e/%s/e/%s" % (q(src), q(dst)), {"routing_key": ""})
    ok(server, "POST", "bindings/%%2F/e/%s/q/%s" % (q(dst), q(qu)), {"routing_key": ""})
    listed = ok(server, "GET", "bindings/%%2F/e/%s/e/%s" % (q(src), q(dst)))
    assert [x["destination_type"] for x in listed] == ["exchange"]
    assert ok(server, "POST", "exchanges/%2F/" + q(src) + "/publish",
              {"properties": {}, "routing_key": "", "payload": "e2e", "payload_encoding": "string"}) == {"routed": True}
    assert ok(server, "GET", "queues/%2F/" + q(qu))["messages"] == 1


# --------------------------------------------------------------------------
# connections, channels, consumers

def test_connections_channels_consumers(server, connect, uniq):
    conn = connect()
    ch = conn.channel()
    name = uniq("q")
    ch.queue_declare(name, auto_delete=True)
    ch.basic_qos(prefetch_count=7)
    tag = ch.basic_consume(name, lambda *a: None)
    local_port = conn._impl._transport._sock.getsockname()[1] if hasattr(conn._impl, "_transport") else None

    conns = ok(server, "GET", "connections")
    mine = [c for c in conns if local_port is None or c["peer_port"] == local_port]
    assert mine
    c = mine[0]
    assert c["user"] == server.user and c["vhost"] == "/" and c["state"] == "running"
    assert c["peer_host"] == "127.0.0.1" and c["channels"] >= 1
    assert c["name"].startswith("127.0.0.1:")

    chans = [x for x in ok(server, "GET", "channels") if x["connection_details"]["name"] == c["name"]]
    assert chans and chans[0]["consumer_count"] == 1 and chans[0]["prefetch_count"] == 7

    consumers = [x for x in ok(server, "GET", "consumers") if x["consumer_tag"] == tag]
    assert len(consumers) == 1
    assert consumers[0]["queue"] == {"name": name, "vhost": "/"}
    assert consumers[0]["channel_details"]["connection_name"] == c["name"]
    assert [x["consumer_tag"] for x in ok(server, "GET", "consumers/%2F") if x["consumer_tag"] == tag] == [tag]
    assert ok(server, "GET", "queues/%2F/" + q(name))["consumers"] == 1
    overview = ok(server, "GET", "overview")
    assert overview["object_totals"]["connections"] >= 1 and overview["object_totals"]["consumers"] >= 1


def test_connections_show_client_properties_and_user_provided_name(server, uniq):
    name = uniq("conn")
    props = {"connection_name": name, "custom_str": "v", "custom_int": 42, "custom_bool": True,
             "nested": {"a": 1, "b": {"c": "d"}}, "lst": [1, "two", True], "big": 2 ** 40}
    named = pika.BlockingConnection(wutil.params(server, client_properties=props))
    unnamed = pika.BlockingConnection(wutil.params(server, client_properties={"probe": name}))
    try:
        def find(conns, pred):
            found = [c for c in conns if pred(c.get("client_properties", {}))]
            assert len(found) == 1, conns
            return found[0]

        # RabbitMQ lists a connection's properties once its stats are collected (up to 5 s).
        wutil.wait_until(lambda: sum(1 for c in ok(server, "GET", "connections")
                                     if c.get("client_properties", {}).get("probe") == name
                                     or c.get("client_properties", {}).get("connection_name") == name) == 2,
                         timeout=10, interval=0.2, what="both connections listed")
        conns = ok(server, "GET", "connections")
        c = find(conns, lambda p: p.get("connection_name") == name)
        # As RabbitMQ 3.10.8 renders pika's start-ok table.
        cp = c["client_properties"]
        assert cp["product"] == "Pika Python Client Library" and cp["version"] == pika.__version__
        assert cp["capabilities"] == {"authentication_failure_close": True, "basic.nack": True,
                                      "connection.blocked": True, "consumer_cancel_notify": True,
                                      "publisher_confirms": True}
        assert {k: cp[k] for k in props} == props
        assert c["user_provided_name"] == name
        other = find(conns, lambda p: p.get("probe") == name)
        assert "user_provided_name" not in other  # absent, as in RabbitMQ
        one = ok(server, "GET", "connections/" + q(c["name"]))
        assert one["client_properties"] == cp and one["user_provided_name"] == name
        in_vhost = ok(server, "GET", "vhosts/%2F/connections")
        assert find(in_vhost, lambda p: p.get("connection_name") == name)["client_properties"] == cp
        status, _, _ = api(server, "GET", "vhosts/no-such-vhost/connections")
        assert status == 404
    finally:
        wutil.close_quietly(named)
        wutil.close_quietly(unnamed)


# --------------------------------------------------------------------------
# health

def test_aliveness_test(server):
    assert ok(server, "GET", "aliveness-test/%2F") == {"status": "ok"}
    status, _, _ = api(server, "GET", "aliveness-test/no-such-vhost")
    assert status == 404


def test_alarms_ok(server):
    assert ok(server, "GET", "health/checks/alarms") == {"status": "ok"}


def test_nodes(server):
    nodes = ok(server, "GET", "nodes")
    assert len(nodes) == 1 and nodes[0]["running"] is True and nodes[0]["disk_free_alarm"] is False
    assert nodes[0]["name"] == ok(server, "GET", "overview")["node"]
    assert ok(server, "GET", "nodes/" + q(nodes[0]["name"]))["name"] == nodes[0]["name"]


@pytest.mark.needs_own_server
def test_alarms_failed_while_disk_alarm_is_on(server_factory):
    srv = server_factory(extra_args=["--disk-free-limit", "1000000000GB"])  # 10^18 bytes

    def failed():
        status, body, _ = api(srv, "GET", "health/checks/alarms")
        return status == 503 and body["status"] == "failed" and body["reason"]

    wutil.wait_until(failed, timeout=10, what="disk alarm reported")
    assert ok(srv, "GET", "nodes")[0]["disk_free_alarm"] is True


# --------------------------------------------------------------------------
# rabbitmqadmin (Debian's rabbitmq-server ships it)

RABBITMQADMIN = shutil.which("rabbitmqadmin")


def test_rabbitmqadmin(server, uniq):
    if RABBITMQADMIN is None:
        pytest.fail("rabbitmqadmin is not installed; run scripts/install-test-deps.sh (Debian's rabbitmq-server)",
                    pytrace=False)
    name = uniq("q")

    def admin(*args):
        cmd = [RABBITMQADMIN, "-H", server.host, "-P", str(server.management_port), "-u", server.user,
               "-p", server.password] + list(args)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, "%s: %s %s" % (args, out.stdout, out.stderr)
        return out.stdout

    admin("declare", "queue", "name=" + name, "durable=false")
    assert name in admin("list", "queues")
    rows = json.loads(admin("-f", "raw_json", "list", "queues", "name", "messages", "message_stats.publish_details.rate"))
    assert [r for r in rows if r["name"] == name][0]["message_stats"]["publish_details"]["rate"] == 0
    admin("publish", "exchange=amq.default", "routing_key=" + name, "payload=from-admin")
    assert "from-admin" in admin("get", "queue=" + name, "ackmode=ack_requeue_false")
    assert "amq.topic" in admin("list", "exchanges")
    assert server.user in admin("-f", "raw_json", "show", "overview") or "Warren" in admin("-f", "raw_json", "show", "overview")
    assert "/" in admin("list", "vhosts")
    admin("list", "bindings")
    admin("list", "connections")
    admin("list", "channels")
    admin("list", "consumers")
    assert server.user in admin("list", "users")
    ex = uniq("ex")
    admin("declare", "exchange", "name=" + ex, "type=direct")
    admin("declare", "binding", "source=" + ex, "destination=" + name, "routing_key=rk")
    assert ex in admin("list", "bindings")
    admin("delete", "exchange", "name=" + ex)
    admin("purge", "queue", "name=" + name)
    admin("delete", "queue", "name=" + name)
    assert name not in admin("list", "queues")


@pytest.mark.needs_own_server
def test_sigterm_stops_promptly_with_an_idle_http_keepalive_connection(own_server):
    import http.client
    import time
    conn = http.client.HTTPConnection(own_server.host, own_server.management_port, timeout=10)
    token = base64.b64encode(("%s:%s" % (own_server.user, own_server.password)).encode()).decode()
    conn.request("GET", "/api/overview", headers={"Authorization": "Basic " + token})
    resp = conn.getresponse()
    assert resp.status == 200
    resp.read()  # the connection stays open (keep-alive)
    start = time.monotonic()
    assert own_server.stop(grace=8) == 0
    assert time.monotonic() - start < 4
    conn.close()
    assert "management HTTP API listening on" in own_server.log_text()


# --------------------------------------------------------------------------
# users, vhosts, permissions (administrators only)

@pytest.mark.needs_own_server
def test_users_vhosts_permissions_administration(own_server, uniq):
    srv = own_server
    ok(srv, "PUT", "vhosts/adm-v", {})
    status, _, _ = api(srv, "PUT", "vhosts/adm-v", {})
    assert status == 204
    assert "adm-v" in [v["name"] for v in ok(srv, "GET", "vhosts")]

    status, _, _ = api(srv, "PUT", "users/bob", {"password": "bobpw", "tags": "management"})
    assert status == 201
    bob = ok(srv, "GET", "users/bob")
    assert bob["name"] == "bob" and bob["tags"] == ["management"] and bob["password_hash"]
    assert "bob" in [u["name"] for u in ok(srv, "GET", "users")]

    status, _, _ = api(srv, "PUT", "permissions/adm-v/bob", {"configure": ".*", "write": ".*", "read": ".*"})
    assert status == 201
    perm = ok(srv, "GET", "permissions/adm-v/bob")
    assert perm == {"user": "bob", "vhost": "adm-v", "configure": ".*", "write": ".*", "read": ".*"}
    assert perm in ok(srv, "GET", "permissions")
    assert perm in ok(srv, "GET", "users/bob/permissions")
    assert perm in ok(srv, "GET", "vhosts/adm-v/permissions")
    status, body, _ = api(srv, "PUT", "permissions/adm-v/bob", {"configure": "(", "write": "", "read": ""})
    assert status == 400
    for path in ("permissions/adm-v/nobody", "permissions/no-vhost/bob"):  # RabbitMQ's answer
        status, body, _ = api(srv, "PUT", path, {"configure": ".*", "write": ".*", "read": ".*"})
        assert status == 400 and body == {"error": "bad_request", "reason": "vhost_or_user_not_found"}, path

    # bob can log in to the API and work in his vhost, but not administer
    assert ok(srv, "GET", "whoami", user="bob", password="bobpw")["name"] == "bob"
    ok(srv, "PUT", "queues/adm-v/bq", {}, user="bob", password="bobpw")
    status, body, _ = api(srv, "GET", "users", user="bob", password="bobpw")
    assert status == 401 and body["reason"] == "Not administrator user"
    status, _, _ = api(srv, "PUT", "vhosts/bobs", {}, user="bob", password="bobpw")
    assert status == 401

    # password change and tags update
    status, _, _ = api(srv, "PUT", "users/bob", {"password": "newpw", "tags": ""})
    assert status == 204
    status, body, _ = api(srv, "GET", "whoami", user="bob", password="newpw")
    assert status == 401 and body["reason"] == "Not management user"
    status, _, _ = api(srv, "GET", "whoami", user="bob", password="bobpw")
    assert status == 401

    status, _, _ = api(srv, "DELETE", "permissions/adm-v/bob")
    assert status == 204
    status, _, _ = api(srv, "GET", "permissions/adm-v/bob")
    assert status == 404
    status, _, _ = api(srv, "DELETE", "users/bob")
    assert status == 204
    status, _, _ = api(srv, "GET", "users/bob")
    assert status == 404
    status, _, _ = api(srv, "DELETE", "vhosts/adm-v")
    assert status == 204
    status, _, _ = api(srv, "GET", "vhosts/adm-v")
    assert status == 404
    status, _, _ = api(srv, "DELETE", "vhosts/adm-v")
    assert status == 404
