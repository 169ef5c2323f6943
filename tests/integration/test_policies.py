"""Policies and operator policies as RabbitMQ 3.10's (/api/policies, /api/operator-policies,
rabbitmqctl set_policy): what they do to new and existing queues and exchanges, precedence over
x-arguments, validation texts, authorization, limits, persistence, definitions, warrenctl.

Tests without `needs_own_server` pass against Debian's RabbitMQ 3.10.8 too:
WARREN_TEST_EXTERNAL=127.0.0.1:5680 WARREN_TEST_EXTERNAL_MANAGEMENT_PORT=15680."""

import time
import urllib.parse

import pika
import pytest

import wutil
from test_management_api import api, ok
from test_warrenctl import ctl, rows


def q(name):
    return urllib.parse.quote(name, safe="")


@pytest.fixture
def policies(server):
    """policies.set(name, pattern, definition, kind="policies", **fields); all cleared at teardown."""
    made = []

    class Policies:
        def set(self, name, pattern, definition, kind="policies", vhost="/", **fields):
            body = dict(pattern=pattern, definition=definition, **fields)
            status, parsed, _ = api(server, "PUT", "%s/%s/%s" % (kind, q(vhost), q(name)), body)
            assert status in (201, 204), (status, parsed)
            made.append((kind, vhost, name))
            return status

        def clear(self, name, kind="policies", vhost="/"):
            ok(server, "DELETE", "%s/%s/%s" % (kind, q(vhost), q(name)))
            made.remove((kind, vhost, name))

    yield Policies()
    for kind, vhost, name in made:
        api(server, "DELETE", "%s/%s/%s" % (kind, q(vhost), q(name)))


def queue_info(server, name, want=None, timeout=15.0):
    """GET /api/queues/%2F/name, waiting until `want(info)` (RabbitMQ reports them with its 5 s stats)."""
    deadline = time.monotonic() + timeout
    while True:
        info = ok(server, "GET", "queues/%2F/" + q(name))
        if want is None or want(info) or time.monotonic() > deadline:
            return info
        time.sleep(0.1)


def publish(ch, queue, n, **props):
    for i in range(n):
        ch.basic_publish("", queue, b"m%d" % i, pika.BasicProperties(**props))


def count_after(ch, queue, expected, timeout=5.0):
    """Waits until the queue holds `expected` messages; returns what it holds."""
    deadline = time.monotonic() + timeout
    while True:
        n = ch.queue_declare(queue, passive=True).method.message_count
        if n == expected or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def test_max_length_applies_to_new_and_existing_queues_and_clearing_removes_it(server, ch, uniq, policies):
    existing, fresh = uniq("pol"), uniq("pol")
    prefix = existing.rsplit("-", 1)[0]
    ch.queue_declare(existing)
    publish(ch, existing, 5)
    assert count_after(ch, existing, 5) == 5
    pname = uniq("p")
    assert policies.set(pname, "^" + prefix, {"max-length": 2}, **{"apply-to": "queues"}) == 201
    assert count_after(ch, existing, 2) == 2  # drop-head at once
    info = queue_info(server, existing, lambda i: i.get("policy") == pname)
    assert info["policy"] == pname
    assert info["operator_policy"] is None
    assert info["effective_policy_definition"] == {"max-length": 2}
    ch.queue_declare(fresh)
    publish(ch, fresh, 4)
    assert count_after(ch, fresh, 2) == 2
    policies.clear(pname)
    assert queue_info(server, existing, lambda i: i.get("policy") is None)["policy"] is None
    publish(ch, existing, 3)
    assert count_after(ch, existing, 5) == 5
    ch.queue_delete(existing)
    ch.queue_delete(fresh)


