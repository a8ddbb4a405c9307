"""`socket` of the simulated board: the unix port's real sockets (so the
firmware's MQTT client talks to the real broker) below a simulated link.

As on the esp32 and rp2 ports (lwIP): getaddrinfo returns (ip, port) tuples
and connect takes them; sendall exists; a timeout raises
OSError(ETIMEDOUT). The link is the simulator's: with the access point out of
reach every call fails with EHOSTUNREACH, and a broker fault the scenario set
takes the broker's place for new connections. Sockets of a boot are closed
when it ends (on a chip, deep sleep and resets end every connection).
Sending, connecting and closing first let the simulator's clock catch up
with the device (_sim.sync), so the hub sees each packet at the device's time.
"""
import errno
import io
import select
import sys

import _sim

_p = sys.path
sys.path = []
try:
    import socket as _host
finally:
    sys.path = _p

AF_INET = 2
AF_INET6 = 10
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_RAW = 3
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IP = 0
SOL_SOCKET = 0xFFF
SO_REUSEADDR = 4
SO_BROADCAST = 32
TCP_NODELAY = 1

_MQTT_PUBLISH = 3
REAL_WAIT_S = 20  # below the host's 30 s limit for a device that does not yield


def _link():
    if not _sim.wifi_ok:
        raise OSError(errno.EHOSTUNREACH)


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    _link()
    out = []
    for ai in _host.getaddrinfo(host, port, 0, SOCK_STREAM):
        if ai[0] != _host.AF_INET:
            continue
        _, ip, p = _host.sockaddr(ai[4])
        out.append((AF_INET, SOCK_STREAM, IPPROTO_TCP, "", (_host.inet_ntop(_host.AF_INET, ip), p)))
    if not out:
        raise OSError(-202)  # lwIP's "host not found" (EAI_FAIL on esp32)
    return out


def _publish_head(data):
    """(topic, payload length, payload bytes already in `data`) of an MQTT
    PUBLISH packet, or None: the simulator follows each frame sent to know
    when the hub has taken in that very frame."""
    if not data or data[0] >> 4 != _MQTT_PUBLISH:
        return None
    i, shift, remaining = 1, 0, 0
    while i < len(data) and i < 5:
        remaining |= (data[i] & 0x7F) << shift
        shift += 7
        i += 1
        if not data[i - 1] & 0x80:
            break
    start = i
    if i + 2 > len(data):
        return None
    size = (data[i] << 8) | data[i + 1]
    i += 2 + size
    if (data[0] >> 1) & 3:
        i += 2  # the packet id of QoS 1 and 2
    topic = bytes(data[start + 2:start + 2 + size]).decode()
    return topic, remaining - (i - start), bytes(data[i:])


def _followed(topic):
    return topic.endswith("/event") or topic.endswith("/state")


class socket(io.IOBase):
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=IPPROTO_TCP):
        _link()
        if af != AF_INET or type != SOCK_STREAM:
            raise OSError(errno.EINVAL)  # the simulated link carries TCP only
        self._s = _host.socket(_host.AF_INET, _host.SOCK_STREAM)
        self._silent = False  # connected to a broker that never answers
        self._pub = None  # [topic, payload length, payload so far] of a PUBLISH being sent
        # no Nagle on the loopback link: a board's lwIP pushes each small MQTT
        # packet out at once on an idle link, and delayed ACKs would add 40 ms
        self._s.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY
        self._timeout = None
        _sim.sockets.append(self)

    def settimeout(self, t):
        self._timeout = t
        # The link answers in no virtual time (the firmware's deadlines run on
        # the virtual clock); how long the host takes to answer in real time is
        # not the device's business, so a real wait gets at least REAL_WAIT_S
        # whatever the firmware's timeout (a loaded machine must not make a
        # device time out where a board would not). A broker that never
        # answers is the fault broker's "silent" mode, timed in virtual time.
        self._s.settimeout(t if t is None or t == 0 else max(t, REAL_WAIT_S))

    def setblocking(self, flag):
        self.settimeout(None if flag else 0)

    def setsockopt(self, level, opt, value):
        pass  # options of lwIP that have no effect on the simulated link

    def connect(self, addr):
        _link()
        _sim.sync()
        host, port = addr
        if _sim.fault is not None and port == _sim.boot["mqtt_port"]:
            host, port, mode = _sim.fault  # the broker this device meets misbehaves
            self._silent = mode == "silent"
        self._s.connect(_host.getaddrinfo(host, port)[0][-1])

    def send(self, data):
        _link()
        _sim.sync()
        return self._s.send(data)

    def write(self, data):
        return self.send(data)

    def sendall(self, data):
        _link()
        _sim.sync()
        mv = memoryview(data)
        while mv:
            n = self._s.send(mv)
            mv = mv[n:]
        if self._pub is not None:
            self._pub_body(bytes(data))  # the payload after a PUBLISH's head
            return
        head = _publish_head(data)
        if head is not None:
            topic, need, body = head
            if _followed(topic):
                self._pub = [topic, need, b""]
                self._pub_body(body)
            else:
                _sim.post({"pub": topic})
            _sim.published()
        elif data[:1] == b"\xc0":
            # PINGREQ: the round trip takes no virtual time; wait (real time,
            # bounded) until the broker's PINGRESP can be read
            p = select.poll()
            p.register(self._s, select.POLLIN)
            p.poll(REAL_WAIT_S * 1000)

    def _pub_body(self, data):
        pub = self._pub
        pub[2] += data
        if len(pub[2]) >= pub[1]:
            self._pub = None
            _sim.post({"pub": pub[0], "msg": pub[2][:pub[1]].hex()})

    def _wait_out_silence(self):
        """A read from a broker that never answers: nothing arrives, so the
        read ends as lwIP ends it, after its timeout, in virtual time."""
        if self._timeout == 0:
            raise OSError(errno.EAGAIN)
        _sim.block("sleep", _sim.now + (1e12 if self._timeout is None else self._timeout))
        raise OSError(errno.ETIMEDOUT)

    def recv(self, n):
        _link()
        if self._silent:
            self._wait_out_silence()
        return self._s.recv(n)

    def read(self, n=-1):
        return self.recv(n)

    def readinto(self, buf, n=-1):
        _link()
        if self._silent:
            self._wait_out_silence()
        return self._s.readinto(buf) if n < 0 else self._s.readinto(buf, n)

    def ioctl(self, op, arg):
        if op == 10:  # MP_STREAM_GET_FILENO: poll() waits on the real socket
            return self._s.fileno()
        if op == 4:  # MP_STREAM_CLOSE
            self.close()
            return 0
        return -1

    def fileno(self):
        return self._s.fileno()

    def close(self):
        _sim.sync()  # the broker sees the connection end now
        if self in _sim.sockets:
            _sim.sockets.remove(self)
        self._s.close()
