#!/usr/bin/python3
"""suite.py -- Warren side by side with Debian's RabbitMQ: one command, both brokers fresh.

Builds warren-server and warren-perf when missing, installs Debian's rabbitmq-server when missing,
starts a private RabbitMQ node and a fresh warren-server (temporary data dirs, free loopback ports,
never the shared node on 5680), runs each scenario against both in alternation (round -> scenario
-> broker, the broker order rotated every round), stops both whatever happens, and prints a
Markdown table of medians, spreads and Warren/RabbitMQ ratios, also written with the machine,
versions and command to docs/PERFORMANCE-results.md. docs/PERFORMANCE.md describes the scenarios
and how to read the table.

    tools/bench/suite.py [--rounds 3] [--duration 10] [--scenarios a,b,...] [--brokers warren,rabbitmq]

WARREN_SERVER and WARREN_PERF name other binaries (default build/bin/ of this checkout).
"""
import argparse
import contextlib
import ctypes
import json
import os
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pika

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
KIB = 1024
BACKLOG_DISK_FACTOR = 2.5  # free disk needed per backlog byte (store overhead, compaction, WAL)


class SuiteError(Exception):
    """A failure that ends the run with a message and exit code 1."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# processes and ports

def _die_with_parent():
    """preexec_fn: the child gets SIGKILL if the suite itself dies, so no broker outlives it."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_ports(n):
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
        return ports
    finally:
        for s in socks:
            s.close()


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * KIB
    raise SuiteError("no VmRSS for pid %d" % pid)


def stop_process(proc, grace):
    """SIGTERM, SIGKILL after `grace` seconds; only for processes this suite started."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def tail(path, n=3000):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-n:]
    except OSError:
        return ""


def amqp_connect(port):
    return pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", port, heartbeat=0, socket_timeout=30, blocked_connection_timeout=300,
        stack_timeout=60, connection_attempts=1))


def queue_depth(ch, queue):
    return ch.queue_declare(queue, passive=True).method.message_count


class RssSampler:
    """Peak resident memory of `pid`, sampled every 0.25 s while the `with` block runs."""

    def __init__(self, pid):
        self.pid, self.peak = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            with contextlib.suppress(OSError, SuiteError):
                self.peak = max(self.peak, rss_bytes(self.pid))
            self._stop.wait(0.25)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------
# brokers

class Broker:
    """What the scenarios need of a running broker: ports, its pid, and a TLS port if asked."""
    name = title = ""
    amqp_port = ssl_port = pid = None

    def uri(self, tls):
        if tls:
            return "amqps://guest:guest@localhost:%d/%%2F" % self.ssl_port
        return "amqp://guest:guest@127.0.0.1:%d/%%2F" % self.amqp_port

    def restart(self):
        self.stop()
        self.start()

    def close(self):
        self.stop()

    def _wait_ready(self, proc, timeout, logfile):
        """Until the AMQP port takes a login; SuiteError when the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise SuiteError("%s did not start (exit code %s); log %s ends:\n%s"
                                 % (self.title, proc.returncode, logfile, tail(logfile)))
            if port_open(self.amqp_port):
                with contextlib.suppress(Exception):
                    amqp_connect(self.amqp_port).close()
                    return
            if time.monotonic() > deadline:
                raise SuiteError("%s did not accept AMQP logins on 127.0.0.1:%d within %d s; log %s ends:\n%s"
                                 % (self.title, self.amqp_port, timeout, logfile, tail(logfile)))
            time.sleep(0.1)

    def server_version(self):
        conn = amqp_connect(self.amqp_port)
        try:
            props = conn._impl.server_properties  # pika keeps connection.start's properties here

            def text(key):
                v = props.get(key, "?")
                return v.decode() if isinstance(v, bytes) else v
            return "%s %s" % (text("product"), text("version"))
        finally:
            conn.close()


