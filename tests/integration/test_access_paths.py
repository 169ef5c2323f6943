"""AMQP and the management API ask the same authorization function (broker/authorize.h): every
case where the two paths used to differ, checked on both. A refusal is channel.close 403 over
AMQP and 401 with the same text over HTTP (RabbitMQ's management API answers 401 too)."""
import pytest

import wutil
from test_management_api import api, ok

pytestmark = pytest.mark.needs_own_server

TENANT = {"user": "tenant", "password": "tenant-pw"}
# May configure anything, write and read only t.*
PERMS = {"configure": ".*", "write": r"^t\.", "read": r"^t\."}


@pytest.fixture
def tenant(own_server):
    ok(own_server, "PUT", "users/tenant", {"password": "tenant-pw", "tags": "management"})
    ok(own_server, "PUT", "permissions/%2F/tenant", PERMS)
    ok(own_server, "PUT", "exchanges/%2F/forbidden.x", {"type": "fanout"})
    conn = wutil.connect(own_server, user="tenant", password="tenant-pw")
    yield own_server, conn
    wutil.close_quietly(conn)


def refusal(name, kind="exchange"):
    return "access to %s '%s' in vhost '/' refused for user 'tenant'" % (kind, name)


def amqp_refused(conn, fn):
    ch = conn.channel()
    with wutil.channel_error(403) as ei:
        fn(ch)
    return ei.value.reply_text[len("ACCESS_REFUSED - "):]


def test_queue_with_dead_letter_exchange_needs_write_on_it_over_both(tenant):
    srv, conn = tenant
    args = {"x-dead-letter-exchange": "forbidden.x"}
    assert amqp_refused(conn, lambda ch: ch.queue_declare("t.q1", arguments=args)) == refusal("forbidden.x")
    status, body, _ = api(srv, "PUT", "queues/%2F/t.q1", {"arguments": args}, **TENANT)
    assert status == 401 and body["reason"] == refusal("forbidden.x"), body
    assert api(srv, "GET", "queues/%2F/t.q1")[0] == 404  # nothing was declared
    # A dead-letter exchange the user may write to is fine on both paths.
    assert api(srv, "PUT", "queues/%2F/t.q2", {"arguments": {"x-dead-letter-exchange": "t.dlx"}}, **TENANT)[0] == 201
    conn.channel().queue_declare("t.q3", arguments={"x-dead-letter-exchange": "t.dlx"})


def test_exchange_with_alternate_exchange_needs_write_on_it_over_both(tenant):
    srv, conn = tenant
    args = {"alternate-exchange": "forbidden.x"}
    assert amqp_refused(conn, lambda ch: ch.exchange_declare("t.x1", "direct", arguments=args)) == \
        refusal("forbidden.x")
    status, body, _ = api(srv, "PUT", "exchanges/%2F/t.x1", {"type": "direct", "arguments": args}, **TENANT)
    assert status == 401 and body["reason"] == refusal("forbidden.x"), body
    assert api(srv, "GET", "exchanges/%2F/t.x1")[0] == 404
    assert api(srv, "PUT", "exchanges/%2F/t.x2",
               {"type": "direct", "arguments": {"alternate-exchange": "t.ae"}}, **TENANT)[0] == 201


def test_http_publish_checks_write_before_the_body(tenant):
    """The API used to look at user_id before the permission; RabbitMQ (and AMQP) refuse first."""
    srv, _ = tenant
    status, body, _ = api(srv, "POST", "exchanges/%2F/amq.default/publish",
                          {"routing_key": "k", "payload": "x", "payload_encoding": "string",
                           "properties": {"user_id": "someone-else"}}, **TENANT)
    assert status == 401 and body["reason"] == refusal("amq.default"), body
    # Refused before the body is read: even a body that is not JSON gets the refusal.
    status, body, _ = api(srv, "POST", "exchanges/%2F/forbidden.x/publish", raw_body=b"{not json", **TENANT)
    assert status == 401 and body["reason"] == refusal("forbidden.x"), body


def test_binding_from_the_default_exchange_is_refused_alike(tenant):
    """HTTP used to check read on "amq.default" first; both now leave it to the vhost."""
    srv, conn = tenant
    conn.channel().queue_declare("t.bq")
    ch = conn.channel()
    with wutil.channel_error(403) as ei:
        ch.queue_bind("t.bq", "", routing_key="k")
    amqp_text = ei.value.reply_text[len("ACCESS_REFUSED - "):]
    status, body, _ = api(srv, "POST", "bindings/%2F/e/amq.default/q/t.bq", {"routing_key": "k"}, **TENANT)
    assert status == 401 and body["reason"] == amqp_text, (body, amqp_text)