def test_message_ttl_and_dead_letter_exchange_from_a_policy(server, ch, uniq, policies):
    src, dead = uniq("pol"), uniq("dead")
    ch.queue_declare(dead)
    ch.queue_declare(src)
    policies.set(uniq("p"), "^" + src + "$", {"message-ttl": 100, "dead-letter-exchange": "",
                                             "dead-letter-routing-key": dead})
    queue_info(server, src, lambda i: i.get("policy") is not None)
    publish(ch, src, 3)
    assert count_after(ch, dead, 3) == 3
    assert count_after(ch, src, 0) == 0
    method, props, _ = wutil.get_one(ch, dead, auto_ack=True)
    assert props.headers["x-death"][0]["reason"] == "expired"
    ch.queue_delete(src)
    ch.queue_delete(dead)


def test_x_argument_beats_policy_but_numeric_limits_take_the_smaller(server, ch, uniq, policies):
    # As RabbitMQ 3.10 (rabbit_amqqueue_process): the argument wins for dead-letter-exchange,
    # the smaller value for max-length.
    a, b, dead = uniq("pol"), uniq("pol"), uniq("dead")
    prefix = a.rsplit("-", 1)[0]
    ch.queue_declare(dead)
    policies.set(uniq("p"), "^" + prefix, {"max-length": 3, "dead-letter-exchange": "nowhere"},
                 **{"apply-to": "queues"})
    ch.queue_declare(a, arguments={"x-max-length": 10, "x-dead-letter-exchange": "",
                                   "x-dead-letter-routing-key": dead})
    ch.queue_declare(b, arguments={"x-max-length": 1})
    queue_info(server, a, lambda i: i.get("policy") is not None)
    queue_info(server, b, lambda i: i.get("policy") is not None)
    publish(ch, a, 5)
    publish(ch, b, 5)
    assert count_after(ch, a, 3) == 3     # min(10, 3)
    assert count_after(ch, b, 1) == 1     # min(1, 3)
    assert count_after(ch, dead, 2) == 2  # the declared dead-letter target, not the policy's
    for name in (a, b, dead):
        ch.queue_delete(name)


def test_operator_policy_smaller_value_wins(server, ch, uniq, policies):
    name = uniq("pol")
    policies.set(uniq("p"), "^" + name + "$", {"max-length": 5, "message-ttl": 600000}, **{"apply-to": "queues"})
    op = uniq("op")
    policies.set(op, "^" + name + "$", {"max-length": 2, "message-ttl": 900000}, kind="operator-policies",
                 **{"apply-to": "queues"})
    ch.queue_declare(name, arguments={"x-max-length": 20})
    info = queue_info(server, name, lambda i: i.get("operator_policy") == op)
    assert info["operator_policy"] == op
    assert info["effective_policy_definition"] == {"max-length": 2, "message-ttl": 600000}
    publish(ch, name, 6)
    assert count_after(ch, name, 2) == 2
    ch.queue_delete(name)


def test_highest_priority_applies_and_apply_to_selects_the_kind(server, ch, uniq, policies):
    name = uniq("pol")
    low, high, exchanges_only = uniq("low"), uniq("high"), uniq("ex")
    policies.set(low, "^" + name, {"max-length": 1}, priority=1)
    policies.set(high, "^" + name, {"max-length": 4}, priority=7)
    policies.set(exchanges_only, "^" + name, {"max-length": 2}, priority=99, **{"apply-to": "exchanges"})
    ch.queue_declare(name)
    ch.exchange_declare(name, "fanout")
    assert queue_info(server, name, lambda i: i.get("policy") == high)["policy"] == high
    publish(ch, name, 6)
    assert count_after(ch, name, 4) == 4
    ex = ok(server, "GET", "exchanges/%2F/" + q(name))
    assert ex["policy"] == exchanges_only
    ch.queue_delete(name)
    ch.exchange_delete(name)