class Warren(Broker):
    name, title = "warren", "Warren"

    def __init__(self, binary, workdir, logdir, certs):
        self.binary, self.certs = binary, certs
        self.data_dir = os.path.join(workdir, "data")
        self.logfile = os.path.join(logdir, "warren.log")
        self.amqp_port, self.management_port, self.prometheus_port, self.ssl_port = free_ports(4)
        self.proc = None

    def command(self):
        cmd = [self.binary, "--port", str(self.amqp_port), "--bind", "127.0.0.1", "--data-dir", self.data_dir,
               "--management-port", str(self.management_port), "--prometheus-port", str(self.prometheus_port),
               "--log-level", "info"]
        if self.certs:
            cmd += ["--ssl-port", str(self.ssl_port), "--ssl-certfile", self.certs["cert"],
                    "--ssl-keyfile", self.certs["key"], "--ssl-cacertfile", self.certs["ca"],
                    "--ssl-verify", "verify_none", "--ssl-fail-if-no-peer-cert", "false"]
        return cmd

    def spawn(self):
        with open(self.logfile, "ab") as out:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.pid = self.proc.pid

    def start(self, timeout=60):
        self.spawn()
        self._wait_ready(self.proc, timeout, self.logfile)

    def stop(self):
        stop_process(self.proc, 60)

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=30)

    def metrics(self):
        """The Prometheus samples without labels, by name."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.prometheus_port, timeout=10) as r:
            text = r.read().decode()
        samples = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and not line.startswith("#") and "{" not in parts[0]:
                samples[parts[0]] = float(parts[1])
        return samples


class RabbitMQ(Broker):
    """A private node: its own name, ports, Erlang port mapper, cookie and data, all on loopback."""
    name, title = "rabbitmq", "RabbitMQ"

    def __init__(self, workdir, logdir, certs):
        self.workdir, self.logdir, self.certs = workdir, logdir, certs
        self.logfile = os.path.join(logdir, "rabbitmq.out")
        (self.amqp_port, self.management_port, self.ssl_port, self.dist_port,
         self.epmd_port) = free_ports(5)
        self.node = "warren-bench-%d@localhost" % os.getpid()
        self.proc = self.epmd = None

    def _config(self):
        lines = ["listeners.tcp.default = 127.0.0.1:%d" % self.amqp_port,
                 "management.tcp.port = %d" % self.management_port,
                 "management.tcp.ip = 127.0.0.1",
                 "loopback_users = none"]
        if self.certs:
            lines += ["listeners.ssl.default = 127.0.0.1:%d" % self.ssl_port,
                      "ssl_options.cacertfile = %s" % self.certs["ca"],
                      "ssl_options.certfile = %s" % self.certs["cert"],
                      "ssl_options.keyfile = %s" % self.certs["key"],
                      "ssl_options.verify = verify_none",
                      "ssl_options.fail_if_no_peer_cert = false"]
        return "\n".join(lines) + "\n"

    def start(self, timeout=120):
        d = self.workdir
        os.makedirs(os.path.join(d, "mnesia"), exist_ok=True)
        os.makedirs(os.path.join(self.logdir, "rabbitmq-log"), exist_ok=True)
        with open(os.path.join(d, "enabled_plugins"), "w") as f:
            f.write("[rabbitmq_management].\n")
        with open(os.path.join(d, "rabbitmq.conf"), "w") as f:
            f.write(self._config())
        env = dict(os.environ,
                   HOME=d,  # the Erlang cookie: a fresh one, not the shared node's
                   RABBITMQ_NODENAME=self.node, RABBITMQ_DIST_PORT=str(self.dist_port),
                   ERL_EPMD_PORT=str(self.epmd_port), ERL_EPMD_ADDRESS="127.0.0.1",
                   RABBITMQ_MNESIA_BASE=os.path.join(d, "mnesia"),
                   RABBITMQ_LOG_BASE=os.path.join(self.logdir, "rabbitmq-log"),
                   RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(d, "enabled_plugins"),
                   RABBITMQ_CONFIG_FILE=os.path.join(d, "rabbitmq.conf"),
                   RABBITMQ_FEATURE_FLAGS_FILE=os.path.join(d, "feature_flags"),
                   RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
                   # The script then execs the VM instead of waiting on it in a shell, so the pid
                   # started here is the broker's (for its CPU, its memory and stopping it).
                   RUNNING_UNDER_SYSTEMD="1")
        with open(self.logfile, "ab") as out:
            if self.epmd is None:
                self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                                             stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             preexec_fn=_die_with_parent)
                # Else the VM would start a daemon epmd of its own, which nobody would stop.
                deadline = time.monotonic() + 10
                while not port_open(self.epmd_port):
                    if self.epmd.poll() is not None or time.monotonic() > deadline:
                        raise SuiteError("epmd did not listen on 127.0.0.1:%d; see %s" % (self.epmd_port, self.logfile))
                    time.sleep(0.05)
            self.proc = subprocess.Popen([RABBITMQ_SERVER], env=env, cwd=d, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.pid = self.proc.pid
        self._wait_ready(self.proc, timeout, self.logfile)

    def stop(self):
        stop_process(self.proc, 60)  # SIGTERM: the VM stops RabbitMQ cleanly

    def close(self):
        self.stop()
        stop_process(self.epmd, 10)


def ensure_built(server, perf):
    missing = [p for p in (server, perf) if not os.access(p, os.X_OK)]
    if not missing:
        return
    log("building warren-server and warren-perf (missing: %s)" % ", ".join(missing))
    subprocess.run(["bash", "scripts/build.sh"], cwd=REPO, check=False,
                   env=dict(os.environ, TARGETS="warren-server warren-perf"))
    still = [p for p in (server, perf) if not os.access(p, os.X_OK)]
    if still:
        raise SuiteError("not built: %s (TARGETS=\"warren-server warren-perf\" bash scripts/build.sh)"
                         % ", ".join(still))


def ensure_rabbitmq():
    if os.access(RABBITMQ_SERVER, os.X_OK):
        return
    log("installing Debian's rabbitmq-server")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "rabbitmq-server"],
                   env=env, check=False)
    if not os.access(RABBITMQ_SERVER, os.X_OK):
        raise SuiteError("rabbitmq-server is not installed and apt-get could not install it")


def make_certs(d):
    """A throwaway CA and a server certificate for localhost and 127.0.0.1."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=warren-bench-ca", "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.pem")
    for name in ("ca.pem", "server.pem", "server.key"):
        os.chmod(os.path.join(d, name), 0o644)  # read by the brokers
    return {"ca": os.path.join(d, "ca.pem"), "cert": os.path.join(d, "server.pem"),
            "key": os.path.join(d, "server.key")}


