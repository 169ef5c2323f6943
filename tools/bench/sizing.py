#!/usr/bin/python3
"""sizing.py [CONNECTIONS] [MESSAGES] -- the measurements behind docs/OPERATIONS.md, "Sizing"
(CONNECTIONS 0, or MESSAGES 0, skips that part).

Starts a fresh warren-server ($WARREN_SERVER, default build/bin/warren-server) per case on free
loopback ports with a temporary data dir, and reads its resident memory (VmRSS in /proc/PID/status)
before and after:
  - CONNECTIONS (default 1000) idle pika connections, then one channel on each; the same over
    TLS (AMQPS, a self-signed certificate made by the openssl CLI);
  - MESSAGES (default 100000) messages queued in one durable queue, for transient and persistent
    messages of 16 B and 1 KiB bodies, with the default queue memory window (20000 messages in
    memory, the rest read back from disk when needed) and with the window above MESSAGES (all in
    memory); bodies are random bytes;
and, for persistent messages, the store's size (`du -sb DATA/store`) after publishing (WAL and
memtables) and after a restart (recovery flushes the WAL into tables).
"""
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import pika

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.environ.get("WARREN_SERVER") or os.path.join(HERE, "..", "..", "build", "bin", "warren-server")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def du(path):
    return int(subprocess.check_output(["du", "-sb", path]).split()[0])


class Server:
    def __init__(self, *extra, tls=False):
        self.tmp = tempfile.TemporaryDirectory(prefix="warren-sizing-")
        self.data = os.path.join(self.tmp.name, "data")
        self.port = free_port()
        self.ssl_port = None
        if tls:
            cert, key = os.path.join(self.tmp.name, "cert.pem"), os.path.join(self.tmp.name, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
                           check=True, capture_output=True)
            self.ssl_port = free_port()
            extra += ("--ssl-port", str(self.ssl_port), "--ssl-certfile", cert, "--ssl-keyfile", key)
        self.cmd = [SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--data-dir", self.data,
                    "--management-port", "0", "--prometheus-port", "0", "--log-level", "warning", *extra]
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                time.sleep(0.5)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)

    def rss(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def connect(self):
        if self.ssl_port is None:
            return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", self.port, heartbeat=0))
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return pika.BlockingConnection(pika.ConnectionParameters(
            "127.0.0.1", self.ssl_port, heartbeat=0, ssl_options=pika.SSLOptions(context)))

    def close(self):
        if self.proc.poll() is None:
            self.stop()
        self.tmp.cleanup()


def connections(n, tls):
    srv = Server(tls=tls)
    try:
        before = srv.rss()
        conns = [srv.connect() for _ in range(n)]
        time.sleep(1)
        with_conns = srv.rss()
        for c in conns:
            c.channel()
        time.sleep(1)
        with_channels = srv.rss()
        print("idle %s connections: %d: RSS %.1f -> %.1f MiB: %.1f KiB per connection; with one channel each "
              "%.1f MiB: %.1f KiB per channel" % ("AMQPS" if tls else "AMQP", n, before / 2**20, with_conns / 2**20,
                                                  (with_conns - before) / n / 1024, with_channels / 2**20,
                                                  (with_channels - with_conns) / n / 1024))
        for c in conns:
            c.close()
    finally:
        srv.close()


def messages(n, size, persistent, window):
    extra = ["--queue-memory-window", str(window), "--queue-memory-window-bytes", "4GiB"] if window else []
    srv = Server(*extra)
    try:
        conn = srv.connect()
        ch = conn.channel()
        ch.queue_declare("q", durable=True)
        time.sleep(0.5)
        rss0, disk0 = srv.rss(), du(os.path.join(srv.data, "store"))
        props = pika.BasicProperties(delivery_mode=2 if persistent else 1)
        for _ in range(n):
            # Random bodies: RocksDB compresses the bottom level, and real payloads are rarely
            # as compressible as a repeated byte.
            ch.basic_publish("", "q", os.urandom(size), props)
        while ch.queue_declare("q", durable=True, passive=True).method.message_count < n:
            time.sleep(0.2)
        time.sleep(1)
        rss1, disk1 = srv.rss(), du(os.path.join(srv.data, "store"))
        conn.close()
        line = "%d %s messages of %d B, window %s: RSS %.1f -> %.1f MiB: %.0f B per message" % (
            n, "persistent" if persistent else "transient", size, window or "default (20000)",
            rss0 / 2**20, rss1 / 2**20, (rss1 - rss0) / n)
        if persistent:
            srv.stop()
            srv.start()
            disk2 = du(os.path.join(srv.data, "store"))
            line += "; store %.1f -> %.1f MiB (%.0f B per message), after a restart %.1f MiB (%.0f B per message)" % (
                disk0 / 2**20, disk1 / 2**20, (disk1 - disk0) / n, disk2 / 2**20, (disk2 - disk0) / n)
        print(line, flush=True)
    finally:
        srv.close()


def main():
    n_conns = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_msgs = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n_conns + 256)), hard))
    print("server %s" % os.path.realpath(SERVER), flush=True)
    for tls in (False, True) if n_conns else ():
        connections(n_conns, tls)
    for window in (None, n_msgs * 2) if n_msgs else ():
        for persistent in (False, True):
            for size in (16, 1024):
                messages(n_msgs, size, persistent, window)


if __name__ == "__main__":
    main()
