"""The devices' MQTT client (firmware/anju/shell/mqtt.py) on real sockets.

The firmware module runs under CPython through the simulator's loader, with
CPython's `socket` and `select` and a `time` shim whose ticks the test moves
(so keepalive is tested without waiting for it). Peers are a private
Mosquitto and scripted TCP servers on free loopback ports; every failure the
client can meet must come out as an OSError within its bound.
"""

from __future__ import annotations

import queue
import shutil
import socket
import subprocess
import threading
import time
import types
from pathlib import Path
from typing import Callable, Iterator

import paho.mqtt.client as paho
import pytest

from host_tools.mosquitto import Mosquitto
from simulator.loader import DeviceImporter

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 5.0
# Far above any bound the client is given here, far below a hang.
GENEROUS_S = 4.0
TICKS_MASK = 0x3FFFFFFF

CONNACK_OK = b"\x20\x02\x00\x00"


# -- helpers ---------------------------------------------------------------------
class FakeClock:
    """MicroPython's ticks_* over a virtual millisecond counter the test moves."""

    def __init__(self, start_ms: int = 0) -> None:
        self.now_ms = start_ms & TICKS_MASK
        self.module = types.ModuleType("time")
        self.module.ticks_ms = lambda: self.now_ms
        self.module.ticks_diff = self._ticks_diff
        self.module.ticks_add = lambda a, delta: (a + delta) & TICKS_MASK

    @staticmethod
    def _ticks_diff(a: int, b: int) -> int:
        d = (a - b) & TICKS_MASK
        return d - 0x40000000 if d & 0x20000000 else d

    def advance(self, ms: int) -> None:
        self.now_ms = (self.now_ms + ms) & TICKS_MASK


def wait_until(predicate: Callable[[], object], timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return bool(predicate())


def bounded(call: Callable[[], object], limit: float = GENEROUS_S) -> BaseException | None:
    """Run `call` in a thread; fail the test (instead of hanging it) if it has
    not returned within `limit` wall seconds. Returns what it raised, or None.
    A call left blocked ends when the fixtures close the peer's sockets."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed back to the test thread
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=run, name="bounded-call", daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        pytest.fail("call still blocked after %.1f s" % limit)
    return outcome[0]


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def split_packets(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Whole packets at the front of `buf`, and the rest."""
    packets = []
    while len(buf) >= 2:
        size, shift, i = 0, 0, 1
        while True:
            if i >= len(buf):
                return packets, buf
            byte = buf[i]
            size |= (byte & 0x7F) << shift
            shift += 7
            i += 1
            if not byte & 0x80:
                break
        if len(buf) < i + size:
            break
        packets.append((buf[0], buf[i:i + size]))
        buf = buf[i + size:]
    return packets, buf


class ScriptedServer:
    """A one-connection-at-a-time MQTT peer that records what it receives.

    connack: bytes sent after CONNECT (None: stay silent). after_connack: raw
    bytes sent right after it. answer_ping / puback: whether PINGREQ and QoS 1
    PUBLISH are answered. before_puback: raw bytes sent before each PUBACK.
    close_after_connack: drop the connection once CONNACK is out.
    suback_code: the return code of every SUBACK.
    """

    def __init__(self, *, connack: bytes | None = CONNACK_OK, after_connack: bytes = b"",
                 answer_ping: bool = True, puback: bool = True, before_puback: bytes = b"",
                 puback_raw: bytes | None = None, close_after_connack: bool = False,
                 suback_code: int = 1) -> None:
        self.connack = connack
        self.after_connack = after_connack
        self.answer_ping = answer_ping
        self.puback = puback
        self.before_puback = before_puback
        self.puback_raw = puback_raw
        self.close_after_connack = close_after_connack
        self.suback_code = suback_code
        self.received: list[tuple[int, bytes]] = []
        self.sent_pingresps = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.listener.settimeout(0.02)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._run, name="scripted-mqtt", daemon=True)
        self.thread.start()

    def types(self) -> list[int]:
        with self._lock:
            return [op for op, _ in self.received]

    def packets(self, kind: int) -> list[bytes]:
        with self._lock:
            return [body for op, body in self.received if op & 0xF0 == kind]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            conn.settimeout(0.02)
            self._conns.append(conn)
            try:
                self._serve(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = conn.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                return
            packets, buf = split_packets(buf + chunk)
            for op, body in packets:
                with self._lock:
                    self.received.append((op, body))
                if not self._answer(conn, op, body):
                    return

    def _answer(self, conn: socket.socket, op: int, body: bytes) -> bool:
        kind = op & 0xF0
        if kind == 0x10 and self.connack is not None:
            conn.sendall(self.connack + self.after_connack)
            if self.close_after_connack:
                return False
        elif kind == 0xC0 and self.answer_ping:
            conn.sendall(b"\xd0\x00")
            with self._lock:
                self.sent_pingresps += 1
        elif kind == 0x30 and (op >> 1) & 3 == 1 and self.puback:
            tlen = body[0] << 8 | body[1]
            pid = body[2 + tlen:4 + tlen]
            conn.sendall(self.before_puback
                         + (self.puback_raw if self.puback_raw is not None else b"\x40\x02" + pid))
        elif kind == 0x80:
            conn.sendall(b"\x90\x03" + body[:2] + bytes((self.suback_code,)))
        elif kind == 0xE0:
            return False
        return True

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=WAIT_S)
        self.listener.close()
        for conn in self._conns:
            conn.close()


