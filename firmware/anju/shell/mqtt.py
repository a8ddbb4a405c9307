"""The MQTT 3.1.1 client the devices run (QoS 0 and 1, one connection).

It replaces micropython-lib's umqtt.simple, whose defects we measured:

* a refused CONNACK raises `MQTTException`, which is not an OSError, so the
  apps' `except OSError` misses it and the app dies;
* `connect()` has no timeout, so a broker that accepts TCP and never answers
  hangs the device forever;
* `check_msg()` leaves the socket blocking, so every later PUBACK wait is
  unbounded;
* it never sends PINGREQ, so Mosquitto drops an idle mains device at
  1.5 x keepalive and its last will announces it "offline".
(The PyPI copy, 1.3.4 from 2017, also imports the removed `ussl`.)

Every wait is bounded: the socket timeout is set before connect and before
every blocking read or write, and a whole exchange (CONNACK, PUBACK, SUBACK)
is bounded by `timeout_ms` measured with `time.ticks_ms`. `check_msg()` only
reads what `poll(0)` says is already readable.

Exceptions, all OSError so one `except OSError` in the apps covers the network:

    OSError                 socket errors, passed through as the port raises them
     |                      ("connection closed", timeouts: errno.ETIMEDOUT or
     |                      the socket's own timeout error, "no PINGRESP")
     +-- MQTTError          the broker or the bytes broke the protocol: refused
                            CONNACK (`code` = return code), refused SUBACK,
                            malformed or oversized packet (`code` = None)

It never blocks without a timeout, never raises anything but OSError on
network trouble, and never logs or prints anything (least of all the password).
Invalid arguments from the caller (bad QoS, empty topic) raise ValueError.
"""
import errno
import select
import socket
import struct
import time

# Incoming packets larger than this are refused: a device has little RAM and
# nothing we subscribe to is bigger.
MAX_PACKET = 4096
# check_msg() handles at most this many packets per call, so a flood cannot
# keep it from returning; the rest wait for the next call.
MAX_PACKETS_PER_CHECK = 32

_CONNACK_NAMES = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}

_PINGREQ = b"\xc0\x00"
_DISCONNECT = b"\xe0\x00"


class MQTTError(OSError):
    """The broker refused us or sent bytes that break MQTT 3.1.1.

    `code` is the CONNACK return code of a refused connection, else None.
    """

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


def _bytes(value):
    if isinstance(value, str):
        return value.encode()
    return value


def _varint(n):
    """Remaining-length bytes (1..4) of `n`."""
    if n < 0 or n > 268435455:
        raise ValueError("packet too large for MQTT")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return out


def _field(data):
    """A length-prefixed string or binary field."""
    return struct.pack("!H", len(data)) + data


