"""Permission regexes and name limits (issue 8, finding 5): patterns are matched by RE2, in time
linear in the name and without recursion, so no pattern or name can stall or crash the broker;
PCRE-only syntax is refused when set; {username}/{vhost} are substituted regex-escaped; names and
keys longer than a short string (255 bytes) are refused on every path, HTTP and definitions
import included (RabbitMQ 3.10.8 refuses only the over-long queue name, with this text)."""
import time

import pika.exceptions as pexc
import pytest

import wutil
from test_management_api import api, ok, q

pytestmark = pytest.mark.needs_own_server

CATASTROPHIC = r"^([a-z0-9]+[._-]?)+$"  # exponential for a backtracking matcher
SLOW_NAME = "a" * 40 + "!"


def add_user(srv, name, password, configure=".*", write=".*", read=".*", vhost="/"):
    ok(srv, "PUT", "users/" + q(name), {"password": password, "tags": "management"})
    ok(srv, "PUT", "permissions/%s/%s" % (q(vhost), q(name)),
       {"configure": configure, "write": write, "read": read})


@pytest.mark.timeout(60)
def test_catastrophic_permission_regex_answers_promptly_over_amqp(server_factory):
    srv = server_factory()
    add_user(srv, "r", "r-pw", configure=CATASTROPHIC, read=CATASTROPHIC)
    conn = wutil.connect(srv, user="r", password="r-pw")
    try:
        started = time.monotonic()
        ch = conn.channel()
        with pytest.raises(pexc.ChannelClosedByBroker) as ei:
            ch.queue_declare(SLOW_NAME)
        assert ei.value.reply_code == 403
        assert "access to queue '%s' in vhost '/' refused for user 'r'" % SLOW_NAME in ei.value.reply_text
        ch = conn.channel()
        ch.queue_declare("orders.eu-1")  # matches: granted
        with pytest.raises(pexc.ChannelClosedByBroker) as ei:
            ch.basic_get(SLOW_NAME)
        assert ei.value.reply_code == 403
        assert time.monotonic() - started < 30  # a backtracking matcher takes hours here
    finally:
        wutil.close_quietly(conn)
    wutil.assert_healthy(srv)


@pytest.mark.timeout(60)
def test_catastrophic_permission_regex_answers_promptly_over_http(server_factory):
    srv = server_factory()
    add_user(srv, "r", "r-pw", configure=CATASTROPHIC)
    status, body, _ = api(srv, "PUT", "queues/%2F/" + q(SLOW_NAME), {"durable": False},
                          user="r", password="r-pw")
    assert status == 401 and body["reason"] == "access to queue '%s' in vhost '/' refused for user 'r'" % SLOW_NAME
    status, body, _ = api(srv, "PUT", "queues/%2F/orders.eu-1", {"durable": False}, user="r", password="r-pw")
    assert status in (201, 204), body
    wutil.assert_healthy(srv)


@pytest.mark.timeout(60)
def test_huge_names_and_keys_over_http_get_4xx(server_factory):
    srv = server_factory()
    huge = "k" * (100 * 1024)
    # A topic permission makes the broker match the 100 KB key against a regex, which recursed
    # once per character and overflowed the stack.
    ok(srv, "PUT", "topic-permissions/%2F/guest",
       {"exchange": "amq.topic", "write": "^(k|kk)*$", "read": "^(k|kk)*$"})
    ok(srv, "PUT", "queues/%2F/bq", {"durable": False})
    status, body, _ = api(srv, "POST", "bindings/%2F/e/amq.topic/q/bq", {"routing_key": huge})
    assert status == 400, body
    assert body["reason"] == "routing_key should be less than 255 bytes, actually was %d" % len(huge)
    status, body, _ = api(srv, "POST", "exchanges/%2F/amq.topic/publish",
                          {"routing_key": huge, "payload": "x", "payload_encoding": "string", "properties": {}})
    assert status == 400, body
    for path in ("queues/%2F/", "exchanges/%2F/", "vhosts/", "users/"):
        # 10 KB: a 100 KB name would not fit the front door's 32 KiB request head (431, tested there).
        status, _, _ = api(srv, "PUT", path + huge[:10 * 1024], {"type": "direct", "password": "p"})
        assert 400 <= status < 500, (path, status)
    assert api(srv, "GET", "bindings/%2F/e/amq.topic/q/bq")[1] == []
    wutil.assert_healthy(srv)


