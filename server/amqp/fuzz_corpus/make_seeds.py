#!/usr/bin/python3
"""Writes the committed seed corpora of the libFuzzer targets (server/*/*_fuzz.cc).

Seeds are a few real frames, method payloads, field tables, content headers and JSON documents,
encoded with the system tests' raw AMQP client (tests/integration/amqp_raw.py), so the fuzzers
start from inputs that pass the codecs' outer checks. Re-run after changing a seed:
    /usr/bin/python3 server/amqp/fuzz_corpus/make_seeds.py
"""
import json
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import amqp_raw as a  # noqa: E402

BROKER_CORPUS = os.path.join(REPO, "server", "broker", "fuzz_corpus")
CONFIG_CORPUS = os.path.join(REPO, "server", "config", "fuzz_corpus", "config_parser")

TABLE = {"x-max-length": 10, "x-message-ttl": 60000, "x-dead-letter-exchange": "dlx", "flag": True,
         "nested": {"list": [1, "two", 3.5, None, False], "big": 2 ** 40}, "void": None}
CAPABILITIES = {"capabilities": {"publisher_confirms": True, "consumer_cancel_notify": True},
                "product": "pika", "version": "1.2.0"}
# Every value type, including those amqp_raw.py does not produce (b B s u i f D x T).
ALL_TYPES = (b"\x01bb\xfe" + b"\x01BB\xfe" + b"\x01ss\xff\xfe" + b"\x01uu\xff\xfe"
             + b"\x01ii\x00\x00\x00\x07" + b"\x01ff\x3f\x80\x00\x00" + b"\x01DD\x02\x00\x00\x04\xd2"
             + b"\x01xx\x00\x00\x00\x03\x00\x01\x02" + b"\x01TT\x00\x00\x00\x00\x5f\x5e\x10\x00")
ALL_TYPES = struct.pack("!I", len(ALL_TYPES)) + ALL_TYPES


def props(content_type="application/json", headers=None, delivery_mode=2, priority=5,
          correlation_id="c-1", reply_to="amq.rabbitmq.reply-to", expiration="60000",
          message_id="m-1", timestamp=1700000000, type_="t", user_id="guest", app_id="app"):
    """Raw basic properties with the given fields present (flag order, bit 15 first)."""
    fields = [(15, content_type, "s"), (13, headers, "t"), (12, delivery_mode, "o"), (11, priority, "o"),
              (10, correlation_id, "s"), (9, reply_to, "s"), (8, expiration, "s"), (7, message_id, "s"),
              (6, timestamp, "q"), (5, type_, "s"), (4, user_id, "s"), (3, app_id, "s")]
    flags, body = 0, b""
    for bit, value, kind in fields:
        if value is None:
            continue
        flags |= 1 << bit
        if kind == "s":
            body += a._enc_shortstr(value)
        elif kind == "t":
            body += a.encode_table(value)
        elif kind == "o":
            body += struct.pack("!B", value)
        else:
            body += struct.pack("!Q", value)
    return struct.pack("!H", flags) + body