# --------------------------------------------------------------------------
# metrics: (label, how to read it from a run's record, number format, lower is better)

def field(name):
    return lambda r: r.get(name)


def latency_ms(group, pct):
    return lambda r: r[group][pct] / 1000.0 if r.get(group) and r[group].get(pct) is not None else None


RATE = "{:,.0f}"
MS = "{:.2f}"
CONSUMED = ("consumed/s", field("consume_rate"), RATE, False)
CONFIRMED = ("confirmed/s", field("confirm_rate"), RATE, False)
PUBLISHED = ("published/s", field("publish_rate"), RATE, False)
E2E_P99 = ("e2e latency p99 ms", latency_ms("latency_us", "p99"), MS, True)
CONFIRM_P99 = ("confirm latency p99 ms", latency_ms("confirm_latency_us", "p99"), MS, True)


# --------------------------------------------------------------------------
# scenarios

class Context:
    """What a scenario run needs besides its broker: the tool, the options, the output files."""

    def __init__(self, args, perf, out):
        self.args, self.perf = args, perf
        self.runs_log = open(os.path.join(out, "runs.log"), "w")

    def perf_run(self, broker, queue, flags, label, tls=False, seconds=None, warmup=None, timeout=None):
        """One warren-perf run; returns its JSON (or a record of why there is none)."""
        seconds = self.args.duration if seconds is None else seconds
        warmup = self.args.warmup if warmup is None else warmup
        cmd = [self.perf, "--uri", broker.uri(tls), "--queue", queue, "--time", fmt_num(seconds + warmup),
               "--warmup", fmt_num(warmup), "--quiet", "--broker-pid", str(broker.pid), "--label", label, *flags]
        if tls:
            cmd += ["--cacert", broker.certs["ca"]]
        self.runs_log.write("$ %s\n" % shlex.join(cmd))
        self.runs_log.flush()
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=self.runs_log, stdin=subprocess.DEVNULL,
                                  timeout=timeout or seconds + warmup + 120, text=True)
        except subprocess.TimeoutExpired:
            return failed_record(label, "warren-perf did not finish in time")
        except OSError as e:
            raise SuiteError("cannot run %s: %s" % (self.perf, e))
        if proc.returncode == 2:
            raise SuiteError("warren-perf refused its flags (exit 2): %s\n%s" % (shlex.join(cmd), proc.stdout))
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            return failed_record(label, "warren-perf exited %d without a result" % proc.returncode)
        return json.loads(lines[-1])


def fmt_num(x):
    return "%g" % x


def failed_record(label, why):
    return {"tool": "warren-perf", "label": label, "setup_failed": True, "errors": 1, "error_msgs": [why]}


class PerfScenario:
    """A warren-perf run with fixed flags; its queue is bench-NAME (purged before, deleted after)."""
    rounds = True

    def __init__(self, name, desc, flags, metrics, tls=False):
        self.name, self.desc, self.flags, self.metrics, self.tls = name, desc, flags, metrics, tls

    def queue(self):
        return "bench-" + self.name

    def estimate(self, args):
        return args.duration + args.warmup + 4

    def run(self, broker, ctx, label):
        record = ctx.perf_run(broker, self.queue(), ["--purge"] + self.flags, label, tls=self.tls)
        self.delete(broker)
        return record

    def delete(self, broker):
        """The run's queues (warren-perf's names) and exchange. Not warren-perf's --delete: it waits
        2 s for its connections to close, and RabbitMQ may still be reading a fast producer's
        publishes then, which fail the run once their exchange is gone."""
        flags = dict(zip(self.flags, self.flags[1:]))
        n = int(flags.get("--queues", 1))
        queues = [self.queue()] if n == 1 else ["%s-%d" % (self.queue(), i) for i in range(1, n + 1)]
        with contextlib.suppress(Exception):
            conn = amqp_connect(broker.amqp_port)
            ch = conn.channel()
            for q in queues:
                ch.queue_delete(q)
            if "--exchange" in flags:
                ch.exchange_delete(flags["--exchange"])
            conn.close()