class PahoWatcher:
    """A paho subscriber standing in for the hub, with an inbox queue."""

    def __init__(self, broker: Mosquitto, topic: str) -> None:
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        connected, subscribed = threading.Event(), threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="watcher",
                                  protocol=paho.MQTTv311)
        self.client.on_connect = lambda *args: connected.set()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_message = lambda c, u, m: self.inbox.put((m.topic, m.payload))
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        assert connected.wait(WAIT_S), "paho watcher did not connect"
        self.client.subscribe(topic, qos=1)
        assert subscribed.wait(WAIT_S), "paho watcher did not subscribe"

    def next(self) -> tuple[str, bytes]:
        return self.inbox.get(timeout=WAIT_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# -- fixtures -------------------------------------------------------------------
@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start_ms=1000)


@pytest.fixture
def mqtt(clock: FakeClock) -> types.ModuleType:
    imp = DeviceImporter(str(REPO / "firmware"), shims={"time": clock.module})
    return imp.load("anju.shell.mqtt")


@pytest.fixture
def servers() -> Iterator[Callable[..., ScriptedServer]]:
    made: list[ScriptedServer] = []

    def factory(**kwargs: object) -> ScriptedServer:
        server = ScriptedServer(**kwargs)
        made.append(server)
        return server

    yield factory
    for server in made:
        server.close()


@pytest.fixture
def clients(mqtt: types.ModuleType) -> Iterator[Callable[..., object]]:
    made: list[object] = []

    def factory(port: int, **kwargs: object) -> object:
        kwargs.setdefault("timeout_ms", 1000)
        client = mqtt.MQTTClient(kwargs.pop("client_id", "dev-test"), "127.0.0.1", port, **kwargs)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()


@pytest.fixture
def watchers() -> Iterator[Callable[[Mosquitto, str], PahoWatcher]]:
    made: list[PahoWatcher] = []

    def factory(broker: Mosquitto, topic: str) -> PahoWatcher:
        watcher = PahoWatcher(broker, topic)
        made.append(watcher)
        return watcher

    yield factory
    for watcher in made:
        watcher.close()


def check_until(client, predicate: Callable[[], object]) -> bool:
    def step() -> object:
        client.check_msg()
        return predicate()
    return wait_until(step)


# -- 1. against Mosquitto -------------------------------------------------------------
@pytest.mark.broker
def test_qos1_round_trip_through_mosquitto(make_broker, clients) -> None:
    broker = make_broker("device-client")
    client = clients(broker.port, client_id="door-1", keepalive=30, timeout_ms=3000)
    got: list[tuple[bytes, bytes]] = []
    client.set_callback(lambda topic, msg: got.append((topic, msg)))

    assert client.connect() is False
    assert client.subscribe("anju/test/echo", qos=1) == 1
    client.publish("anju/test/echo", b"\x00frame\xff", qos=1)
    client.publish(b"anju/test/echo", "text", qos=0)

    assert check_until(client, lambda: len(got) == 2), got
    assert got == [(b"anju/test/echo", b"\x00frame\xff"), (b"anju/test/echo", b"text")]
    client.disconnect()