def test_alternate_exchange_from_a_policy(server, ch, uniq, policies):
    ex, ae, target = uniq("ex"), uniq("ae"), uniq("t")
    ch.exchange_declare(ex, "direct")
    ch.exchange_declare(ae, "fanout")
    ch.queue_declare(target)
    ch.queue_bind(target, ae)
    pname = uniq("p")
    policies.set(pname, "^" + ex + "$", {"alternate-exchange": ae}, **{"apply-to": "exchanges"})
    deadline = time.monotonic() + 5
    while ok(server, "GET", "exchanges/%2F/" + q(ex)).get("policy") != pname and time.monotonic() < deadline:
        time.sleep(0.1)
    ch.basic_publish(ex, "unroutable", b"x")
    assert count_after(ch, target, 1) == 1
    policies.clear(pname)
    ch.basic_publish(ex, "unroutable", b"x")
    time.sleep(0.3)
    assert count_after(ch, target, 1) == 1
    ch.queue_delete(target)
    ch.exchange_delete(ex)
    ch.exchange_delete(ae)


def test_delivery_limit_from_a_policy(server, ch, uniq, policies):
    name = uniq("pol")
    policies.set(uniq("p"), "^" + name + "$", {"delivery-limit": 1}, **{"apply-to": "queues"})
    ch.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    queue_info(server, name, lambda i: i.get("policy") is not None)
    ch.basic_publish("", name, b"x")
    assert count_after(ch, name, 1) == 1
    for _ in range(2):  # limit 1: two deliveries, then the second return drops it
        method, _, _ = wutil.get_one(ch, name)
        ch.basic_nack(method.delivery_tag, requeue=True)
    assert count_after(ch, name, 0) == 0
    ch.queue_delete(name)


def test_a_quorum_queue_takes_no_policy_with_a_classic_only_key(server, ch, uniq, policies):
    # RabbitMQ 3.10's is_policy_applicable: the best match has queue-mode, so the next one applies
    # (RabbitMQ's API then shows no policy at all; Warren shows the one applied).
    name = uniq("pol")
    policies.set(uniq("p"), "^" + name + "$", {"max-length": 2, "queue-mode": "lazy"}, priority=5)
    policies.set(uniq("p"), "^" + name + "$", {"max-length": 3}, priority=1)
    ch.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})
    time.sleep(1)
    publish(ch, name, 5)
    assert count_after(ch, name, 3) == 3
    ch.queue_delete(name)


BAD = [
    ({"pattern": "^x", "definition": {"foo": 1}},
     "Validation failed\n\n[{&lt;&lt;\"foo\"&gt;&gt;,1}] are not recognised policy settings\n"),
    ({"pattern": "^x", "definition": {"message-ttl": "x"}},
     "Validation failed\n\n&lt;&lt;\"x\"&gt;&gt; is not a valid message TTL\n"),
    ({"pattern": "^x", "definition": {"message-ttl": -1}}, "Validation failed\n\n-1 is not a valid message TTL\n"),
    ({"pattern": "^x", "definition": {"max-priority": 5}},
     "Validation failed\n\n[{&lt;&lt;\"max-priority\"&gt;&gt;,5}] are not recognised policy settings\n"),
    ({"pattern": "^x", "definition": {}}, "Validation failed\n\nno policy provided\n"),
    ({"pattern": "^x", "definition": {"expires": 0}}, "Validation failed\n\n0 is not a valid queue expiry\n"),
    ({"pattern": "^x", "definition": {"delivery-limit": -1}},
     "Validation failed\n\n-1 is not a valid delivery limit\n"),
    ({"pattern": "^x", "definition": {"overflow": "bad"}},
     "Validation failed\n\n&lt;&lt;\"bad\"&gt;&gt; is not a valid overflow value\n"),
    ({"pattern": "^x", "definition": {"alternate-exchange": 5}},
     "Validation failed\n\n5 is not a valid alternate exchange name\n"),
    ({"pattern": "^x", "definition": {"message-ttl": 5}, "apply-to": "foo"},
     "Validation failed\n\napply-to 'foo' unrecognised; should be 'queues', 'exchanges' or 'all'\n"),
    ({"pattern": "^x", "definition": {"message-ttl": 5}, "priority": "x"},
     "Validation failed\n\npriority should be a number, actually was &lt;&lt;\"x\"&gt;&gt;\n"),
    ({"pattern": "^x", "definition": {"ha-mode": "all", "ha-sync-batch-size": 0}},
     "Validation failed\n\nha-sync-batch-size takes an integer greater than 0, 0 given\n"),
    ({"pattern": "^x", "definition": {"ha-mode": "all", "ha-promote-on-failure": "x"}},
     "Validation failed\n\nha-promote-on-failure must be \"always\" or \"when-synced\", got &lt;&lt;\"x\"&gt;&gt;\n"),
    ({"definition": {"message-ttl": 5}}, "[{key_missing,pattern}]"),
    ({"pattern": "^x"}, "[{key_missing,definition}]"),
]


