"""The configuration file (rabbitmq.conf's syntax, `--config FILE`): values from it take effect,
flags beat environment variables beat the file, `--print-config` shows each value's origin, and a
bad file (unknown key, bad value, TLS key) stops the start before the store is opened, naming
file, line and key."""
import os
import re
import subprocess

import pytest

import wutil
from amqp_raw import RawConnection
from conftest import REPO, SERVER_BIN, WarrenServer

pytestmark = pytest.mark.needs_own_server

EXAMPLE = os.path.join(REPO, "deploy", "warren.conf")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARREN_")}
    env.update(extra)
    return env


def run_server(*args, env=None):
    return subprocess.run([SERVER_BIN, *args], capture_output=True, text=True, timeout=30,
                          env=env or clean_env())


def effective(stdout):
    """--print-config's lines as {name: (value, origin)}."""
    settings = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\S+)\s+= (.*?)\s+# (.*)$", line)
        if m:
            settings[m.group(1)] = (m.group(2), m.group(3))
    return settings


class ConfigServer(WarrenServer):
    """A server whose every setting comes from its configuration file."""

    def __init__(self, conf_path, text, extra_args=()):
        super().__init__(SERVER_BIN, extra_args=extra_args)
        with open(conf_path, "w") as f:
            f.write(text.format(port=self.port, management_port=self.management_port, data_dir=self.data_dir))
        self.conf_path = conf_path

    def command(self):
        return [self.binary, "--config", self.conf_path] + self.extra_args


@pytest.fixture
def config_server(tmp_path):
    made = []

    def make(text, extra_args=(), user="guest", password="guest"):
        srv = ConfigServer(str(tmp_path / "warren.conf"), text, extra_args)
        srv.user, srv.password = user, password
        made.append(srv)
        return srv.start()

    try:
        yield make
    finally:
        for srv in made:
            srv.cleanup()


BASE = ("# written by test_config.py\n"
        "listeners.tcp.default = 127.0.0.1:{port}\n"
        "management.tcp.port = {management_port}\n"
        "prometheus.tcp.port = 0\n"
        "warren.data_dir = {data_dir}\n")


def test_values_from_the_file_take_effect(config_server):
    srv = config_server(BASE + "heartbeat = 7\nframe_max = 8192\nchannel_max = 16\n"
                        "default_user = alice\ndefault_pass = s3cret  # a comment\n"
                        "delegate_count = 32\n", user="alice", password="s3cret")
    with RawConnection(srv.host, srv.port) as c:
        reply = c.handshake(user="alice", password="s3cret", channel_max=0, frame_max=0, heartbeat=7)
        assert reply.name == "connection.open_ok"
        assert list(c.tune_args) == [16, 8192, 7]
    conn = wutil.connect(srv)  # pika, as the alice the file created
    conn.channel().queue_declare("", exclusive=True)
    conn.close()
    log = srv.log_text()
    assert "configuration file %s" % srv.conf_path in log
    assert "%s:11: delegate_count: ignored" % srv.conf_path in log, log[-3000:]


def test_flag_beats_environment_beats_file(tmp_path):
    conf = tmp_path / "w.conf"
    conf.write_text("heartbeat = 10\nframe_max = 8192\nchannel_max = 100\nwarren.data_dir = %s\n"
                    "cluster_name = prod\n" % (tmp_path / "never"))
    r = run_server("--config", str(conf), "--heartbeat", "30", "--print-config",
                   env=clean_env(WARREN_HEARTBEAT="20", WARREN_FRAME_MAX="16384"))
    assert r.returncode == 0, r.stdout + r.stderr
    s = effective(r.stdout)
    assert s["heartbeat"] == ("30", "flag --heartbeat")
    assert s["frame-max"] == ("16384", "env WARREN_FRAME_MAX")
    assert s["channel-max"] == ("100", "file %s:3 (channel_max)" % conf)
    assert s["max-message-size"] == ("134217728", "default")
    assert s["default-pass"] == ("********", "default")
    assert r.stdout.startswith("# configuration file %s\n" % conf)
    assert "warning: %s:5: cluster_name: ignored" % conf in r.stderr
    assert not (tmp_path / "never").exists(), "--print-config must not start the server"


