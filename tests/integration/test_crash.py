"""Crash test: the server is killed with SIGKILL at random moments while a publisher (with
confirms) and a consumer (acking most messages) run against it, and restarted; afterwards every
confirmed message that was not acked is present exactly once, in order, unacked deliveries come
back redelivered, and acked messages never come back unless redelivered (an ack that was not yet
durable when the server died). The rules: durability.Ledger.check."""
import random
import threading
import time

import pytest

import durability
import wutil

pytestmark = [pytest.mark.needs_own_server, pytest.mark.timeout(240)]

ROUNDS = 6
QUEUE = "crash-test"


def test_confirmed_messages_survive_random_kill9(own_server):
    srv = own_server
    conn = wutil.connect(srv)
    conn.channel().queue_declare(QUEUE, durable=True)
    conn.close()
    ledger = durability.Ledger()
    rng = random.Random(20261124)
    for _ in range(ROUNDS):
        stop = threading.Event()
        threads = durability.run_threads([(durability.publisher, (srv, ledger, QUEUE, stop)),
                                          (durability.consumer, (srv, ledger, QUEUE, stop))])
        time.sleep(rng.uniform(0.3, 1.5))
        srv.kill9()
        stop.set()
        durability.join_all(threads, 20)
        srv.start()

    final = durability.drain(srv, QUEUE)
    seqs = [s for s, _ in final]
    assert seqs == sorted(seqs), "messages are out of order"
    report = ledger.check(final)
    assert not report.problems(), "; ".join(report.problems())
    print("crash test: " + report.summary())
    assert report.confirmed > 100, "the test published too little to mean anything"
