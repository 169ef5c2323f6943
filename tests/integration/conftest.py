"""Fixtures for Warren's system tests.

Normal mode: every test talks to the real `warren-server` binary ($WARREN_SERVER),
started on a free loopback port with a temporary data dir.

External mode (WARREN_TEST_EXTERNAL=host:port): the tests talk to an already
running broker instead (used to prove the tests against real RabbitMQ); tests
marked `needs_own_server` are skipped, and only in that mode.
"""
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

import wutil

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
EXTERNAL = os.environ.get("WARREN_TEST_EXTERNAL", "").strip()
SERVER_BIN = os.environ.get("WARREN_SERVER") or os.path.join(REPO, "build", "bin", "warren-server")
SEED_DIR = os.environ.get("WARREN_SEED_DIR") or os.path.join(os.path.dirname(REPO), "shared", "seed")
# Sanitizer builds (scripts/test.sh sets WARREN_SANITIZER) run several times slower: every time
# limit is scaled, and tests marked `soak` are skipped there.
SANITIZER = bool(os.environ.get("WARREN_SANITIZER"))
SLOWDOWN = 3 if SANITIZER else 1
DEFAULT_TIMEOUT = 60  # seconds per test unless @pytest.mark.timeout(N)
START_TIMEOUT = 10.0 * SLOWDOWN
_LIVE = []  # WarrenServer objects alive right now (their logs are attached to failures)
# Sanitizer builds (scripts/test.sh) write each process's report to "<log_path>.<pid>".
SANITIZER_LOGS = list(dict.fromkeys(
    opt.split("=", 1)[1] for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS")
    for opt in os.environ.get(var, "").split(":") if opt.startswith("log_path=")))
_SHARED = []  # the session-wide server once started: checked after every test


def _die_with_parent():
    """preexec_fn: the server gets SIGKILL if pytest itself dies (e.g. killed by a CTest timeout)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _sigterm_to_interrupt(signum, frame):
    raise KeyboardInterrupt("SIGTERM")  # so fixtures tear down (and stop servers)


def pytest_configure(config):
    signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    config.addinivalue_line("markers", "needs_own_server: needs a Warren server started by the test "
                            "(custom flags, restarts, seed users); skipped in external mode")
    config.addinivalue_line("markers", "slow: takes noticeably longer than the rest (still run)")
    config.addinivalue_line("markers", "soak: a long load test; skipped in sanitizer builds (WARREN_SANITIZER)")
    config.addinivalue_line("markers", "measures_rss: bounds the server's resident memory; skipped in sanitizer "
                            "builds, whose shadow memory and freed-memory quarantine inflate it")
    config.addinivalue_line("markers", "package: installs the Debian package on this machine (test_package.py); "
                            "skipped in sanitizer builds, which are never packaged")
    config.addinivalue_line("markers", "timeout(seconds): per-test time limit (default %d)" % DEFAULT_TIMEOUT)


def pytest_collection_modifyitems(config, items):
    if SANITIZER:
        soak = pytest.mark.skip(reason="soak test; skipped in sanitizer builds")
        rss = pytest.mark.skip(reason="bounds resident memory, which a sanitizer's allocator inflates")
        package = pytest.mark.skip(reason="sanitizer builds are not packaged")
        for item in items:
            if "package" in item.keywords:
                item.add_marker(package)
            if "soak" in item.keywords:
                item.add_marker(soak)
            if "measures_rss" in item.keywords:
                item.add_marker(rss)
    if not EXTERNAL:
        return
    skip = pytest.mark.skip(reason="needs its own Warren server; skipped in external mode")
    for item in items:
        if "needs_own_server" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config):
    if EXTERNAL:
        return "warren system tests: EXTERNAL broker at %s" % EXTERNAL
    return "warren system tests: server binary %s" % SERVER_BIN


def _blame_shared_server_death(report):
    """Fails `report` when the shared server died during it, so a crash is blamed on its test."""
    for srv in _SHARED:
        if srv.proc is None or srv.proc.poll() is None:
            continue
        code = srv.proc.returncode
        srv.proc = None  # restarted before the next test (_revive_shared_server)
        report.outcome = "failed"
        report.longrepr = ("the shared warren-server (port %d) died during this test's %s (exit code %s); "
                           "log tail:\n%s" % (srv.port, report.when, code, srv.log_text()[-3000:]))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when in ("call", "teardown"):
        _blame_shared_server_death(report)
    if report.failed and _LIVE:
        for srv in _LIVE:
            tail = srv.log_text()[-3000:]
            report.sections.append(("warren-server log (port %d), last 3000 chars" % srv.port, tail))


# --------------------------------------------------------------------------
# per-test time limit (no pytest-timeout on the machines; SIGALRM does it)

class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _time_limit(request):
    marker = request.node.get_closest_marker("timeout")
    seconds = (int(marker.args[0]) if marker else DEFAULT_TIMEOUT) * SLOWDOWN

    def on_alarm(signum, frame):
        raise TestTimeout("test exceeded its %d s time limit" % seconds)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------
# servers

_HANDED_OUT = set()  # ports free_ports returned: the kernel may offer a closed one again


def free_ports(n):
    """n free ports, none returned before in this run: each is held until all are picked."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if port not in _HANDED_OUT:
                ports.append(port)
                _HANDED_OUT.add(port)
        return ports
    finally:
        for s in socks:
            s.close()