@pytest.mark.broker
def test_persistent_session_is_reported(make_broker, clients) -> None:
    broker = make_broker("device-session")
    client = clients(broker.port, client_id="smoke-1", timeout_ms=3000)
    assert client.connect(clean_session=False) is False
    client.disconnect()
    assert client.connect(clean_session=False) is True
    client.disconnect()


@pytest.mark.broker
def test_last_will_is_published_after_close_not_after_disconnect(make_broker, clients,
                                                                 watchers) -> None:
    broker = make_broker("device-will")
    watcher = watchers(broker, "anju/test/+/status")

    client = clients(broker.port, client_id="door-2", timeout_ms=3000)
    client.set_last_will("anju/test/door-2/status", "offline", retain=False, qos=1)
    client.connect()
    client.publish("anju/test/door-2/status", "online", qos=1)
    assert watcher.next() == ("anju/test/door-2/status", b"online")
    client.close()
    assert watcher.next() == ("anju/test/door-2/status", b"offline")

    # A clean DISCONNECT discards the will: the next thing the watcher sees is
    # the marker published after it, not "offline".
    client.connect()
    client.disconnect()
    marker = clients(broker.port, client_id="marker", timeout_ms=3000)
    marker.connect()
    marker.publish("anju/test/marker/status", "after", qos=1)
    marker.disconnect()
    assert watcher.next() == ("anju/test/marker/status", b"after")


# -- 2. refused ---------------------------------------------------------------------
@pytest.mark.broker
def test_mosquitto_refusing_anonymous_raises_mqtt_error_code_5(make_broker, clients,
                                                               mqtt) -> None:
    broker = make_broker("no-anon", extra_config=["allow_anonymous false"])
    client = clients(broker.port, timeout_ms=3000)
    with pytest.raises(OSError) as caught:
        client.connect()
    assert isinstance(caught.value, mqtt.MQTTError)
    assert caught.value.code == 5
    assert "not authorised" in str(caught.value)
    assert client.sock is None


@pytest.mark.broker
def test_user_and_password_reach_mosquitto_and_never_the_error(make_broker, clients, mqtt,
                                                               tmp_path: Path) -> None:
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd not installed (it ships with mosquitto)")
    password_file = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(password_file), "door", "s3cret-pw"],
                   check=True, capture_output=True)
    broker = make_broker("passwords", extra_config=["allow_anonymous false",
                                                    f"password_file {password_file}"])
    good = clients(broker.port, client_id="door-3", user="door", password="s3cret-pw")
    good.connect()
    good.disconnect()

    bad = clients(broker.port, client_id="door-4", user="door", password="wrong-pw-value")
    with pytest.raises(mqtt.MQTTError) as caught:
        bad.connect()
    assert caught.value.code in (4, 5)
    for text in (str(caught.value), repr(caught.value), repr(bad)):
        assert "wrong-pw-value" not in text


@pytest.mark.parametrize("code, name", [
    (1, "unacceptable protocol version"),
    (2, "identifier rejected"),
    (3, "server unavailable"),
    (4, "bad user name or password"),
    (5, "not authorised"),
])
def test_refused_connack_names_the_code(servers, clients, mqtt, code: int, name: str) -> None:
    server = servers(connack=bytes((0x20, 0x02, 0x00, code)))
    client = clients(server.port)
    with pytest.raises(mqtt.MQTTError) as caught:
        client.connect()
    err = caught.value
    assert isinstance(err, OSError)
    assert err.code == code
    assert name in str(err)


# -- 3. silent server -----------------------------------------------------------------
@pytest.mark.parametrize("connack", [None, b"\x20", b"\x20\x02\x00"],
                         ids=["nothing", "first-byte-only", "half-connack"])
def test_connect_to_a_silent_server_times_out(servers, clients, connack) -> None:
    server = servers(connack=connack)
    client = clients(server.port, timeout_ms=300)
    assert isinstance(bounded(client.connect), OSError)
    assert wait_until(lambda: 0x10 in server.types())
    assert client.sock is None


def test_connect_to_a_closed_port_raises_oserror(clients) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = clients(port, timeout_ms=300)
    with pytest.raises(OSError):
        client.connect()