class FsyncScenario(PerfScenario):
    """Also messages per fsync on Warren, from its Prometheus counters around the run."""

    def run(self, broker, ctx, label):
        if not isinstance(broker, Warren):
            return super().run(broker, ctx, label)
        before = broker.metrics()
        record = super().run(broker, ctx, label)
        after = broker.metrics()
        published = after["warren_published_total"] - before["warren_published_total"]
        fsyncs = after["warren_store_fsync_seconds_count"] - before["warren_store_fsync_seconds_count"]
        record["msgs_per_fsync"] = published / fsyncs if fsyncs else None
        return record


class TopicScenario(PerfScenario):
    """Through a topic exchange holding BINDINGS bindings, made before each run (outside its time)."""
    BINDINGS = 10000
    KEY = "j.5000.x"  # matches exactly one of them, j.5000.*

    def estimate(self, args):
        return super().estimate(args) + 5

    def run(self, broker, ctx, label):
        exchange = dict(zip(self.flags, self.flags[1:]))["--exchange"]
        conn = amqp_connect(broker.amqp_port)
        try:
            ch = conn.channel()
            ch.exchange_declare(exchange, "topic")
            ch.queue_declare(self.queue())
            for i in range(self.BINDINGS):
                # Half one-word wildcards, half multi-word ones: both kinds in the matcher.
                ch.queue_bind(self.queue(), exchange, "j.%d.%s" % (i, "*" if i % 2 == 0 else "#"))
        finally:
            conn.close()
        return super().run(broker, ctx, label)


class MemoryScenario:
    """RSS per idle connection (with one channel) and per queued persistent message, on a broker
    restarted just before, so that memory freed by earlier scenarios does not hide the growth."""
    rounds = True
    name = "m"
    desc = ("memory: N idle connections with one channel each (RSS delta / N); M persistent 1 KiB "
            "messages queued in a durable queue (RSS delta / M)")
    metrics = [("KiB per idle connection", field("kib_per_connection"), "{:.1f}", True),
               ("bytes per queued message", field("bytes_per_message"), "{:,.0f}", True)]

    def estimate(self, args):
        return 20 + args.idle_connections * 0.01 + args.queued_messages / 10000.0

    def run(self, broker, ctx, label):
        n, m = ctx.args.idle_connections, ctx.args.queued_messages
        record = {"tool": "suite", "label": label, "errors": 0, "error_msgs": []}
        broker.restart()
        time.sleep(1)
        before = rss_bytes(broker.pid)
        conns = []
        try:
            for _ in range(n):
                conns.append(amqp_connect(broker.amqp_port))
                conns[-1].channel()
            time.sleep(2)
            record["kib_per_connection"] = (rss_bytes(broker.pid) - before) / n / KIB
        finally:
            for c in conns:
                with contextlib.suppress(Exception):
                    c.close()
        queue = "bench-m"
        conn = amqp_connect(broker.amqp_port)
        try:
            ch = conn.channel()
            ch.queue_delete(queue)
            ch.queue_declare(queue, durable=True)
            time.sleep(1)
            before = rss_bytes(broker.pid)
            pub = ctx.perf_run(broker, queue, ["--predeclared", "--producers", "1", "--consumers", "0",
                                               "--size", "1024", "--persistent", "--confirm", "1000",
                                               "--pmessages", str(m)],
                               label, seconds=3600, warmup=0, timeout=3600)
            record["errors"] += pub.get("errors", 0)
            record["error_msgs"] += pub.get("error_msgs", [])
            deadline = time.monotonic() + 60
            while queue_depth(ch, queue) < m and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1)
            depth = queue_depth(ch, queue)
            record["bytes_per_message"] = (rss_bytes(broker.pid) - before) / depth if depth else None
            ch.queue_delete(queue)
        finally:
            conn.close()
        return record