def free_port():
    return free_ports(1)[0]


class ExternalServer:
    """An already running broker (RabbitMQ when validating the tests)."""
    external = True

    def __init__(self, spec):
        host, _, port = spec.rpartition(":")
        self.host = host or "127.0.0.1"
        self.port = int(port)
        self.user = "guest"
        self.password = "guest"
        self.data_dir = None
        self.heartbeat = None
        self.management_port = int(os.environ.get("WARREN_TEST_EXTERNAL_MANAGEMENT_PORT", "15672"))
        self.prometheus_port = int(os.environ.get("WARREN_TEST_EXTERNAL_PROMETHEUS_PORT", "15692"))

    def _unsupported(self, *a, **kw):
        pytest.skip("not possible against an external broker")

    restart = stop = kill9 = start = _unsupported

    def log_text(self):
        return ""


class WarrenServer:
    """A warren-server process owned by the test suite."""
    external = False

    def __init__(self, binary, data_dir=None, user="guest", password="guest",
                 heartbeat=None, extra_args=(), port=None, log_level="info", bind="127.0.0.1",
                 management_port=None, prometheus_port=None, wrapper=()):
        self.binary = binary
        self.wrapper = list(wrapper)  # a command the server runs under, e.g. ["prlimit", "--nofile=64", "--"]
        self.host = "127.0.0.1"  # where the tests connect (also when bound to all interfaces)
        self.bind = bind
        picked = free_ports(3)
        self.port = port or picked[0]
        self.management_port = management_port or picked[1]  # the management HTTP API
        # Prometheus /metrics; 0 = off
        self.prometheus_port = picked[2] if prometheus_port is None else prometheus_port
        self._own_tmp = None
        if data_dir is None:
            self._own_tmp = tempfile.TemporaryDirectory(prefix="warren-test-")
            data_dir = os.path.join(self._own_tmp.name, "data")
            os.makedirs(data_dir, mode=0o700)
        self.data_dir = data_dir
        self.user = user
        self.password = password
        self.heartbeat = heartbeat
        self.extra_args = list(extra_args)
        self.log_level = log_level
        self.proc = None
        self.log_path = os.path.join(os.path.dirname(data_dir.rstrip("/")) or ".",
                                     "warren-%d.log" % self.port)
        self.starts = 0
        self.pids = []
        _LIVE.append(self)

    def command(self):
        cmd = self.wrapper + [self.binary, "--port", str(self.port), "--bind", self.bind,
               "--data-dir", self.data_dir, "--default-user", self.user,
               "--default-pass", self.password, "--log-level", self.log_level,
               "--management-port", str(self.management_port),
               "--prometheus-port", str(self.prometheus_port)]
        if self.heartbeat is not None:
            cmd += ["--heartbeat", str(self.heartbeat)]
        return cmd + self.extra_args

    def start(self):
        if not os.path.exists(self.binary):
            pytest.fail("server binary %s does not exist (build the project first, or set "
                        "WARREN_SERVER / WARREN_TEST_EXTERNAL)" % self.binary, pytrace=False)
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(("\n===== start #%d: %s\n" % (self.starts, " ".join(self.command()))).encode())
        log.flush()
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        self.pids.append(self.proc.pid)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                pytest.fail("warren-server exited with code %s during start-up; log:\n%s"
                            % (code, self.log_text()[-6000:]), pytrace=False)
            try:
                # The management API starts listening just after AMQP: tests call it at once.
                for port in (self.port, self.management_port):
                    with socket.create_connection((self.host, port), timeout=0.5):
                        pass
                return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail("warren-server did not accept TCP on %s:%d within %.0f s; log:\n%s"
                            % (self.host, self.port, START_TIMEOUT, self.log_text()[-6000:]),
                            pytrace=False)
            time.sleep(0.05)

    def stop(self, grace=5.0):
        """SIGTERM, then SIGKILL after `grace` seconds.  Returns the exit code (or None)."""
        grace *= SLOWDOWN
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        report = self.sanitizer_report(proc.pid)
        if report:
            pytest.fail("warren-server (pid %d) exited with a sanitizer report:\n%s"
                        % (proc.pid, report[-8000:]), pytrace=False)
        return proc.returncode

    def kill9(self):
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def restart(self, kill=False):
        if kill:
            self.kill9()
        else:
            self.stop()
        return self.start()

    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        """The server's log, followed by the sanitizer reports of its processes."""
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            text = ""
        return text + "".join(self.sanitizer_report(pid) for pid in self.pids)

    @staticmethod
    def sanitizer_report(pid):
        text = ""
        for prefix in SANITIZER_LOGS:
            try:
                with open("%s.%d" % (prefix, pid), "rb") as f:
                    text += "\n===== sanitizer report %s.%d\n" % (prefix, pid) + f.read().decode("utf-8", "replace")
            except OSError:
                pass
        return text

    def cleanup(self):
        try:
            self.stop()
        finally:
            if self in _LIVE:
                _LIVE.remove(self)
            if self._own_tmp is not None:
                self._own_tmp.cleanup()
                self._own_tmp = None


