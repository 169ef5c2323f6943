"""Crash test: the server is killed with SIGKILL at random moments while a publisher (with
confirms) and a consumer (acking most messages) run against it, and restarted; afterwards every
confirmed message that was not acked is present exactly once, in order, unacked deliveries come
back redelivered, and acked messages never come back unless redelivered (an ack that was not yet
durable when the server died)."""
import random
import threading
import time

import pika
import pytest

import wutil

pytestmark = [pytest.mark.needs_own_server, pytest.mark.timeout(240)]

ROUNDS = 6
QUEUE = "crash-test"


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.confirmed = set()
        self.published = set()
        self.acked = set()
        self.unacked_delivered = set()


def publisher(srv, ledger, start, stop):
    seq = start
    try:
        conn = wutil.connect(srv)
        ch = conn.channel()
        ch.confirm_delivery()
        while not stop.is_set():
            body = b"%012d" % seq
            with ledger.lock:
                ledger.published.add(seq)
            ch.basic_publish("", QUEUE, body, pika.BasicProperties(delivery_mode=2))
            with ledger.lock:  # basic_publish returned: the broker confirmed it
                ledger.confirmed.add(seq)
            seq += 1
    except Exception:
        pass  # the server was killed under us
    return seq


def consumer(srv, ledger, stop):
    try:
        conn = wutil.connect(srv)
        ch = conn.channel()
        ch.basic_qos(prefetch_count=0)  # the unacked fifth must not block the window
        for method, _props, body in ch.consume(QUEUE, inactivity_timeout=0.05):
            if stop.is_set():
                break
            if method is None:
                continue
            seq = int(body)
            if seq % 5 == 0:
                with ledger.lock:
                    ledger.unacked_delivered.add(seq)
                continue  # never acked: must come back redelivered
            ch.basic_ack(method.delivery_tag)
            with ledger.lock:
                ledger.acked.add(seq)
    except Exception:
        pass


def test_confirmed_messages_survive_random_kill9(own_server):
    srv = own_server
    conn = wutil.connect(srv)
    conn.channel().queue_declare(QUEUE, durable=True)
    conn.close()
    ledger = Ledger()
    rng = random.Random(20261124)
    next_seq = 1
    for _ in range(ROUNDS):
        stop = threading.Event()
        result = {}
        p = threading.Thread(target=lambda: result.setdefault("seq", publisher(srv, ledger, next_seq, stop)))
        c = threading.Thread(target=consumer, args=(srv, ledger, stop))
        p.start()
        c.start()
        time.sleep(rng.uniform(0.3, 1.5))
        srv.kill9()
        stop.set()
        p.join(20)
        c.join(20)
        assert not p.is_alive() and not c.is_alive()
        next_seq = result.get("seq", next_seq) + 1000  # leave a gap: unconfirmed numbers are not reused
        srv.start()

    conn = wutil.connect(srv)
    ch = conn.channel()
    seen = []
    while True:
        method, _props, body = ch.basic_get(QUEUE, auto_ack=True)
        if method is None:
            break
        seen.append((int(body), method.redelivered))
    conn.close()

    seqs = [s for s, _ in seen]
    assert len(seqs) == len(set(seqs)), "a message is present twice"
    assert seqs == sorted(seqs), "messages are out of order"
    present = set(seqs)
    redelivered = {s for s, r in seen if r}
    assert present <= ledger.published, "a message nobody published"
    lost = ledger.confirmed - ledger.acked - present
    assert not lost, "confirmed messages lost: %s" % sorted(lost)[:20]
    not_redelivered = (ledger.unacked_delivered & present) - redelivered
    assert not not_redelivered, "unacked deliveries came back without redelivered: %s" % sorted(not_redelivered)[:20]
    returned_acked = (ledger.acked & present) - redelivered
    assert not returned_acked, "acked messages came back as new: %s" % sorted(returned_acked)[:20]
    print("crash test: confirmed %d, acked %d, unacked deliveries %d, present at the end %d, redelivered %d"
          % (len(ledger.confirmed), len(ledger.acked), len(ledger.unacked_delivered), len(present), len(redelivered)))
    assert len(ledger.confirmed) > 100, "the test published too little to mean anything"