def test_flags_alone_still_work_without_a_file(tmp_path):
    r = run_server("--port", "5999", "--bind", "127.0.0.1", "--truncate-corrupt-wal", "--print-config")
    assert r.returncode == 0, r.stdout + r.stderr
    s = effective(r.stdout)
    assert s["port"] == ("5999", "flag --port")
    assert s["bind"] == ("127.0.0.1", "flag --bind")
    assert s["truncate-corrupt-wal"] == ("true", "flag --truncate-corrupt-wal")
    assert r.stdout.startswith("# no configuration file\n")


@pytest.mark.parametrize("line, message", [
    ("heartbeats = 5", "heartbeats: unknown key"),
    ("heartbeat = abc", 'heartbeat: "abc" is not an integer'),
    ("frame_max = 100", 'frame_max: "100" is out of range (4096 to 16777216)'),
    ("ssl_options.password = secret", "ssl_options.password: this TLS setting is not supported yet"),
    ("ssl_options.versions.1 = tlsv1.1", "ssl_options.versions.1: \"tlsv1.1\" is not tlsv1.2 or tlsv1.3"),
    ("management.ssl.verify = verify_peer", "management.ssl.verify: this TLS setting is not supported yet"),
    ("not a setting", "expected `key = value`"),
])
def test_a_bad_file_stops_the_start_before_the_store(tmp_path, line, message):
    data = tmp_path / "data"
    conf = tmp_path / "w.conf"
    conf.write_text("# line 1\nwarren.data_dir = %s\n%s\n" % (data, line))
    r = run_server("--config", str(conf), "--port", "0", "--bind", "127.0.0.1", "--management-port", "0",
                   "--prometheus-port", "0")
    assert r.returncode != 0, r.stdout + r.stderr
    assert "%s:3: %s" % (conf, message) in r.stderr, r.stdout + r.stderr
    assert not data.exists(), "the store was opened"


def test_a_bad_environment_value_names_the_variable(tmp_path):
    r = run_server("--print-config", env=clean_env(WARREN_CHANNEL_MAX="0"))
    assert r.returncode != 0
    assert 'environment variable WARREN_CHANNEL_MAX: "0" is out of range (1 to 65535)' in r.stderr


def test_a_missing_config_file_stops_the_start(tmp_path):
    r = run_server("--config", str(tmp_path / "nope.conf"), "--print-config")
    assert r.returncode != 0
    assert "cannot read the configuration file %s" % (tmp_path / "nope.conf") in r.stderr


def test_the_documented_example_is_valid_commented_and_set(tmp_path):
    r = run_server("--config", EXAMPLE, "--print-config")
    assert r.returncode == 0, r.stdout + r.stderr
    settings = effective(r.stdout)
    # The one key set: the example is also the package's /etc/warren/warren.conf.
    assert settings.pop("data-dir")[0] == "/var/lib/warren"
    assert all(origin == "default" for _, origin in settings.values())
    with open(EXAMPLE) as f:
        # Every `# key = value` line set (one of each pair of alternatives), still all defaults.
        lines = [line[2:] for line in f.read().splitlines() if re.match(r"# [A-Za-z0-9_.-]+ = ", line)
                 and not line.startswith(("# vm_memory_high_watermark.absolute", "# loopback_users = ",
                                          "# load_definitions", "# warren.management_allowed_hosts",
                                          "# log.file = ",
                                          # TLS: example files and ports (test_tls.py starts with them)
                                          "# listeners.ssl.", "# ssl_options.", "# management.ssl."))]
    conf = tmp_path / "set.conf"
    conf.write_text("\n".join(lines) + "\n")
    r = run_server("--config", str(conf), "--print-config")
    assert r.returncode == 0, r.stdout + r.stderr
    defaults = effective(run_server("--print-config").stdout)
    for name, (value, origin) in effective(r.stdout).items():
        if name == "management-bind":
            continue  # the example names 0.0.0.0, RabbitMQ's; Warren's default is the AMQP address
        assert value == defaults[name][0], name
    assert "file %s" % conf in r.stdout