@pytest.fixture(scope="session")
def server():
    """The shared broker for tests that only need isolation by unique names."""
    if EXTERNAL:
        yield ExternalServer(EXTERNAL)
        return
    # The login throttle is state shared across tests (all log in from 127.0.0.1): off here, and
    # tested on servers of their own (test_hardening_net.py).
    srv = WarrenServer(SERVER_BIN, extra_args=["--max-login-failures", "0"])
    try:
        srv.start()
        _SHARED.append(srv)
        yield srv
    finally:
        if srv in _SHARED:
            _SHARED.remove(srv)
        srv.cleanup()


@pytest.fixture(autouse=True)
def _revive_shared_server():
    """After a test killed the shared server (and failed for it), the next tests get a new one."""
    for srv in _SHARED:
        if not srv.is_running():
            srv.start()
    yield


@pytest.fixture
def server_factory():
    """Start private servers with custom flags: make(user=..., heartbeat=..., extra_args=[...])."""
    if EXTERNAL:
        pytest.skip("needs its own Warren server; skipped in external mode")
    made = []

    def make(**kwargs):
        srv = WarrenServer(SERVER_BIN, **kwargs)
        made.append(srv)
        return srv.start()

    try:
        yield make
    finally:
        for srv in made:
            srv.cleanup()


class PrivateNetwork:
    """A network namespace of the test's own, whose loopback device also carries TEST-NET-1's
    192.0.2.1: a non-loopback address that no other machine can reach, so tests of loopback-only
    logins never listen on the machine's real interfaces.  Sockets made inside `inside()` and
    servers started with `wrapper` live in it."""
    ip = "192.0.2.1"

    def __init__(self):
        # Holds the namespace open; nsenter and setns join it through /proc.
        self._holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"],
                                        stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.path = "/proc/%d/ns/net" % self._holder.pid
        deadline = time.monotonic() + 10
        while os.readlink(self.path) == os.readlink("/proc/self/ns/net"):
            if self._holder.poll() is not None or time.monotonic() > deadline:
                self.close()
                pytest.fail("unshare --net did not make a network namespace", pytrace=False)
            time.sleep(0.01)
        for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", self.ip + "/32", "dev", "lo"]):
            subprocess.run(["nsenter", "--net=" + self.path, "--"] + cmd, check=True, timeout=10)
        self.wrapper = ["nsenter", "--net=" + self.path, "--"]

    @contextlib.contextmanager
    def inside(self):
        """Moves this thread into the namespace (setns is per thread) and back."""
        libc = ctypes.CDLL(None, use_errno=True)
        clone_newnet = 0x40000000
        with open("/proc/thread-self/ns/net") as home, open(self.path) as target:
            if libc.setns(target.fileno(), clone_newnet) != 0:
                pytest.fail("setns: %s" % os.strerror(ctypes.get_errno()), pytrace=False)
            try:
                yield self
            finally:
                if libc.setns(home.fileno(), clone_newnet) != 0:
                    raise OSError(ctypes.get_errno(), "setns back to the test's own network namespace")

    def close(self):
        self._holder.kill()
        self._holder.wait()


@pytest.fixture
def private_network():
    if EXTERNAL:
        pytest.skip("needs its own Warren server; skipped in external mode")
    if os.geteuid() != 0:
        pytest.skip("a private network namespace needs root (CAP_SYS_ADMIN)")
    net = PrivateNetwork()
    try:
        yield net
    finally:
        net.close()


@pytest.fixture
def own_server(server_factory):
    """A fresh private server with default flags (for restarts / kills)."""
    return server_factory()


@pytest.fixture
def seed_dir():
    return SEED_DIR


# --------------------------------------------------------------------------
# clients

@pytest.fixture
def uniq(request):
    """uniq('q') -> a name unique to this test run."""
    base = request.node.name.replace("[", "-").replace("]", "")[:40]

    def make(prefix=""):
        return "%s%s-%s" % (prefix + "." if prefix else "", base, uuid.uuid4().hex[:10])

    return make


@pytest.fixture
def connect(server):
    """connect(**params) -> pika BlockingConnection; all closed at teardown."""
    conns = []

    def make(srv=None, **kw):
        c = wutil.connect(srv or server, **kw)
        conns.append(c)
        return c

    yield make
    for c in conns:
        wutil.close_quietly(c)


@pytest.fixture
def conn(connect):
    return connect()


@pytest.fixture
def ch(conn):
    return conn.channel()
