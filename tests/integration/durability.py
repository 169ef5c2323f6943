"""Clients that record what a broker promised, and the check of what it still holds after a crash.

Shared by the crash tests (test_crash.py: kill -9, test_power_cut.py: power cuts, test_soak.py:
kill -9 with crashing consumers). Messages carry their id as the body (b"%012d"). A `Ledger`
records, per id: published, confirmed (the broker acked the publish), every delivery (with its
redelivered flag), and acked (recorded *before* the ack is sent, so an ack lost in a crash
counts as acked: such a message may come back, flagged redelivered). `Ledger.check` applies the
rules:
  - lost: confirmed, never acked, and not in the queue at the end;
  - duplicates: delivered more than once without redelivered=true on every delivery after the
    first (order-free: at most one unflagged delivery per id, the final drain included);
  - phantoms: in the queue but never published; doubles: twice in the queue at the end.
"""
import collections
import socket
import struct
import threading
import time

import pika
import pika.exceptions as pexc

import amqp_raw
import wutil

PERSISTENT = pika.BasicProperties(delivery_mode=2)


def body_of(msg_id):
    return b"%012d" % msg_id


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self._next = 1
        self.published = set()
        self.confirmed = set()
        self.nacked = set()
        self.acked = set()
        self.deliveries = {}  # id -> [redelivered flag of each delivery to a client]

    def next_id(self):
        with self.lock:
            msg_id = self._next
            self._next += 1
            self.published.add(msg_id)
            return msg_id

    def confirm(self, msg_id):
        with self.lock:
            self.confirmed.add(msg_id)

    def nack(self, msg_id):
        with self.lock:
            self.nacked.add(msg_id)

    def delivered(self, msg_id, redelivered):
        with self.lock:
            self.deliveries.setdefault(msg_id, []).append(bool(redelivered))

    def will_ack(self, msg_id):
        with self.lock:
            self.acked.add(msg_id)

    def check(self, final):
        """final: [(id, redelivered)] drained from the queue at the end. Returns a Report."""
        with self.lock:
            r = Report()
            ids = [i for i, _ in final]
            present = set(ids)
            r.confirmed = len(self.confirmed)
            r.published = len(self.published)
            r.acked = len(self.acked)
            r.present = len(present)
            r.lost = sorted(self.confirmed - self.acked - present)
            r.doubles = sorted(i for i, n in collections.Counter(ids).items() if n > 1)
            r.phantoms = sorted(present - self.published)
            flags = {i: list(f) for i, f in self.deliveries.items()}
            for i, redelivered in final:
                flags.setdefault(i, []).append(redelivered)
            r.deliveries = sum(len(f) for f in flags.values())
            r.duplicates = sorted(i for i, f in flags.items() if f.count(False) > 1)
            r.redelivered = sum(f.count(True) for f in flags.values())
            r.acked_returned = len(self.acked & present)
            return r


class Report:
    def problems(self):
        out = []
        for name in ("lost", "duplicates", "doubles", "phantoms"):
            ids = getattr(self, name)
            if ids:
                out.append("%s %d: %s" % (name, len(ids), ids[:20]))
        return out

    def summary(self):
        return ("published %d, confirmed %d, acked %d, deliveries %d (%d flagged redelivered), present at the end "
                "%d (acked ones among them, redelivered: %d); lost %d, duplicates %d, doubles %d, phantoms %d"
                % (self.published, self.confirmed, self.acked, self.deliveries, self.redelivered, self.present,
                   self.acked_returned, len(self.lost), len(self.duplicates), len(self.doubles),
                   len(self.phantoms)))


def publisher(srv, ledger, queue, stop):
    """Publishes persistent messages with confirms on one connection until `stop` is set or the
    connection dies (the broker was killed). Never raises."""
    conn = None
    try:
        conn = wutil.connect(srv)
        ch = conn.channel()
        ch.confirm_delivery()
        while not stop.is_set():
            msg_id = ledger.next_id()
            try:
                ch.basic_publish("", queue, body_of(msg_id), PERSISTENT)
            except pexc.NackError:
                ledger.nack(msg_id)
                continue
            ledger.confirm(msg_id)  # basic_publish returned: the broker confirmed it
    except Exception:
        pass
    finally:
        if conn is not None:
            wutil.close_quietly(conn)


def consumer(srv, ledger, queue, stop, keep_unacked=lambda msg_id: msg_id % 5 == 0, prefetch=0,
             close_after=None):
    """Consumes on one connection, acking every message except those keep_unacked picks (they
    must come back redelivered), until `stop`, the connection dies, or `close_after` deliveries
    (then it closes the connection with those unacked). Never raises."""
    conn = None
    try:
        conn = wutil.connect(srv)
        ch = conn.channel()
        ch.basic_qos(prefetch_count=prefetch)
        n = 0
        for method, props, body in ch.consume(queue, inactivity_timeout=0.05):
            if stop.is_set():
                break
            if method is None:
                continue
            msg_id = int(body)
            ledger.delivered(msg_id, method.redelivered)
            n += 1
            if not keep_unacked(msg_id):
                ledger.will_ack(msg_id)
                ch.basic_ack(method.delivery_tag)
            if close_after is not None and n >= close_after:
                break
    except Exception:
        pass
    finally:
        if conn is not None:
            wutil.close_quietly(conn)


def raw_consumer(srv, ledger, queue, stop, deliveries, ack_every=2, reset=True, prefetch=50):
    """A raw-socket consumer that acks every `ack_every`-th delivery, then after `deliveries`
    deliveries drops its socket without closing the AMQP connection or acking the rest: with a
    TCP reset (`reset`) or a plain FIN. Never raises."""
    c = None
    try:
        c = amqp_raw.RawConnection(srv.host, srv.port, timeout=5.0)
        if c.handshake(srv.user, srv.password).name != "connection.open_ok":
            return
        c.open_channel(1)
        c.call(1, "basic.qos", 0, prefetch, False, expect="basic.qos_ok")
        c.call(1, "basic.consume", 0, queue, "", False, False, False, False, {}, expect="basic.consume_ok")
        n = 0
        while n < deliveries and not stop.is_set():
            try:
                m = c.read_method(timeout=0.2)
            except socket.timeout:
                continue
            if m.name != "basic.deliver":
                return  # a close: the broker is going away
            _tag, delivery_tag, redelivered, _ex, _rk = m.args
            msg_id = int(c.read_message())
            ledger.delivered(msg_id, redelivered)
            n += 1
            if n % ack_every == 0:
                ledger.will_ack(msg_id)
                c.send_method(1, "basic.ack", delivery_tag, False)
    except (OSError, amqp_raw.ConnectionGone, AssertionError, ValueError):
        pass
    finally:
        if c is not None:
            if reset:
                try:
                    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            c.close()


def drain(srv, queue, timeout=60.0):
    """Consumes (auto-ack) everything in `queue`; returns [(id, redelivered)] in queue order."""
    conn = wutil.connect(srv)
    try:
        ch = conn.channel()
        n = wutil.message_count(ch, queue)
        got = wutil.collect(conn, ch, queue, n, timeout, auto_ack=True) if n else []
        assert wutil.message_count(ch, queue) == 0, "the queue grew while it was drained"
        return [(int(body), m.redelivered) for m, _p, body in got]
    finally:
        wutil.close_quietly(conn)


def run_threads(targets):
    """Starts one daemon thread per (function, args); returns them."""
    threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in targets]
    for t in threads:
        t.start()
    return threads


def join_all(threads, timeout=30.0):
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = [t for t in threads if t.is_alive()]
    assert not stuck, "%d client threads did not stop within %.0f s" % (len(stuck), timeout)
