"""Quorum queues (x-queue-type=quorum) as RabbitMQ 3.10.8 runs them on one node, and delivery
limits (x-delivery-limit) on quorum and classic queues: declare rules and their texts, the
arguments each type takes, redeclaring with another type, global qos, the delivery limit with and
without a dead-letter exchange, the x-delivery-count header, kill -9 and restart, /api/queues and
definitions. The tests without needs_own_server pass against RabbitMQ too
(WARREN_TEST_EXTERNAL=127.0.0.1:5680 WARREN_TEST_EXTERNAL_MANAGEMENT_PORT=15680)."""
import time
import urllib.error
import urllib.parse
import urllib.request

import pika
import pytest

import wutil
from wutil import channel_error, connection_error

QUORUM = {"x-queue-type": "quorum"}


api = wutil.api


def qpath(name):
    return "queues/%s/%s" % (urllib.parse.quote("/", safe=""), urllib.parse.quote(name, safe=""))


def declare_error(connect, name, **kw):
    """The reply text of a refused queue.declare (on a channel of its own)."""
    ch = connect().channel()
    with channel_error(406) as ei:
        ch.queue_declare(name, **kw)
    return ei.value.reply_text


def label(name):
    return "queue '%s' in vhost '/'" % name


@pytest.fixture
def cleanup(connect):
    """Names of durable queues and exchanges to delete at teardown (they outlive connections)."""
    queues, exchanges = [], []
    yield queues, exchanges
    ch = connect().channel()
    for q in queues:
        ch.queue_delete(q)
    for x in exchanges:
        ch.exchange_delete(x)


def quorum(ch, cleanup, name, **extra):
    ch.queue_declare(name, durable=True, arguments=dict(QUORUM, **extra))
    cleanup[0].append(name)
    return name


# --------------------------------------------------------------------------
# declaring

def test_quorum_queue_must_be_durable_shared_and_named(connect, uniq):
    q = uniq("q")
    assert declare_error(connect, q, arguments=QUORUM) == \
        "PRECONDITION_FAILED - invalid property 'non-durable' for %s" % label(q)
    assert declare_error(connect, q, durable=True, exclusive=True, arguments=QUORUM) == \
        "PRECONDITION_FAILED - invalid property 'exclusive-owner' for %s" % label(q)
    # auto-delete is checked first, then exclusive, then durable
    assert declare_error(connect, q, durable=True, exclusive=True, auto_delete=True, arguments=QUORUM) == \
        "PRECONDITION_FAILED - invalid property 'auto-delete' for %s" % label(q)
    assert declare_error(connect, q, exclusive=True, arguments=QUORUM) == \
        "PRECONDITION_FAILED - invalid property 'exclusive-owner' for %s" % label(q)
    assert declare_error(connect, "", durable=True, arguments=QUORUM) == \
        "PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_quorum_queue"
    assert connect().channel().queue_declare(q, passive=False, durable=True, arguments=QUORUM) is not None
    connect().channel().queue_delete(q)


def test_quorum_queue_refuses_classic_arguments(connect, uniq):
    for key, value in [("x-max-priority", 5), ("x-queue-mode", "lazy"), ("x-queue-version", 2),
                       ("x-queue-master-locator", "min-masters"), ("x-max-age", "1h")]:
        q = uniq("q")
        # refused before the durable property is looked at
        assert declare_error(connect, q, arguments=dict(QUORUM, **{key: value})) == \
            "PRECONDITION_FAILED - invalid arg '%s' for %s of queue type rabbit_quorum_queue" % (key, label(q))
    q = uniq("q")
    assert declare_error(connect, q, durable=True, arguments=dict(QUORUM, **{"x-dead-letter-strategy": "bogus"})) == \
        "PRECONDITION_FAILED - invalid arg 'x-dead-letter-strategy' for %s: invalid_dlx_strategy" % label(q)
    assert declare_error(connect, q, durable=True, arguments={"x-queue-type": "bogus"}) == \
        "PRECONDITION_FAILED - invalid arg 'x-queue-type' for %s: \"unsupported queue type 'bogus'\"" % label(q)
    assert declare_error(connect, q, durable=True, arguments={"x-dead-letter-strategy": "at-most-once"}) == \
        "PRECONDITION_FAILED - invalid arg 'x-dead-letter-strategy' for %s of queue type rabbit_classic_queue" \
        % label(q)


