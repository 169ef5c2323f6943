"""Power-cut test: kill -9 keeps the page cache, so only a power cut shows that a confirm waited for
the disk. The server runs as warren-server-powercut (build/tests/; the same main.cc with the store
on FaultInjectionFS, see tests/power_cut/), under two confirming publishers of persistent messages
and an acking consumer; at a random moment SIGUSR2 (or SIGUSR1: torn writes) makes it drop every
write not yet synced and die. The normal warren-server then starts on what is left, and the
queue is drained and checked (durability.Ledger.check): every confirmed message that was not acked
is there, none twice, none delivered twice unless flagged redelivered.

WARREN_POWER_CUTS=N sets the number of cuts (default 5; the long form is 100, run by hand).
WARREN_POWER_CUT_SYNC_WRITES=false runs the power-cut server with --sync-writes false (confirms
before fsync): then the test must fail with lost messages, which shows that it can see losses."""
import os
import random
import re
import signal
import threading
import time

import pytest

import durability
import wutil

CUTS = int(os.environ.get("WARREN_POWER_CUTS", "5"))
SYNC_WRITES = os.environ.get("WARREN_POWER_CUT_SYNC_WRITES", "true")
QUEUE = "power-cut"

pytestmark = [pytest.mark.needs_own_server, pytest.mark.soak, pytest.mark.timeout(60 + 10 * CUTS)]


def cut_power(srv, torn, log_from):
    """Cuts the power of the running power-cut server; returns the unsynced bytes it dropped."""
    proc = srv.proc
    proc.send_signal(signal.SIGUSR1 if torn else signal.SIGUSR2)
    proc.wait(timeout=10)
    srv.kill9()  # already dead: forget the process
    assert proc.returncode == -signal.SIGKILL, "the power-cut server exited with %s" % proc.returncode
    log = srv.log_text()[log_from:]
    m = re.search(r"power cut \((.*?)\): (\d+) files lost (\d+) unsynced bytes", log)
    assert m, "no power cut in the log:\n" + log[-3000:]
    return int(m.group(3))


def test_confirmed_messages_survive_power_cuts(server_factory):
    srv = server_factory()
    normal = srv.binary
    power_cut = wutil.power_cut_binary(normal)
    conn = wutil.connect(srv)
    conn.channel().queue_declare(QUEUE, durable=True)
    conn.close()
    srv.stop()

    rng = random.Random(int(os.environ.get("WARREN_POWER_CUT_SEED", "20261201")))
    totals = {"confirmed": 0, "acked": 0, "present": 0, "redelivered": 0, "dropped": 0}
    problems = []
    for cut in range(CUTS):
        srv.binary, srv.extra_args = power_cut, ["--sync-writes", SYNC_WRITES]
        log_from = len(srv.log_text())
        srv.start()
        assert "power-cut test build" in srv.log_text()[log_from:]
        ledger = durability.Ledger()
        stop = threading.Event()
        threads = durability.run_threads([(durability.publisher, (srv, ledger, QUEUE, stop)),
                                          (durability.publisher, (srv, ledger, QUEUE, stop)),
                                          (durability.consumer, (srv, ledger, QUEUE, stop))])
        time.sleep(rng.uniform(0.2, 1.5))
        totals["dropped"] += cut_power(srv, torn=cut % 2 == 1, log_from=log_from)
        stop.set()
        durability.join_all(threads)

        srv.binary, srv.extra_args = normal, []
        srv.start()
        report = ledger.check(durability.drain(srv, QUEUE))
        srv.stop()
        print("cut %d (%s): %s" % (cut + 1, "torn" if cut % 2 else "drop", report.summary()))
        for p in report.problems():
            problems.append("cut %d: %s" % (cut + 1, p))
        for k in ("confirmed", "acked", "present", "redelivered"):
            totals[k] += getattr(report, k)

    summary = ("power cut: %d cuts (--sync-writes %s), %d unsynced bytes dropped; confirmed %d, acked %d, "
               "present after the cuts %d (%d deliveries flagged redelivered); problems: %d"
               % (CUTS, SYNC_WRITES, totals["dropped"], totals["confirmed"], totals["acked"], totals["present"],
                  totals["redelivered"], len(problems)))
    print(summary)
    assert not problems, summary + "\n" + "\n".join(problems)
    assert totals["confirmed"] > 20 * CUTS, "the test published too little to mean anything: " + summary
