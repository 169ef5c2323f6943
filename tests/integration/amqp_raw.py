"""A tiny raw AMQP 0-9-1 (and 0-8) client for protocol-level system tests.

Only what the tests need: frame encoding/decoding, argument (de)serialisation
for a handful of methods, field tables, the connection handshake and helpers
to wait for a close or for the socket to go away.  Every blocking operation
takes a timeout so no test can hang on it.
"""
import socket
import struct
import time
from decimal import Decimal

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
PROTOCOL_HEADER_0_8 = b"AMQP\x01\x01\x08\x00"
FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE

# Argument spec characters:
#   o octet, h short (16-bit), l long (32-bit), q longlong (64-bit),
#   s shortstr, S longstr, b bit (consecutive bits share octets), t table
METHODS = {
    (10, 10): ("connection.start", "ootSS"),
    (10, 11): ("connection.start_ok", "tsSs"),
    (10, 20): ("connection.secure", "S"),
    (10, 21): ("connection.secure_ok", "S"),
    (10, 30): ("connection.tune", "hlh"),
    (10, 31): ("connection.tune_ok", "hlh"),
    (10, 40): ("connection.open", "ssb"),
    (10, 41): ("connection.open_ok", "s"),
    (10, 50): ("connection.close", "hshh"),
    (10, 51): ("connection.close_ok", ""),
    (10, 60): ("connection.blocked", "s"),
    (10, 61): ("connection.unblocked", ""),
    (20, 10): ("channel.open", "s"),
    (20, 11): ("channel.open_ok", "S"),
    (20, 20): ("channel.flow", "b"),
    (20, 21): ("channel.flow_ok", "b"),
    (20, 40): ("channel.close", "hshh"),
    (20, 41): ("channel.close_ok", ""),
    (30, 10): ("access.request", "sbbbbb"),
    (30, 11): ("access.request_ok", "h"),
    (40, 10): ("exchange.declare", "hssbbbbbt"),
    (40, 11): ("exchange.declare_ok", ""),
    (40, 20): ("exchange.delete", "hsbb"),
    (40, 21): ("exchange.delete_ok", ""),
    (50, 10): ("queue.declare", "hsbbbbbt"),
    (50, 11): ("queue.declare_ok", "sll"),
    (50, 20): ("queue.bind", "hsssbt"),
    (50, 21): ("queue.bind_ok", ""),
    (50, 30): ("queue.purge", "hsb"),
    (50, 31): ("queue.purge_ok", "l"),
    (50, 40): ("queue.delete", "hsbbb"),
    (50, 50): ("queue.unbind", "hssst"),
    (50, 51): ("queue.unbind_ok", ""),
    (50, 41): ("queue.delete_ok", "l"),
    (60, 10): ("basic.qos", "lhb"),
    (60, 11): ("basic.qos_ok", ""),
    (60, 20): ("basic.consume", "hssbbbbt"),
    (60, 21): ("basic.consume_ok", "s"),
    (60, 30): ("basic.cancel", "sb"),
    (60, 31): ("basic.cancel_ok", "s"),
    (60, 40): ("basic.publish", "hssbb"),
    (60, 50): ("basic.return", "hsss"),
    (60, 60): ("basic.deliver", "sqbss"),
    (60, 70): ("basic.get", "hsb"),
    (60, 71): ("basic.get_ok", "qbssl"),
    (60, 72): ("basic.get_empty", "s"),
    (60, 80): ("basic.ack", "qb"),
    (60, 90): ("basic.reject", "qb"),
    (60, 100): ("basic.recover_async", "b"),
    (60, 110): ("basic.recover", "b"),
    (60, 111): ("basic.recover_ok", ""),
    (60, 120): ("basic.nack", "qbb"),
    (85, 10): ("confirm.select", "b"),
    (85, 11): ("confirm.select_ok", ""),
    (90, 10): ("tx.select", ""),
    (90, 11): ("tx.select_ok", ""),
    (90, 20): ("tx.commit", ""),
    (90, 21): ("tx.commit_ok", ""),
    (90, 30): ("tx.rollback", ""),
    (90, 31): ("tx.rollback_ok", ""),
}
BY_NAME = {name: (key, spec) for key, (name, spec) in METHODS.items()}

# RabbitMQ's AMQP 0-8: connection.close has other ids, channel.open-ok and basic.consume fewer
# arguments, and 0-9-1's extensions are missing.
METHODS_0_8 = {key: entry for key, entry in METHODS.items()
               if key not in {(10, 50), (10, 51), (10, 60), (10, 61), (60, 120), (85, 10), (85, 11)}}