def test_quorum_queue_takes_its_arguments(connect, uniq, cleanup):
    ch = connect().channel()
    for extra in [{"x-message-ttl": 1000}, {"x-expires": 60000}, {"x-max-length": 5},
                  {"x-max-length-bytes": 100}, {"x-overflow": "drop-head"}, {"x-overflow": "reject-publish"},
                  {"x-overflow": "reject-publish-dlx"}, {"x-single-active-consumer": True},
                  {"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "rk"},
                  {"x-delivery-limit": 3}, {"x-max-in-memory-length": 3}, {"x-quorum-initial-group-size": 1},
                  {"x-dead-letter-strategy": "at-least-once"}, {"x-unknown-to-all": "kept"}]:
        quorum(ch, cleanup, uniq("q"), **extra)


def test_redeclare_with_another_type(connect, uniq, cleanup):
    ch = connect().channel()
    q = quorum(ch, cleanup, uniq("q"))
    ok = ch.queue_declare(q, durable=True, arguments=QUORUM)
    assert (ok.method.message_count, ok.method.consumer_count) == (0, 0)
    assert declare_error(connect, q, durable=True, arguments={"x-queue-type": "classic"}) == \
        "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for %s: received 'classic' but current is 'quorum'" \
        % label(q)
    assert declare_error(connect, q, durable=True) == \
        "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for %s: received none but current is the value " \
        "'quorum' of type 'longstr'" % label(q)
    assert declare_error(connect, q, arguments=QUORUM) == \
        "PRECONDITION_FAILED - inequivalent arg 'durable' for %s: received 'false' but current is 'true'" % label(q)
    assert connect().channel().queue_declare(q, passive=True).method.message_count == 0

    c = uniq("classic")
    ch.queue_declare(c, durable=True)
    cleanup[0].append(c)
    ch.queue_declare(c, durable=True, arguments={"x-queue-type": "classic"})  # the same type
    assert declare_error(connect, c, durable=True, arguments=QUORUM) == \
        "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for %s: received the value 'quorum' of type " \
        "'longstr' but current is none" % label(c)


def test_inequivalent_argument_texts(connect, uniq, cleanup):
    ch = connect().channel()
    q = quorum(ch, cleanup, uniq("q"), **{"x-message-ttl": 5})
    assert declare_error(connect, q, durable=True, arguments=dict(QUORUM, **{"x-message-ttl": 6})) == \
        "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for %s: received '6' but current is '5'" % label(q)
    q2 = quorum(ch, cleanup, uniq("q"))
    assert declare_error(connect, q2, durable=True, arguments=dict(QUORUM, **{"x-message-ttl": 5})) == \
        "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for %s: received the value '5' of type " \
        "'signedint' but current is none" % label(q2)


def test_global_qos_is_refused_for_a_quorum_consumer(connect, uniq, cleanup):
    q = quorum(connect().channel(), cleanup, uniq("q"))
    conn = connect()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=10, global_qos=True)
    with connection_error(540) as ei:
        ch.basic_consume(q, lambda *a: None)
        wutil.pump(conn, 1.0)
    assert ei.value.reply_text == "NOT_IMPLEMENTED - %s does not support global qos" % label(q)
    # a global prefetch of 0 (none), a per-consumer prefetch and no_ack consumers are fine
    conn = connect()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=0, global_qos=True)
    ch.basic_qos(prefetch_count=5)
    ch.basic_consume(q, lambda *a: None)
    ch.basic_consume(q, lambda *a: None, auto_ack=True)
    wutil.pump(conn, 0.2)


def test_quorum_reject_publish_dlx_acts_as_drop_head(connect, uniq, cleanup):
    ch = connect().channel()
    ch.confirm_delivery()
    q = quorum(ch, cleanup, uniq("q"), **{"x-max-length": 1, "x-overflow": "reject-publish-dlx"})
    ch.basic_publish("", q, b"1")
    ch.basic_publish("", q, b"2")  # confirmed, not refused
    assert wutil.get_one(ch, q, auto_ack=True)[2] == b"2"


# --------------------------------------------------------------------------
# delivery limits and x-delivery-count

def poll_get(ch, q, timeout):
    """basic.get until a message comes (None after `timeout`): a quorum queue's requeue is not
    instant in RabbitMQ."""
    deadline = time.monotonic() + timeout
    while True:
        got = ch.basic_get(q)
        if got[0] is not None:
            return got
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def dead_letter_setup(ch, uniq, cleanup):
    dlx, dlq = uniq("dlx"), uniq("dlq")
    ch.exchange_declare(dlx, "fanout", durable=True)
    ch.queue_declare(dlq, durable=True)
    ch.queue_bind(dlq, dlx)
    cleanup[0].append(dlq)
    cleanup[1].append(dlx)
    return dlx, dlq