class BacklogScenario:
    """Publish a backlog, (Warren) kill -9 and restart it, then drain it; once per broker."""
    rounds = False
    name = "l"
    desc = ("backlog: N persistent 1 KiB messages into a durable queue with confirms, then drained; "
            "peak RSS, drain rates of the first and last 20 %; Warren also kill -9 with the backlog full")
    metrics = [("publish msgs/s", field("publish_rate"), RATE, False),
               ("peak RSS publishing MiB", field("peak_rss_publish_mib"), "{:,.0f}", True),
               ("recovery: port accepts s", field("recovery_accept_s"), "{:.1f}", True),
               ("recovery: queue count back s", field("recovery_count_s"), "{:.1f}", True),
               ("drain first 20 % msgs/s", field("drain_first_rate"), RATE, False),
               ("drain last 20 % msgs/s", field("drain_last_rate"), RATE, False),
               ("peak RSS draining MiB", field("peak_rss_drain_mib"), "{:,.0f}", True)]

    def size(self, args, broker_name):
        return args.rabbitmq_backlog if broker_name == "rabbitmq" and args.rabbitmq_backlog else args.backlog

    def estimate(self, args):
        return 2 * args.backlog / 15000.0 + 60

    def run(self, broker, ctx, label):
        n = self.size(ctx.args, broker.name)
        queue = "bench-l"
        record = {"tool": "suite", "label": label, "messages": n, "errors": 0, "error_msgs": []}
        conn = amqp_connect(broker.amqp_port)
        ch = conn.channel()
        ch.queue_delete(queue)
        ch.queue_declare(queue, durable=True)
        conn.close()
        t0 = time.monotonic()
        with RssSampler(broker.pid) as rss:
            pub = ctx.perf_run(broker, queue, ["--predeclared", "--producers", "1", "--consumers", "0",
                                               "--size", "1024", "--persistent", "--confirm", "1000",
                                               "--pmessages", str(n)],
                               label, seconds=86400, warmup=0, timeout=86400)
        record["publish_rate"] = pub.get("confirm_rate") or n / (time.monotonic() - t0)
        record["peak_rss_publish_mib"] = rss.peak / 2**20
        record["errors"] += pub.get("errors", 0)
        record["error_msgs"] += pub.get("error_msgs", [])
        if isinstance(broker, Warren):
            broker.kill9()
            t0 = time.monotonic()
            broker.spawn()
            while not port_open(broker.amqp_port):
                if broker.proc.poll() is not None:
                    raise SuiteError("warren-server did not restart after kill -9; log %s ends:\n%s"
                                     % (broker.logfile, tail(broker.logfile)))
                time.sleep(0.05)
            record["recovery_accept_s"] = time.monotonic() - t0
            conn = amqp_connect(broker.amqp_port)
            while queue_depth(conn.channel(), queue) < n and time.monotonic() - t0 < 3600:
                time.sleep(0.05)
            record["recovery_count_s"] = time.monotonic() - t0
            conn.close()
        record.update(self.drain(broker, ctx, queue, n, label))
        conn = amqp_connect(broker.amqp_port)
        conn.channel().queue_delete(queue)
        conn.close()
        return record

    def drain(self, broker, ctx, queue, n, label):
        """Consumes the backlog with warren-perf while sampling the queue's depth from here."""
        cmd = [ctx.perf, "--uri", broker.uri(False), "--queue", queue, "--predeclared", "--producers", "0",
               "--consumers", "1", "--qos", "100", "--time", "86400", "--quiet", "--label", label]
        ctx.runs_log.write("$ %s\n" % shlex.join(cmd))
        ctx.runs_log.flush()
        conn = amqp_connect(broker.amqp_port)
        ch = conn.channel()
        samples = []
        with RssSampler(broker.pid) as rss:
            t0 = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=ctx.runs_log, stdin=subprocess.DEVNULL,
                                    preexec_fn=_die_with_parent)
            try:
                while True:
                    depth = queue_depth(ch, queue)
                    samples.append((time.monotonic() - t0, depth))
                    if depth == 0 or proc.poll() is not None:
                        break
                    time.sleep(0.25)
            finally:
                stop_process(proc, 10)
        conn.close()
        result = {"peak_rss_drain_mib": rss.peak / 2**20}
        if samples[-1][1] != 0:
            result["errors"] = 1
            result["error_msgs"] = ["the drain stopped with %d messages left" % samples[-1][1]]
            return result

        def first_at_or_below(depth):
            return next(t for t, d in samples if d <= depth)
        fifth = n / 5.0
        result["drain_first_rate"] = fifth / max(first_at_or_below(n - fifth), 1e-3)
        result["drain_last_rate"] = fifth / max(samples[-1][0] - first_at_or_below(fifth), 1e-3)
        result["drain_seconds"] = samples[-1][0]
        return result


