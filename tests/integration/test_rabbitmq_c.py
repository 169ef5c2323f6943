"""Interoperability with rabbitmq-c through the amqp-tools command line programs."""
import shutil
import subprocess

import pika
import pytest

import wutil

TOOLS = ["amqp-declare-queue", "amqp-publish", "amqp-get", "amqp-consume", "amqp-delete-queue"]
missing = [t for t in TOOLS if shutil.which(t) is None]
pytestmark = pytest.mark.skipif(bool(missing), reason="amqp-tools not installed: %s" % missing)


def run(server, tool, *args, input=None, timeout=15):
    cmd = [tool, "--server", server.host, "--port", str(server.port),
           "--username", server.user, "--password", server.password] + list(args)
    return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)


def test_declare_publish_get(server, uniq):
    q = uniq("rc")
    r = run(server, "amqp-declare-queue", "-q", q)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == q
    r = run(server, "amqp-publish", "-r", q, "-b", "hello from rabbitmq-c")
    assert r.returncode == 0, r.stderr
    r = run(server, "amqp-get", "-q", q)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello from rabbitmq-c"
    r = run(server, "amqp-get", "-q", q)  # now empty
    assert r.returncode != 0
    r = run(server, "amqp-delete-queue", "-q", q)
    assert r.returncode == 0, r.stderr


def test_publish_then_consume_one(server, uniq):
    q = uniq("rc")
    assert run(server, "amqp-declare-queue", "-q", q).returncode == 0
    for body in ("first", "second"):
        assert run(server, "amqp-publish", "-r", q, "-b", body).returncode == 0
    r = run(server, "amqp-consume", "-q", q, "-c", "1", "cat")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"first"
    r = run(server, "amqp-consume", "-q", q, "-c", "1", "cat")
    assert r.stdout == b"second"
    r = run(server, "amqp-delete-queue", "-q", q)
    assert r.returncode == 0
    assert r.stdout.decode().strip() == "0"  # messages in the queue when deleted


def test_server_named_queue(server):
    r = run(server, "amqp-declare-queue", "-q", "")
    assert r.returncode == 0, r.stderr
    name = r.stdout.decode().strip()
    assert name.startswith("amq.gen-")
    assert run(server, "amqp-delete-queue", "-q", name).returncode == 0


def test_properties_from_rabbitmq_c_seen_by_pika(server, conn, uniq):
    ch = conn.channel()
    q = uniq("rc")
    ch.queue_declare(q)
    r = run(server, "amqp-publish", "-r", q, "-b", "{}", "-C", "application/json",
            "-E", "utf-8", "-t", "replies", "-H", "x-trace: abc", "-H", "tenant: 42", "-p")
    assert r.returncode == 0, r.stderr
    _m, props, body = wutil.get_one(ch, q, auto_ack=True)
    assert body == b"{}"
    assert props.content_type == "application/json"
    assert props.content_encoding == "utf-8"
    assert props.reply_to == "replies"
    assert props.delivery_mode == 2
    assert props.headers == {"x-trace": "abc", "tenant": "42"}
    ch.queue_delete(q)


def test_pika_publish_rabbitmq_c_get_binary_body(server, conn, uniq):
    ch = conn.channel()
    ch.confirm_delivery()
    q = uniq("rc")
    ch.queue_declare(q)
    body = bytes(range(256)) * 1024  # 256 KiB, several frames
    ch.basic_publish("", q, body, pika.BasicProperties(content_type="application/octet-stream"))
    r = run(server, "amqp-get", "-q", q)
    assert r.returncode == 0, r.stderr
    assert r.stdout == body
    ch.queue_delete(q)


def test_consume_via_exchange_binding(server, conn, uniq):
    x = uniq("rcx")
    ch = conn.channel()
    ch.exchange_declare(x, exchange_type="direct")
    q = uniq("rc")
    ch.queue_declare(q)
    ch.queue_bind(q, x, routing_key="rk")
    assert run(server, "amqp-publish", "-e", x, "-r", "rk", "-b", "via exchange").returncode == 0
    r = run(server, "amqp-consume", "-q", q, "-c", "1", "cat")
    assert r.stdout == b"via exchange"
    ch.queue_delete(q)
    ch.exchange_delete(x)