@pytest.mark.parametrize("limit", [0, 1, 2])
def test_delivery_limit_dead_letters_after_limit_plus_one_deliveries(connect, uniq, cleanup, limit):
    ch = connect().channel()
    dlx, dlq = dead_letter_setup(ch, uniq, cleanup)
    q = quorum(ch, cleanup, uniq("q"), **{"x-delivery-limit": limit, "x-dead-letter-exchange": dlx})
    ch.basic_publish("", q, b"poison", pika.BasicProperties(headers={"a": 1}))
    counts = []
    while True:
        got = poll_get(ch, q, timeout=1.0 if counts else 5.0)
        if got is None:
            break
        m, props, _body = got
        assert m.redelivered == bool(counts)
        assert props.headers["a"] == 1
        counts.append(props.headers["x-delivery-count"])
        ch.basic_nack(m.delivery_tag, requeue=True)
    assert counts == list(range(limit + 1))
    m, props, body = wutil.get_one(ch, dlq, auto_ack=True)
    assert body == b"poison"
    assert "x-delivery-count" not in props.headers
    death = props.headers["x-death"][0]
    assert (death["reason"], death["queue"], death["count"], death["exchange"], death["routing-keys"]) == \
        ("delivery_limit", q, 1, "", [q])
    assert props.headers["x-first-death-reason"] == "delivery_limit"
    assert ch.queue_declare(q, passive=True).method.message_count == 0


def test_delivery_limit_without_dead_letter_exchange_drops(connect, uniq, cleanup):
    q = quorum(connect().channel(), cleanup, uniq("q"), **{"x-delivery-limit": 1})
    connect().channel().basic_publish("", q, b"z")
    seen = []
    for attempt in range(3):
        conn = connect()
        ch = conn.channel()
        got = []
        ch.basic_consume(q, lambda c, m, p, b: got.append((m.redelivered, p.headers)))
        if attempt < 2:
            wutil.wait_until(lambda: got, conn=conn, what="a delivery")
        else:
            wutil.pump(conn, 0.5)
        seen.append(got)
        conn.close()  # returns the unacked delivery
    # first delivery: no header (RabbitMQ adds it to consumer deliveries once returned)
    assert seen == [[(False, None)], [(True, {"x-delivery-count": 1})], []]
    assert connect().channel().queue_declare(q, passive=True).method.message_count == 0


def test_reject_without_requeue_is_not_a_delivery_limit_death(connect, uniq, cleanup):
    ch = connect().channel()
    dlx, dlq = dead_letter_setup(ch, uniq, cleanup)
    q = quorum(ch, cleanup, uniq("q"), **{"x-delivery-limit": 5, "x-dead-letter-exchange": dlx})
    ch.basic_publish("", q, b"r")
    m = wutil.get_one(ch, q)[0]
    ch.basic_reject(m.delivery_tag, requeue=False)
    assert wutil.get_one(ch, dlq, auto_ack=True)[1].headers["x-death"][0]["reason"] == "rejected"


@pytest.mark.needs_own_server
@pytest.mark.parametrize("durable", [True, False])
def test_classic_queue_delivery_limit(own_server, uniq, durable):
    """Warren's extension (RabbitMQ 3.10 refuses x-delivery-limit on classic queues)."""
    conn = wutil.connect(own_server)
    ch = conn.channel()
    q = uniq("classic")
    ch.queue_declare(q, durable=durable, arguments={"x-delivery-limit": 1})
    ch.basic_publish("", q, b"c", pika.BasicProperties(delivery_mode=2))
    counts = []
    while True:
        got = poll_get(ch, q, timeout=1.0 if counts else 5.0)
        if got is None:
            break
        counts.append(got[1].headers["x-delivery-count"])
        ch.basic_nack(got[0].delivery_tag, requeue=True)
    assert counts == [0, 1]
    # a classic queue without a limit sends the properties untouched
    plain = uniq("plain")
    ch.queue_declare(plain)
    ch.basic_publish("", plain, b"p")
    m, props, _ = wutil.get_one(ch, plain)
    ch.basic_nack(m.delivery_tag, requeue=True)
    m, props, _ = wutil.get_one(ch, plain)
    assert m.redelivered and props.headers is None
    conn.close()