@pytest.mark.parametrize("body,reason", BAD)
def test_bad_policies_are_400_with_rabbitmqs_reason(server, uniq, body, reason):
    name = uniq("bad")
    status, parsed, _ = api(server, "PUT", "policies/%2F/" + q(name), body)
    assert (status, parsed) == (400, {"error": "bad_request", "reason": reason})
    assert api(server, "GET", "policies/%2F/" + q(name))[0] == 404


def test_operator_policies_take_only_limits_and_their_reasons_are_not_escaped(server, uniq):
    name = uniq("op")
    status, parsed, _ = api(server, "PUT", "operator-policies/%2F/" + q(name),
                            {"pattern": "^x", "definition": {"overflow": "drop-head"}})
    assert status == 400
    assert parsed["reason"] == ("Validation failed\n\n[{<<\"overflow\">>,<<\"drop-head\">>}] "
                                "are not recognised policy settings\n")


def test_get_list_delete_and_missing(server, uniq, policies):
    name = uniq("p")
    policies.set(name, "^nothing-" + name, {"message-ttl": 5}, priority=3)
    want = {"vhost": "/", "name": name, "pattern": "^nothing-" + name, "apply-to": "all",
            "definition": {"message-ttl": 5}, "priority": 3}
    assert ok(server, "GET", "policies/%2F/" + q(name)) == want
    assert want in ok(server, "GET", "policies")
    assert want in ok(server, "GET", "policies/%2F")
    assert policies.set(name, "^nothing-" + name, {"message-ttl": 6}) == 204
    policies.clear(name)
    assert api(server, "GET", "policies/%2F/" + q(name))[:2] == (404, {"error": "Object Not Found",
                                                                       "reason": "Not Found"})
    assert api(server, "DELETE", "policies/%2F/" + q(name))[0] == 404
    assert api(server, "GET", "policies/no-such-vhost")[0] == 404
    assert api(server, "PUT", "policies/no-such-vhost/x", {"pattern": "x", "definition": {"message-ttl": 1}})[:2] == (
        404, {"error": "not_found", "reason": "vhost_not_found"})


@pytest.mark.needs_own_server
def test_authorization_as_rabbitmq(server_factory):
    srv = server_factory()
    for user, tags in (("mgmt", "management"), ("pm", "policymaker")):
        ok(srv, "PUT", "users/" + user, {"password": "pw", "tags": tags})
        ok(srv, "PUT", "permissions/%2F/" + user, {"configure": ".*", "write": ".*", "read": ".*"})
    ok(srv, "PUT", "policies/%2F/p", {"pattern": "^z", "definition": {"message-ttl": 5}})
    ok(srv, "PUT", "operator-policies/%2F/o", {"pattern": "^z", "definition": {"message-ttl": 5}})
    body = {"pattern": "^z", "definition": {"message-ttl": 6}}
    # management users list them but may not read one or change any
    assert len(ok(srv, "GET", "policies", user="mgmt", password="pw")) == 1
    assert len(ok(srv, "GET", "operator-policies/%2F", user="mgmt", password="pw")) == 1
    refused = (401, {"error": "not_authorised", "reason": "User not authorised to access object"})
    assert api(srv, "GET", "policies/%2F/p", user="mgmt", password="pw")[:2] == refused
    assert api(srv, "PUT", "policies/%2F/p", body, user="mgmt", password="pw")[:2] == refused
    assert api(srv, "DELETE", "policies/%2F/p", user="mgmt", password="pw")[:2] == refused
    # policymakers change policies, not operator policies
    ok(srv, "GET", "policies/%2F/p", user="pm", password="pw")
    ok(srv, "PUT", "policies/%2F/p2", body, user="pm", password="pw")
    ok(srv, "DELETE", "policies/%2F/p2", user="pm", password="pw")
    not_admin = (401, {"error": "not_authorised", "reason": "Not administrator user"})
    assert api(srv, "PUT", "operator-policies/%2F/o", body, user="pm", password="pw")[:2] == not_admin
    assert api(srv, "GET", "operator-policies/%2F/o", user="pm", password="pw")[:2] == not_admin


