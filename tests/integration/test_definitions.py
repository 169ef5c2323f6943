"""Definitions export/import (GET/POST /api/definitions, RabbitMQ's format) and --load-definitions.

fixtures/rabbitmq_definitions.json was exported from RabbitMQ 3.10.8 (GET /api/definitions) after
creating: user defs-user (password "defs-secret", tag management), vhost defs-vh, permissions for
defs-user and guest there, durable exchanges orders.direct (direct) and events.topic (topic), durable
queues orders.q (x-message-ttl 60000) and events.q, and the bindings
orders.direct -> events.topic ("order.created"), orders.direct -> orders.q ("new", {x-note: first}),
events.topic -> events.q ("order.*", {x-level: 2}).
"""
import json
import os

import pika
import pytest

import wutil

pytestmark = pytest.mark.needs_own_server

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "rabbitmq_definitions.json")
SECTIONS = ("users", "vhosts", "permissions", "queues", "exchanges", "bindings")


def load_fixture():
    with open(FIXTURE) as f:
        return json.load(f)


api = wutil.api


def normalized(defs):
    """The sections that matter, in a comparable form (order-independent)."""
    out = {}
    for section in SECTIONS:
        entries = []
        for e in defs.get(section, []):
            e = dict(e)
            if section == "users":
                e = {"name": e["name"], "password_hash": e["password_hash"],
                     "tags": sorted(e["tags"].split(",") if isinstance(e["tags"], str) else e["tags"])}
                e["tags"] = [t for t in e["tags"] if t]
            elif section == "vhosts":
                e = {"name": e["name"]}
            entries.append(json.dumps(e, sort_keys=True))
        out[section] = sorted(entries)
    return out


def import_fixture(srv):
    status, body = api(srv, "POST", "definitions", load_fixture())
    assert status in (201, 204), body


def test_import_rabbitmq_export(server_factory):
    srv = server_factory()
    import_fixture(srv)

    status, vhosts = api(srv, "GET", "vhosts")
    assert "defs-vh" in [v["name"] for v in vhosts]
    status, user = api(srv, "GET", "users/defs-user")
    assert status == 200 and user["tags"] == ["management"]
    status, perm = api(srv, "GET", "permissions/defs-vh/defs-user")
    assert status == 200 and (perm["configure"], perm["write"], perm["read"]) == (".*", ".*", ".*")
    status, ex = api(srv, "GET", "exchanges/defs-vh/orders.direct")
    assert status == 200 and ex["type"] == "direct" and ex["durable"] is True
    status, ex = api(srv, "GET", "exchanges/defs-vh/events.topic")
    assert status == 200 and ex["type"] == "topic"
    status, q = api(srv, "GET", "queues/defs-vh/orders.q")
    assert status == 200 and q["durable"] is True and q["arguments"] == {"x-message-ttl": 60000}
    status, bindings = api(srv, "GET", "bindings/defs-vh")
    got = {(b["source"], b["destination"], b["destination_type"], b["routing_key"], json.dumps(b["arguments"], sort_keys=True))
           for b in bindings if b["source"]}
    assert got == {("orders.direct", "events.topic", "exchange", "order.created", "{}"),
                   ("orders.direct", "orders.q", "queue", "new", '{"x-note": "first"}'),
                   ("events.topic", "events.q", "queue", "order.*", '{"x-level": 2}')}

    # The user logs in over AMQP with the password RabbitMQ hashed, and the bindings route.
    conn = wutil.connect(srv, user="defs-user", password="defs-secret", virtual_host="defs-vh")
    try:
        ch = conn.channel()
        ch.basic_publish("orders.direct", "new", b"to-orders")
        ch.basic_publish("orders.direct", "order.created", b"to-events")  # via events.topic
        assert wutil.get_one(ch, "orders.q", auto_ack=True)[2] == b"to-orders"
        assert wutil.get_one(ch, "events.q", auto_ack=True)[2] == b"to-events"
    finally:
        wutil.close_quietly(conn)
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        wutil.connect(srv, user="defs-user", password="wrong", virtual_host="defs-vh")

    # Importing the same document again is fine (idempotent).
    import_fixture(srv)


