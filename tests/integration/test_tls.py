"""TLS: the AMQPS listener and the management API over HTTPS, with a CA and certificates made by
the openssl CLI in a temporary directory: TLS 1.2 and 1.3 handshakes (and TLS 1.1 refused),
client certificates (verify_peer, fail_if_no_peer_cert, an untrusted one refused), EXTERNAL
login by the certificate's CN, certificate reload on SIGHUP, plain AMQP beside it."""
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import pika
import pika.exceptions as pexc
import pytest

import wutil
from conftest import free_port


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _key_and_request(cwd, name, cn):
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/O=Warren tests/CN=" + cn, cwd=cwd)


def _sign(cwd, name, ca, serial, server=False):
    ext = os.path.join(cwd, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n" if server else "extendedKeyUsage=clientAuth\n")
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
             "-set_serial", str(serial), "-days", "2", "-out", name + ".pem", "-extfile", ext, cwd=cwd)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("tls"))
    for ca in ("ca", "rogue-ca"):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2", "-subj", "/CN=Warren test " + ca, cwd=d)
    for name, cn, ca, serial, server in (("server", "localhost", "ca", 1001, True),
                                         ("server2", "localhost", "ca", 1002, True),
                                         ("client", "tls-user", "ca", 2001, False),
                                         ("nobody", "nobody", "ca", 2002, False),
                                         ("rogue", "tls-user", "rogue-ca", 3001, False)):
        _key_and_request(d, name, cn)
        _sign(d, name, ca, serial, server)
    return lambda name: os.path.join(d, name)


def _tls_server(server_factory, certs, tmp_path, fail_if_no_peer_cert=False):
    # The served files are copies, so that the reload test can replace them.
    for ext in ("pem", "key"):
        shutil.copy(certs("server." + ext), str(tmp_path / ("served." + ext)))
    srv = server_factory(extra_args=[
        "--max-login-failures", "0",
        "--ssl-port", str(free_port()), "--ssl-certfile", str(tmp_path / "served.pem"),
        "--ssl-keyfile", str(tmp_path / "served.key"), "--ssl-cacertfile", certs("ca.pem"),
        "--ssl-verify", "verify_peer",
        "--ssl-fail-if-no-peer-cert", "true" if fail_if_no_peer_cert else "false",
        "--management-ssl-port", str(free_port()), "--management-ssl-certfile", certs("server.pem"),
        "--management-ssl-keyfile", certs("server.key")])
    srv.ssl_port = int(srv.extra_args[srv.extra_args.index("--ssl-port") + 1])
    srv.management_ssl_port = int(srv.extra_args[srv.extra_args.index("--management-ssl-port") + 1])
    srv.served = lambda ext: str(tmp_path / ("served." + ext))

    def listening():
        try:
            socket.create_connection(("127.0.0.1", srv.management_ssl_port), timeout=1).close()
            return True
        except OSError:
            return False
    # The start-up waits for the plain ports; HTTPS opens just after them.
    wutil.wait_until(listening, what="the management HTTPS port")
    return srv


@pytest.fixture
def tls_server(server_factory, certs, tmp_path):
    return _tls_server(server_factory, certs, tmp_path)


def _context(certs, client="client"):
    ctx = ssl.create_default_context(cafile=certs("ca.pem"))
    if client:
        ctx.load_cert_chain(certs(client + ".pem"), certs(client + ".key"))
    return ctx


def _connect(srv, certs, client="client", credentials=None):
    return pika.BlockingConnection(pika.ConnectionParameters(
        host="127.0.0.1", port=srv.ssl_port, socket_timeout=10, stack_timeout=20, connection_attempts=1,
        ssl_options=pika.SSLOptions(_context(certs, client), server_hostname="localhost"),
        credentials=credentials or pika.PlainCredentials(srv.user, srv.password)))