# -- 4. PUBACK ----------------------------------------------------------------------------
def test_publish_qos1_without_puback_times_out(servers, clients) -> None:
    server = servers(puback=False)
    client = clients(server.port, timeout_ms=300)
    client.connect()
    client.publish("t", b"qos0 needs no answer")
    assert isinstance(bounded(lambda: client.publish("t", b"frame", qos=1)), OSError)
    assert wait_until(lambda: len(server.packets(0x30)) == 2)


def test_publish_arriving_during_puback_wait_is_delivered_and_acked(servers, clients) -> None:
    incoming = b"\x32" + varint(2 + 3 + 2 + 4) + b"\x00\x03cmd\x12\x34" + b"lock"
    server = servers(before_puback=incoming)
    client = clients(server.port)
    got: list[tuple[bytes, bytes]] = []
    client.set_callback(lambda topic, msg: got.append((topic, msg)))
    client.connect()
    client.publish("t", b"frame", qos=1)
    assert got == [(b"cmd", b"lock")]
    assert wait_until(lambda: server.packets(0x40) == [b"\x12\x34"])


def test_puback_for_another_packet_is_not_taken_for_ours(servers, clients) -> None:
    server = servers(puback_raw=b"\x40\x02\xbe\xef")
    client = clients(server.port, timeout_ms=300)
    client.connect()
    assert isinstance(bounded(lambda: client.publish("t", b"frame", qos=1)), OSError)


def test_packet_ids_run_1_to_65535_and_wrap(servers, clients) -> None:
    server = servers()
    client = clients(server.port)
    client.connect()
    client._pid = 65534  # skip 65,533 round trips
    for _ in range(3):
        client.publish("t", b"x", qos=1)
    pids = [body[3:5] for body in server.packets(0x30)]
    assert pids == [b"\xff\xff", b"\x00\x01", b"\x00\x02"]


def test_closed_connection_is_an_oserror(servers, clients, mqtt) -> None:
    server = servers(close_after_connack=True)
    client = clients(server.port)
    client.connect()
    failure: list[OSError] = []

    def step() -> bool:
        try:
            client.check_msg()
        except OSError as exc:
            failure.append(exc)
            return True
        return False

    assert wait_until(step)
    assert not isinstance(failure[0], mqtt.MQTTError)
    assert "connection closed" in str(failure[0])


# -- 5. keepalive --------------------------------------------------------------------------
def test_idle_client_sends_pingreq_after_half_keepalive(servers, clients, clock, mqtt) -> None:
    clock.now_ms = TICKS_MASK - 3000  # the keepalive arithmetic crosses the ticks wrap
    server = servers()
    client = clients(server.port, keepalive=10, timeout_ms=1000)
    client.connect()
    client.publish("t", b"sent")  # restarts the idle timer

    clock.advance(4999)
    client.check_msg()
    client.publish("t", b"marker-1")  # TCP keeps order: no PINGREQ may precede it
    assert wait_until(lambda: len(server.packets(0x30)) == 2)
    assert 0xC0 not in server.types()

    clock.advance(5000)  # 5 s since "marker-1"
    client.check_msg()
    assert wait_until(lambda: 0xC0 in server.types())
    assert check_until(client, lambda: client._ping_sent is None)

    # Answered, so well past the PINGRESP limit check_msg still does not raise.
    clock.advance(1000 + 5000 + 1)
    client.check_msg()
    assert wait_until(lambda: server.types().count(0xC0) == 2)


def test_missing_pingresp_raises_after_timeout_plus_half_keepalive(servers, clients,
                                                                   clock) -> None:
    server = servers(answer_ping=False)
    client = clients(server.port, keepalive=10, timeout_ms=1000)
    client.connect()
    clock.advance(5000)
    client.check_msg()
    assert wait_until(lambda: 0xC0 in server.types())

    clock.advance(1000 + 5000)  # exactly at the limit: still waiting
    client.check_msg()
    clock.advance(1)
    with pytest.raises(OSError) as caught:
        client.check_msg()
    assert "no PINGRESP" in str(caught.value)
    assert server.types().count(0xC0) == 1


def test_keepalive_zero_never_pings(servers, clients, clock) -> None:
    server = servers()
    client = clients(server.port, keepalive=0)
    client.connect()
    clock.advance(10 * 60 * 1000)
    client.check_msg()
    client.publish("t", b"marker")
    assert wait_until(lambda: server.packets(0x30))
    assert 0xC0 not in server.types()