@pytest.mark.needs_own_server
def test_limits_pattern_length_and_policies_per_vhost(server_factory):
    srv = server_factory()
    ok(srv, "PUT", "policies/%2F/long", {"pattern": "a" * 1024, "definition": {"message-ttl": 5}})
    status, body, _ = api(srv, "PUT", "policies/%2F/longer", {"pattern": "a" * 1025, "definition": {"message-ttl": 5}})
    assert status == 400
    assert "pattern should be at most 1024 bytes, actually was 1025" in body["reason"]
    status, body, _ = api(srv, "PUT", "policies/%2F/re", {"pattern": "(?=a)", "definition": {"message-ttl": 5}})
    assert status == 400 and "pattern should be regular expression but is invalid" in body["reason"]
    for i in range(999):
        ok(srv, "PUT", "policies/%2F/n" + str(i), {"pattern": "^n%d$" % i, "definition": {"expires": 1000 + i}})
    status, body, _ = api(srv, "PUT", "policies/%2F/one-more", {"pattern": "x", "definition": {"expires": 5}})
    assert status == 400 and "has 1000 policies of this kind already" in body["reason"]
    ok(srv, "PUT", "policies/%2F/n5", {"pattern": "^n5$", "definition": {"expires": 5}})  # replacing is fine
    # declaring against 1000 patterns stays quick
    conn = wutil.connect(srv)
    ch = conn.channel()
    start = time.monotonic()
    for i in range(200):
        ch.queue_declare("n%d" % i)
    assert time.monotonic() - start < 10
    assert ok(srv, "GET", "queues/%2F/n7")["policy"] == "n7"
    wutil.close_quietly(conn)


@pytest.mark.needs_own_server
def test_policies_survive_kill9_and_keep_applying(server_factory):
    srv = server_factory()
    ok(srv, "PUT", "policies/%2F/lim", {"pattern": "^keep", "definition": {"max-length": 2}, "priority": 4,
                                        "apply-to": "queues"})
    ok(srv, "PUT", "operator-policies/%2F/cap", {"pattern": "^keep", "definition": {"max-length": 1},
                                                 "apply-to": "queues"})
    conn = wutil.connect(srv)
    conn.channel().queue_declare("keep", durable=True)
    wutil.close_quietly(conn)
    time.sleep(0.3)  # the batch is written at the end of the turn
    srv.restart(kill=True)
    assert ok(srv, "GET", "policies/%2F/lim")["priority"] == 4
    info = ok(srv, "GET", "queues/%2F/keep")
    assert (info["policy"], info["operator_policy"]) == ("lim", "cap")
    conn = wutil.connect(srv)
    ch = conn.channel()
    publish(ch, "keep", 3, delivery_mode=2)
    assert count_after(ch, "keep", 1) == 1
    wutil.close_quietly(conn)
    ok(srv, "DELETE", "policies/%2F/lim")
    time.sleep(0.3)
    srv.restart(kill=True)
    assert api(srv, "GET", "policies/%2F/lim")[0] == 404
    assert ok(srv, "GET", "queues/%2F/keep")["policy"] is None


