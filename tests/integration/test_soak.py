"""Soak test: two publishers with confirms and three consumers that crash at random (a pika
consumer that closes its connection with messages unacked, a raw-socket consumer that drops its
socket with a reset or a FIN without acking, and a consumer process killed with SIGKILL) run
while the server is SIGKILLed and restarted at random. Clients reconnect after every kill. At the
end the server is restarted once more and the queue drained; durability.Ledger.check: no confirmed
message lost, none delivered twice unless flagged redelivered (so a delivered, unacked message
comes back redelivered, and an acked one comes back only as redelivered: its ack may have been in
flight at the kill).

WARREN_SOAK_CYCLES=N sets the number of kill -9 cycles (default 30, stopped early once the short
form has run 45 s; the long form is 100 and has no time budget). WARREN_SOAK_SEED picks the seed."""
import os
import random
import subprocess
import sys
import threading
import time

import pytest

import durability
import wutil

CYCLES = int(os.environ.get("WARREN_SOAK_CYCLES", "30"))
BUDGET = 45.0 if "WARREN_SOAK_CYCLES" not in os.environ else None
QUEUE = "soak"
HERE = os.path.dirname(os.path.abspath(__file__))

pytestmark = [pytest.mark.needs_own_server, pytest.mark.soak, pytest.mark.timeout(120 + 10 * CYCLES)]


def forever(stop, fn, *args):
    """Runs fn(*args) again and again (each run ends when the broker dies) until `stop`."""
    while not stop.is_set():
        fn(*args)
        stop.wait(0.05)


class ConsumerProcess:
    """crash_consumer.py in a child process; its output lines go into the ledger."""

    def __init__(self, srv, ledger):
        self.srv, self.ledger = srv, ledger
        self.proc = self.reader = None
        self.kills = 0

    def ensure_running(self):
        if self.proc is not None and self.proc.poll() is None:
            return
        self._reap()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "crash_consumer.py"), self.srv.host, str(self.srv.port),
             self.srv.user, self.srv.password, QUEUE],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
        self.reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self.reader.start()

    def _read(self, out):
        for line in out:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "D":
                self.ledger.delivered(int(parts[1]), parts[2] == "1")
            elif len(parts) == 2 and parts[0] == "A":
                self.ledger.will_ack(int(parts[1]))

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.kills += 1
        self._reap()

    def _reap(self):
        if self.proc is not None:
            self.proc.wait(timeout=10)
            self.reader.join(10)
            assert not self.reader.is_alive()
            self.proc.stdout.close()
        self.proc = self.reader = None


def test_soak_kill9_with_crashing_consumers(own_server):
    srv = own_server
    conn = wutil.connect(srv)
    conn.channel().queue_declare(QUEUE, durable=True)
    conn.close()
    seed = int(os.environ.get("WARREN_SOAK_SEED", "20261202"))
    rng = random.Random(seed)
    ledger = durability.Ledger()
    stop = threading.Event()
    crng = random.Random(seed + 1)  # used by the consumer threads only

    def pika_consumer():
        durability.consumer(srv, ledger, QUEUE, stop, keep_unacked=lambda i: i % 7 == 0, prefetch=100,
                            close_after=crng.randint(20, 400))

    def socket_consumer():
        durability.raw_consumer(srv, ledger, QUEUE, stop, deliveries=crng.randint(5, 200), reset=crng.random() < 0.5)

    threads = durability.run_threads([(forever, (stop, durability.publisher, srv, ledger, QUEUE, stop)),
                                      (forever, (stop, durability.publisher, srv, ledger, QUEUE, stop)),
                                      (forever, (stop, pika_consumer)),
                                      (forever, (stop, socket_consumer))])
    process = ConsumerProcess(srv, ledger)
    started = time.monotonic()
    cycles = 0
    try:
        while cycles < CYCLES and (BUDGET is None or time.monotonic() - started < BUDGET):
            run_until = time.monotonic() + rng.uniform(0.3, 1.5)
            while time.monotonic() < run_until:
                process.ensure_running()
                if rng.random() < 0.1:
                    process.kill()
                time.sleep(0.1)
            srv.kill9()
            cycles += 1
            srv.start()
    finally:
        stop.set()
        process.kill()
        durability.join_all(threads)
    srv.restart()  # cleanly: every connection is gone, whatever it left unacked is queued again
    report = ledger.check(durability.drain(srv, QUEUE))
    summary = ("soak: %d kill -9 cycles in %.0f s, %d consumer processes killed; %s"
               % (cycles, time.monotonic() - started, process.kills, report.summary()))
    print(summary)
    assert not report.problems(), summary + "\n" + "\n".join(report.problems())
    assert cycles >= min(CYCLES, 5), summary
    assert report.confirmed > 100, "the test published too little to mean anything: " + summary