def test_connect_sends_keepalive_will_and_clean_flag(servers, clients) -> None:
    server = servers()
    client = clients(server.port, keepalive=90)
    client.set_last_will("dev/status", b"offline", retain=True, qos=1)
    client.connect(clean_session=False)
    body = server.packets(0x10)[0]
    assert body[:7] == b"\x00\x04MQTT\x04"
    assert body[7] == 0x04 | 0x08 | 0x20  # will, will QoS 1, will retain; no clean session
    assert body[8:10] == b"\x00\x5a"
    assert body[10:] == b"\x00\x08dev-test" + b"\x00\x0adev/status" + b"\x00\x07offline"


# -- 6. malformed and oversized -------------------------------------------------------------
MALFORMED = {
    "oversized": b"\x30" + varint(5000),
    "length-over-4-bytes": b"\x30\xff\xff\xff\xff\x01",
    "topic-past-end": b"\x30\x03\x00\x10a",
    "short-publish": b"\x30\x01\x00",
    "qos1-without-packet-id": b"\x32\x03\x00\x01a",
    "publish-qos-2": b"\x34\x05\x00\x01a\x00\x01",
    "publish-qos-3": b"\x36\x05\x00\x01a\x00\x01",
    "pingresp-with-body": b"\xd0\x01\x00",
    "second-connack": CONNACK_OK,
    "reserved-type": b"\xf0\x00",
}


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_incoming_packet_is_an_mqtt_error(servers, clients, mqtt, raw: bytes) -> None:
    server = servers(after_connack=raw)
    client = clients(server.port)
    client.set_callback(lambda topic, msg: None)
    client.connect()
    failure: list[Exception] = []

    def step() -> bool:
        try:
            client.check_msg()
        except mqtt.MQTTError as exc:
            failure.append(exc)
            return True
        return False

    assert wait_until(step), "check_msg never noticed the bad packet"
    assert isinstance(failure[0], OSError)
    assert failure[0].code is None
    assert client.sock is None  # the stream is not trusted past a bad packet


@pytest.mark.parametrize("connack", [b"\x20\x01\x00", b"\x20\x03\x00\x00\x00", b"\x90\x03\x00\x01\x00",
                                     b"\x20" + varint(5000)],
                         ids=["short", "long", "suback", "oversized"])
def test_malformed_connack_is_an_mqtt_error(servers, clients, mqtt, connack: bytes) -> None:
    server = servers(connack=connack)
    client = clients(server.port)
    with pytest.raises(mqtt.MQTTError):
        client.connect()


def test_malformed_puback_is_an_mqtt_error(servers, clients, mqtt) -> None:
    server = servers(puback_raw=b"\x40\x01\x00")
    client = clients(server.port)
    client.connect()
    with pytest.raises(mqtt.MQTTError):
        client.publish("t", b"frame", qos=1)


@pytest.mark.parametrize("granted", [0, 1])
def test_subscribe_returns_the_granted_qos(servers, clients, granted: int) -> None:
    server = servers(suback_code=granted)
    client = clients(server.port)
    client.connect()
    assert client.subscribe("ok/topic", qos=1) == granted


def test_refused_subscription_is_an_mqtt_error(servers, clients, mqtt) -> None:
    server = servers(suback_code=0x80)
    client = clients(server.port)
    client.connect()
    with pytest.raises(mqtt.MQTTError):
        client.subscribe("forbidden/topic", qos=1)


# -- 7. check_msg never blocks ------------------------------------------------------------------
def test_check_msg_returns_at_once_when_nothing_is_readable(servers, clients) -> None:
    server = servers()
    # A blocking read would sit out the whole 5 s timeout on the first call.
    client = clients(server.port, timeout_ms=5000, keepalive=60)
    client.connect()
    assert bounded(lambda: [client.check_msg() for _ in range(200)], GENEROUS_S / 2) is None
    assert server.types() == [0x10]


@pytest.mark.broker
def test_check_msg_never_blocks_against_mosquitto(make_broker, clients) -> None:
    broker = make_broker("device-idle")
    client = clients(broker.port, timeout_ms=5000)
    client.connect()
    client.subscribe("anju/test/quiet")
    assert bounded(lambda: [client.check_msg() for _ in range(200)], GENEROUS_S / 2) is None
    client.disconnect()