@pytest.mark.needs_own_server
def test_stream_retention_from_a_policy_applies_to_an_existing_stream(server_factory):
    # Warren's segments are exact (RabbitMQ's follow its chunks), so the counts are Warren's own.
    srv = server_factory()
    conn = wutil.connect(srv)
    ch = conn.channel()
    ch.queue_declare("st", durable=True, arguments={"x-queue-type": "stream", "x-stream-max-segment-size-bytes": 1000,
                                                    "x-max-length-bytes": 100000})
    ch.confirm_delivery()
    for _ in range(100):
        ch.basic_publish("", "st", b"." * 100)  # segments of 10 messages
    assert ch.queue_declare("st", passive=True).method.message_count == 100
    ok(srv, "PUT", "policies/%2F/retain", {"pattern": "^st$", "definition": {"max-length-bytes": 3000},
                                           "apply-to": "queues"})
    assert ok(srv, "GET", "queues/%2F/st")["effective_policy_definition"] == {"max-length-bytes": 3000}
    # The smaller of the argument and the policy: whole segments go until 3000 bytes are left.
    assert ch.queue_declare("st", passive=True).method.message_count == 30
    status, parsed, _ = api(srv, "PUT", "policies/%2F/aged", {"pattern": "^st$", "definition": {"max-age": "1x"}})
    assert (status, parsed["reason"]) == (400, "Validation failed\n\n&lt;&lt;\"1x\"&gt;&gt; is not a valid max age\n")
    wutil.close_quietly(conn)


@pytest.mark.needs_own_server
def test_definitions_round_trip(server_factory):
    first = server_factory()
    ok(first, "PUT", "policies/%2F/exported", {"pattern": "^e", "definition": {"message-ttl": 7}, "priority": 2,
                                               "apply-to": "queues"})
    ok(first, "PUT", "operator-policies/%2F/not-exported", {"pattern": "^e", "definition": {"max-length": 7}})
    exported = ok(first, "GET", "definitions")
    assert exported["policies"] == [{"vhost": "/", "name": "exported", "pattern": "^e", "apply-to": "queues",
                                     "definition": {"message-ttl": 7}, "priority": 2}]
    second = server_factory()
    ok(second, "POST", "definitions", exported)
    assert ok(second, "GET", "policies") == exported["policies"]
    bad = dict(exported, policies=[{"vhost": "/", "name": "b", "pattern": "x", "definition": {"nope": 1}}])
    status, body, _ = api(second, "POST", "definitions", bad)
    assert status == 400 and "are not recognised policy settings" in body["reason"]


@pytest.mark.needs_own_server
def test_warrenctl_policy_verbs(server_factory):
    srv = server_factory()
    out = ctl(srv, "set_policy", "--priority", "3", "--apply-to", "queues", "ttl", "^t", '{"message-ttl": 5}')
    assert out.splitlines()[0] == ('Setting policy "ttl" for pattern "^t" to "{"message-ttl": 5}" with priority "3" '
                                   'for vhost "/" ...')
    assert rows(srv, "list_policies") == [{"vhost": "/", "name": "ttl", "pattern": "^t", "apply-to": "queues",
                                           "definition": '{"message-ttl":5}', "priority": 3}]
    code, _, err = ctl(srv, "set_policy", "bad", "^t", '{"message-ttl": -1}', expect=65)
    assert "-1 is not a valid message TTL" in err
    code, _, err = ctl(srv, "set_policy", "bad", "^t", '{"foo": 1}', expect=65)
    assert '[{<<"foo">>,1}] are not recognised policy settings' in err
    ctl(srv, "set_operator_policy", "cap", "^t", '{"max-length": 3}')
    assert rows(srv, "list_operator_policies")[0]["apply-to"] == "queues"  # rabbitmqctl's default there
    ctl(srv, "clear_operator_policy", "cap")
    assert rows(srv, "list_operator_policies") == []
    ctl(srv, "clear_policy", "ttl")
    assert rows(srv, "list_policies") == []
    code, _, err = ctl(srv, "clear_policy", "ttl", expect=65)
    assert "Parameter does not exist" in err