def scenarios():
    persistent_1k = ["--size", "1024", "--durable", "--persistent"]
    a = ["--producers", "1", "--consumers", "1", "--size", "16", "--autoack"]
    b = ["--producers", "1", "--consumers", "1", *persistent_1k, "--confirm", "1000", "--qos", "100"]
    a_desc = "transient 16 B, 1 producer -> 1 consumer, autoack"
    b_desc = ("persistent 1 KiB, durable queue, confirms (<= 1000 outstanding), 1 -> 1, manual ack, "
              "prefetch 100")
    listed = [
        PerfScenario("a", a_desc, a, [CONSUMED]),
        PerfScenario("b", b_desc, b, [CONFIRMED]),
        PerfScenario("c", "fanout -> 4 durable queues, 4 consumers, persistent 1 KiB, manual ack, prefetch 100, "
                     "no confirms (deliveries/s)",
                     ["--producers", "1", "--consumers", "4", *persistent_1k, "--exchange", "bench-c.x",
                      "--type", "fanout", "--queues", "4", "--qos", "100"], [CONSUMED]),
        PerfScenario("d", "publish only, persistent 1 KiB, durable queue, confirms (<= 1000 outstanding)",
                     ["--producers", "1", "--consumers", "0", *persistent_1k, "--confirm", "1000"],
                     [CONFIRMED, CONFIRM_P99]),
        PerfScenario("e", "latency at a fixed 1000 msg/s, transient 16 B, 1 -> 1, autoack",
                     ["--producers", "1", "--consumers", "1", "--size", "16", "--autoack", "--rate", "1000"],
                     [E2E_P99, PUBLISHED]),
        FsyncScenario("f", "8 producers x 1 outstanding confirm, persistent 1 KiB, publish only "
                      "(group commit; Warren: messages per fsync)",
                      ["--producers", "8", "--consumers", "0", *persistent_1k, "--confirm", "1"],
                      [CONFIRMED, ("messages per fsync (Warren)", field("msgs_per_fsync"), "{:.1f}", False)]),
        PerfScenario("g", "64 queues, 64 producers -> 64 consumers, transient 16 B, autoack",
                     ["--producers", "64", "--consumers", "64", "--queues", "64", "--size", "16", "--autoack"],
                     [CONSUMED]),
        PerfScenario("h", "64 durable queues, 64 producers (confirms <= 100) -> 64 consumers, persistent 1 KiB, "
                     "manual ack, prefetch 100",
                     ["--producers", "64", "--consumers", "64", "--queues", "64", *persistent_1k,
                      "--confirm", "100", "--qos", "100"], [CONFIRMED, CONFIRM_P99]),
        PerfScenario("i", "latency at a fixed 20,000 msg/s, persistent 1 KiB, confirms, 1 -> 1, manual ack, "
                     "prefetch 100",
                     ["--producers", "1", "--consumers", "1", *persistent_1k, "--confirm", "1000", "--qos", "100",
                      "--rate", "20000"], [E2E_P99, PUBLISHED]),
        TopicScenario("j", "topic exchange with 10,000 bindings, 1 -> 1 through a key matching one of them, "
                      "transient 16 B, autoack",
                      ["--predeclared", "--exchange", "bench-j.x", "--routing-key", TopicScenario.KEY,
                       "--producers", "1", "--consumers", "1", "--size", "16", "--autoack"], [CONSUMED]),
        PerfScenario("k", "1000 queues, one consumer each on 1000 connections; 4 producers at 5 msg/s each "
                     "into a fanout to all of them (20,000 deliveries/s), transient 16 B, autoack",
                     ["--producers", "4", "--consumers", "1000", "--queues", "1000", "--exchange", "bench-k.x",
                      "--type", "fanout", "--size", "16", "--autoack", "--rate", "5"],
                     [CONSUMED, E2E_P99]),
        PerfScenario("a-tls", a_desc + ", over TLS", a, [CONSUMED], tls=True),
        PerfScenario("b-tls", b_desc + ", over TLS", b, [CONFIRMED], tls=True),
        MemoryScenario(),
        BacklogScenario(),
    ]
    return {s.name: s for s in listed}


DEFAULT_SCENARIOS = "a,b,c,d,e,f,g,h,i,j,k,a-tls,b-tls,m"


# --------------------------------------------------------------------------
# the report

def summarize(values):
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def cell(summary, fmt):
    if summary is None:
        return "n/a"
    med, lo, hi = summary
    if lo == hi:
        return fmt.format(med)
    return "%s (%s–%s)" % (fmt.format(med), fmt.format(lo), fmt.format(hi))


