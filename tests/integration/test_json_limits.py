"""Arguments and headers in management API bodies: nesting is limited to the AMQP codec's 64
levels (what is accepted is what the store can decode at the next start) and JSON is parsed
without recursion, so a body nested 100,000 deep is a 400, not a crashed broker thread."""
import pytest

import wutil
from test_management_api import api, ok

pytestmark = pytest.mark.needs_own_server

DEEP = 100000
LIMIT = 64  # amqp::kMaxFieldNesting: the arguments table itself is level 1


def nested(levels):
    """A JSON object text `levels` objects deep."""
    return '{"k":' * levels + "1" + "}" * levels


def raw(text):
    return text.encode()


def endpoints(levels):
    """(method, path, body) for every endpoint that takes arguments or headers."""
    t = nested(levels)
    suffix = str(levels)
    definitions = ('{"queues":[{"name":"dq%s","vhost":"/","durable":true,"auto_delete":false,'
                   '"arguments":%s}]}' % (suffix, t))
    return [
        ("PUT", "queues/%2F/jq" + suffix, '{"durable":true,"arguments":%s}' % t),
        ("PUT", "exchanges/%2F/jx" + suffix, '{"type":"headers","durable":true,"arguments":%s}' % t),
        ("POST", "bindings/%2F/e/amq.headers/q/bindq", '{"routing_key":"k%s","arguments":%s}' % (suffix, t)),
        ("POST", "exchanges/%2F/amq.default/publish",
         '{"routing_key":"bindq","payload":"x","payload_encoding":"string","properties":{"headers":%s}}' % t),
        ("POST", "definitions", definitions),
    ]


def test_deep_nesting_is_400_and_the_server_lives(own_server):
    ok(own_server, "PUT", "queues/%2F/bindq", {"durable": True})
    for method, path, body in endpoints(DEEP):
        status, reply, _ = api(own_server, method, path, raw_body=raw(body))
        assert status == 400, (path, status, reply)
        assert reply["error"] == "bad_request" and "nested deeper than" in reply["reason"], (path, reply)
        wutil.assert_healthy(own_server)
    # One past the limit, inside an otherwise valid body: refused the same way (by the field-table
    # conversion, or by the parser where the envelope is deepest: definitions).
    for method, path, body in endpoints(LIMIT + 1):
        status, reply, _ = api(own_server, method, path, raw_body=raw(body))
        assert status == 400 and "nested deeper than" in reply["reason"], (path, reply)


def test_nesting_at_the_limit_is_accepted_and_survives_a_restart(own_server):
    ok(own_server, "PUT", "queues/%2F/bindq", {"durable": True})
    for method, path, body in endpoints(LIMIT):
        status, reply, _ = api(own_server, method, path, raw_body=raw(body))
        assert status in (200, 201, 204), (path, status, reply)
    conn = wutil.connect(own_server)
    ch = conn.channel()
    _, props, _ = ch.basic_get("bindq", auto_ack=True)
    assert props is not None and "k" in props.headers
    wutil.close_quietly(conn)
    own_server.restart()
    for name in ("jq64", "dq64"):
        q = ok(own_server, "GET", "queues/%2F/" + name)
        depth, value = 0, q["arguments"]
        while isinstance(value, dict):
            depth, value = depth + 1, value["k"]
        assert depth == LIMIT, name
    assert ok(own_server, "GET", "exchanges/%2F/jx64")["arguments"]
    assert "recovered" in own_server.log_text() and "quarantined" not in own_server.log_text()