METHODS_0_8.update({
    (10, 60): ("connection.close", "hshh"),
    (10, 61): ("connection.close_ok", ""),
    (20, 11): ("channel.open_ok", ""),
    (60, 20): ("basic.consume", "hssbbbb"),
})
BY_NAME_0_8 = {name: (key, spec) for key, (name, spec) in METHODS_0_8.items()}


class ConnectionGone(Exception):
    """The server closed the TCP connection."""


# --------------------------------------------------------------------------
# field tables

def _enc_shortstr(s):
    if isinstance(s, str):
        s = s.encode()
    if len(s) > 255:
        raise ValueError("shortstr too long")
    return struct.pack("!B", len(s)) + s


def _enc_longstr(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack("!I", len(s)) + s


def _enc_value(v):
    if isinstance(v, bool):
        return b"t" + struct.pack("!B", 1 if v else 0)
    if isinstance(v, int):
        if -(2 ** 31) <= v < 2 ** 31:
            return b"I" + struct.pack("!i", v)
        return b"l" + struct.pack("!q", v)
    if isinstance(v, float):
        return b"d" + struct.pack("!d", v)
    if isinstance(v, (str, bytes)):
        return b"S" + _enc_longstr(v)
    if isinstance(v, dict):
        return b"F" + encode_table(v)
    if isinstance(v, (list, tuple)):
        inner = b"".join(_enc_value(x) for x in v)
        return b"A" + struct.pack("!I", len(inner)) + inner
    if v is None:
        return b"V"
    raise TypeError("cannot encode %r" % (v,))


def encode_table(d):
    d = d or {}
    inner = b"".join(_enc_shortstr(k) + _enc_value(v) for k, v in d.items())
    return struct.pack("!I", len(inner)) + inner


def _dec_value(buf, off):
    t = buf[off:off + 1]
    off += 1
    if t == b"t":
        return bool(buf[off]), off + 1
    if t == b"b":
        return struct.unpack_from("!b", buf, off)[0], off + 1
    if t == b"B":
        return buf[off], off + 1
    if t == b"s":
        return struct.unpack_from("!h", buf, off)[0], off + 2
    if t == b"u":
        return struct.unpack_from("!H", buf, off)[0], off + 2
    if t == b"I":
        return struct.unpack_from("!i", buf, off)[0], off + 4
    if t == b"i":
        return struct.unpack_from("!I", buf, off)[0], off + 4
    if t == b"l":
        return struct.unpack_from("!q", buf, off)[0], off + 8
    if t == b"f":
        return struct.unpack_from("!f", buf, off)[0], off + 4
    if t == b"d":
        return struct.unpack_from("!d", buf, off)[0], off + 8
    if t == b"D":
        scale = buf[off]
        raw = struct.unpack_from("!i", buf, off + 1)[0]
        return Decimal(raw).scaleb(-scale), off + 5
    if t == b"S":
        n = struct.unpack_from("!I", buf, off)[0]
        return bytes(buf[off + 4:off + 4 + n]), off + 4 + n
    if t == b"x":
        n = struct.unpack_from("!I", buf, off)[0]
        return bytes(buf[off + 4:off + 4 + n]), off + 4 + n
    if t == b"A":
        n = struct.unpack_from("!I", buf, off)[0]
        end = off + 4 + n
        off += 4
        out = []
        while off < end:
            v, off = _dec_value(buf, off)
            out.append(v)
        return out, end
    if t == b"T":
        return struct.unpack_from("!Q", buf, off)[0], off + 8
    if t == b"F":
        return decode_table(buf, off)
    if t == b"V":
        return None, off
    raise ValueError("unknown field type %r" % t)


def decode_table(buf, off):
    n = struct.unpack_from("!I", buf, off)[0]
    end = off + 4 + n
    off += 4
    out = {}
    while off < end:
        kl = buf[off]
        key = bytes(buf[off + 1:off + 1 + kl]).decode()
        off += 1 + kl
        out[key], off = _dec_value(buf, off)
    return out, end


# --------------------------------------------------------------------------
# method arguments

def encode_args(spec, args):
    if len(spec) != len(args):
        raise ValueError("spec %r wants %d args, got %d" % (spec, len(spec), len(args)))
    out = bytearray()
    bits = []

    def flush_bits():
        if bits:
            for i in range(0, len(bits), 8):
                octet = 0
                for j, bit in enumerate(bits[i:i + 8]):
                    if bit:
                        octet |= 1 << j
                out.append(octet)
            bits.clear()

    for c, a in zip(spec, args):
        if c == "b":
            bits.append(bool(a))
            continue
        flush_bits()
        if c == "o":
            out += struct.pack("!B", a)
        elif c == "h":
            out += struct.pack("!H", a)
        elif c == "l":
            out += struct.pack("!I", a)
        elif c == "q":
            out += struct.pack("!Q", a)
        elif c == "s":
            out += _enc_shortstr(a)
        elif c == "S":
            out += _enc_longstr(a)
        elif c == "t":
            out += encode_table(a)
        else:
            raise ValueError(c)
    flush_bits()
    return bytes(out)


def decode_args(spec, buf, off=0):
    out = []
    bitpos = 8
    octet = 0
    for c in spec:
        if c == "b":
            if bitpos == 8:
                octet = buf[off]
                off += 1
                bitpos = 0
            out.append(bool(octet & (1 << bitpos)))
            bitpos += 1
            continue
        bitpos = 8
        if c == "o":
            out.append(buf[off])
            off += 1
        elif c == "h":
            out.append(struct.unpack_from("!H", buf, off)[0])
            off += 2
        elif c == "l":
            out.append(struct.unpack_from("!I", buf, off)[0])
            off += 4
        elif c == "q":
            out.append(struct.unpack_from("!Q", buf, off)[0])
            off += 8
        elif c == "s":
            n = buf[off]
            out.append(bytes(buf[off + 1:off + 1 + n]).decode("utf-8", "replace"))
            off += 1 + n
        elif c == "S":
            n = struct.unpack_from("!I", buf, off)[0]
            out.append(bytes(buf[off + 4:off + 4 + n]))
            off += 4 + n
        elif c == "t":
            v, off = decode_table(buf, off)
            out.append(v)
        else:
            raise ValueError(c)
    return out


class Method:
    def __init__(self, channel, class_id, method_id, args, methods=METHODS):
        self.channel = channel
        self.class_id = class_id
        self.method_id = method_id
        self.args = args
        self.name = methods.get((class_id, method_id), ("unknown",))[0]

    def __repr__(self):
        return "<Method ch=%d %s %r>" % (self.channel, self.name, self.args)


def method_payload(name, *args, by_name=BY_NAME):
    (cls, mth), spec = by_name[name]
    return struct.pack("!HH", cls, mth) + encode_args(spec, args)


def frame(ftype, channel, payload, end=FRAME_END):
    return struct.pack("!BHI", ftype, channel, len(payload)) + payload + bytes([end])


def content_header(size, class_id=60, flags=0, props=b""):
    return struct.pack("!HHQH", class_id, 0, size, flags) + props


# --------------------------------------------------------------------------
# the connection

class RawConnection:
    def __init__(self, host, port, timeout=5.0, header=PROTOCOL_HEADER, sock=None):
        """`header` also picks the method table: PROTOCOL_HEADER_0_8 (or 1 1 9 1) speaks 0-8.
        `sock`, if given, is an already connected socket to use instead of host:port."""
        self.header = header
        is_0_8 = header in (PROTOCOL_HEADER_0_8, b"AMQP\x01\x01\x09\x01")
        self.methods = METHODS_0_8 if is_0_8 else METHODS
        self.by_name = BY_NAME_0_8 if is_0_8 else BY_NAME
        self.sock = sock or socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.timeout = timeout
        self.start_args = None
        self.tune_args = None
        self.heartbeats_seen = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- sending
    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, ftype, channel, payload, end=FRAME_END):
        self.send(frame(ftype, channel, payload, end))

    def send_method(self, channel, name, *args):
        self.send_frame(FRAME_METHOD, channel, method_payload(name, *args, by_name=self.by_name))

    def publish(self, channel, exchange, routing_key, body=b"", mandatory=False):
        data = frame(FRAME_METHOD, channel,
                     method_payload("basic.publish", 0, exchange, routing_key, mandatory, False, by_name=self.by_name))
        data += frame(FRAME_HEADER, channel, content_header(len(body)))
        if body:
            data += frame(FRAME_BODY, channel, body)
        self.send(data)

    # --- receiving
    def _fill(self, deadline):
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("timed out waiting for data from server")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                raise ConnectionGone("connection reset")
            if not chunk:
                raise ConnectionGone("server closed the connection")
            self.buf += chunk
            return

    def recv_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_frame(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while len(self.buf) < 7:
            self._fill(deadline)
        ftype, channel, size = struct.unpack_from("!BHI", self.buf, 0)
        while len(self.buf) < 7 + size + 1:
            self._fill(deadline)
        payload = bytes(self.buf[7:7 + size])
        end = self.buf[7 + size]
        del self.buf[:8 + size]
        if end != FRAME_END:
            raise ValueError("bad frame end from server: %#x" % end)
        return ftype, channel, payload

    def read_method(self, timeout=None, skip_content=True):
        """Next method frame (heartbeats skipped, and content frames too unless asked)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            ftype, channel, payload = self.read_frame(max(0.0, deadline - time.monotonic()) or 0.001)
            if ftype == FRAME_HEARTBEAT:
                self.heartbeats_seen += 1
                continue
            if ftype != FRAME_METHOD:
                if skip_content:
                    continue
                return (ftype, channel, payload)
            cls, mth = struct.unpack_from("!HH", payload, 0)
            spec = self.methods.get((cls, mth), (None, ""))[1]
            args = decode_args(spec, payload, 4)
            return Method(channel, cls, mth, args, self.methods)

    def expect(self, name, timeout=None):
        m = self.read_method(timeout)
        if m.name != name:
            raise AssertionError("expected %s, got %r" % (name, m))
        return m

    def read_message(self, timeout=None):
        """After a basic.deliver / get_ok / return: read the header and body frames."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        ftype, channel, payload = self.read_frame(max(0.001, deadline - time.monotonic()))
        while ftype == FRAME_HEARTBEAT:
            ftype, channel, payload = self.read_frame(max(0.001, deadline - time.monotonic()))
        assert ftype == FRAME_HEADER, "expected content header, got frame type %d" % ftype
        size = struct.unpack_from("!Q", payload, 4)[0]
        body = bytearray()
        while len(body) < size:
            ftype, channel, payload = self.read_frame(max(0.001, deadline - time.monotonic()))
            if ftype == FRAME_HEARTBEAT:
                continue
            assert ftype == FRAME_BODY, "expected body frame, got %d" % ftype
            body += payload
        return bytes(body)

    # --- protocol steps
    def handshake(self, user="guest", password="guest", vhost="/", heartbeat=0,
                  frame_max=0, channel_max=0, capabilities=None, open_connection=True):
        self.send(self.header)
        start = self.expect("connection.start")
        self.start_args = start.args
        caps = capabilities if capabilities is not None else {
            "authentication_failure_close": True,
            "consumer_cancel_notify": True,
            "publisher_confirms": True,
            "basic.nack": True,
        }
        client_props = {"product": "warren-raw-test", "capabilities": caps}
        response = b"\x00" + user.encode() + b"\x00" + password.encode()
        self.send_method(0, "connection.start_ok", client_props, "PLAIN", response, "en_US")
        tune = self.read_method()
        if tune.name != "connection.tune":
            return tune  # probably connection.close (auth failure)
        self.tune_args = tune.args
        srv_channel_max, srv_frame_max, _srv_hb = tune.args
        self.frame_max = frame_max or srv_frame_max
        self.channel_max = channel_max or srv_channel_max
        self.send_method(0, "connection.tune_ok", self.channel_max, self.frame_max, heartbeat)
        if not open_connection:
            return tune
        self.send_method(0, "connection.open", vhost, "", False)
        return self.read_method()

    def open_channel(self, channel=1):
        self.send_method(channel, "channel.open", "")
        return self.expect("channel.open_ok")

    def call(self, channel, name, *args, expect=None, timeout=None):
        self.send_method(channel, name, *args)
        m = self.read_method(timeout)
        if expect is not None and m.name != expect:
            raise AssertionError("expected %s, got %r" % (expect, m))
        return m

    def wait_for_close(self, timeout=5.0):
        """Read until the server sends connection.close.  Returns (code, text, class, method).

        Replies close-ok like a polite client.  Raises ConnectionGone if the TCP
        connection ends without a connection.close."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("no connection.close within %.1fs" % timeout)
            m = self.read_method(remaining)
            if isinstance(m, Method) and m.name == "connection.close":
                try:
                    self.send_method(0, "connection.close_ok")
                except OSError:
                    pass
                return tuple(m.args)

    def wait_for_eof(self, timeout=5.0):
        """True when the server closes the socket within timeout (data before EOF is discarded)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.buf += chunk