def test_names_over_255_bytes_are_refused_on_every_path(server_factory):
    srv = server_factory()
    long_name = "n" * 300
    reason = "%s should be less than 255 bytes, actually was 300"
    # RabbitMQ 3.10.8: 400 {"error":"bad_request","reason":"queue should be less than 255 bytes, ..."}.
    for path, body, what in (("queues/%2F/" + long_name, {"durable": False}, "queue"),
                             ("exchanges/%2F/" + long_name, {"type": "direct"}, "exchange"),
                             ("vhosts/" + long_name, None, "vhost"),
                             ("users/" + long_name, {"password": "p", "tags": ""}, "user")):
        status, parsed, _ = api(srv, "PUT", path, body)
        assert status == 400 and parsed == {"error": "bad_request", "reason": reason % what}, (path, status, parsed)
    ok(srv, "PUT", "queues/%2F/bq", {"durable": False})
    status, parsed, _ = api(srv, "POST", "bindings/%2F/e/amq.direct/q/bq", {"routing_key": "k" * 300})
    assert status == 400 and parsed["reason"] == reason % "routing_key"
    fits = "f" * 255
    ok(srv, "PUT", "queues/%2F/" + fits, {"durable": False})
    ok(srv, "POST", "bindings/%2F/e/amq.direct/q/" + fits, {"routing_key": fits})
    # Definitions import: refused whole, nothing applied.
    doc = {"vhosts": [{"name": "new-vhost"}],
           "queues": [{"name": long_name, "vhost": "/", "durable": True, "auto_delete": False, "arguments": {}}]}
    status, parsed, _ = api(srv, "POST", "definitions", doc)
    assert status == 400 and (reason % "name") in parsed["reason"], parsed
    assert api(srv, "GET", "vhosts/new-vhost")[0] == 404
    wutil.assert_healthy(srv)


def test_pattern_that_re2_cannot_run_is_refused_when_set(server_factory):
    srv = server_factory()
    ok(srv, "PUT", "users/p", {"password": "p-pw", "tags": ""})
    for pattern in ("^(?=a)", r"^(a)\1$", "a++"):
        status, parsed, _ = api(srv, "PUT", "permissions/%2F/p", {"configure": pattern, "write": ".*", "read": ".*"})
        assert status == 400, (pattern, status, parsed)
        assert parsed["reason"].startswith("invalid regular expression '%s'" % pattern), parsed
        status, parsed, _ = api(srv, "PUT", "topic-permissions/%2F/p",
                                {"exchange": "amq.topic", "write": pattern, "read": ".*"})
        assert status == 400, (pattern, status, parsed)
    assert api(srv, "GET", "permissions/%2F/p")[0] == 404  # nothing was set
    assert "lookaround" in api(srv, "PUT", "permissions/%2F/p",
                               {"configure": "(?!x)", "write": "", "read": ""})[1]["reason"]


def test_username_in_topic_permission_is_regex_escaped(server_factory):
    srv = server_factory()
    add_user(srv, "a.*", "pw")
    ok(srv, "PUT", "topic-permissions/%2F/" + q("a.*"),
       {"exchange": "amq.topic", "write": r"^{username}\.", "read": ".*"})
    conn = wutil.connect(srv, user="a.*", password="pw")
    try:
        ch = conn.channel()
        ch.basic_publish("amq.topic", "a.*.orders", b"x")  # the user's own prefix
        ch.queue_declare("", exclusive=True)  # a round trip: the publish was accepted
        with pytest.raises(pexc.ChannelClosedByBroker) as ei:
            ch.basic_publish("amq.topic", "ab.orders", b"x")  # "a.*" unescaped would match this
            ch.queue_declare("", exclusive=True)
        assert ei.value.reply_code == 403
        assert "access to topic 'ab.orders' in exchange 'amq.topic'" in ei.value.reply_text
    finally:
        wutil.close_quietly(conn)