class MQTTClient:
    def __init__(self, client_id, server, port=1883, user=None, password=None,
                 keepalive=60, timeout_ms=5000):
        if password is not None and user is None:
            raise ValueError("MQTT 3.1.1 needs a user name with a password")
        if keepalive < 0 or keepalive > 65535:
            raise ValueError("keepalive must be 0..65535 s")
        self.client_id = _bytes(client_id)
        self.server = server
        self.port = port
        self.user = None if user is None else _bytes(user)
        self._password = None if password is None else _bytes(password)
        self.keepalive = keepalive
        self.timeout_ms = timeout_ms
        self.sock = None
        self._poller = None
        self._cb = None
        self._pid = 0
        self._will = None
        self._last_tx = time.ticks_ms()
        self._ping_sent = None  # ticks of the PINGREQ still waiting for its PINGRESP

    def __repr__(self):
        # The password is deliberately left out.
        return "<MQTTClient %r %s:%d>" % (self.client_id, self.server, self.port)

    # -- configuration --------------------------------------------------------
    def set_callback(self, f):
        """`f(topic_bytes, msg_bytes)` receives every incoming PUBLISH."""
        self._cb = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        if qos not in (0, 1, 2):
            raise ValueError("will QoS must be 0, 1 or 2")
        topic = _bytes(topic)
        if not topic:
            raise ValueError("empty will topic")
        self._will = (topic, _bytes(msg), retain, qos)

    # -- connection ---------------------------------------------------------------
    def connect(self, clean_session=True):
        """Open the TCP connection and log in; True if the broker had a session.

        Raises MQTTError (with `code`) if the broker refuses, OSError on any
        other failure, within `timeout_ms` of waiting for the broker.
        """
        self.close()
        addr = socket.getaddrinfo(self.server, self.port)[0][-1]
        sock = socket.socket()
        self.sock = sock
        try:
            sock.settimeout(self.timeout_ms / 1000)
            sock.connect(addr)
            self._send_connect(clean_session)
            op, body = self._read_packet(time.ticks_add(time.ticks_ms(), self.timeout_ms))
            if op != 0x20 or len(body) != 2:
                raise MQTTError("expected CONNACK, got packet type 0x%02x" % op)
            rc = body[1]
            if rc:
                raise MQTTError("connection refused: %s (code %d)"
                                % (_CONNACK_NAMES.get(rc, "unknown reason"), rc), rc)
        except OSError:
            self.close()
            raise
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        self._poller = poller
        self._ping_sent = None
        return bool(body[0] & 1)

    def _send_connect(self, clean_session):
        flags = 0x02 if clean_session else 0
        payload = [_field(self.client_id)]
        if self._will is not None:
            topic, msg, retain, qos = self._will
            flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
            payload.append(_field(topic))
            payload.append(_field(msg))
        if self.user is not None:
            flags |= 0x80
            payload.append(_field(self.user))
            if self._password is not None:
                flags |= 0x40
                payload.append(_field(self._password))
        variable = b"\x00\x04MQTT\x04" + bytes((flags,)) + struct.pack("!H", self.keepalive)
        size = len(variable)
        for part in payload:
            size += len(part)
        self._send(b"\x10" + _varint(size) + variable)
        for part in payload:
            self._send(part)

    def disconnect(self):
        """Say goodbye (the broker discards the will) and close; never raises."""
        if self.sock is not None:
            try:
                self._send(_DISCONNECT)
            except OSError:
                pass
        self.close()

    def close(self):
        """Drop the connection without DISCONNECT, so the broker publishes the
        will; never raises."""
        sock = self.sock
        self.sock = None
        self._poller = None
        self._ping_sent = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # -- operations ---------------------------------------------------------------
    def publish(self, topic, msg, retain=False, qos=0):
        """Send a PUBLISH; for QoS 1 wait (at most `timeout_ms`) for its PUBACK,
        handing any PUBLISH that arrives meanwhile to the callback."""
        if qos not in (0, 1):
            raise ValueError("publish QoS must be 0 or 1")
        topic = _bytes(topic)
        msg = _bytes(msg)
        if not topic:
            raise ValueError("empty topic")
        size = 2 + len(topic) + len(msg)
        first = 0x30 | (qos << 1) | (1 if retain else 0)
        if qos:
            pid = self._next_pid()
            size += 2
            head = bytes((first,)) + _varint(size) + _field(topic) + struct.pack("!H", pid)
        else:
            head = bytes((first,)) + _varint(size) + _field(topic)
        self._send(head)
        if msg:
            self._send(msg)
        if qos:
            self._wait_for(0x40, pid, "PUBACK")

    def subscribe(self, topic, qos=0):
        """Subscribe and wait (at most `timeout_ms`) for the SUBACK; returns the
        granted QoS. A refusal (0x80) raises MQTTError."""
        if qos not in (0, 1):
            raise ValueError("subscribe QoS must be 0 or 1")
        topic = _bytes(topic)
        if not topic:
            raise ValueError("empty topic filter")
        pid = self._next_pid()
        self._send(b"\x82" + _varint(2 + 2 + len(topic) + 1) + struct.pack("!H", pid)
                   + _field(topic) + bytes((qos,)))
        granted = self._wait_for(0x90, pid, "SUBACK")
        if granted == 0x80:
            raise MQTTError("subscription to %r refused" % topic)
        return granted

    def ping(self):
        """Send a PINGREQ; its PINGRESP is handled by check_msg()."""
        self._send(_PINGREQ)
        if self._ping_sent is None:
            self._ping_sent = time.ticks_ms()

    def check_msg(self):
        """Handle the packets already readable, then keep the link alive.

        Never blocks waiting for the broker: it reads only after poll(0)
        reports data (a packet that has started is read to its end, bounded by
        `timeout_ms`). Raises OSError ("no PINGRESP") if the broker has not
        answered a PINGREQ within `timeout_ms` + keepalive/2.
        """
        if self.sock is None:
            raise OSError("not connected")
        for _ in range(MAX_PACKETS_PER_CHECK):
            if not self._poller.poll(0):
                break
            op, body = self._read_packet(time.ticks_add(time.ticks_ms(), self.timeout_ms))
            self._dispatch(op, body)
        if self.keepalive <= 0:
            return
        now = time.ticks_ms()
        half_ms = self.keepalive * 500
        if self._ping_sent is not None:
            if time.ticks_diff(now, self._ping_sent) > self.timeout_ms + half_ms:
                raise OSError(errno.ETIMEDOUT, "no PINGRESP from the broker")
        elif time.ticks_diff(now, self._last_tx) >= half_ms:
            self.ping()

    def wait_msg(self, timeout_ms):
        """Wait at most `timeout_ms` for the next packet and handle it (a
        PUBLISH goes to the callback). OSError when nothing came in time or
        the link failed; after a timeout the connection is closed, since a
        packet may have been cut off mid-way."""
        if self.sock is None:
            raise OSError("not connected")
        try:
            op, body = self._read_packet(time.ticks_add(time.ticks_ms(), timeout_ms))
        except OSError:
            self.close()
            raise
        self._dispatch(op, body)

    # -- internals ------------------------------------------------------------------
    def _next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    def _send(self, data):
        sock = self.sock
        if sock is None:
            raise OSError("not connected")
        sock.settimeout(self.timeout_ms / 1000)
        sock.sendall(data)
        self._last_tx = time.ticks_ms()

    def _protocol_error(self, message):
        # The stream cannot be trusted past a bad packet: drop the connection.
        self.close()
        return MQTTError(message)

    def _recv(self, n, deadline):
        """Exactly `n` bytes, each read bounded by what is left until `deadline`."""
        sock = self.sock
        if sock is None:
            raise OSError("not connected")
        data = b""
        while len(data) < n:
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                raise OSError(errno.ETIMEDOUT, "timed out waiting for the broker")
            sock.settimeout(left / 1000)
            chunk = sock.recv(n - len(data))
            if not chunk:
                self.close()
                raise OSError("connection closed")
            data = chunk if not data else data + chunk
        return data

    def _read_packet(self, deadline):
        """(first byte, body) of the next packet."""
        op = self._recv(1, deadline)[0]
        size = 0
        shift = 0
        while True:
            byte = self._recv(1, deadline)[0]
            size |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21:
                raise self._protocol_error("malformed packet: remaining length over 4 bytes")
        if size > MAX_PACKET:
            raise self._protocol_error("packet of %d bytes refused (limit %d)" % (size, MAX_PACKET))
        body = self._recv(size, deadline) if size else b""
        return op, body

    def _wait_for(self, want, pid, name):
        """The byte after the packet id of the `want` packet answering `pid`
        (the SUBACK return code), or None; other packets are dispatched."""
        deadline = time.ticks_add(time.ticks_ms(), self.timeout_ms)
        while True:
            op, body = self._read_packet(deadline)
            if op & 0xF0 == want:
                if len(body) < 2 or (want == 0x40 and len(body) != 2):
                    raise self._protocol_error("malformed packet: short %s" % name)
                if (body[0] << 8 | body[1]) == pid:
                    return body[2] if len(body) > 2 else None
                # A late answer to an earlier packet we gave up on.
            else:
                self._dispatch(op, body)
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                raise OSError(errno.ETIMEDOUT, "timed out waiting for %s" % name)

    def _dispatch(self, op, body):
        kind = op & 0xF0
        if kind == 0x30:
            self._handle_publish(op, body)
        elif kind == 0xD0:
            if body:
                raise self._protocol_error("malformed packet: PINGRESP with a body")
            self._ping_sent = None
        elif kind in (0x40, 0x90):
            pass  # a late PUBACK/SUBACK for a wait that already timed out
        else:
            raise self._protocol_error("malformed packet: unexpected type 0x%02x" % op)

    def _handle_publish(self, op, body):
        qos = (op >> 1) & 3
        if qos > 1:
            raise self._protocol_error("malformed packet: PUBLISH with QoS %d" % qos)
        if len(body) < 2:
            raise self._protocol_error("malformed packet: short PUBLISH")
        tlen = body[0] << 8 | body[1]
        start = 2 + tlen
        if qos:
            start += 2
        if start > len(body):
            raise self._protocol_error("malformed packet: PUBLISH topic past its end")
        topic = body[2:2 + tlen]
        msg = body[start:]
        if self._cb is not None:
            self._cb(topic, msg)
        if qos:
            # Acknowledge only after the callback has taken the message.
            self._send(b"\x40\x02" + body[2 + tlen:start])