def _s_client(srv, certs, *args, client="client"):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % srv.ssl_port, "-servername", "localhost",
           "-CAfile", certs("ca.pem"), "-verify_return_error", *args]
    if client:
        cmd += ["-cert", certs(client + ".pem"), "-key", certs(client + ".key")]
    # The AMQP protocol header: a TLS server answers it with connection.start, which s_client
    # prints only if its input stays open a moment.
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"AMQP\x00\x00\x09\x01")
        proc.stdin.flush()
        time.sleep(0.3)
    except BrokenPipeError:
        pass  # refused at the handshake
    out, err = proc.communicate(timeout=30)  # closes the input
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _mgmt(srv, certs, method, path, body=None):
    req = urllib.request.Request("https://localhost:%d%s" % (srv.management_ssl_port, path), method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10, context=_context(certs, client=None)) as resp:
        text = resp.read()
        return resp.status, json.loads(text) if text else None


def _round_trip(conn, queue):
    ch = conn.channel()
    ch.queue_declare(queue, auto_delete=True)
    ch.basic_publish("", queue, b"over tls")
    assert wutil.get_one(ch, queue, auto_ack=True)[2] == b"over tls"


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_handshake_tls12_and_tls13(tls_server, certs, version):
    result = _s_client(tls_server, certs, version)
    out = result.stdout.decode("utf-8", "replace")
    assert result.returncode == 0, out + result.stderr.decode()
    assert ("TLSv1.2" if version == "-tls1_2" else "TLSv1.3") in out
    assert "Verify return code: 0 (ok)" in out
    assert "C++/Linux" in out  # connection.start's server properties, decrypted
    assert "EXTERNAL" in out  # offered: TLS with verify_peer