def table(records, chosen, brokers):
    """The Markdown table: per scenario and metric, each broker's median (min–max) and the ratio."""
    names = sorted((b.name for b in brokers), key=["warren", "rabbitmq"].index)  # Warren / RabbitMQ
    titles = {b.name: b.title for b in brokers}
    head = ["scenario", "metric"] + [titles[n] + " median (min–max)" for n in names]
    if len(names) == 2:
        head.append("%s / %s" % (titles[names[0]], titles[names[1]]))
    head.append("broker CPU %% (%s)" % " / ".join(titles[n] for n in names))
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    problems = []
    for s in chosen:
        runs = {n: [r for r in records if r["scenario"] == s.name and r["broker"] == n] for n in names}
        good = {n: [r for r in runs[n] if not r.get("errors") and not r.get("setup_failed")] for n in names}
        for n in names:
            for r in runs[n]:
                if r.get("errors") or r.get("setup_failed"):
                    problems.append("%s on %s, round %s: %s" % (s.name, titles[n], r["round"],
                                                                "; ".join(r.get("error_msgs") or ["errors"])[:300]))
        for i, (label, get, fmt, lower_better) in enumerate(s.metrics):
            sums = {n: summarize([v for v in (get(r) for r in good[n]) if v is not None]) for n in names}
            row = [s.name if i == 0 else "", label + (" (lower is better)" if lower_better else "")]
            row += [cell(sums[n], fmt) for n in names]
            if len(names) == 2:
                a, b = sums[names[0]], sums[names[1]]
                row.append("%.2f" % (a[0] / b[0]) if a and b and b[0] else "n/a")
            if i == 0:
                cpu = [summarize([r["broker_cpu_pct"] for r in good[n] if r.get("broker_cpu_pct") is not None])
                       for n in names]
                row.append(" / ".join("%.0f" % c[0] if c else "n/a" for c in cpu) if any(cpu) else "")
            else:
                row.append("")
            rows.append("| " + " | ".join(row) + " |")
    text = "\n".join(rows) + "\n"
    if problems:
        text += "\nRuns left out of the medians (errors):\n\n" + "".join("- %s\n" % p for p in problems)
    return text


def machine():
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return "%d cores (nproc), %s, %.0f GiB RAM, Linux %s" % (len(os.sched_getaffinity(0)), model, mem,
                                                             os.uname().release)


def package_version(pkg):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def git_commit():
    out = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def results_markdown(args, chosen, brokers, versions, tbl, started, out):
    lines = ["# Benchmark results", "",
             "Written by `tools/bench/suite.py` (docs/PERFORMANCE.md says what each scenario measures and how "
             "to read this).", "",
             "- date: %s UTC" % time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
             "- machine: %s" % machine(),
             "- command: `%s`" % shlex.join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]),
             "- rounds: %d, %g s measured per run after %g s of warm-up; broker order rotated every round"
             % (args.rounds, args.duration, args.warmup)]
    lines += ["- %s" % v for v in versions]
    lines += ["- raw results: `%s/raw.jsonl` (one record per run)" % out, "", "## Scenarios", ""]
    lines += ["- **%s**: %s" % (s.name, s.desc) for s in chosen]
    lines += ["", "## Medians", "", tbl]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# main

def parse_args(argv):
    p = argparse.ArgumentParser(description="Warren and RabbitMQ side by side (docs/PERFORMANCE.md).")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per run (default 10)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds before each measurement (default 1)")
    p.add_argument("--scenarios", default=DEFAULT_SCENARIOS, help="default %s; also l" % DEFAULT_SCENARIOS)
    p.add_argument("--brokers", default="warren,rabbitmq")
    p.add_argument("--idle-connections", type=int, default=1000, help="scenario m (default 1000)")
    p.add_argument("--queued-messages", type=int, default=100000, help="scenario m (default 100000)")
    p.add_argument("--backlog", type=int, default=10000000, help="scenario l (default 10,000,000)")
    p.add_argument("--rabbitmq-backlog", type=int, default=0, help="scenario l on RabbitMQ (default --backlog)")
    p.add_argument("--settle", type=float, default=1.0, help="idle seconds between runs (default 1)")
    p.add_argument("--out", help="raw results dir (default /tmp/warren-bench-DATE)")
    p.add_argument("--results-file", default=os.path.join(REPO, "docs", "PERFORMANCE-results.md"))
    args = p.parse_args(argv)
    known = scenarios()
    args.scenario_list = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in args.scenario_list if s not in known]
    if unknown:
        p.error("unknown scenario(s) %s; known: %s" % (", ".join(unknown), ", ".join(known)))
    args.broker_list = [b.strip() for b in args.brokers.split(",") if b.strip()]
    if not args.broker_list or any(b not in ("warren", "rabbitmq") for b in args.broker_list):
        p.error("--brokers takes warren and/or rabbitmq")
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0:
        p.error("--rounds must be at least 1, --duration above 0, --warmup at least 0")
    return args


def check_disk(args, tmp_root):
    need = BACKLOG_DISK_FACTOR * max(args.backlog, args.rabbitmq_backlog) * (KIB + 64)
    free = shutil.disk_usage(tmp_root).free
    if free < need:
        raise SuiteError("scenario l needs %.1f GiB free under %s (%.1fx the backlog's bytes) and %.1f GiB are free; "
                         "use a smaller --backlog or set TMPDIR" % (need / 2**30, tmp_root, BACKLOG_DISK_FACTOR,
                                                                     free / 2**30))