def test_export_reimport_and_restart(server_factory):
    first = server_factory()
    import_fixture(first)
    status, exported = api(first, "GET", "definitions")
    assert status == 200
    for key in ("rabbit_version", "rabbitmq_version", "product_name", "topic_permissions", "parameters",
                "global_parameters", "policies"):
        assert key in exported
    user = [u for u in exported["users"] if u["name"] == "defs-user"][0]
    assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    fixture_user = [u for u in load_fixture()["users"] if u["name"] == "defs-user"][0]
    assert user["password_hash"] == fixture_user["password_hash"]
    # Transient things and amq.* exchanges are not exported.
    assert not [e for e in exported["exchanges"] if e["name"].startswith("amq.") or not e["name"]]

    # Everything the fixture defined is in the export.
    fixture_norm = normalized(load_fixture())
    export_norm = normalized(exported)
    for section in ("queues", "exchanges", "bindings", "permissions"):
        assert set(fixture_norm[section]) <= set(export_norm[section]), section
    assert {json.loads(u)["name"] for u in fixture_norm["users"]} <= {json.loads(u)["name"] for u in export_norm["users"]}

    second = server_factory()
    status, body = api(second, "POST", "definitions", exported)
    assert status in (201, 204), body
    status, again = api(second, "GET", "definitions")
    assert normalized(again) == export_norm

    # A restart keeps the imported durable definitions.
    second.restart()
    status, after = api(second, "GET", "definitions")
    assert normalized(after) == export_norm
    conn = wutil.connect(second, user="defs-user", password="defs-secret", virtual_host="defs-vh")
    try:
        ch = conn.channel()
        ch.basic_publish("orders.direct", "order.created", b"after-restart")
        assert wutil.get_one(ch, "events.q", auto_ack=True)[2] == b"after-restart"
    finally:
        wutil.close_quietly(conn)


def _with_bad_entry(kind):
    defs = load_fixture()
    if kind == "exchange_type":
        defs["exchanges"].append({"name": "bad.x", "vhost": "defs-vh", "type": "no-such-type", "durable": True,
                                  "auto_delete": False, "internal": False, "arguments": {}})
        return defs, "no-such-type"
    if kind == "unknown_vhost":
        defs["queues"].append({"name": "lost.q", "vhost": "no-such-vhost", "durable": True,
                               "auto_delete": False, "arguments": {}})
        return defs, "no-such-vhost"
    if kind == "regex":
        defs["permissions"].append({"user": "defs-user", "vhost": "/", "configure": "(", "write": "", "read": ""})
        return defs, "defs-user"
    if kind == "malformed_binding":
        defs["bindings"].append({"source": "orders.direct", "vhost": "defs-vh", "destination": "orders.q"})
        return defs, "bindings["
    if kind == "unknown_destination":
        defs["bindings"].append({"source": "orders.direct", "vhost": "defs-vh", "destination": "missing.q",
                                 "destination_type": "queue", "routing_key": "k", "arguments": {}})
        return defs, "missing.q"
    if kind == "queue_argument":
        defs["queues"].append({"name": "neg.q", "vhost": "defs-vh", "durable": True, "auto_delete": False,
                               "arguments": {"x-max-length": -1}})
        return defs, "x-max-length"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["exchange_type", "unknown_vhost", "regex", "malformed_binding",
                                  "unknown_destination", "queue_argument"])
def test_bad_entry_changes_nothing(server_factory, kind):
    srv = server_factory()
    status, before = api(srv, "GET", "definitions")
    defs, named = _with_bad_entry(kind)
    status, body = api(srv, "POST", "definitions", defs)
    assert status == 400, body
    assert body["error"] == "bad_request" and named in body["reason"], body
    status, after = api(srv, "GET", "definitions")
    assert normalized(after) == normalized(before)
    status, _ = api(srv, "GET", "vhosts/defs-vh")
    assert status == 404
    status, _ = api(srv, "GET", "users/defs-user")
    assert status == 404


def test_definitions_need_administrator(server_factory):
    srv = server_factory()
    assert api(srv, "PUT", "users/mgmt", {"password": "pw", "tags": "management"})[0] in (201, 204)
    assert api(srv, "GET", "definitions", user="mgmt", password="pw")[0] == 401
    assert api(srv, "POST", "definitions", load_fixture(), user="mgmt", password="pw")[0] == 401
    assert api(srv, "GET", "vhosts/defs-vh")[0] == 404


def test_load_definitions_flag_imports_everything(server_factory, tmp_path):
    path = tmp_path / "defs.json"
    path.write_text(json.dumps(load_fixture()))
    srv = server_factory(extra_args=["--load-definitions", str(path)])
    status, q = api(srv, "GET", "queues/defs-vh/orders.q")
    assert status == 200 and q["arguments"] == {"x-message-ttl": 60000}
    conn = wutil.connect(srv, user="defs-user", password="defs-secret", virtual_host="defs-vh")
    try:
        ch = conn.channel()
        ch.basic_publish("orders.direct", "order.created", b"via-flag")
        assert wutil.get_one(ch, "events.q", auto_ack=True)[2] == b"via-flag"
    finally:
        wutil.close_quietly(conn)
    # Loading it again at the next start is idempotent.
    srv.restart()
    status, exported = api(srv, "GET", "definitions")
    assert len([q for q in exported["queues"] if q["vhost"] == "defs-vh"]) == 2