def test_tls11_refused(tls_server, certs):
    result = _s_client(tls_server, certs, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert result.returncode != 0
    assert "C++/Linux" not in result.stdout.decode("utf-8", "replace")


def test_plain_login_over_tls_and_connection_details(tls_server, certs):
    conn = _connect(tls_server, certs)
    try:
        _round_trip(conn, "tls-plain")
        status, conns = _mgmt(tls_server, certs, "GET", "/api/connections")
        assert status == 200
        (c,) = [c for c in conns if c["port"] == tls_server.ssl_port]
        assert c["ssl"] is True and c["ssl_protocol"] == "tlsv1.3"
        assert c["auth_mechanism"] == "PLAIN"
        assert "CN=tls-user" in c["peer_cert_subject"]
        assert "CN=Warren test ca" in c["peer_cert_issuer"]
    finally:
        wutil.close_quietly(conn)


def test_plain_amqp_still_works_beside_tls(tls_server, certs):
    conn = wutil.connect(tls_server)
    try:
        _round_trip(conn, "tls-beside")
        status, conns = _mgmt(tls_server, certs, "GET", "/api/connections")
        (c,) = [c for c in conns if c["port"] == tls_server.port]
        assert c["ssl"] is False and c["ssl_protocol"] is None and c["peer_cert_subject"] is None
    finally:
        wutil.close_quietly(conn)
    # EXTERNAL is not offered without TLS.
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as s:
        s.sendall(b"AMQP\x00\x00\x09\x01")
        start = s.recv(4096)
    assert b"PLAIN AMQPLAIN" in start and b"EXTERNAL" not in start


def test_external_login_by_certificate_cn(tls_server, certs):
    assert _mgmt(tls_server, certs, "PUT", "/api/users/tls-user", {"password": "unused-here", "tags": ""})[0] in (201, 204)
    assert _mgmt(tls_server, certs, "PUT", "/api/permissions/%2F/tls-user",
                 {"configure": ".*", "write": ".*", "read": ".*"})[0] in (201, 204)
    conn = _connect(tls_server, certs, credentials=pika.credentials.ExternalCredentials())
    try:
        _round_trip(conn, "tls-external")
        status, conns = _mgmt(tls_server, certs, "GET", "/api/connections")
        (c,) = [c for c in conns if c["port"] == tls_server.ssl_port]
        assert c["user"] == "tls-user" and c["auth_mechanism"] == "EXTERNAL"
    finally:
        wutil.close_quietly(conn)
    # A certificate whose CN names no user is refused.
    with pytest.raises((pexc.ProbableAuthenticationError, pexc.ProbableAccessDeniedError, pexc.AMQPConnectionError)):
        _connect(tls_server, certs, client="nobody", credentials=pika.credentials.ExternalCredentials())
    # The same permission checks as PLAIN: no access to a vhost without permissions there.
    assert _mgmt(tls_server, certs, "PUT", "/api/vhosts/tls-other")[0] in (201, 204)
    with pytest.raises(pexc.AMQPConnectionError):
        pika.BlockingConnection(pika.ConnectionParameters(
            host="127.0.0.1", port=tls_server.ssl_port, virtual_host="tls-other", socket_timeout=10,
            connection_attempts=1, credentials=pika.credentials.ExternalCredentials(),
            ssl_options=pika.SSLOptions(_context(certs), server_hostname="localhost")))


def test_untrusted_or_missing_client_certificate_refused(server_factory, certs, tmp_path):
    srv = _tls_server(server_factory, certs, tmp_path, fail_if_no_peer_cert=True)
    for client in ("rogue", None):
        assert b"C++/Linux" not in _s_client(srv, certs, client=client).stdout
    for client in ("rogue", None):
        with pytest.raises((pexc.AMQPConnectionError, ssl.SSLError, OSError)):
            _connect(srv, certs, client=client)
    conn = _connect(srv, certs)  # the trusted certificate still gets in
    wutil.close_quietly(conn)
    assert "TLS handshake failed" in srv.log_text()


def test_management_over_https(tls_server, certs):
    status, overview = _mgmt(tls_server, certs, "GET", "/api/overview")
    assert status == 200
    protocols = {l["protocol"]: l["port"] for l in overview["listeners"]}
    assert protocols["amqp/ssl"] == tls_server.ssl_port
    assert protocols["https"] == tls_server.management_ssl_port
    assert protocols["amqp"] == tls_server.port
    # Keep-alive over TLS: several requests on one connection.
    c = http.client.HTTPSConnection("localhost", tls_server.management_ssl_port, timeout=10,
                                    context=_context(certs, client=None))
    try:
        for _ in range(3):
            c.request("GET", "/api/whoami", headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
            r = c.getresponse()
            assert r.status == 200 and json.loads(r.read())["name"] == "guest"
    finally:
        c.close()


def _served_serial(srv, certs):
    result = _s_client(srv, certs, "-showcerts")
    assert result.returncode == 0, result.stderr.decode()
    pem = result.stdout.decode("latin-1")
    pem = pem[pem.index("-----BEGIN CERTIFICATE-----"):pem.index("-----END CERTIFICATE-----") + 25]
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem.encode(), capture_output=True, check=True)
    return int(out.stdout.decode().strip().split("=")[1], 16)


def test_sighup_reloads_the_certificate_without_dropping_connections(tls_server, certs):
    assert _served_serial(tls_server, certs) == 1001
    conn = _connect(tls_server, certs)
    try:
        for ext in ("pem", "key"):
            shutil.copy(certs("server2." + ext), tls_server.served(ext))
        os.kill(tls_server.proc.pid, signal.SIGHUP)
        wutil.wait_until(lambda: "AMQPS (listeners.ssl.default): reloaded" in tls_server.log_text(), what="reload")
        assert _served_serial(tls_server, certs) == 1002
        _round_trip(conn, "tls-reload")  # the connection made before the reload works on
        # A bad new certificate keeps the previous one, logged.
        with open(tls_server.served("pem"), "w") as f:
            f.write("not a certificate\n")
        os.kill(tls_server.proc.pid, signal.SIGHUP)
        wutil.wait_until(lambda: "still serving the previous ones" in tls_server.log_text(), what="refused reload")
        assert _served_serial(tls_server, certs) == 1002
        _round_trip(conn, "tls-reload-2")
    finally:
        wutil.close_quietly(conn)


def test_bad_tls_files_stop_the_start(certs):
    from conftest import WarrenServer, SERVER_BIN
    srv = WarrenServer(SERVER_BIN, extra_args=["--ssl-port", str(free_port()), "--ssl-certfile", certs("server.pem"),
                                               "--ssl-keyfile", certs("client.key")])
    try:
        result = subprocess.run(srv.command(), capture_output=True, timeout=30)
        assert result.returncode == 1
        assert b"AMQPS (listeners.ssl.default): cannot load the key file" in result.stdout + result.stderr
    finally:
        srv.cleanup()