def run(args):
    started = time.time()
    known = scenarios()
    chosen = [known[s] for s in args.scenario_list]
    tmp_root = tempfile.gettempdir()
    if any(s.name == "l" for s in chosen):
        check_disk(args, tmp_root)
    server = os.environ.get("WARREN_SERVER") or os.path.join(REPO, "build", "bin", "warren-server")
    perf = os.environ.get("WARREN_PERF") or os.path.join(REPO, "build", "bin", "warren-perf")
    ensure_built(server, perf)
    if "rabbitmq" in args.broker_list:
        ensure_rabbitmq()
    out = args.out or "/tmp/warren-bench-" + time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(out, exist_ok=True)
    # k opens 1000+ connections in warren-perf and in each broker; m as many from here.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    per_round = sum(s.estimate(args) + args.settle for s in chosen if s.rounds)
    once = sum(s.estimate(args) for s in chosen if not s.rounds)
    estimate = (per_round * args.rounds + once) * len(args.broker_list) + 30
    log("scenarios %s on %s, %d round(s) of %g s (+%g s warm-up): estimated wall time %.0f min"
        % (",".join(s.name for s in chosen), ",".join(args.broker_list), args.rounds, args.duration, args.warmup,
           estimate / 60))

    work = tempfile.mkdtemp(prefix="warren-bench-")
    brokers = []
    records = []
    try:
        certs = make_certs(work) if any(getattr(s, "tls", False) for s in chosen) else None
        for name in args.broker_list:
            d = os.path.join(work, name)
            os.makedirs(d)
            b = Warren(server, d, out, certs) if name == "warren" else RabbitMQ(d, out, certs)
            brokers.append(b)
            log("starting %s (AMQP 127.0.0.1:%d)" % (b.title, b.amqp_port))
            b.start()
        versions = ["%s: %s" % (b.title, b.server_version()) for b in brokers]
        versions.append("Warren commit: %s; warren-perf: %s" % (git_commit(), perf))
        if "rabbitmq" in args.broker_list:
            versions.append("Debian packages: rabbitmq-server %s, erlang-base %s"
                            % (package_version("rabbitmq-server"), package_version("erlang-base")))
        ctx = Context(args, perf, out)
        raw = open(os.path.join(out, "raw.jsonl"), "w")
        timed = [s for s in chosen if s.rounds]
        total = len(timed) * args.rounds * len(brokers) + sum(len(brokers) for s in chosen if not s.rounds)
        k = 0

        def one(s, b, rnd):
            nonlocal k
            k += 1
            label = "%s|%s|%d" % (s.name, b.name, rnd)
            log("[%d/%d] round %d scenario %s broker %s" % (k, total, rnd, s.name, b.title))
            record = s.run(b, ctx, label)
            if b.proc.poll() is not None:
                raise SuiteError("%s exited (code %s) during scenario %s; log %s ends:\n%s"
                                 % (b.title, b.proc.returncode, s.name, b.logfile, tail(b.logfile)))
            record.update(scenario=s.name, broker=b.name, round=rnd)
            records.append(record)
            raw.write(json.dumps(record) + "\n")
            raw.flush()
            log("   " + "; ".join("%s %s" % (m[0], m[2].format(m[1](record)) if m[1](record) is not None else "n/a")
                                  for m in s.metrics)
                + ("; errors: %s" % (record.get("error_msgs") or ["?"])[0][:200] if record.get("errors") else ""))
            time.sleep(args.settle)

        for rnd in range(1, args.rounds + 1):
            for s in timed:
                shift = (rnd - 1) % len(brokers)
                for b in brokers[shift:] + brokers[:shift]:
                    one(s, b, rnd)
        for s in chosen:
            if not s.rounds:
                for b in brokers:
                    one(s, b, 1)
    finally:
        for b in brokers:
            b.close()
        shutil.rmtree(work, ignore_errors=True)
    tbl = table(records, chosen, brokers)
    print(tbl)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(tbl)
    with open(args.results_file, "w") as f:
        f.write(results_markdown(args, chosen, brokers, versions, tbl, started, out))
    log("raw results: %s/raw.jsonl  log: %s/runs.log  table: %s" % (out, out, args.results_file))
    return 0


def _sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")  # so the brokers are stopped on the way out


def main(argv):
    signal.signal(signal.SIGTERM, _sigterm)
    args = parse_args(argv)
    try:
        return run(args)
    except SuiteError as e:
        log("suite.py: %s" % e)
        return 1
    except KeyboardInterrupt:
        log("suite.py: interrupted; both brokers stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