def methods():
    return {
        "start_ok": a.method_payload("connection.start_ok", CAPABILITIES, "PLAIN", b"\0guest\0guest", "en_US"),
        "tune_ok": a.method_payload("connection.tune_ok", 2047, 131072, 60),
        "open": a.method_payload("connection.open", "/", "", False),
        "close": a.method_payload("connection.close", 320, "CONNECTION_FORCED", 0, 0),
        "channel_open": a.method_payload("channel.open", ""),
        "exchange_declare": a.method_payload("exchange.declare", 0, "ex", "topic", False, True, False,
                                             False, False, {"alternate-exchange": "ae"}),
        "queue_declare": a.method_payload("queue.declare", 0, "q", False, True, False, False, False, TABLE),
        "queue_bind": a.method_payload("queue.bind", 0, "q", "ex", "a.*.#", False, {"x-match": "all"}),
        "consume": a.method_payload("basic.consume", 0, "q", "ctag", False, False, False, False,
                                    {"x-priority": 3}),
        "publish": a.method_payload("basic.publish", 0, "ex", "a.b.c", True, False),
        "qos": a.method_payload("basic.qos", 0, 100, False),
        "ack": a.method_payload("basic.ack", 42, True),
        "nack": a.method_payload("basic.nack", 7, False, True),
        "confirm": a.method_payload("confirm.select", False),
        "tx_commit": a.method_payload("tx.commit"),
        "access_request": a.method_payload("access.request", "/data", False, True, True, True, True),
        "recover_async": a.method_payload("basic.recover_async", True),
        # 0-8's forms of the methods that differ from 0-9-1 (the fuzz target decodes in both).
        "close_0_8": a.method_payload("connection.close", 200, "bye", 0, 0, by_name=a.BY_NAME_0_8),
        "consume_0_8": a.method_payload("basic.consume", 1, "q", "ctag", False, True, False, False,
                                        by_name=a.BY_NAME_0_8),
    }


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def main():
    m = methods()
    for name, payload in m.items():
        write(os.path.join(HERE, "methods"), name, payload)

    header = struct.pack("!HHQ", 60, 0, 5) + props(headers=TABLE)
    stream = (a.frame(a.FRAME_METHOD, 1, m["publish"]) + a.frame(a.FRAME_HEADER, 1, header)
              + a.frame(a.FRAME_BODY, 1, b"hello") + a.frame(a.FRAME_HEARTBEAT, 0, b""))
    write(os.path.join(HERE, "frame_parser"), "publish", b"\x02" + stream)  # first byte: the limit
    write(os.path.join(HERE, "frame_parser"), "handshake", b"\x01" + a.frame(a.FRAME_METHOD, 0, m["start_ok"])
          + a.frame(a.FRAME_METHOD, 0, m["tune_ok"]) + a.frame(a.FRAME_METHOD, 0, m["open"]))
    write(os.path.join(HERE, "frame_parser"), "bad_end", b"\x02" + a.frame(a.FRAME_METHOD, 1, m["ack"], end=0))

    write(os.path.join(HERE, "field_table"), "arguments", a.encode_table(TABLE))
    write(os.path.join(HERE, "field_table"), "capabilities", a.encode_table(CAPABILITIES))
    write(os.path.join(HERE, "field_table"), "all_types", ALL_TYPES)
    write(os.path.join(HERE, "field_table"), "empty", a.encode_table({}))

    write(os.path.join(HERE, "properties"), "full", header)
    write(os.path.join(HERE, "properties"), "persistent", a.content_header(0, flags=0x1000, props=b"\x02"))
    write(os.path.join(HERE, "properties"), "all_types", a.content_header(
        1 << 20, flags=0x2000, props=ALL_TYPES))
    write(os.path.join(HERE, "properties"), "none", a.content_header(0))

    write(os.path.join(BROKER_CORPUS, "field_table_json"), "arguments", json.dumps(TABLE))
    write(os.path.join(BROKER_CORPUS, "field_table_json"), "headers",
          json.dumps({"a": [1, -2, 3.25, "x", {"b": None}], "u": 18446744073709551615, "t": True}))
    definitions = {
        "rabbit_version": "3.10.8",
        "users": [{"name": "admin", "password": "secret", "tags": ["administrator"]},
                  {"name": "app", "password_hash": "uQuCvkRvWw5TY4Y9cwAfvzMdjbNJkv1ah7ugJ7WYpTkpByY4",
                   "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "management"}],
        "vhosts": [{"name": "/"}, {"name": "dev"}],
        "permissions": [{"user": "app", "vhost": "dev", "configure": "^app\\.", "write": ".*", "read": ".*"}],
        "topic_permissions": [{"user": "app", "vhost": "dev", "exchange": "amq.topic", "write": "^a\\.",
                               "read": ".*"}],
        "exchanges": [{"name": "ex", "vhost": "dev", "type": "topic", "durable": True, "auto_delete": False,
                       "internal": False, "arguments": {"alternate-exchange": "ae"}},
                      {"name": "ae", "vhost": "dev", "type": "fanout", "durable": True, "auto_delete": False,
                       "internal": False, "arguments": {}}],
        "queues": [{"name": "app.q", "vhost": "dev", "durable": True, "auto_delete": False,
                    "arguments": {"x-max-length": 100, "x-queue-type": "classic"}}],
        "bindings": [{"source": "ex", "vhost": "dev", "destination": "app.q", "destination_type": "queue",
                      "routing_key": "a.#", "arguments": {}},
                     {"source": "ex", "vhost": "dev", "destination": "ae", "destination_type": "exchange",
                      "routing_key": "b", "arguments": {}}],
        "policies": [],
    }
    write(os.path.join(BROKER_CORPUS, "definitions"), "full", json.dumps(definitions, indent=1))
    write(os.path.join(BROKER_CORPUS, "definitions"), "minimal", '{"vhosts": [{"name": "/"}]}')

    with open(os.path.join(REPO, "deploy", "warren.conf")) as f:
        example = f.read()
    write(CONFIG_CORPUS, "example_commented", example)
    write(CONFIG_CORPUS, "example_set", "".join(
        line[2:] + "\n" for line in example.splitlines() if re.match(r"# [A-Za-z0-9_.-]+ = ", line)
        and not line.startswith("# vm_memory_high_watermark.absolute") and not line.startswith("# loopback_users = ")))
    write(CONFIG_CORPUS, "rabbitmq", "listeners.tcp.default = 127.0.0.1:5673\r\nloopback_users.guest = false\n"
          "vm_memory_high_watermark.absolute = 1024MiB\nconsumer_timeout = 1800000  # 30 min\n"
          "cluster_formation.peer_discovery_backend = classic_config\nheartbeat = 30\nheartbeat = 20\n")
    write(CONFIG_CORPUS, "refused", "listeners.ssl.default = 5671\nssl_options.certfile = /etc/cert.pem\n")


if __name__ == "__main__":
    main()