@pytest.mark.needs_own_server
def test_delivery_counts_survive_kill9(own_server, uniq):
    dlx, dlq, q = uniq("dlx"), uniq("dlq"), uniq("q")

    def setup():
        conn = wutil.connect(own_server)
        return conn, conn.channel()

    conn, ch = setup()
    ch.exchange_declare(dlx, "fanout", durable=True)
    ch.queue_declare(dlq, durable=True)
    ch.queue_bind(dlq, dlx)
    ch.queue_declare(q, durable=True, arguments=dict(QUORUM, **{"x-delivery-limit": 2, "x-dead-letter-exchange": dlx}))
    ch.confirm_delivery()
    ch.basic_publish("", q, b"survivor", pika.BasicProperties(delivery_mode=2))
    m, props, _ = wutil.get_one(ch, q)
    assert props.headers["x-delivery-count"] == 0
    time.sleep(0.3)  # the delivery's state reaches the store with the turn's batch
    own_server.kill9()
    own_server.restart()

    conn, ch = setup()
    m, props, _ = wutil.get_one(ch, q)
    assert m.redelivered and props.headers["x-delivery-count"] == 1
    ch.basic_nack(m.delivery_tag, requeue=True)
    m, props, _ = wutil.get_one(ch, q)
    assert props.headers["x-delivery-count"] == 2
    time.sleep(0.3)
    own_server.kill9()
    own_server.restart()

    # The third delivery was interrupted by the crash: past the limit, dead-lettered.
    conn, ch = setup()
    assert ch.basic_get(q)[0] is None
    m, props, body = wutil.get_one(ch, dlq, auto_ack=True)
    assert body == b"survivor" and props.headers["x-death"][0]["reason"] == "delivery_limit"
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    conn.close()


# --------------------------------------------------------------------------
# management API and definitions

def test_queue_type_in_api_queues(server, connect, uniq, cleanup):
    ch = connect().channel()
    q = quorum(ch, cleanup, uniq("q"), **{"x-delivery-limit": 3})
    c = uniq("classic")
    ch.queue_declare(c, exclusive=True)
    status, info = api(server, "GET", qpath(q))
    assert status == 200, info
    assert info["type"] == "quorum" and info["durable"] is True
    assert info["arguments"] == {"x-queue-type": "quorum", "x-delivery-limit": 3}
    assert info["members"] == [info["leader"]]
    status, info = api(server, "GET", qpath(c))
    assert status == 200 and info["type"] == "classic"
    status, listing = api(server, "GET", "queues/%2F")
    types = {x["name"]: x["type"] for x in listing}
    assert types[q] == "quorum" and types[c] == "classic"


def test_management_put_refuses_a_transient_quorum_queue(server, uniq):
    q = uniq("q")
    status, _ = api(server, "PUT", qpath(q), {"durable": False, "arguments": QUORUM})
    assert status == 400
    assert api(server, "GET", qpath(q))[0] == 404


@pytest.mark.needs_own_server
def test_quorum_queues_in_definitions_and_recovery(server_factory, uniq):
    a = server_factory()
    q = uniq("q")
    conn = wutil.connect(a)
    conn.channel().queue_declare(q, durable=True, arguments=dict(QUORUM, **{"x-delivery-limit": 4}))
    conn.close()
    status, doc = api(a, "GET", "definitions")
    assert status == 200
    exported = [x for x in doc["queues"] if x["name"] == q]
    # RabbitMQ 3.10 exports the type in the arguments only
    assert exported == [{"name": q, "vhost": "/", "durable": True, "auto_delete": False,
                         "arguments": {"x-queue-type": "quorum", "x-delivery-limit": 4}}]
    a.restart(kill=True)
    assert api(a, "GET", qpath(q))[1]["type"] == "quorum"
    conn = wutil.connect(a)
    with channel_error(406):
        conn.channel().queue_declare(q, durable=True)

    b = server_factory()
    status, _ = api(b, "POST", "definitions", {"queues": exported})
    assert status in (200, 201, 204)
    status, info = api(b, "GET", qpath(q))
    assert info["type"] == "quorum" and info["arguments"]["x-delivery-limit"] == 4
    bad = [dict(exported[0], name=uniq("transient"), durable=False)]
    status, reply = api(b, "POST", "definitions", {"queues": bad})
    assert status == 400 and "invalid property 'non-durable'" in reply["reason"]
